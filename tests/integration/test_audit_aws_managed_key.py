# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An object written with `aws:kms` and no key id is on the AWS managed key aws/s3 (as on AWS), not on the bucket's
default customer key: the audit, through the fleet playbook, reports it as not on the customer key."""

from __future__ import annotations

from tests.integration import runner
from tests.integration.test_audit import AUDIT_ONLY, client, customer_with_s3_on_its_key


def test_aws_kms_without_a_key_id_is_not_counted_on_the_customer_key(local_aws, tmp_path):
    endpoint = local_aws.endpoint_url
    inventory, key, bucket = customer_with_s3_on_its_key(endpoint, tmp_path, "auditkms", "97",
                                                         byok_audit_s3_object_sample=0)  # every object read
    s3 = client(endpoint, "s3")
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
