# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The audit's pure parts: statuses, sampling and summaries. Reads against AWS are covered by the integration tests."""

from __future__ import annotations

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.fleet import encryption_audit as audit

K = "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"
P = "arn:aws:kms:us-east-1:222222222222:key/0acbe000-0000-4000-8000-000000000009"
CONFIG = {"services": ["s3", "rds"], "service_keys": {"s3": K, "rds": K}}


@pytest.mark.parametrize("service, key, encrypted, status", [
    ("s3", K, True, audit.ON_CUSTOMER_KEY),
    ("s3", "0acbe000-0000-4000-8000-000000000001", True, audit.ON_CUSTOMER_KEY),
    ("s3", P, True, audit.OTHER_KEY),
    ("s3", None, True, audit.OTHER_KEY),   # encrypted, but with the service's default key
    ("s3", K, False, audit.UNENCRYPTED),   # a key id without encryption is not encryption
    ("rds", None, False, audit.UNENCRYPTED),
    ("ebs", K, True, audit.NOT_ENABLED),   # ebs is not enabled for this customer
])
def test_record_status(service, key, encrypted, status):
    a = audit.CustomerAudit(CONFIG, clients=None)
    rec = a._record(service, "t", "id", "us-east-1", key, encrypted, a._expected(service))
    assert rec["status"] == status


def test_expected_key_per_cluster_wins():
    a = audit.CustomerAudit(CONFIG, clients=None)
    assert a._expected("rds", P) == P
    assert a._expected("rds") == K
    assert a._expected("ebs", P) is None


@pytest.mark.parametrize("n, size, expected", [
    (3, 10, [0, 4, 9]),  # spread, first and last included
    (1, 10, [0]),
    (10, 3, [0, 1, 2]),
    (5, 5, [0, 1, 2, 3, 4]),
    (2, 1000, [0, 999]),
])
def test_spread(n, size, expected):
    assert audit._spread(list(range(size)), n) == expected


def rec(service, status):
    return {"service": service, "status": status}


def test_summary_counts_only_enabled_services():
    s = audit.summarize([rec("s3", "customer_key"), rec("s3", "other_key"), rec("rds", "customer_key"), rec("ebs", "not_enabled")])
    assert (s["in_scope"], s["on_customer_key"], s["not_on_customer_key"], s["compliant"]) == (3, 2, 1, False)
    assert s["by_service"]["ebs"] == {"in_scope": 0, "on_customer_key": 0, "not_on_customer_key": 0, "enabled": False}
    assert s["by_status"] == {"customer_key": 2, "other_key": 1, "not_enabled": 1}


def test_summary_compliant_when_all_in_scope_are_on_key():
    assert audit.summarize([rec("s3", "customer_key"), rec("ebs", "not_enabled")])["compliant"] is True


@pytest.mark.parametrize("status", ["not_found", "error", "unencrypted", "other_key"])
def test_missing_or_unreadable_resources_are_not_compliant(status):
    assert audit.summarize([rec("s3", "customer_key"), rec("rds", status)])["compliant"] is False


def test_nothing_in_scope_is_not_compliant():
    assert audit.summarize([])["compliant"] is False


def test_etcd_volumes_off_the_key_are_counted_apart():
    etcd = dict(rec("ebs", "other_key"), etcd=True)
    s = audit.summarize([rec("s3", "customer_key"), etcd, dict(rec("ebs", "customer_key"), etcd=True)])
    assert (s["compliant"], s["compliant_except_etcd"], s["etcd_not_on_customer_key"]) == (False, True, 1)
    s = audit.summarize([rec("s3", "other_key"), etcd])
    assert (s["compliant_except_etcd"], s["etcd_not_on_customer_key"]) == (False, 1)
