# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The key watch's decisions: findings with their severity and what breaks, deadlines, urgency, and which alerts to post."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.kms import key_watch

ARN = "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"
NOW = datetime.datetime(2026, 12, 23, 10, 0, tzinfo=datetime.timezone.utc)
DEPENDENTS = [
    {"service": "s3", "type": "s3_bucket", "id": "mattermost-acme-filestore", "on_key": True, "db_status": None, "cluster": None},
    {"service": "s3", "type": "s3_bucket", "id": "mattermost-acme-backups", "on_key": True, "db_status": None, "cluster": None},
    {"service": "rds", "type": "rds_cluster", "id": "acme-db", "on_key": True, "db_status": "available", "cluster": None},
    {"service": "rds", "type": "rds_instance", "id": "acme-db-1", "on_key": True, "db_status": "available", "cluster": "acme-db"},
    {"service": "ebs", "type": "launch_template", "id": "nodes.acme01 /dev/xvda", "on_key": True, "db_status": None, "cluster": None},
]


def key(**kw):
    base = {"key_arn": ARN, "customer": "acme", "services": ["ebs", "rds", "s3"], "dependents": DEPENDENTS, "state": "Enabled",
            "deletion_date": None, "valid_to": None, "probe": [{"operation": "Encrypt", "ok": True, "detail": "ok"}],
            "policy_findings": [], "autoscaling_grant": {"required": True, "present": True}, "error": None}
    base.update(kw)
    return base


def findings(days=30, **kw):
    return key_watch.key_findings(key(**kw), NOW, days)


def codes(**kw):
    return [(f["severity"], f["code"]) for f in findings(**kw)]


def test_a_healthy_key_is_one_info_finding_naming_its_dependents():
    [f] = findings()
    assert (f["severity"], f["code"], f["id"]) == ("info", "KEY_OK", f"{ARN}#KEY_OK")
    assert ("the database (acme-db), the file store (mattermost-acme-backups, mattermost-acme-filestore) and every node of "
            "the cluster (nodes.acme01)") in f["message"]


def test_pending_deletion_says_the_date_the_days_and_that_the_data_is_unrecoverable():
    [f] = findings(state="PendingDeletion", deletion_date="2027-01-04T10:00:00+00:00", probe=[])
    assert (f["severity"], f["code"]) == ("critical", "KEY_PENDING_DELETION")
    assert f["message"].startswith(f"key {ARN} scheduled for deletion on 2027-01-04 (12 days): ")
    assert "the database (acme-db)" in f["message"] and "the data is unrecoverable after" in f["message"]
    assert f"aws kms cancel-key-deletion --key-id {ARN}" in f["fix"]


@pytest.mark.parametrize("state, code", [
    ("Disabled", "KEY_DISABLED"), ("PendingImport", "KEY_PENDING_IMPORT"), ("Unavailable", "KEY_UNAVAILABLE"),
    ("Updating", "KEY_UNAVAILABLE"), ("PendingReplicaDeletion", "KEY_UNAVAILABLE"),
])
def test_every_unusable_state_is_critical(state, code):
    assert codes(state=state, probe=[{"operation": "all", "ok": False, "detail": f"skipped: the key is {state}"}]) == [("critical", code)]


@pytest.mark.parametrize("valid_to, days, expected", [
    ("2027-01-01T10:00:00+00:00", 30, [("warning", "KEY_MATERIAL_EXPIRES_SOON")]),   # 9 days
    ("2027-01-22T09:00:00+00:00", 30, [("warning", "KEY_MATERIAL_EXPIRES_SOON")]),   # 29 days and 23 hours
    ("2027-01-22T10:00:00+00:00", 30, [("info", "KEY_MATERIAL_EXPIRES")]),           # 30 days: not within
    ("2027-06-01T00:00:00+00:00", 30, [("info", "KEY_MATERIAL_EXPIRES")]),
    ("2027-06-01T00:00:00+00:00", 365, [("warning", "KEY_MATERIAL_EXPIRES_SOON")]),  # the threshold is the caller's
    ("2026-12-20T00:00:00+00:00", 30, [("critical", "KEY_MATERIAL_EXPIRED")]),
    ("2026-12-23T09:59:00+00:00", 30, [("critical", "KEY_MATERIAL_EXPIRED")]),       # a minute past
])
def test_material_expiry_by_threshold(valid_to, days, expected):
    assert codes(valid_to=valid_to, days=days) == expected


