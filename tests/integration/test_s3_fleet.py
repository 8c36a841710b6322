# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""byok_s3 on the seeded demo fleet: every object of every demo bucket ends on its customer's S3 key (read with
boto3), progress lines are printed per batch, a step record per bucket, and a second run changes nothing."""

from __future__ import annotations

import json
import re

import yaml

from tests.integration import runner

PROVIDER = "222222222222"
PLAYBOOK = "tests/integration/playbooks/s3_fleet.yml"


def demo_customers():
    with open(f"{runner.DEMO_INVENTORY}/hosts.yml") as f:
        hosts = yaml.safe_load(f)["all"]["children"]["dedicated"]["hosts"]
    return {name: runner.demo_host_vars(name) for name in hosts}


def s3_key(host_vars):
    keys = host_vars["byok_keys"]
    return keys.get("s3") or keys.get("all")


def test_role_puts_every_demo_object_on_the_customer_key(fresh_local_aws, tmp_path):
    aws = fresh_local_aws
    runner.seed(aws.endpoint_url)
    customers = {name: v for name, v in demo_customers().items() if "s3" in v.get("byok_services", []) and v.get("byok_s3_buckets")}
    assert customers
    proc = runner.run_playbook(aws.endpoint_url, f"{runner.DEMO_INVENTORY}/hosts.yml", str(tmp_path), "-e", "byok_s3_batch_seconds=1",
                               "-l", ",".join(customers), playbook=PLAYBOOK)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert re.search(r": \d+/\d+ objects \(100\.0%\), \d+ obj/s, done", proc.stdout)
    s3 = aws.client("s3", account=PROVIDER)
    for name, host_vars in customers.items():
        key = s3_key(host_vars)
        for bucket in host_vars["byok_s3_buckets"]:
            assert s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0][
                "ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == key
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for item in page.get("Contents", []):
                    assert s3.head_object(Bucket=bucket, Key=item["Key"])["SSEKMSKeyId"] == key, (name, bucket, item["Key"])
        steps = json.loads((tmp_path / f"steps-{name}.json").read_text())
        assert sorted(s["resource"] for s in steps if s["step"] == "s3") == sorted(host_vars["byok_s3_buckets"])
        assert all(s["changed"] and not s["disruptive"] and not s["deferred"] for s in steps)

    again = runner.run_playbook(aws.endpoint_url, f"{runner.DEMO_INVENTORY}/hosts.yml", str(tmp_path), "-l", ",".join(customers),
                                playbook=PLAYBOOK)
    assert again.returncode == 0, again.stdout[-5000:]
    for name in customers:
        steps = json.loads((tmp_path / f"steps-{name}.json").read_text())
        assert not any(s["changed"] for s in steps), steps
