# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The EBS step's records, announcements and report (the texts the byok_ebs role's tasks wrote)."""

from __future__ import annotations

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.kops import ebs_step_record as record

CLUSTER = "acme01-kops.k8s.local"
KEY = "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"
GRANT_SUMMARY = f"Auto Scaling grant 178aa763 on {KEY} created for arn:aws:iam::222222222222:role/aws-service-role/autoscaling"


def instances(on, off):
    return [{"instance_id": f"i-on{n}", "on_key": True} for n in range(on)] + [{"instance_id": f"i-off{n}", "on_key": False} for n in range(off)]


def kops(on=0, off=5, summary=None, changed=True, etcd=None, commands=("get", "replace", "update"), rolled=()):
    return {"changed": changed, "instances": instances(on, off), "rolled": list(rolled), "roll_pending": off > 0,
            "summary": summary or f"{CLUSTER}: 3/3 launch templates and {on}/{on + off} instances on the key",
            "etcd": etcd if etcd is not None else [], "commands": list(commands), "spec_changes": [{"path": "x"}],
            "launch_templates": [{"name": "nodes"}], "verification": {"passed": off == 0}}


def member(group="master-us-east-1a", next_step="stop_member", outage=True):
    return {"instance_group": group, "next_step": next_step, "outage": outage}


def etcd(members=(), changed=False, deferred=(), steps=(), outage_seconds=0.0):
    return {"changed": changed, "failed": False, "complete": all(m["next_step"] == "done" for m in members),
            "deferred": list(deferred), "steps": list(steps), "members": list(members), "outage_seconds": outage_seconds}


GRANT = {"changed": True, "summary": GRANT_SUMMARY, "grant": {"grant_id": "178aa763"}}
GRANT_FOUND = {"changed": False, "summary": "Auto Scaling grant found", "grant": {"grant_id": "178aa763"}}


def records(kops_result, etcd_result, allowed=False, check_mode=False, roll=None, grant=None):
    return record.ebs_records(CLUSTER, grant or GRANT, kops_result, roll, etcd_result, allowed, check_mode, 300, 600)


# --- selections


@pytest.mark.parametrize("items, expected", [
    ([], []),
    (None, []),
    ([{"on_key": True}], []),
    ([{"on_key": False, "id": 1}, {"on_key": True, "id": 2}, {"id": 3}], [{"on_key": False, "id": 1}, {"id": 3}]),
])
def test_off_key(items, expected):
    assert record.off_key(items) == expected


def test_members_to_move_and_outage():
    plan = etcd([member("a", "done"), member("b", "stop_member", outage=False), member("c", "copy_volume", outage=True)])
    assert [m["instance_group"] for m in record.members_to_move(plan)] == ["b", "c"]
    assert [m["instance_group"] for m in record.outage_members(plan)] == ["c"]
    assert record.members_to_move({}) == [] and record.members_to_move(None) == [] and record.outage_members({"members": None}) == []


# --- announcements


def test_roll_announcement():
    assert record.roll_announcement(CLUSTER, 5, 300) == (
        f"kops rolling-update of {CLUSTER}: 5 instances replaced one at a time onto the customer key (about 1500 s)")


def test_etcd_announcements():
    assert record.etcd_announcement_before(CLUSTER, 600) == (
        f"etcd of {CLUSTER} moves onto the customer key: the single control-plane node stops while its volumes are copied "
        "(about 600 s; the Kubernetes API is unavailable, running workloads keep running)")
    assert record.etcd_announcement_after(CLUSTER, 5.6) == f"etcd of {CLUSTER} on the customer key (control plane stopped 5.6 s)"


# --- the etcd summary


