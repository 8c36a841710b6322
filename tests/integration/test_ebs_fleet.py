# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The byok_ebs role over the seeded demo fleet, with the kops test double as kops, checked with boto3.

One private local AWS (the runs change every demo cluster): plan in check mode, apply outside the window (roll
deferred), apply with disruption allowed (roll), and a last run that changes nothing.
"""

from __future__ import annotations

import json
import os

import yaml

from tests.integration import runner

PROVIDER = "222222222222"
KOPS_DOUBLE = os.path.join(runner.ROOT, "tests", "local_aws", "bin", "kops")
PLAYBOOK = "tests/integration/playbooks/ebs_fleet.yml"
SLR = f"arn:aws:iam::{PROVIDER}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"


def demo_customers():
    """name -> (EBS key ARN, kops cluster name) for the demo customers with EBS enabled, from the inventory."""
    found = {}
    for name in yaml.safe_load(open(os.path.join(runner.DEMO_INVENTORY, "hosts.yml")))["all"]["children"]["dedicated"]["hosts"]:
        hv = runner.demo_host_vars(name)
        if "ebs" in hv.get("byok_services", []):
            keys = hv["byok_keys"]
            found[name] = (keys.get("ebs") or keys["all"], f"{hv['byok_kops_cluster_id']}-kops.k8s.local", hv["byok_region"],
                           hv["byok_customer_account_id"])
    return found


def cluster_state(aws, cluster, region):
    """Launch templates' default-version keys, and the instances' non-etcd volume keys, read with boto3."""
    ec2 = aws.client("ec2", account=PROVIDER, region=region)
    autoscaling = aws.client("autoscaling", account=PROVIDER, region=region)
    groups = [g for g in autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]
              if g["AutoScalingGroupName"].endswith("." + cluster)]
    templates = {}
    for group in groups:
        name = group["AutoScalingGroupName"]
        version = ec2.describe_launch_template_versions(LaunchTemplateName=name, Versions=["$Default"])["LaunchTemplateVersions"][0]
        templates[name] = {m["DeviceName"]: m["Ebs"].get("KmsKeyId") for m in version["LaunchTemplateData"]["BlockDeviceMappings"]}
    ids = [i["InstanceId"] for g in groups for i in g["Instances"]]
    volumes = {}
    for reservation in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
        for instance in reservation["Instances"]:
            vids = [m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"]]
            for volume in ec2.describe_volumes(VolumeIds=vids)["Volumes"]:
                if not any(t["Key"].startswith("k8s.io/etcd/") for t in volume.get("Tags", [])):
                    volumes[volume["VolumeId"]] = (instance["InstanceId"], volume["KmsKeyId"])
    return templates, volumes, len(groups)


def run(aws, tmp_path, label, *args):
    artifacts = str(tmp_path / label)
    os.makedirs(artifacts, exist_ok=True)
    result = runner.run_playbook(aws.endpoint_url, os.path.join(runner.DEMO_INVENTORY, "hosts.yml"), artifacts, *args,
                                 "-e", f"byok_kops_binary={KOPS_DOUBLE}", playbook=PLAYBOOK,
                                 extra_env={"KOPS_DOUBLE_LOG": str(tmp_path / f"{label}-kops.log")})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return artifacts, result


def kops_log(tmp_path, label):
    path = tmp_path / f"{label}-kops.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_demo_fleet_ebs_on_customer_keys(fresh_local_aws, tmp_path):
    aws = fresh_local_aws
    runner.seed(aws.endpoint_url)
    customers = demo_customers()
    assert len(customers) == 4, customers
    before = {c: cluster_state(aws, cluster, region) for c, (_k, cluster, region, _a) in customers.items()}

    # Check mode: a plan, nothing mutating runs, nothing in AWS changes (two customers: kops 1.28 and 1.30 with an
    # extra volume; the others go through the same code).
    planned = ["acme", "globex"]
    artifacts, result = run(aws, tmp_path, "check", "--check", "--diff", "-l", ",".join(planned))
    assert "rootVolumeEncryptionKey" in result.stdout  # --diff shows the YAML change
    assert all(argv[0] == "get" for argv in kops_log(tmp_path, "check"))
    for name, (key, cluster, region, _account) in customers.items():
        assert cluster_state(aws, cluster, region) == before[name]
    for name in planned:
        steps = runner.read_json(os.path.join(artifacts, f"steps-{name}.json"))
        assert steps[0]["changed"] and steps[0]["deferred"] and steps[0]["estimated_disruption_seconds"] > 0
    grants = aws.client("kms", account=customers["acme"][3]).list_grants(KeyId=customers["acme"][0])["Grants"]
    assert grants == []

    # Outside the window (no permission): spec and launch templates on the key, the roll deferred and recorded.
    deferred = [n for n in customers if n not in planned]
    artifacts, _result = run(aws, tmp_path, "deferred", "-l", ",".join(deferred))
    for name in deferred:
        key, cluster, region, _account = customers[name]
        templates, volumes, groups = cluster_state(aws, cluster, region)
        assert groups == 3 and all(k == key for t in templates.values() for k in t.values()), templates
        assert all(k != key for _i, k in volumes.values())
        [record, etcd_record] = runner.read_json(os.path.join(artifacts, f"steps-{name}.json"))
        assert record["deferred"] and record["disruptive"] and "rolling update deferred" in record["summary"]
        # A single-member etcd is a control-plane outage: it waits for the window like the roll.
        assert etcd_record["deferred"] and etcd_record["disruptive"] and not etcd_record["changed"]
        assert "deferred to the maintenance window (single-member etcd" in etcd_record["summary"]
    assert not any(argv[0] == "rolling-update" for argv in kops_log(tmp_path, "deferred"))

    # Disruption allowed: everything from the start for two customers, the deferred roll for the other two.
    artifacts, _result = run(aws, tmp_path, "roll", "-e", "byok_allow_disruption=true")
    for name, (key, cluster, region, account) in customers.items():
        templates, volumes, _groups = cluster_state(aws, cluster, region)
        assert all(k == key for t in templates.values() for k in t.values()), templates
        assert volumes and all(k == key for _i, k in volumes.values()), volumes
        replaced = {i for i, _k in volumes.values()}
        assert not replaced & {i for i, _k in before[name][1].values()}  # every node is a new one
        report = runner.read_json(os.path.join(artifacts, "ebs", f"{name}.json"))
        assert report["verification"] == {"launch_templates_on_key": True, "instances_on_key": True, "passed": True}
        # The kops step's report is from before the etcd step, which then moved both members onto the key.
        assert [(m["etcd_cluster"], m["on_key"]) for m in report["etcd"]] == [("main", False), ("events", False)]
        assert report["etcd_rekey"]["complete"] is True
        assert [m["next_step"] for m in report["etcd_rekey"]["members"]] == ["done"]
        assert report["storage_class"]["parameters"] == {"type": "gp3", "encrypted": "true", "kmsKeyId": key}
        # The customer, reading its own key: exactly one grant, for the Auto Scaling role of the provider account.
        grants = aws.client("kms", account=account, region=region).list_grants(KeyId=key)["Grants"]
        asg_grants = [g for g in grants if g["GranteePrincipal"] == SLR]
        assert len(asg_grants) == 1 and {"CreateGrant", "GenerateDataKeyWithoutPlaintext", "Decrypt"} <= set(asg_grants[0]["Operations"])
        # etcd: the volumes etcd-manager finds are new ones on the key, attached to the running control-plane node;
        # the old ones are set aside on their old key, out of etcd-manager's sight.
        ec2 = aws.client("ec2", account=PROVIDER, region=region)
        for member in report["etcd"]:
            old = ec2.describe_volumes(VolumeIds=[member["volume_id"]])["Volumes"][0]
            old_tags = {t["Key"]: t["Value"] for t in old["Tags"]}
            assert old["KmsKeyId"] == member["kms_key_id"] != key and old["State"] == "available"
            assert f"k8s.io/etcd/{member['etcd_cluster']}" not in old_tags and old_tags["byok:set-aside-cluster"] == cluster
            [new] = ec2.describe_volumes(Filters=[{"Name": f"tag:kubernetes.io/cluster/{cluster}", "Values": ["owned"]},
                                                  {"Name": "tag-key", "Values": [f"k8s.io/etcd/{member['etcd_cluster']}"]}])["Volumes"]
            assert new["KmsKeyId"] == key and new["Attachments"] and new["State"] == "in-use"

    # The customer without EBS keeps its cluster as it was.
    [other] = [n for n in yaml.safe_load(open(os.path.join(runner.DEMO_INVENTORY, "hosts.yml")))["all"]["children"]["dedicated"]["hosts"]
               if n not in customers]
    hv = runner.demo_host_vars(other)
    cluster = f"{hv['byok_kops_cluster_id']}-kops.k8s.local"
    templates, _volumes, _groups = cluster_state(aws, cluster, hv["byok_region"])
    assert templates and not any(k and k.startswith(f"arn:aws:kms:{hv['byok_region']}:{hv['byok_customer_account_id']}:")
                                 for t in templates.values() for k in t.values())

    # Again, with disruption allowed: nothing left to do (only the reports are written again).
    artifacts, _result = run(aws, tmp_path, "again", "-e", "byok_allow_disruption=true")
    for name in customers:
        [record, etcd] = runner.read_json(os.path.join(artifacts, f"steps-{name}.json"))
        assert (record["changed"], record["disruptive"], record["deferred"]) == (False, False, False), record
        assert (etcd["changed"], etcd["disruptive"], etcd["deferred"]) == (False, False, False), etcd
    assert all(argv[0] == "get" for argv in kops_log(tmp_path, "again"))