def test_expiring_material_names_the_date_and_days():
    [f] = findings(valid_to="2027-01-01T22:00:00+00:00")
    assert "expires on 2027-01-01 (9 days): the database (acme-db)" in f["message"]


def test_expired_material_of_a_pending_import_key_is_one_finding():
    assert codes(state="PendingImport", valid_to="2026-12-01T00:00:00+00:00", probe=[]) == [("critical", "KEY_PENDING_IMPORT")]


def test_a_failed_probe_is_critical_once():
    probe = [{"operation": "Encrypt", "ok": False, "detail": "AccessDeniedException: not allowed"},
             {"operation": "GenerateDataKey+Decrypt", "ok": False, "detail": "AccessDeniedException"}]
    [f] = findings(probe=probe)
    assert (f["severity"], f["code"]) == ("critical", "PROBE_FAILED") and "cannot Encrypt" in f["message"]


def test_a_policy_error_is_critical_per_principal_and_warnings_are_not_alerted():
    pf = [{"severity": "error", "code": "POLICY_MISSING_PERMISSION", "principal": "arn:aws:iam::2:role/nodes.x", "message": "m1", "fix": "f"},
          {"severity": "error", "code": "POLICY_MISSING_PERMISSION", "principal": "arn:aws:iam::2:role/masters.x", "message": "m2"},
          {"severity": "warning", "code": "POLICY_CONDITIONAL", "principal": "p", "message": "m3"}]
    out = findings(policy_findings=pf)
    assert [f["code"] for f in out] == ["POLICY_MISSING_PERMISSION:arn:aws:iam::2:role/nodes.x",
                                        "POLICY_MISSING_PERMISSION:arn:aws:iam::2:role/masters.x"]
    assert len({f["id"] for f in out}) == 2


@pytest.mark.parametrize("grant, state, expected", [
    ({"required": True, "present": False}, "Enabled", [("critical", "AUTOSCALING_GRANT_MISSING")]),
    ({"required": False, "present": False}, "Enabled", [("info", "KEY_OK")]),   # the EBS step has not run yet
    ({"required": True, "present": None}, "Enabled", [("warning", "AUTOSCALING_GRANT_UNVERIFIED")]),  # not readable: said
    ({"required": True, "present": False}, "Disabled", [("critical", "KEY_DISABLED")]),  # the key is the news
])
def test_autoscaling_grant(grant, state, expected):
    assert codes(autoscaling_grant=grant, state=state, probe=[]) == expected


def test_an_inaccessible_database_is_critical():
    deps = DEPENDENTS[:2] + [{**DEPENDENTS[2], "db_status": "inaccessible-encryption-credentials"}] + DEPENDENTS[3:]
    assert codes(dependents=deps) == [("critical", "DB_INACCESSIBLE:acme-db")]


def test_an_unreadable_key_is_critical():
    assert codes(error="AccessDeniedException: denied", state=None) == [("critical", "KEY_UNREADABLE")]


@pytest.mark.parametrize("services, text", [
    (["s3"], "the file store (mattermost-acme-backups, mattermost-acme-filestore)"),
    (["rds", "s3"], "the database (acme-db) and the file store (mattermost-acme-backups, mattermost-acme-filestore)"),
    ([], "nothing of the deployment"),
])
def test_what_depends(services, text):
    assert key_watch.what_depends(services, DEPENDENTS) == text


def test_deadline_is_the_nearest_date():
    assert key_watch.deadline({"deletion_date": "2027-02-01T00:00:00+00:00", "valid_to": "2027-01-10T00:00:00+00:00"}) == \
        ("2027-01-10T00:00:00+00:00", "material expiry")
    assert key_watch.deadline({"deletion_date": "2027-01-01T00:00:00+00:00", "valid_to": None}) == ("2027-01-01T00:00:00+00:00", "deletion")
    assert key_watch.deadline({"deletion_date": None, "valid_to": None}) == (None, None)