@pytest.mark.parametrize("result, check_mode, expected", [
    (etcd([member()]), True, "0 of 1 etcd member(s) on the key (would move: master-us-east-1a)"),
    (etcd([member("a"), member("b", "done"), member("c")]), True, "1 of 3 etcd member(s) on the key (would move: a, c)"),
    (etcd([member()]), False, "0 of 1 etcd member(s) on the key"),
    (etcd([member("done-one", "done")]), True, "1 of 1 etcd member(s) on the key"),
    (etcd([]), True, "0 of 0 etcd member(s) on the key"),
    (etcd([member()], deferred=["master-us-east-1a"]), False,
     "0 of 1 etcd member(s) on the key; deferred to the maintenance window (single-member etcd: control-plane outage): master-us-east-1a"),
    (etcd([member(next_step="done")], changed=True, steps=["stopped", "copied"], outage_seconds=5.6), False,
     "1 of 1 etcd member(s) on the key; 2 step(s): stopped; copied; control plane stopped 5.6 s"),
    (etcd([member(next_step="done")], changed=True, steps=["copied"], outage_seconds=0.0), False,
     "1 of 1 etcd member(s) on the key; 1 step(s): copied"),
    (etcd([member("a"), member("b")], deferred=["a", "b"], steps=["x"]), True,
     "0 of 2 etcd member(s) on the key (would move: a, b); deferred to the maintenance window (single-member etcd: "
     "control-plane outage): a, b; 1 step(s): x"),
])
def test_etcd_summary(result, check_mode, expected):
    assert record.etcd_summary(result, check_mode) == expected


# --- the records


def test_check_mode_plan_roll_deferred_etcd_would_move():
    summary = (f"{CLUSTER}: 4 documents to edit, update needed; roll deferred: instances still on the old key; 2 etcd volumes "
               "off the key would be reported (a running cluster's etcd volumes cannot be re-keyed)")
    cluster, etcd_record = records(kops(summary=summary), etcd([member()], changed=True), check_mode=True)
    assert cluster == {"step": "ebs", "resource": CLUSTER, "changed": True, "disruptive": True, "deferred": True,
                       "estimated_disruption_seconds": 1500,
                       "summary": summary + f"; Auto Scaling grant: {GRANT_SUMMARY}; rolling update deferred: 5 instances wait "
                                            "for the maintenance window"}
    # The plan's changed is the prediction; a member to move with an outage makes it disruptive, not deferred.
    assert etcd_record == {"step": "ebs", "resource": f"{CLUSTER} etcd", "changed": True, "disruptive": True, "deferred": False,
                           "estimated_disruption_seconds": 600,
                           "summary": "0 of 1 etcd member(s) on the key (would move: master-us-east-1a)"}


def test_outside_the_window_roll_and_etcd_deferred():
    summary = f"{CLUSTER}: 3/3 launch templates and 0/5 instances on the key; roll deferred: instances still on the old key"
    cluster, etcd_record = records(kops(summary=summary), etcd([member()], deferred=["master-us-east-1a"]))
    assert cluster["summary"] == (summary + f"; Auto Scaling grant: {GRANT_SUMMARY}; rolling update deferred: 5 instances "
                                            "wait for the maintenance window")
    assert (cluster["changed"], cluster["disruptive"], cluster["deferred"], cluster["estimated_disruption_seconds"]) == (True, True, True, 1500)
    assert (etcd_record["changed"], etcd_record["disruptive"], etcd_record["deferred"]) == (False, True, True)
    assert etcd_record["estimated_disruption_seconds"] == 600  # the expected outage: nothing stopped yet
    assert "deferred to the maintenance window (single-member etcd" in etcd_record["summary"]


