# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The key watch: a scheduled, read-only look at every key of a customer and at what depends on it.

What the customer does to its key (disable it, schedule its deletion, let imported material expire, edit the policy,
revoke a grant) takes the deployment down; the watch tells the SRE team the day it happens, not the day it breaks.
Reads reuse the key check (key_check), the audit's readers (encryption_audit) and the grant lookup (kms_keys); the
decisions (findings, what breaks, which alerts to send) are pure functions, unit-tested.
"""

from __future__ import annotations

import datetime
import json
import time
from concurrent.futures import ThreadPoolExecutor

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # the module reports the missing SDK

from ansible_collections.mattermost.byok.plugins.module_utils.kms import key_check
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import same_kms_key
from ansible_collections.mattermost.byok.plugins.module_utils.aws.errors import error_code
from ansible_collections.mattermost.byok.plugins.module_utils.aws.errors import error_text
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.encryption_audit import CustomerAudit
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.encryption_audit import ON_CUSTOMER_KEY
from ansible_collections.mattermost.byok.plugins.module_utils.kms.keys import retirable_grants
from ansible_collections.mattermost.byok.plugins.module_utils.kms.onboarding_policy import key_policy_statements
from ansible_collections.mattermost.byok.plugins.module_utils.kms.onboarding_policy import required_access

CRITICAL = "critical"
WARNING = "warning"
INFO = "info"
SEVERITY_RANK = {CRITICAL: 0, WARNING: 1, INFO: 2}
ALERTED = (CRITICAL, WARNING)  # info findings are reported, never posted
# RDS says so when it lost access to its key (the storage can't be decrypted until the key is usable again).
INACCESSIBLE_DB_STATES = ("inaccessible-encryption-credentials", "inaccessible-encryption-credentials-recoverable")
SERVICE_WORDS = {"rds": "the database", "s3": "the file store", "ebs": "every node of the cluster"}


# -- pure decisions ---------------------------------------------------------------------------------------------
def _date(value) -> datetime.datetime | None:
    return key_check._as_datetime(value) if value else None


def days_until(when: datetime.datetime | None, now: datetime.datetime) -> int | None:
    """Whole days left (rounded down; negative once past)."""
    if when is None:
        return None
    return int((when - now).total_seconds() // 86400)


def what_depends(services: list[str], dependents: list[dict]) -> str:
    """'the database (acme-db), the file store (b1, b2) and every node of the cluster (acme01-kops.k8s.local)'."""
    parts = []
    for service in ("rds", "s3", "ebs"):
        if service not in services:
            continue
        names = sorted({d["id"].split(" ")[0] for d in dependents if d["service"] == service and d["type"] in
                        ("rds_cluster", "rds_instance", "s3_bucket", "launch_template") and not d.get("cluster")})
        parts.append(SERVICE_WORDS[service] + (f" ({', '.join(names)})" if names else ""))
    if not parts:
        return "nothing of the deployment"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def key_findings(key: dict, now: datetime.datetime, expiry_warning_days: int) -> list[dict]:
    """Findings of one watched key (as read by watch_key), each saying what stops working and when."""
    arn, deps = key["key_arn"], what_depends(key["services"], key["dependents"])
    out = []

    def add(severity, code, message, fix=""):
        out.append({"id": f"{arn}#{code}", "severity": severity, "code": code, "key_arn": arn, "message": message, "fix": fix})

    if key.get("error"):
        add(CRITICAL, "KEY_UNREADABLE", f"key {arn} cannot be described ({key['error']}): it was deleted, or its policy no longer "
            f"lets the provider account use it; {deps} cannot use it", fix="Ask the customer what changed on the key")
        return out
    state, deletion = key.get("state"), _date(key.get("deletion_date"))
    if state == "PendingDeletion" and deletion:
        days = days_until(deletion, now)
        add(CRITICAL, "KEY_PENDING_DELETION",
            f"key {arn} scheduled for deletion on {deletion.date().isoformat()} ({days} days): KMS already refuses it, so {deps} "
            f"stop working as they next need the key; on {deletion.date().isoformat()} it is deleted and the data is unrecoverable after",
            fix=f"The customer runs: aws kms cancel-key-deletion --key-id {arn} && aws kms enable-key --key-id {arn}")
    elif state == "Disabled":
        add(CRITICAL, "KEY_DISABLED", f"key {arn} is disabled: KMS refuses every use now, so {deps} stop working as they next need the key "
            "(new nodes fail to start, the database loses access to its storage, uploads and downloads fail)",
            fix=f"The customer runs: aws kms enable-key --key-id {arn}")
    elif state == "PendingImport":
        add(CRITICAL, "KEY_PENDING_IMPORT", f"key {arn} has no key material (expired or deleted): {deps} cannot use it until the same "
            "material is imported again", fix="Re-import the customer's key material (mattermost.byok.kms_key_import)")
    elif state and state != "Enabled":
        add(CRITICAL, "KEY_UNAVAILABLE", f"key {arn} is {state}: {deps} cannot use it now",
            fix="The customer reconnects the custom key store, or waits until the key is Enabled")
    valid_to = _date(key.get("valid_to"))
    if valid_to and state != "PendingImport":
        days = days_until(valid_to, now)
        when = valid_to.date().isoformat()
        if days < 0:
            add(CRITICAL, "KEY_MATERIAL_EXPIRED", f"imported key material of {arn} expired on {when}: {deps} cannot use the key",
                fix="Re-import the same key material (mattermost.byok.kms_key_import)")
        elif days < expiry_warning_days:
            add(WARNING, "KEY_MATERIAL_EXPIRES_SOON", f"imported key material of {arn} expires on {when} ({days} days): {deps} "
                "stop working then, until the same material is imported again",
                fix="Re-import the same key material with a later ValidTo (mattermost.byok.kms_key_import)")
        else:
            add(INFO, "KEY_MATERIAL_EXPIRES", f"imported key material of {arn} expires on {when} ({days} days)")
    for step in key.get("probe") or []:
        if not step["ok"] and not step["detail"].startswith("skipped"):
            add(CRITICAL, "PROBE_FAILED", f"the provider cannot {step['operation']} with key {arn} ({step['detail']}): "
                f"{deps} fail the same way as they next need the key",
                fix="The customer restores the key policy statements of the onboarding document")
            break
    for f in key.get("policy_findings") or []:
        if f["severity"] == key_check.ERROR:
            add(CRITICAL, f"{f['code']}:{f.get('principal') or ''}", f"key {arn}: {f['message']}; {deps} fail as they next need it",
                fix=f.get("fix", ""))
    grant = key.get("autoscaling_grant") or {}
    if grant.get("required") and grant.get("present") is None and state == "Enabled":
        add(WARNING, "AUTOSCALING_GRANT_UNVERIFIED", f"the Auto Scaling grant on key {arn} could not be verified "
            f"({grant.get('detail', 'grants not readable')}): if it is gone, new nodes of the cluster fail to launch",
            fix="Let the watch's role list the provider's retirable grants (kms:ListRetirableGrants)")
    elif grant.get("required") and grant.get("present") is False and state == "Enabled":
        add(CRITICAL, "AUTOSCALING_GRANT_MISSING", f"the Auto Scaling grant on key {arn} is gone: new nodes of the cluster "
            "fail to launch (their volumes can't be created on the key); running nodes keep working",
            fix="Run the fleet playbook's EBS step for the customer (--tags ebs), which creates the grant again")
    for d in key["dependents"]:
        if d.get("db_status") in INACCESSIBLE_DB_STATES:
            add(CRITICAL, f"DB_INACCESSIBLE:{d['id']}", f"{d['type'].replace('_', ' ')} {d['id']} is {d['db_status']}: the database is down "
                f"until key {arn} is usable again", fix="Make the key usable, then start the database (RDS recovers it)")
    if not out:
        add(INFO, "KEY_OK", f"key {arn} is {state} and usable; {deps} depend on it")
    return out


def deadline(key: dict) -> tuple[str | None, str | None]:
    """The nearest date something stops working: deletion, material expiry."""
    dates = [(d, what) for d, what in ((key.get("deletion_date"), "deletion"), (key.get("valid_to"), "material expiry")) if d]
    return min(dates, key=lambda x: _date(x[0])) if dates else (None, None)


def urgency(key: dict) -> tuple:
    """Sort order of the report: worst severity first, then the nearest deadline, then customer and key."""
    worst = min((SEVERITY_RANK[f["severity"]] for f in key["findings"]), default=2)
    days = key.get("days_to_deadline")
    return (worst, days if days is not None else 10 ** 6, key.get("customer") or "", key["key_arn"])


def alerts(previous: dict | None, findings: list[dict]) -> list[dict]:
    """What to post: findings that appeared or changed severity, and those that cleared (resolved).

    `previous` maps finding id -> {severity, message} as the last run kept it; None when it could not be read,
    and then every current finding is new (a run that lost its memory alerts rather than stays silent).
    """
    before = dict(previous or {})
    now = {f["id"]: f for f in findings if f["severity"] in ALERTED}
    out = []
    for fid, f in now.items():
        old = before.get(fid)
        if old is None:
            out.append({"event": "new", **f})
        elif old.get("severity") != f["severity"]:
            out.append({"event": "changed", "previous_severity": old.get("severity"), **f})
    for fid, old in before.items():
        if fid not in now:
            out.append({"event": "resolved", "id": fid, "severity": "resolved", "code": old.get("code", fid.split("#")[-1]),
                        "key_arn": old.get("key_arn", fid.split("#")[0]), "message": f"resolved: {old.get('message', fid)}",
                        "previous_severity": old.get("severity"), "fix": ""})
    out.sort(key=lambda a: ({"critical": 0, "warning": 1, "resolved": 2}.get(a["severity"], 3), a["id"]))
    return out


def kept_state(findings: list[dict]) -> dict:
    """What the next run compares with: the alerted findings, by id (no secret: codes, severities, messages)."""
    return {f["id"]: {"severity": f["severity"], "code": f["code"], "key_arn": f["key_arn"], "message": f["message"]}
            for f in findings if f["severity"] in ALERTED}


def alert_text(customer: str, environment: str, items: list[dict]) -> str:
    """One Mattermost message for a customer's alerts of this run."""
    icon = {"critical": ":rotating_light:", "warning": ":warning:", "resolved": ":white_check_mark:"}
    lines = [f"[BYOK {environment} key watch] {customer}:"]
    for a in items:
        head = a["severity"].upper() if a["event"] != "resolved" else "RESOLVED"
        if a["event"] == "changed":
            head += f" (was {a['previous_severity']})"
        lines.append(f"{icon.get(a['severity'], '')} {head} {a['message']}" + (f" Fix: {a['fix']}" if a.get("fix") else ""))
    return "\n".join(lines)


