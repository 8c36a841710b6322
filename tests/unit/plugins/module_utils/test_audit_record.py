# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The audit step's pure parts: when the servers are read, cutoffs, the report's bytes, where the customer stands.

The step itself (AWS reads, the file written) is covered by tests/integration/test_audit.py and its neighbours.
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.fleet import audit_record as ar

FINDING = {"installation": "acme-1", "buckets": ["mattermost-acme-filestore"], "sends": "AES256"}


@pytest.mark.parametrize("services, findings, needed", [
    (["s3", "rds", "ebs"], None, True),          # the S3 step did not run (or --tags audit): read here
    (["s3"], [FINDING], False),                   # the S3 step's reading is used
    (["s3"], [], False),                          # a reading that found nothing is a reading
    (["rds", "ebs"], None, False),                # no S3: nothing the servers send matters
    ([], None, False),
    (None, None, False),
])
def test_server_read_needed(services, findings, needed):
    assert ar.server_read_needed(services, findings) is needed


@pytest.mark.parametrize("latest, cutoffs", [
    ({}, {}),
    (None, {}),
    ({"b1": {"complete": True, "cutoff": 1700000000.5}}, {"b1": 1700000000.5}),
    ({"b1": {"complete": False}}, {"b1": None}),                    # not put on the key yet: the checkpoint decides
    ({"b1": {"cutoff": 1}, "b2": {"cutoff": None}, "b3": {}}, {"b1": 1, "b2": None, "b3": None}),
    ({"b1": None}, {"b1": None}),
])
def test_s3_cutoffs(latest, cutoffs):
    assert ar.s3_cutoffs(latest) == cutoffs


CONFIG = {
    "services": ["s3", "rds"],
    "service_keys": {"s3": "arn:aws:kms:us-east-1:111111111101:key/k1", "rds": "arn:aws:kms:us-east-1:111111111101:key/k1"},
    "rds_region_keys": {"us-east-1": "arn:aws:kms:us-east-1:111111111101:key/k1"},
    "region": "us-east-1",  # not in the report
}
SUMMARY = {"in_scope": 3, "on_customer_key": 2, "not_on_customer_key": 1, "compliant": False, "revocable": False, "readable_count": 2}
RESOURCES = [{"service": "s3", "type": "s3_bucket", "id": "b1", "status": "customer_key"}]


def test_customer_report_keys_in_order():
    audit = {"summary": SUMMARY, "resources": RESOURCES, "copies": [{"id": "snap"}], "changed": False}
    report = ar.customer_report("acme", CONFIG, audit)
    assert list(report) == ["customer", "services", "service_keys", "rds_region_keys", "summary", "resources", "copies"]
    assert report["customer"] == "acme" and report["services"] == ["s3", "rds"] and report["copies"] == [{"id": "snap"}]


@pytest.mark.parametrize("copies", [None, []])
def test_customer_report_without_copies(copies):
    audit = {"summary": SUMMARY, "resources": RESOURCES}
    if copies is not None:
        audit["copies"] = copies
    assert ar.customer_report("acme", CONFIG, audit)["copies"] == []


def test_report_text_is_nice_json_unsorted_with_a_final_newline():
    report = ar.customer_report("acme", CONFIG, {"summary": {"z": 1, "a": "é"}, "resources": []})
    text = ar.report_text(report)
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert json.loads(text) == report
    assert text.index('"z"') < text.index('"a"')              # the audit's order, not sorted
    assert '\n    "customer": "acme",\n' in text                # indent 4, no space before the comma
    assert '"\\u00e9"' in text                                  # ASCII, as to_nice_json writes it
    assert ar.report_text(report) == text                       # the same state, the same bytes


@pytest.mark.parametrize("summary, line", [
    (SUMMARY, "acme: 2 of 3 resources on the customer's key; 2 store(s) or copies would stay readable after revocation"),
    ({"in_scope": 3, "on_customer_key": 3, "compliant": True, "revocable": True, "readable_count": 0},
     "acme: 3 of 3 resources on the customer's key - compliant; revocable: nothing of the customer stays readable without the key"),
    ({"in_scope": 3, "on_customer_key": 3, "compliant": True, "revocable": False, "readable_count": 1},
     "acme: 3 of 3 resources on the customer's key - compliant; 1 store(s) or copies would stay readable after revocation"),
    # An audit without the revocation fields (an older result): not revocable, count unknown.
    ({"in_scope": 5, "on_customer_key": 0, "compliant": False},
     "acme: 0 of 5 resources on the customer's key; ? store(s) or copies would stay readable after revocation"),
    ({"in_scope": 0, "on_customer_key": 0, "compliant": True, "revocable": True},
     "acme: 0 of 0 resources on the customer's key - compliant; revocable: nothing of the customer stays readable without the key"),
])
def test_standing_line(summary, line):
    assert ar.standing_line("acme", summary) == line


@pytest.mark.parametrize("compliant, fail_on, fails", [
    (False, True, True),
    (False, False, False),
    (True, True, False),
    (True, False, False),
])
def test_noncompliant_failure(compliant, fail_on, fails):
    summary = dict(SUMMARY, compliant=compliant)
    msg = ar.noncompliant_failure("acme", summary, fail_on, "/tmp/artifacts")
    if fails:
        assert msg == "1 resource(s) of acme are not on the customer's key; see /tmp/artifacts/customers/acme.json"
    else:
        assert msg is None
