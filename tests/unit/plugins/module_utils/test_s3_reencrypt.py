# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The S3 engine's pure parts: policy merge, listing classification, grants, progress, argument checks."""

from __future__ import annotations

from datetime import datetime, timezone

from ansible_collections.mattermost.byok.plugins.module_utils.s3 import reencrypt as s3_reencrypt
from ansible_collections.mattermost.byok.plugins.module_utils.s3.bucket_kms import progress
from ansible_collections.mattermost.byok.plugins.module_utils.s3.bucket_kms import validate_params
from ansible_collections.mattermost.byok.plugins.module_utils.s3.bucket_policy import deny_other_keys_statement
from ansible_collections.mattermost.byok.plugins.module_utils.s3.bucket_policy import merge_statement
from ansible_collections.mattermost.byok.plugins.module_utils.s3.bucket_policy import remove_statement

KEY = "arn:aws:kms:us-east-1:111111111111:key/0b5e8d3c-1f00-4a63-9d5e-0a1b2c3d4e5f"


def test_merge_keeps_other_statements_and_is_idempotent():
    other = {"Sid": "Other", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
    statement = deny_other_keys_statement("b", KEY)
    merged, changed = merge_statement({"Version": "2012-10-17", "Statement": [other]}, statement)
    assert changed and merged["Statement"] == [other, statement]
    again, changed = merge_statement(merged, statement)
    assert not changed and again == merged
    replaced, changed = merge_statement(merged, deny_other_keys_statement("b", KEY.replace("0b5e", "1b5e")))
    assert changed and len(replaced["Statement"]) == 2 and replaced["Statement"][0] == other
    assert remove_statement(replaced, statement["Sid"]) == ({"Version": "2012-10-17", "Statement": [other]}, True)
    assert remove_statement({"Statement": [statement]}, statement["Sid"]) == (None, True)


def test_statement_refuses_sse_kms_under_any_other_key_or_none_and_allows_the_default():
    condition = deny_other_keys_statement("b", KEY)["Condition"]
    # Only writes that ask for SSE-KMS: one with no encryption header gets the bucket default.
    assert condition["StringEquals"] == {"s3:x-amz-server-side-encryption": ["aws:kms", "aws:kms:dsse"]}
    # A missing key id matches StringNotEquals: aws:kms alone means aws/s3, refused like any other key.
    assert condition["StringNotEquals"] == {"s3:x-amz-server-side-encryption-aws-kms-key-id": KEY}
    assert set(condition) == {"StringEquals", "StringNotEquals"}


def item(second, storage="STANDARD", restore=None):
    entry = {"Key": "k", "ETag": '"e"', "Size": 1, "StorageClass": storage,
             "LastModified": datetime.fromtimestamp(1_000_000 + second, tz=timezone.utc)}
    if restore:
        entry["RestoreStatus"] = restore
    return entry


def engine(cutoff, verify=False):
    return s3_reencrypt.Engine(None, s3_reencrypt.Options(bucket="b", key_arn=KEY, verify=verify), s3_reencrypt.BucketTraits(), cutoff)


def test_plan_from_the_listing_and_the_cutoff():
    e = engine(1_000_000.0)
    assert e.plan(item(-5)) == "copy"
    assert e.plan(item(0)) == "head"  # the cutoff's own second is ambiguous
    assert e.plan(item(3)) == "on_key"
    assert e.plan(item(-5, "GLACIER")) == "archived"
    assert e.plan(item(-5, "DEEP_ARCHIVE", {"IsRestoreInProgress": True})) == "archived"
    assert e.plan(item(-5, "GLACIER", {"IsRestoreInProgress": False, "RestoreExpiryDate": datetime.now()})) == "copy"
    assert engine(None).plan(item(3)) == "head"  # no checkpoint: read it
    assert engine(1_000_000.0, verify=True).plan(item(3)) == "head"


def test_acl_grants_become_copy_headers():
    acl = {"Grants": [
        {"Grantee": {"Type": "CanonicalUser", "ID": "abc"}, "Permission": "FULL_CONTROL"},
        {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"}, "Permission": "READ"},
        {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/s3/LogDelivery"}, "Permission": "READ"},
    ]}
    assert s3_reencrypt._grants(acl) == {  # pylint: disable=protected-access
        "GrantFullControl": 'id="abc"',
        "GrantRead": 'uri="http://acs.amazonaws.com/groups/global/AllUsers", uri="http://acs.amazonaws.com/groups/s3/LogDelivery"'}


def test_progress_line():
    info, line = progress("bucket", 120000, 2000000, 850.0, False)
    assert line == "bucket: 120000/2000000 objects (6.0%), 850 obj/s, ~37 min left"
    assert info["eta_seconds"] == round(1880000 / 850, 1)
    assert progress("bucket", 10, None, 5.0, True)[1] == "bucket: 10/10 objects (100.0%), 5 obj/s, done"


def params(**overrides):
    base = {"bucket": "my-bucket", "concurrency": 10, "multipart_threshold": 5 * 1024 ** 3, "multipart_part_size": 512 * 1024 ** 2,
            "max_seconds": None, "checkpoint_bucket": None}
    return {**base, **overrides}


def test_bad_arguments_named():
    assert validate_params(params()) is None
    assert validate_params(params(bucket="Bad_Bucket")).startswith("bucket:")
    assert validate_params(params(concurrency=100)).startswith("concurrency:")
    assert validate_params(params(multipart_threshold=10)).startswith("multipart_threshold:")
    assert validate_params(params(max_seconds=0)).startswith("max_seconds:")