@pytest.mark.parametrize("when, days", [(NOW + datetime.timedelta(days=12), 12), (NOW + datetime.timedelta(days=11, hours=23), 11),
                                        (NOW, 0), (NOW - datetime.timedelta(hours=1), -1), (None, None)])
def test_days_until(when, days):
    assert key_watch.days_until(when, NOW) == days


def test_urgency_orders_by_severity_then_deadline():
    def k(name, severity, days):
        return {"customer": name, "key_arn": ARN, "findings": [{"severity": severity}], "days_to_deadline": days}
    keys = [k("a", "info", None), k("b", "warning", 9), k("c", "critical", 30), k("d", "critical", 2), k("e", "info", 100)]
    assert [x["customer"] for x in sorted(keys, key=key_watch.urgency)] == ["d", "c", "b", "e", "a"]


def f(code, severity, message="m"):
    return {"id": f"{ARN}#{code}", "code": code, "severity": severity, "key_arn": ARN, "message": message, "fix": ""}


def test_alerts_new_changed_resolved_and_quiet():
    previous = {f"{ARN}#A": {"severity": "warning", "message": "a"}, f"{ARN}#B": {"severity": "critical", "message": "b was bad"},
                f"{ARN}#C": {"severity": "critical", "message": "c"}}
    current = [f("A", "critical"), f("C", "critical"), f("D", "warning"), f("OK", "info")]
    out = key_watch.alerts(previous, current)
    assert [(a["event"], a["code"]) for a in out] == [("changed", "A"), ("new", "D"), ("resolved", "B")]
    assert out[0]["previous_severity"] == "warning"
    assert out[2]["message"] == "resolved: b was bad" and out[2]["severity"] == "resolved"


def test_nothing_changed_posts_nothing():
    current = [f("A", "critical"), f("OK", "info")]
    assert key_watch.alerts(key_watch.kept_state(current), current) == []


def test_an_unreadable_state_alerts_everything_as_new():
    current = [f("A", "critical"), f("B", "warning"), f("OK", "info")]
    assert [(a["event"], a["code"]) for a in key_watch.alerts(None, current)] == [("new", "A"), ("new", "B")]


def test_info_findings_are_never_kept_nor_alerted():
    assert key_watch.kept_state([f("OK", "info"), f("X", "info")]) == {}
    assert key_watch.alerts({}, [f("OK", "info")]) == []


def test_kept_state_holds_no_fix_or_probe_detail():
    state = key_watch.kept_state([{**f("A", "critical"), "fix": "aws kms enable-key", "probe": "x"}])
    assert state == {f"{ARN}#A": {"severity": "critical", "code": "A", "key_arn": ARN, "message": "m"}}


class _Body:
    def __init__(self, data):
        self.data = data

    def read(self):
        return self.data


class _S3:
    """Stands in for GetObject's three outcomes; the watch's reading of them is what is tested here."""

    def __init__(self, outcome):
        self.outcome = outcome

    def get_object(self, **_kw):
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return {"Body": _Body(self.outcome)}


def _client_error(code):
    from botocore.exceptions import ClientError
    return ClientError({"Error": {"Code": code, "Message": code}}, "GetObject")


@pytest.mark.parametrize("outcome, state, note", [
    (b'{"customer": "acme", "findings": {"k#A": {"severity": "critical"}}}', {"k#A": {"severity": "critical"}}, "read"),
    (_client_error("NoSuchKey"), None, "no kept state yet"),
    (_client_error("AccessDenied"), None, "kept state not readable"),
    (b"{not json", None, "kept state is not valid"),
    (b'{"customer": "acme"}', None, "kept state is not valid"),
])
def test_read_kept_state(outcome, state, note):
    got, got_note = key_watch.read_kept_state(_S3(outcome), "b", "k")
    assert got == state and got_note.startswith(note)
