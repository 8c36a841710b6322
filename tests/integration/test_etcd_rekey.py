# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kops_etcd_rekey through ansible-playbook against the local AWS and the kops double, read back with boto3.

The re-key is stopped after every single step (max_steps=1) and run again: it converges, never makes a second copy of
a volume, and at every point exactly one volume per etcd member carries etcd-manager's tags."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from tests.integration import runner

PROVIDER = "222222222222"
CUSTOMER = "111111111193"
KEY = f"arn:aws:kms:us-east-1:{CUSTOMER}:key/0e7cd000-0000-4000-8000-000000000093"
CLUSTER = "etcdco01-kops.k8s.local"
STATE = "s3://mattermost-kops-state-demo"
KOPS_DOUBLE = os.path.join(runner.ROOT, "tests", "local_aws", "bin", "kops")
ETCD = ("main", "events")


@pytest.fixture
def cluster(fresh_local_aws, tmp_path):
    aws = fresh_local_aws
    hv = runner.demo_host_vars("acme")
    hv.pop("byok_mattermost_installations", None)  # acme's installation writes acme's bucket, not this customer's
    hv.update({"byok_customer_account_id": CUSTOMER, "byok_vpc_id": "vpc-0e7cd000000000093", "byok_kops_cluster_id": "etcdco01",
               "byok_services": ["ebs"], "byok_keys": {"ebs": KEY}, "byok_s3_buckets": [], "byok_rds_clusters": []})
    inventory = runner.write_inventory(str(tmp_path / "inventory"), {"etcdco": hv})
    runner.seed(aws.endpoint_url, os.path.dirname(inventory))
    env = runner.account_credentials(aws.endpoint_url, PROVIDER)

    def run(**options):
        path = str(tmp_path / "result.json")
        opts = {"cluster_name": CLUSTER, "state": STATE, "key_arn": KEY, "kops_binary": KOPS_DOUBLE, "region": "us-east-1",
                "poll_seconds": 0.2, "validate_wait_seconds": 30, **options}
        check = ["--check"] if opts.pop("check", False) else []
        done = runner.run_playbook(aws.endpoint_url, "localhost,", str(tmp_path / "artifacts"), *check, "--diff",
                                   "-e", json.dumps({"options": opts, "result_path": path}),
                                   playbook="tests/integration/playbooks/etcd_rekey.yml", extra_env=env)
        assert done.returncode == 0, done.stdout[-3000:]
        return runner.read_json(path)

    return aws, run


def tags(resource):
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def state(aws):
    """What an independent reader sees: volumes and snapshots of the cluster's etcd lineage, the master group."""
    ec2, asg = aws.client("ec2", account=PROVIDER), aws.client("autoscaling", account=PROVIDER)
    volumes = [v for v in ec2.describe_volumes()["Volumes"]
               if tags(v).get(f"kubernetes.io/cluster/{CLUSTER}") == "owned" or tags(v).get("byok:set-aside-cluster") == CLUSTER
               or "byok:etcd-rekey-of" in tags(v)]
    snapshots = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[f"master-us-east-1a.{CLUSTER}"])["AutoScalingGroups"][0]
    return volumes, snapshots, group


def live(volumes, etcd):
    return [v for v in volumes if tags(v).get(f"kubernetes.io/cluster/{CLUSTER}") == "owned" and f"k8s.io/etcd/{etcd}" in tags(v)]


def spec_members(aws):
    body = aws.client("s3", account=PROVIDER).get_object(Bucket="mattermost-kops-state-demo", Key=f"{CLUSTER}/config")["Body"].read()
    doc = yaml.safe_load(body)
    return [m for e in doc["spec"]["etcdClusters"] for m in e["etcdMembers"]]


