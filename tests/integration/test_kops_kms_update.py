# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kops_kms_update refuses bad input before any change: each case fails with a message naming the fix, no mutating
kops command runs, and the state store and launch templates are as they were (read with boto3)."""

from __future__ import annotations

import json
import os

from tests.integration import runner

PROVIDER = "222222222222"
KOPS_DOUBLE = os.path.join(runner.ROOT, "tests", "local_aws", "bin", "kops")
STATE = "s3://mattermost-kops-state-demo"
CUSTOMER = "111111111180"
KEY = f"arn:aws:kms:us-east-1:{CUSTOMER}:key/0f0f0000-0000-4000-8000-000000000080"
WEST_KEY = f"arn:aws:kms:us-west-2:{CUSTOMER}:key/0f0f0000-0000-4000-8000-000000000081"
CLUSTER = "failco01-kops.k8s.local"


def snapshot(aws):
    """State-store objects (key -> ETag) of the cluster, and its launch templates' latest version numbers."""
    s3 = aws.client("s3", account=PROVIDER)
    objects = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket="mattermost-kops-state-demo", Prefix=CLUSTER)["Contents"]}
    ec2 = aws.client("ec2", account=PROVIDER)
    templates = {t["LaunchTemplateName"]: t["LatestVersionNumber"] for t in ec2.describe_launch_templates()["LaunchTemplates"]
                 if t["LaunchTemplateName"].endswith(CLUSTER)}
    return objects, templates


def test_bad_input_fails_before_any_change_and_terraform_guard(fresh_local_aws, tmp_path):
    aws = fresh_local_aws
    hv = runner.demo_host_vars("acme")
    hv.pop("byok_mattermost_installations", None)  # acme's installation writes acme's bucket, not this customer's
    hv.update({"byok_customer_account_id": CUSTOMER, "byok_vpc_id": "vpc-0f0f0000000000080", "byok_kops_cluster_id": "failco01",
               "byok_services": ["ebs"], "byok_keys": {"ebs": KEY}, "byok_s3_buckets": [], "byok_rds_clusters": []})
    inventory = runner.write_inventory(str(tmp_path / "inventory"), {"failco": hv})
    runner.seed(aws.endpoint_url, os.path.dirname(inventory))
    before = snapshot(aws)
    assert len(before[1]) == 3

    base = {"cluster_name": CLUSTER, "state": STATE, "key_arn": KEY, "kops_binary": KOPS_DOUBLE, "region": "us-east-1"}
    cases = {
        "missing kops binary": ({"kops_binary": "/opt/nowhere/kops"}, "kops_binary: '/opt/nowhere/kops' does not exist"),
        "kops not on PATH": ({"kops_binary": "kops-not-installed"}, "kops_binary: 'kops-not-installed' was not found on PATH"),
        "unreachable state store": ({"state": "s3://no-such-kops-state"}, "NoSuchBucket"),
        "not a state store": ({"state": "mattermost-kops-state-demo"}, "state: 'mattermost-kops-state-demo' is not a kops state store"),
        "unknown cluster": ({"cluster_name": "nope01-kops.k8s.local"}, "cluster not found 'nope01-kops.k8s.local'"),
        "unknown instance group": ({"instance_groups": ["nodes-us-east-1z"]},
                                   "instance_groups: nodes-us-east-1z not found in cluster 'failco01-kops.k8s.local'; it has "
                                   "master-us-east-1a, nodes-us-east-1a, nodes-us-east-1b"),
        "key in another region": ({"key_arn": WEST_KEY}, "key_arn: the key is in us-west-2, but the cluster's region is us-east-1"),
        "key in another region than the cluster": ({"key_arn": WEST_KEY, "region": "us-west-2"},
                                                   "key_arn: cluster failco01-kops.k8s.local runs in us-east-1, but the key is in us-west-2"),
        "alias instead of a key ARN": ({"key_arn": "alias/mattermost-byok"}, "key_arn: 'alias/mattermost-byok' is an alias"),
        "roll without permission": ({"rolling_update": True}, "rolling_update: replacing the cluster's instances is disruptive"),
        "etcd off the key, etcd=fail": ({"etcd": "fail"}, "etcd: a.etcd-main.failco01-kops.k8s.local is on arn:aws:kms:us-east-1:222222222222:"),
    }
    result_path = str(tmp_path / "results.json")
    log = tmp_path / "kops.log"
    env = {**runner.account_credentials(aws.endpoint_url, PROVIDER), "KOPS_DOUBLE_LOG": str(log)}
    done = runner.run_playbook(aws.endpoint_url, "localhost,", str(tmp_path / "artifacts"),
                               "-e", json.dumps({"cases": [{**base, **o} for o, _m in cases.values()], "result_path": result_path}),
                               playbook="tests/integration/playbooks/ebs_kops_module.yml", extra_env=env)
    assert done.returncode == 0, done.stdout[-3000:]
    results = runner.read_json(result_path)
    for (name, (_options, message)), result in zip(cases.items(), results):
        assert result.get("failed"), (name, result)
        assert message in result["msg"], (name, result["msg"])
    commands = [json.loads(line) for line in log.read_text().splitlines()]
    assert commands and all(argv[0] == "get" for argv in commands), commands
    assert snapshot(aws) == before

    # update=terraform: kops renders its terraform; a plan that replaces an aws_ebs_volume is refused before apply.
    # A stand-in terraform that records its calls and answers `show -json` with a plan replacing an etcd volume.
    terraform = tmp_path / "terraform"
    plan = {"resource_changes": [
        {"address": "aws_launch_template.nodes-us-east-1a-failco01-kops-k8s-local", "type": "aws_launch_template",
         "change": {"actions": ["update"]}},
        {"address": "aws_ebs_volume.a-etcd-main-failco01-kops-k8s-local", "type": "aws_ebs_volume",
         "change": {"actions": ["delete", "create"]}}]}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    terraform.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/terraform.log\n"
                         f"case \"$*\" in *show*) cat {tmp_path}/plan.json;; esac\n")
    terraform.chmod(0o755)
    result_path = str(tmp_path / "results.json")
    case = {"cluster_name": CLUSTER, "state": STATE, "key_arn": KEY, "kops_binary": KOPS_DOUBLE, "region": "us-east-1",
            "update": "terraform", "terraform_dir": str(tmp_path / "tf"), "terraform_binary": str(terraform)}
    done = runner.run_playbook(aws.endpoint_url, "localhost,", str(tmp_path / "artifacts"),
                               "-e", json.dumps({"cases": [case], "result_path": result_path}),
                               playbook="tests/integration/playbooks/ebs_kops_module.yml",
                               extra_env=runner.account_credentials(aws.endpoint_url, PROVIDER))
    assert done.returncode == 0, done.stdout[-3000:]
    [result] = runner.read_json(result_path)
    assert result["failed"] and "would replace aws_ebs_volume.a-etcd-main-failco01-kops-k8s-local" in result["msg"]
    calls = (tmp_path / "terraform.log").read_text()
    assert "plan" in calls and "apply" not in calls
    assert "aws_launch_template" in (tmp_path / "tf" / "kubernetes.tf").read_text()