def test_rolled_and_moved():
    spec = kops(off=5, changed=False)
    roll = kops(on=5, off=0, changed=True, summary=f"{CLUSTER}: 3/3 launch templates and 5/5 instances on the key; 5 instances replaced",
                rolled=["i-1", "i-2", "i-3", "i-4", "i-5"], commands=("rolling-update",))
    moved = etcd([member(next_step="done")], changed=True, steps=["stop", "copy"], outage_seconds=5.6)
    cluster, etcd_record = records(spec, moved, allowed=True, roll=roll, grant=GRANT_FOUND)
    assert cluster == {"step": "ebs", "resource": CLUSTER, "changed": True, "disruptive": True, "deferred": False,
                       "estimated_disruption_seconds": 1500,
                       "summary": f"{CLUSTER}: 3/3 launch templates and 5/5 instances on the key; 5 instances replaced; "
                                  "Auto Scaling grant: Auto Scaling grant found"}
    assert etcd_record == {"step": "ebs", "resource": f"{CLUSTER} etcd", "changed": True, "disruptive": True, "deferred": False,
                           "estimated_disruption_seconds": 5.6,
                           "summary": "1 of 1 etcd member(s) on the key; 2 step(s): stop; copy; control plane stopped 5.6 s"}


def test_nothing_left_to_do():
    cluster, etcd_record = records(kops(on=5, off=0, changed=False), etcd([member(next_step="done")]), allowed=True, grant=GRANT_FOUND)
    assert (cluster["changed"], cluster["disruptive"], cluster["deferred"], cluster["estimated_disruption_seconds"]) == (False, False, False, None)
    assert (etcd_record["changed"], etcd_record["disruptive"], etcd_record["deferred"], etcd_record["estimated_disruption_seconds"]) == (
        False, False, False, None)
    assert etcd_record["summary"] == "1 of 1 etcd member(s) on the key"


def test_allowed_but_the_roll_left_instances_off_the_key():
    roll = kops(on=4, off=1, changed=True, rolled=["i-1"])
    cluster, _etcd = records(kops(off=5), etcd([]), allowed=True, roll=roll)
    # Still disruptive (an instance waits), not deferred (the window was open), no "deferred" sentence.
    assert (cluster["disruptive"], cluster["deferred"]) == (True, False)
    assert "rolling update deferred" not in cluster["summary"]


def test_a_roll_with_nothing_replaced_and_nothing_pending():
    roll = kops(on=5, off=0, changed=False, rolled=[])
    cluster, _etcd = records(kops(off=2, changed=False), etcd([]), allowed=True, roll=roll, grant=GRANT_FOUND)
    assert (cluster["changed"], cluster["disruptive"], cluster["estimated_disruption_seconds"]) == (False, False, 600)


def test_a_roll_result_in_check_mode_is_not_a_roll_of_this_run():
    roll = kops(on=5, off=0, changed=True, rolled=["i-1"])
    cluster, _etcd = records(kops(off=0, on=5, changed=False), etcd([]), check_mode=True, roll=roll, grant=GRANT_FOUND)
    assert (cluster["changed"], cluster["disruptive"]) == (False, False)


def test_the_etcd_part_of_the_kops_summary_is_dropped_only_when_the_rekey_runs():
    summary = f"{CLUSTER}: done; 2 etcd volumes off the key are reported (cannot be re-keyed); roll deferred"
    with_rekey = records(kops(summary=summary), etcd([member()]), allowed=True)[0]
    assert with_rekey["summary"] == f"{CLUSTER}: done; roll deferred; Auto Scaling grant: {GRANT_SUMMARY}"
    without = records(kops(summary=summary), {}, allowed=True)[0]
    assert without["summary"] == f"{summary}; Auto Scaling grant: {GRANT_SUMMARY}"


@pytest.mark.parametrize("volumes, expected", [
    ([{"volume_name": "a.etcd-main", "on_key": False}, {"volume_name": "a.etcd-events", "on_key": False}],
     "2 etcd volumes stay on their key (a.etcd-main, a.etcd-events): the etcd re-key is off (byok_ebs_etcd_rekey); "
     "see the EBS report for the options"),
    ([{"volume_name": "a.etcd-main", "on_key": True}, {"volume_name": "a.etcd-events", "on_key": False}],
     "1 etcd volumes stay on their key (a.etcd-events): the etcd re-key is off (byok_ebs_etcd_rekey); see the EBS report for the options"),
    ([{"volume_name": "a.etcd-main", "on_key": True}], "every etcd volume is on the key"),
    ([], "every etcd volume is on the key"),
])
def test_etcd_record_when_the_rekey_is_off(volumes, expected):
    _cluster, etcd_record = records(kops(etcd=volumes), {})
    assert etcd_record == {"step": "ebs", "resource": f"{CLUSTER} etcd", "changed": False, "disruptive": False, "deferred": False,
                           "estimated_disruption_seconds": None, "summary": expected}