def test_plan_and_gate_change_nothing(cluster):
    aws, run = cluster
    before = state(aws)
    plan = run(check=True, allow_disruption=True)
    assert plan["changed"] is True and plan["complete"] is False
    [member] = plan["members"]
    assert member["instance_group"] == "master-us-east-1a" and member["next_step"] == "stop_member"
    assert member["outage"] is True and member["quorum_kept"] is False  # a single-member etcd
    # kops writes encryptedVolume: true at create; the key is what is missing.
    assert [(c["path"], c["after"]) for c in plan["spec_changes"]] == [
        (f"spec.etcdClusters[{e}].etcdMembers[a].kmsKeyId", KEY) for e in ETCD]
    # Outside the window a single-member etcd waits: deferred, nothing touched.
    gated = run(allow_disruption=False)
    assert gated["changed"] is False and gated["deferred"] == ["master-us-east-1a"] and gated["complete"] is False
    after = state(aws)
    assert [(v["VolumeId"], v["KmsKeyId"], tags(v)) for v in after[0]] == [(v["VolumeId"], v["KmsKeyId"], tags(v)) for v in before[0]]
    assert len(after[1]) == len(before[1]) and after[2]["DesiredCapacity"] == 1
    assert all("kmsKeyId" not in m for m in spec_members(aws))


def test_interrupted_after_every_step_converges(cluster):
    aws, run = cluster
    volumes, snapshots, _group = state(aws)
    originals = {etcd: live(volumes, etcd)[0] for etcd in ETCD}
    provider_key = originals["main"]["KmsKeyId"]
    steps = []
    for dummy_call in range(20):
        result = run(allow_disruption=True, max_steps=1)
        assert not result.get("failed"), result.get("msg")
        steps += result["steps"]
        volumes, snapshots, group = state(aws)
        for etcd, old in originals.items():
            # etcd-manager's tags on exactly one volume per member, at every point.
            assert len(live(volumes, etcd)) == 1, (etcd, steps)
            # Never a second copy of a volume, nor a second snapshot.
            assert len([v for v in volumes if tags(v).get("byok:etcd-rekey-of") == old["VolumeId"]]) <= 1
            assert len([s for s in snapshots if tags(s).get("byok:etcd-rekey-of") == old["VolumeId"]]) <= 1
        if result["complete"]:
            break
    else:
        pytest.fail(f"did not converge: {steps}")
    joined = " ".join(steps)
    for what in ("sizes 1,1,1 recorded", "scaled to 0", "snapshot", "on the customer key", "set aside", "given etcd-manager's tags",
                 "restored", "member healthy", "kmsKeyId="):
        assert what in joined, what

    volumes, snapshots, group = state(aws)
    master = [i["InstanceId"] for i in group["Instances"] if i["LifecycleState"] == "InService"]
    assert group["DesiredCapacity"] == 1 and len(master) == 1 and "byok:etcd-rekey-sizes" not in tags(group)
    for etcd, old in originals.items():
        [new] = live(volumes, etcd)
        assert new["VolumeId"] != old["VolumeId"] and new["KmsKeyId"] == KEY and new["Encrypted"]
        assert (new["AvailabilityZone"], new["VolumeType"], new["Size"], new.get("Iops"), new.get("Throughput")) == \
            (old["AvailabilityZone"], old["VolumeType"], old["Size"], old.get("Iops"), old.get("Throughput"))
        assert new["Attachments"][0]["InstanceId"] == master[0]
        # Every tag etcd-manager and kops use moved with it.
        assert tags(old) == {k: v for k, v in tags(new).items() if k != "byok:etcd-rekey-of"}
        [aside] = [v for v in volumes if v["VolumeId"] == old["VolumeId"]]
        assert aside["KmsKeyId"] == provider_key and aside["State"] == "available"
        assert json.loads(tags(aside)["byok:set-aside-tags"]) == tags(old)  # the way back
        assert tags(aside)["byok:set-aside-cluster"] == CLUSTER and f"k8s.io/etcd/{etcd}" not in tags(aside)
    assert all(m["encryptedVolume"] is True and m["kmsKeyId"] == KEY for m in spec_members(aws))

    again = run(allow_disruption=True)
    assert again["changed"] is False and again["complete"] is True and again["steps"] == []
