# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Residual copies' pure parts: statuses, dates, when a version became noncurrent, revocation readiness.

The reads against AWS are covered by tests/integration/test_revocation_readiness.py.
"""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.fleet import residual_copies as rc

K = "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"
P = "arn:aws:kms:us-east-1:222222222222:key/0acbe000-0000-4000-8000-000000000009"
UTC = datetime.timezone.utc


@pytest.mark.parametrize("key, encrypted, status", [
    (K, True, "customer_key"),
    ("0acbe000-0000-4000-8000-000000000001", True, "customer_key"),  # a bare id of the same key
    (P, True, "other_key"),
    (None, True, "other_key"),      # SSE-S3 or a service default key: encrypted, not with the customer's key
    (K, False, "unencrypted"),
    (None, False, "unencrypted"),
])
def test_copy_status(key, encrypted, status):
    assert rc.copy_status(key, encrypted, K) == status


def test_copy_on_the_customer_key_needs_no_action():
    on = rc.copy_record("rds", "rds_cluster_snapshot", "s1", "us-east-1", K, True, K, source="db", action=rc.REKEY)
    off = rc.copy_record("rds", "rds_cluster_snapshot", "s2", "us-east-1", P, True, K, source="db", action=rc.REKEY)
    assert (on["status"], on["action"]) == ("customer_key", rc.NONE)
    assert (off["status"], off["action"]) == ("other_key", rc.REKEY)


@pytest.mark.parametrize("start, days, expected", [
    (datetime.datetime(2026, 1, 1, 12, 0, tzinfo=UTC), 7, "2026-01-08T12:00:00Z"),
    (datetime.datetime(2026, 1, 1, 12, 0), 1, "2026-01-02T12:00:00Z"),   # naive datetimes are UTC
    ("2026-02-27T00:00:00Z", 2, "2026-03-01T00:00:00Z"),
    ("2026-02-27T00:00:00+02:00", 0, "2026-02-26T22:00:00Z"),
    (None, 7, None),
    ("2026-01-01T00:00:00Z", None, None),
    ("not a date", 3, None),
])
def test_add_days(start, days, expected):
    assert rc.add_days(start, days) == expected


def t(minute):
    return datetime.datetime(2026, 1, 1, 0, minute, tzinfo=UTC)


def test_noncurrent_since_is_the_next_newer_version():
    versions = [{"VersionId": "v3", "LastModified": t(30)}, {"VersionId": "v2", "LastModified": t(20)},
                {"VersionId": "v1", "LastModified": t(10)}]
    assert rc._became_noncurrent(versions, [], versions[1]) == t(30)
    assert rc._became_noncurrent(versions, [], versions[2]) == t(20)
    assert rc._became_noncurrent(versions, [], versions[0]) is None  # current


def test_noncurrent_since_a_delete_marker():
    versions = [{"VersionId": "v2", "LastModified": t(20)}, {"VersionId": "v1", "LastModified": t(10)}]
    markers = [{"VersionId": "m1", "LastModified": t(15)}, {"VersionId": "m2", "LastModified": t(25)}]
    # v1 was hidden by the marker at :15 before v2 was written at :20
    assert rc._became_noncurrent(versions, markers, versions[1]) == t(15)
    # the newest data version became noncurrent when the marker at :25 was written
    assert rc._became_noncurrent(versions, markers, versions[0]) == t(25)


def test_noncurrent_since_a_marker_written_in_the_same_second():
    versions = [{"VersionId": "v1", "LastModified": t(10)}]
    markers = [{"VersionId": "m1", "LastModified": t(10)}]
    assert rc._became_noncurrent(versions, markers, versions[0]) == t(10)


def store(status, service="s3", **extra):
    extra.setdefault("type", "s3_bucket")
    return {"service": service, "id": f"{service}-{status}", "region": "us-east-1",
            "key_arn": K if status == "customer_key" else P, "status": status, "detail": f"{status} detail", **extra}


def copy(status, goes=None, **extra):
    return {"service": "rds", "type": "rds_cluster_snapshot", "id": f"snap-{status}-{goes}", "region": "us-east-1",
            "key_arn": K if status == "customer_key" else P, "status": status, "goes": goes,
            "goes_how": "ages out", "detail": "", **extra}


def test_revocable_only_when_every_store_and_copy_is_on_the_key():
    result = rc.revocation_readiness([store("customer_key"), store("not_enabled", "ebs")], [copy("customer_key")])
    assert result["revocable"] is True
    assert result["readable_after_revocation"] == [] and result["readable_count"] == 0


@pytest.mark.parametrize("stores, copies, readable", [
    ([store("other_key")], [], ["s3-other_key"]),
    ([store("unencrypted")], [], ["s3-unencrypted"]),
    ([store("error")], [], ["s3-error"]),                       # unknown is not proof
    ([store("customer_key")], [copy("other_key", "2026-01-08T00:00:00Z")], ["snap-other_key-2026-01-08T00:00:00Z"]),
    ([store("customer_key")], [copy("error")], ["snap-error-None"]),
    ([store("customer_key")], [copy("unencrypted")], ["snap-unencrypted-None"]),
    ([store("other_key"), store("customer_key")], [copy("other_key"), copy("customer_key")],
     ["s3-other_key", "snap-other_key-None"]),
])
def test_not_revocable_lists_what_stays_readable(stores, copies, readable):
    result = rc.revocation_readiness(stores, copies)
    assert result["revocable"] is False
    assert [r["id"] for r in result["readable_after_revocation"]] == readable
    assert result["readable_count"] == len(readable)


def test_nothing_in_scope_is_not_revocable():
    # A customer with no enabled service has nothing on its key: 'revocable' would be a vacuous truth.
    assert rc.revocation_readiness([store("not_enabled")], [])["revocable"] is False


def test_not_found_store_is_not_readable():
    result = rc.revocation_readiness([store("customer_key"), store("not_found")], [])
    assert result["revocable"] is True


def test_last_copy_goes_only_when_every_copy_has_a_date():
    dated = [copy("other_key", "2026-01-08T00:00:00Z"), copy("other_key", "2026-02-01T00:00:00Z")]
    assert rc.revocation_readiness([store("customer_key")], dated)["last_copy_goes"] == "2026-02-01T00:00:00Z"
    undated = dated + [copy("other_key")]
    assert rc.revocation_readiness([store("customer_key")], undated)["last_copy_goes"] is None


def test_readable_entries_say_where_which_key_and_when():
    [entry] = rc.revocation_readiness([store("customer_key")], [copy("other_key", "2026-01-08T00:00:00Z")])["readable_after_revocation"]
    assert entry == {"kind": "copy", "service": "rds", "type": "rds_cluster_snapshot", "id": "snap-other_key-2026-01-08T00:00:00Z",
                     "region": "us-east-1", "key_arn": P, "status": "other_key", "goes": "2026-01-08T00:00:00Z", "why": "ages out"}


def test_a_sample_of_objects_on_the_key_is_not_proof():
    sampled = store("customer_key", type="s3_objects", sampled=20, listed=26, listing_truncated=False)
    result = rc.revocation_readiness([sampled], [])
    assert result["revocable"] is False
    [entry] = result["readable_after_revocation"]
    assert entry["kind"] == "unverified" and entry["why"].startswith("6 object(s) not read")
    full = store("customer_key", type="s3_objects", sampled=26, listed=26, listing_truncated=False)
    assert rc.revocation_readiness([full], [])["revocable"] is True
    truncated = store("customer_key", type="s3_objects", sampled=20, listed=20, listing_truncated=True)
    assert rc.revocation_readiness([truncated], [])["readable_after_revocation"][0]["why"].startswith("0+ object(s)")
