# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""s3_bucket_kms all_versions through ansible-playbook; every version read back with plain boto3."""

from __future__ import annotations

import hashlib
import time

import pytest

from tests.integration.test_s3_bucket_kms import PROVIDER, make_bucket, run_module


@pytest.fixture
def key_arn(local_aws):
    return local_aws.client("kms", account=PROVIDER).create_key(Description="customer s3 key stand-in")["KeyMetadata"]["Arn"]


@pytest.fixture
def old_key(local_aws):
    return local_aws.client("kms", account=PROVIDER).create_key(Description="old key")["KeyMetadata"]["Arn"]


def history(s3, bucket):
    """Per key, oldest first: what an independent reader sees of every version, and whether a delete marker is current."""
    keys: dict = {}
    deleted = set()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for marker in page.get("DeleteMarkers", []):
            if marker["IsLatest"]:
                deleted.add(marker["Key"])
        for v in page.get("Versions", []):
            head = s3.head_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
            body = s3.get_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
            tags = s3.get_object_tagging(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])["TagSet"]
            keys.setdefault(v["Key"], []).insert(0, {
                "sha256": hashlib.sha256(body).hexdigest(), "metadata": head.get("Metadata"), "ContentType": head.get("ContentType"),
                "tags": sorted((t["Key"], t["Value"]) for t in tags), "storage_class": head.get("StorageClass", "STANDARD"),
                "key": head.get("SSEKMSKeyId"), "id": v["VersionId"]})
    return keys, deleted


def content(versions):
    return [{k: v for k, v in version.items() if k not in ("key", "id")} for version in versions]


def current_body(s3, bucket, key):
    return hashlib.sha256(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest()


def test_all_versions_reproduced_on_the_key_then_originals_deleted(local_aws, tmp_path, unique_name, key_arn, old_key):
    s3 = local_aws.client("s3", account=PROVIDER)
    bucket = make_bucket(s3, unique_name("versions"), old_key)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for i in range(3):
        s3.put_object(Bucket=bucket, Key="doc", Body=f"doc v{i}".encode(), Metadata={"n": str(i)}, Tagging=f"n={i}",
                      ContentType=f"text/v{i}", StorageClass="STANDARD_IA" if i == 1 else "STANDARD")
    s3.put_object(Bucket=bucket, Key="single", Body=b"only one")
    for i in range(2):
        s3.put_object(Bucket=bucket, Key="deleted", Body=f"gone {i}".encode())
    s3.delete_object(Bucket=bucket, Key="deleted")
    time.sleep(1.1)
    before, deleted = history(s3, bucket)
    assert deleted == {"deleted"}
    current = {k: current_body(s3, bucket, k) for k in ("doc", "single")}
    args = {"bucket": bucket, "key_arn": key_arn, "all_versions": True, "checkpoint_path": str(tmp_path / "cp")}

    plan = run_module(local_aws, tmp_path, args, "--check", name="check")
    assert plan["changed"] and plan["re_encrypted"] == 4 and history(s3, bucket)[0] == before, "check mode changed something"

    first = run_module(local_aws, tmp_path, args, name="first")
    after, deleted = history(s3, bucket)
    assert first["changed"] and first["complete"] and first["re_encrypted"] == 4 and first["failed_count"] == 0, first["failed_objects"]
    # Each key's history reproduced on the key, in order, after the originals (kept, on the old key).
    for key in ("doc", "single"):
        n = len(before[key])
        assert after[key][:n] == before[key], key
        assert content(after[key][n:]) == content(before[key]), key
        assert {v["key"] for v in after[key][n:]} == {key_arn}, key
        assert current_body(s3, bucket, key) == current[key], key
    # A deleted key stays deleted (a copy would bring it back): reported, not touched.
    assert after["deleted"] == before["deleted"] and deleted == {"deleted"}
    assert {o["key"].split("?")[0] for o in first["skipped_objects"]} == {"deleted"}

    again = run_module(local_aws, tmp_path, args, name="again")
    assert not again["changed"] and again["re_encrypted"] == 0 and again["replaced_versions"] == 4
    assert history(s3, bucket)[0] == after

    delete = {**args, "delete_replaced_versions": True}
    plan = run_module(local_aws, tmp_path, delete, "--check", name="check-delete")
    assert plan["changed"] and plan["versions_deleted"] == 4 and history(s3, bucket)[0] == after
    pruned = run_module(local_aws, tmp_path, delete, name="delete")
    final = history(s3, bucket)[0]
    assert pruned["changed"] and pruned["versions_deleted"] == 4 and pruned["versions_kept"] == 0, pruned["kept_versions"]
    for key in ("doc", "single"):
        assert content(final[key]) == content(before[key]) and {v["key"] for v in final[key]} == {key_arn}, key
        assert current_body(s3, bucket, key) == current[key], key
    assert final["deleted"] == before["deleted"]
    last = run_module(local_aws, tmp_path, delete, name="last")
    assert not last["changed"] and history(s3, bucket)[0] == final