# -- reads --------------------------------------------------------------------------------------------------
class CustomerWatch:
    """Every key of one customer and its dependents, read concurrently. `clients(service, region)` as the audit's."""

    def __init__(self, config: dict, clients, caller_arn: str, now: datetime.datetime, expiry_warning_days: int = 30,
                 concurrency: int = 8, probe: bool = True):
        self.config, self.clients, self.now = config, clients, now
        self.caller = key_check.caller_principal(caller_arn)
        self.expiry_warning_days, self.concurrency, self.probe = expiry_warning_days, max(1, concurrency), probe

    def run(self) -> dict:
        started = time.monotonic()
        cfg = self.config
        audit = CustomerAudit(cfg, self.clients, s3_object_sample=1, concurrency=self.concurrency)
        jobs = [(audit.audit_bucket_default, b) for b in cfg["s3_buckets"]] + [(audit.audit_rds, c) for c in cfg["rds_clusters"]]
        if cfg.get("kops_cluster_name") and "ebs" in cfg["services"]:
            jobs.append((audit.audit_launch_templates,))
        with ThreadPoolExecutor(max_workers=self.concurrency) as leaves, ThreadPoolExecutor(max_workers=self.concurrency) as outer:
            audit.pool = leaves
            key_futures = [outer.submit(self.read_key, k) for k in cfg["distinct_keys"]]
            grant_future = outer.submit(self.provider_grants) if any("ebs" in k["services"] for k in cfg["distinct_keys"]) else None
            dep_futures = [outer.submit(*job) for job in jobs]
            records = []
            for f in dep_futures:
                r = f.result()
                records.extend(r if isinstance(r, list) else [r])
            grants = grant_future.result() if grant_future else None
            keys = [f.result() for f in key_futures]
        for key in keys:
            self.attach(key, records, grants)
        keys.sort(key=urgency)
        findings = [f for k in keys for f in k["findings"]]
        return {"customer": cfg["customer"], "customer_keys": keys, "findings": findings, "state": kept_state(findings),
                "caller": self.caller, "seconds": round(time.monotonic() - started, 3)}

    def read_key(self, k: dict) -> dict:
        arn = k["arn"]
        kms = self.clients("kms", k["region"])
        key = {"customer": self.config["customer"], "key_arn": arn, "region": k["region"], "services": k["services"],
               "state": None, "key_manager": None, "origin": None, "deletion_date": None, "valid_to": None,
               "material_days_left": None, "probe": [], "policy_source": "unreadable", "policy_findings": [], "error": None}
        try:
            meta = kms.describe_key(aws_retry=True, KeyId=arn)["KeyMetadata"]
        except (ClientError, BotoCoreError) as e:
            key["error"] = error_text(e)
            return key
        summary = key_check.key_summary(meta, arn, k["region"], None)
        key.update(state=summary["state"], key_manager=summary["key_manager"], origin=summary["origin"],
                   deletion_date=summary["deletion_date"], valid_to=summary["valid_to"],
                   material_days_left=days_until(_date(summary["valid_to"]), self.now))
        # KMS lets only the key's own account read its policy: a provider-held (external) key's is read, and a node
        # role dropped from it is caught here; a customer's key is covered by the probe as the run's identity.
        try:
            policy = kms.get_key_policy(aws_retry=True, KeyId=arn, PolicyName="default")["Policy"]
            key["policy_source"] = "aws"
        except (ClientError, BotoCoreError):
            policy = None
        if policy is not None:
            cfg = self.config
            requirements = required_access(cfg["principals"], k["services"], cfg["provider_account_id"], k["region"])
            statements = {s["sid"]: s["statement"] for s in key_policy_statements(cfg["principals"], k["services"],
                                                                                  cfg["provider_account_id"], k["region"], arn)}
            key["policy_findings"] = key_check.policy_findings(policy, requirements, arn, statements)[1]
        if self.probe and summary["state"] == "Enabled":
            grantee = self.config.get("principals", {}).get("autoscaling_role") or self.caller
            key["probe"] = key_check.probe(kms, arn, self.caller, grantee)[0]
        elif self.probe:
            key["probe"] = [{"operation": "all", "ok": False, "detail": f"skipped: the key is {summary['state']}"}]
        return key

    def provider_grants(self):
        """The grants the provider account made (and may retire), or the error that kept them from being read."""
        kms = self.clients("kms", self.config["region"])
        try:
            return retirable_grants(kms, f"arn:aws:iam::{self.config['provider_account_id']}:root")
        except (ClientError, BotoCoreError) as e:
            return error_text(e)

    def attach(self, key: dict, records: list[dict], grants) -> None:
        """Dependents, the Auto Scaling grant, deadlines and findings of one key."""
        arn = key["key_arn"]
        deps = [r for r in records if r.get("expected_key_arn") and same_kms_key(r["expected_key_arn"], arn)]
        key["dependents"] = [{"service": r["service"], "type": r["type"], "id": r["id"], "region": r["region"], "status": r["status"],
                              "on_key": r["status"] == ON_CUSTOMER_KEY, "key_arn": r.get("key_arn"), "db_status": r.get("db_status"),
                              "cluster": r.get("cluster")} for r in deps]
        if "ebs" in key["services"]:
            # Required once the EBS step put the launch templates on the key (before that, nothing launches on it).
            required = any(d["type"] == "launch_template" and d["on_key"] for d in key["dependents"])
            role = self.config["principals"]["autoscaling_role"]
            if isinstance(grants, str):
                key["autoscaling_grant"] = {"required": required, "present": None, "detail": f"grants not readable: {grants}"}
            else:
                found = [g for g in grants or [] if same_kms_key(g.get("KeyId"), arn) and g.get("GranteePrincipal") == role]
                key["autoscaling_grant"] = {"required": required, "present": bool(found),
                                            "grant_ids": [g.get("GrantId") for g in found],
                                            "detail": f"{len(found)} grant(s) to {role}"}
        when, what = deadline(key)
        key["deadline"], key["deadline_kind"] = when, what
        key["days_to_deadline"] = days_until(_date(when), self.now)
        key["findings"] = key_findings(key, self.now, self.expiry_warning_days)
        key["severity"] = min((f["severity"] for f in key["findings"]), key=SEVERITY_RANK.get)
        key["urgency"] = list(urgency(key)[:2])  # for sorting the fleet's keys in the report


def read_kept_state(s3, bucket: str, key: str):
    """(state, note): the last run's findings of a customer, or None with why it could not be read."""
    try:
        body = s3.get_object(aws_retry=True, Bucket=bucket, Key=key)["Body"].read()
    except ClientError as e:
        if error_code(e) in ("NoSuchKey", "404"):
            return None, "no kept state yet: every finding is new"
        return None, f"kept state not readable ({error_text(e)}): every finding is treated as new"
    except BotoCoreError as e:
        return None, f"kept state not readable ({error_text(e)}): every finding is treated as new"
    try:
        doc = json.loads(body)
        return dict(doc["findings"]), "read"
    except (ValueError, KeyError, TypeError) as e:
        return None, f"kept state is not valid ({e}): every finding is treated as new"
