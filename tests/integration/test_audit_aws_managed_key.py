# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An object written with `aws:kms` and no key id is on the AWS managed key aws/s3 (as on AWS), not on the bucket's
default customer key: the audit, through the fleet playbook, reports it as not on the customer key."""

from __future__ import annotations

import os

from tests.integration import runner
from tests.integration.test_audit import AUDIT_ONLY, client


def test_aws_kms_without_a_key_id_is_not_counted_on_the_customer_key(local_aws, tmp_path):
    endpoint = local_aws.endpoint_url
    hv = runner.demo_host_vars("acme")
    hv.pop("byok_mattermost_installations", None)  # acme's installation writes acme's bucket, not this customer's
    hv.update({
        "byok_customer_account_id": "111111111197",
        "byok_vpc_id": "vpc-0a0d17c0000000097",
        "byok_kops_cluster_id": "auditkms01",
        "byok_keys": {"all": "arn:aws:kms:us-east-1:111111111197:key/0a0d17c1-0000-4000-8000-000000000001"},
        "byok_s3_buckets": ["mattermost-auditkms-filestore"],
        "byok_rds_clusters": [{"identifier": "auditkms-db", "region": "us-east-1"}],
        "byok_audit_s3_object_sample": 0,  # every object read
    })
    inventory = runner.write_inventory(str(tmp_path / "inventory"), {"auditkms": hv})
    runner.seed(endpoint, os.path.dirname(inventory))
    key = hv["byok_keys"]["all"]
    policy = client(endpoint, "kms", account="111111111197").get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    os.makedirs(tmp_path / "inventory" / "key-policies")
    (tmp_path / "inventory" / "key-policies" / f"{key.rsplit('/', 1)[1]}.json").write_text(policy)
    s3 = client(endpoint, "s3")
    bucket = "mattermost-auditkms-filestore"
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}, "BucketKeyEnabled": True}]})
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            s3.copy_object(Bucket=bucket, Key=o["Key"], CopySource={"Bucket": bucket, "Key": o["Key"]},
                           ServerSideEncryption="aws:kms", SSEKMSKeyId=key, MetadataDirective="COPY")
    # A client asking for SSE-KMS without naming the key: the bucket default names the customer key, S3 uses aws/s3.
    s3.put_object(Bucket=bucket, Key="uploads/aws-managed.bin", Body=b"x", ServerSideEncryption="aws:kms")
    s3.put_object(Bucket=bucket, Key="uploads/default.bin", Body=b"x")
    managed = client(endpoint, "kms").describe_key(KeyId="alias/aws/s3")["KeyMetadata"]["Arn"]
    assert s3.head_object(Bucket=bucket, Key="uploads/aws-managed.bin")["SSEKMSKeyId"] == managed
    assert s3.head_object(Bucket=bucket, Key="uploads/default.bin")["SSEKMSKeyId"] == key

    proc = runner.run_playbook(endpoint, inventory, str(tmp_path / "artifacts"), *AUDIT_ONLY)
    assert proc.returncode == 0, proc.stdout[-3000:]
    rep = runner.read_json(str(tmp_path / "artifacts" / "customers" / "auditkms.json"))
    objects = next(r for r in rep["resources"] if r["type"] == "s3_objects" and r["id"] == bucket)
    assert objects["status"] == "other_key" and objects["sampled"] == objects["listed"]
    assert [(o["key"], o["kms_key_id"]) for o in objects["not_on_key"]] == [("uploads/aws-managed.bin", managed)]
    assert objects["on_key"] == objects["listed"] - 1
