# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the EBS step (mattermost.byok.ebs_step) decides, announces, records and reports, from its modules' results.

Pure functions of the results of autoscaling_kms_grant, kops_kms_update (the spec run, and the roll when one ran),
kops_etcd_rekey (its plan, or the move when one ran) and ebs_storage_class: the step's two records in
byok_step_results (the cluster, its etcd volumes), the announcement texts and the EBS report. The texts are the ones
the byok_ebs role's tasks wrote, so records, summaries and reports read the same.
"""
from __future__ import annotations

# The kops summary's part about etcd volumes off the key, dropped from the record when the etcd re-key runs (its
# own record says what happened to them).
ETCD_REPORTED = "etcd volumes off the key are reported"


def off_key(items):
    """The instances (or etcd volumes) of a kops_kms_update result that are not on the key."""
    return [item for item in items or [] if not item.get("on_key")]


def members_to_move(plan):
    """The etcd members of a kops_etcd_rekey result that are not done yet."""
    return [m for m in (plan or {}).get("members") or [] if m.get("next_step") != "done"]


def outage_members(plan):
    """The members to move whose move stops the control plane (a single-member etcd)."""
    return [m for m in members_to_move(plan) if m.get("outage")]


def roll_announcement(cluster, stale, seconds_per_instance):
    """The 'before' announcement of the rolling update."""
    return (f"kops rolling-update of {cluster}: {stale} instances replaced one at a time onto the customer key "
            f"(about {stale * seconds_per_instance} s)")


def etcd_announcement_before(cluster, outage_seconds):
    """The 'before' announcement of a control-plane outage of the etcd re-key."""
    return (f"etcd of {cluster} moves onto the customer key: the single control-plane node stops while its volumes are "
            f"copied (about {outage_seconds} s; the Kubernetes API is unavailable, running workloads keep running)")


def etcd_announcement_after(cluster, outage_seconds):
    """The 'after' announcement of the etcd re-key."""
    return f"etcd of {cluster} on the customer key (control plane stopped {outage_seconds} s)"


def etcd_summary(etcd, check_mode):
    """The etcd record's summary when the re-key ran (its plan in check mode, else the move or the plan)."""
    members = etcd.get("members") or []
    done = [m for m in members if m.get("next_step") == "done"]
    text = f"{len(done)} of {len(members)} etcd member(s) on the key"
    if check_mode and len(done) < len(members):
        text += " (would move: " + ", ".join(str(m.get("instance_group")) for m in members if m.get("next_step") != "done") + ")"
    if etcd.get("deferred"):
        text += "; deferred to the maintenance window (single-member etcd: control-plane outage): " + ", ".join(etcd["deferred"])
    if etcd.get("steps"):
        text += f"; {len(etcd['steps'])} step(s): " + "; ".join(etcd["steps"])
    if (etcd.get("outage_seconds") or 0) > 0:
        text += f"; control plane stopped {etcd['outage_seconds']} s"
    return text.strip()


def as_registered(result):
    """A module's result as a task's `register:` keeps it: changed and failed first, no invocation or warnings."""
    kept = {"changed": bool(result.get("changed", False)), "failed": bool(result.get("failed", False))}
    kept.update((k, v) for k, v in result.items()
                if k not in ("changed", "failed", "invocation", "warnings", "deprecations") and not k.startswith("_ansible"))
    return kept


def final_kops(kops, roll):
    """The cluster as the step leaves it: the roll's result when this run rolled, else the spec run's."""
    return roll if roll is not None else kops


def ebs_records(cluster, grant, kops, roll, etcd, allowed, check_mode, seconds_per_instance, etcd_outage_seconds):
    """The step's two records for byok_step_results: the cluster ('<cluster>') and its etcd volumes ('<cluster> etcd').

    roll: the roll's result when this run rolled (outside check mode only), else None. etcd: the re-key's outcome (the
    move's result when one ran, else its plan), {} when the re-key is off. allowed: whether disruption is allowed, as
    last decided in the step."""
    final = final_kops(kops, roll)
    rolled = roll is not None and not check_mode
    pending = len(off_key(final.get("instances")))
    stale0 = len(off_key(kops.get("instances")))
    summary = final.get("summary") or ""
    if etcd:
        summary = "; ".join(part for part in summary.split("; ") if ETCD_REPORTED not in part)
    summary += f"; Auto Scaling grant: {grant.get('summary')}"
    if pending > 0 and not allowed:
        summary += f"; rolling update deferred: {pending} instances wait for the maintenance window"
    cluster_record = {
        "step": "ebs",
        "resource": cluster,
        "changed": bool(grant.get("changed") or kops.get("changed") or (rolled and roll.get("changed"))),
        "disruptive": pending > 0 or (rolled and len(roll.get("rolled") or []) > 0),
        "deferred": pending > 0 and not allowed,
        "estimated_disruption_seconds": stale0 * seconds_per_instance if stale0 > 0 else None,
        "summary": summary,
    }

    outage = [m for m in etcd.get("members") or [] if m.get("outage")] if (etcd.get("changed") or etcd.get("deferred")) else []
    if etcd:
        etcd_text = etcd_summary(etcd, check_mode)
    else:
        off_etcd = off_key(final.get("etcd"))
        etcd_text = (f"{len(off_etcd)} etcd volumes stay on their key ("
                     + ", ".join(str(v.get("volume_name")) for v in off_etcd)
                     + "): the etcd re-key is off (byok_ebs_etcd_rekey); see the EBS report for the options"
                     if off_etcd else "every etcd volume is on the key")
    etcd_record = {
        "step": "ebs",
        "resource": f"{cluster} etcd",
        "changed": bool(etcd.get("changed", False)),
        "disruptive": len(outage) > 0,
        "deferred": len(etcd.get("deferred") or []) > 0,
        "estimated_disruption_seconds": (
            (etcd["outage_seconds"] if (etcd.get("outage_seconds") or 0) > 0 else etcd_outage_seconds) if outage else None),
        "summary": etcd_text,
    }
    return [cluster_record, etcd_record]


def ebs_report(customer, cluster, key_arn, check_mode, grant, kops, roll, etcd, storage):
    """The EBS report (<artifacts>/ebs/<customer>.json): grant, spec changes, commands, launch templates, instances,
    the etcd volumes (as the spec run found them) and the re-key's outcome, the StorageClass.

    roll, etcd and storage as in ebs_records (storage: the ebs_storage_class result, None when it did not run)."""
    final = final_kops(kops, roll)
    storage = storage or {}
    return {
        "customer": customer,
        "cluster": cluster,
        "key_arn": key_arn,
        "check_mode": check_mode,
        "grant": grant.get("grant"),
        "spec_changes": kops.get("spec_changes"),
        "commands": list(kops.get("commands") or []) + (list(roll.get("commands") or []) if roll is not None else []),
        "rolled": final.get("rolled"),
        "roll_pending": final.get("roll_pending"),
        "verification": final.get("verification"),
        "launch_templates": final.get("launch_templates"),
        "instances": final.get("instances"),
        "etcd": final.get("etcd"),
        "etcd_rekey": etcd or None,
        "storage_class": storage.get("manifest"),
        "storage_class_applied": storage.get("applied", False),
    }