def test_etcd_record_reads_the_rolled_cluster_when_the_rekey_is_off():
    roll = kops(on=5, off=0, etcd=[{"volume_name": "v", "on_key": True}])
    _cluster, etcd_record = records(kops(etcd=[{"volume_name": "v", "on_key": False}]), {}, allowed=True, roll=roll)
    assert etcd_record["summary"] == "every etcd volume is on the key"


def test_etcd_outage_counts_only_when_the_move_changed_or_waits():
    # A member with an outage, neither moved nor deferred (e.g. the plan found nothing to do): no disruption.
    _cluster, etcd_record = records(kops(), etcd([member()], changed=False))
    assert (etcd_record["disruptive"], etcd_record["estimated_disruption_seconds"]) == (False, None)
    # Members without an outage (three-member etcd), moved: not disruptive.
    _cluster, etcd_record = records(kops(), etcd([member(next_step="done", outage=False)], changed=True, steps=["x"]))
    assert (etcd_record["changed"], etcd_record["disruptive"]) == (True, False)


# --- the registered form and the report


def test_as_registered():
    result = {"invocation": {"module_args": {}}, "complete": True, "warnings": ["w"], "changed": True, "members": [],
              "_ansible_no_log": False, "diff": {"before": "a", "after": "b"}}
    kept = record.as_registered(result)
    assert list(kept) == ["changed", "failed", "complete", "members", "diff"]
    assert kept["changed"] is True and kept["failed"] is False
    assert record.as_registered({}) == {"changed": False, "failed": False}


def test_report_of_a_plan():
    spec = kops()
    report = record.ebs_report("acme", CLUSTER, KEY, True, GRANT, spec, None, etcd([member()]), None)
    assert list(report) == ["customer", "cluster", "key_arn", "check_mode", "grant", "spec_changes", "commands", "rolled",
                            "roll_pending", "verification", "launch_templates", "instances", "etcd", "etcd_rekey",
                            "storage_class", "storage_class_applied"]
    assert (report["customer"], report["cluster"], report["key_arn"], report["check_mode"]) == ("acme", CLUSTER, KEY, True)
    assert report["grant"] == {"grant_id": "178aa763"} and report["commands"] == ["get", "replace", "update"]
    assert report["instances"] == spec["instances"] and report["roll_pending"] is True
    assert report["etcd_rekey"]["members"] == [member()]
    assert (report["storage_class"], report["storage_class_applied"]) == (None, False)


def test_report_of_a_roll_with_storage_class():
    roll = kops(on=5, off=0, commands=("rolling-update",), rolled=["i-1"])
    storage = {"manifest": {"kind": "StorageClass"}, "applied": True}
    report = record.ebs_report("acme", CLUSTER, KEY, False, {"summary": "s"}, kops(), roll, {}, storage)
    assert report["commands"] == ["get", "replace", "update", "rolling-update"]
    assert report["instances"] == roll["instances"] and report["rolled"] == ["i-1"] and report["roll_pending"] is False
    assert report["verification"] == {"passed": True} and report["spec_changes"] == [{"path": "x"}]
    assert report["grant"] is None and report["etcd_rekey"] is None
    assert report["storage_class"] == {"kind": "StorageClass"} and report["storage_class_applied"] is True


def test_report_without_verification():
    spec = kops()
    del spec["verification"]
    assert record.ebs_report("acme", CLUSTER, KEY, True, GRANT, spec, None, {}, {})["verification"] is None
