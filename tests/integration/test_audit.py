# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet playbook's audit over the demo fleet, checked against what boto3 reads from the local AWS itself."""

from __future__ import annotations

import os

import boto3
import pytest
from botocore.config import Config

from tests.integration import runner

PROVIDER = "222222222222"
DEMO = ["acme", "globex", "hooli", "initech", "umbrella"]


def client(endpoint, service, account=PROVIDER, region="us-east-1"):
    """The independent reader: plain boto3 acting as `account` (assumed role, as moto maps credentials)."""
    sts = boto3.client("sts", endpoint_url=endpoint, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/audit-reader", RoleSessionName="audit-reader")["Credentials"]
    return boto3.client(service, endpoint_url=endpoint, region_name=region, aws_access_key_id=c["AccessKeyId"],
                        aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"],
                        config=Config(retries={"total_max_attempts": 1}))


def customer_with_s3_on_its_key(endpoint, tmp_path, name, number, **host_vars):
    """A customer of the demo's shape (account 1111111111<number>) alone in an inventory under tmp_path, seeded, its
    key policy saved beside the inventory as an SRE does (KMS lets no other account read it), its bucket's default
    and every object put on its key. Returns (inventory, key ARN, bucket)."""
    hv = runner.demo_host_vars("acme")
    hv.pop("byok_mattermost_installations", None)  # acme's installation writes acme's bucket, not this customer's
    bucket = f"mattermost-{name}-filestore"
    hv.update({
        "byok_customer_account_id": f"1111111111{number}",
        "byok_vpc_id": f"vpc-0a0d17c00000000{number}",
        "byok_kops_cluster_id": f"{name}01",
        "byok_keys": {"all": f"arn:aws:kms:us-east-1:1111111111{number}:key/0a0d17c{number[-1]}-0000-4000-8000-000000000001"},
        "byok_s3_buckets": [bucket],
        "byok_rds_clusters": [{"identifier": f"{name}-db", "region": "us-east-1"}],
        **host_vars,
    })
    inventory = runner.write_inventory(str(tmp_path / "inventory"), {name: hv})
    runner.seed(endpoint, os.path.dirname(inventory))
    key = hv["byok_keys"]["all"]
    policy = client(endpoint, "kms", account=f"1111111111{number}").get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    os.makedirs(tmp_path / "inventory" / "key-policies")
    (tmp_path / "inventory" / "key-policies" / f"{key.rsplit('/', 1)[1]}.json").write_text(policy)
    s3 = client(endpoint, "s3")
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}, "BucketKeyEnabled": True}]})
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            s3.copy_object(Bucket=bucket, Key=o["Key"], CopySource={"Bucket": bucket, "Key": o["Key"]},
                           ServerSideEncryption="aws:kms", SSEKMSKeyId=key, MetadataDirective="COPY")
    return inventory, key, bucket


AUDIT_ONLY = ("--tags", "key_check,audit")


@pytest.fixture(scope="module")
def demo_audit(local_aws, tmp_path_factory):
    endpoint = local_aws.endpoint_url
    runner.seed(endpoint)
    artifacts = str(tmp_path_factory.mktemp("demo-artifacts"))
    # The key check and the audit only: these tests read the demo fleet as seeded, before any step moves it.
    proc = runner.run_playbook(endpoint, os.path.join(runner.DEMO_INVENTORY, "hosts.yml"), artifacts, *AUDIT_ONLY)
    # hooli's key policy lacks the node-role statement: it fails at the key check, and so does the run.
    assert proc.returncode == 2, proc.stdout[-4000:] + proc.stderr[-2000:]
    return endpoint, artifacts, proc


def report(artifacts, customer):
    return runner.read_json(os.path.join(artifacts, "customers", f"{customer}.json"))


def test_fleet_summary_lists_every_demo_customer(demo_audit):
    artifacts, proc = demo_audit[1:]
    fleet = runner.read_json(os.path.join(artifacts, "fleet-summary.json"))
    assert sorted(c["customer"] for c in fleet["customers"]) == DEMO
    outcomes = {c["customer"]: c["outcome"] for c in fleet["customers"]}
    assert {name for name, o in outcomes.items() if o["status"] != "ok"} == {"hooli"}
    assert outcomes["hooli"]["step"].endswith("Verify the customer's keys and stop this customer before any change when a key is not ready")
    assert "role/nodes.hooli01-kops.k8s.local" in outcomes["hooli"]["message"]
    [check] = runner.read_json(os.path.join(artifacts, "key-checks", "hooli.json"))
    [finding] = [f for f in check["findings"] if f["severity"] == "error"]
    assert finding["code"] == "POLICY_MISSING_PERMISSION" and finding["principal"].endswith(":role/nodes.hooli01-kops.k8s.local")
    assert finding["statement"]["Sid"] == "Allow use of the key role nodes" and '"Sid": "Allow use of the key role nodes"' in finding["fix"]
    for name in set(DEMO) - {"hooli"}:
        assert all(c["passed"] for c in runner.read_json(os.path.join(artifacts, "key-checks", f"{name}.json")))
    assert os.path.getsize(os.path.join(artifacts, "onboarding", "hooli.md")) > 1000
    for c in fleet["customers"]:
        # Before any BYOK step ran, nobody is on their own key.
        assert c["summary"]["compliant"] is False
        assert c["summary"]["on_customer_key"] == 0
        assert c["summary"]["in_scope"] > 0
    with open(os.path.join(artifacts, "fleet-summary.md")) as f:
        md = f.read()
    with open(os.path.join(artifacts, "fleet-summary.html")) as f:
        html = f.read()
    for name in DEMO:
        assert f"| {name} | {'failed: ' if name == 'hooli' else 'ok |'}" in md
        assert f'id="{name}"' in html
    assert "<script" not in html and "http://" not in html.split("<body>")[1]  # self-contained
    assert "fleet-summary.html" in proc.stdout


@pytest.mark.parametrize("customer", DEMO)
def test_report_covers_every_resource(demo_audit, customer):
    endpoint, artifacts = demo_audit[:2]
    rep = report(artifacts, customer)
    hv = runner.demo_host_vars(customer)
    ids = {(r["type"], r["id"]) for r in rep["resources"]}
    for bucket in hv["byok_s3_buckets"]:
        assert ("s3_bucket", bucket) in ids and ("s3_objects", bucket) in ids
    for cluster in hv["byok_rds_clusters"]:
        assert ("rds_cluster", cluster["identifier"]) in ids
        rds = client(endpoint, "rds", region=cluster["region"])
        members = rds.describe_db_clusters(DBClusterIdentifier=cluster["identifier"])["DBClusters"][0]["DBClusterMembers"]
        assert members and {("rds_instance", m["DBInstanceIdentifier"]) for m in members} <= ids
    ec2 = client(endpoint, "ec2", region=hv["byok_region"])
    name_filter = [{"Name": "tag:KubernetesCluster", "Values": [f"{hv['byok_kops_cluster_id']}-kops.k8s.local"]}]
    templates = ec2.describe_launch_templates(Filters=name_filter)["LaunchTemplates"]
    assert templates
    audited_templates = {r["launch_template_id"] for r in rep["resources"] if r["type"] == "launch_template"}
    assert {t["LaunchTemplateId"] for t in templates} == audited_templates
    volumes = ec2.describe_volumes(Filters=name_filter)["Volumes"]
    assert volumes and {("ebs_volume", v["VolumeId"]) for v in volumes} <= ids
    assert not [r for r in rep["resources"] if r["status"] in ("error", "not_found")]


@pytest.mark.parametrize("customer", DEMO)
def test_report_keys_match_independent_reads(demo_audit, customer):
    endpoint, artifacts = demo_audit[:2]
    rep = report(artifacts, customer)
    region = runner.demo_host_vars(customer)["byok_region"]
    s3 = client(endpoint, "s3", region=region)
    ec2 = client(endpoint, "ec2", region=region)
    checked = 0
    for r in rep["resources"]:
        if r["type"] == "s3_bucket":
            rule = s3.get_bucket_encryption(Bucket=r["id"])["ServerSideEncryptionConfiguration"]["Rules"][0]
            assert r["key_arn"] == rule["ApplyServerSideEncryptionByDefault"].get("KMSMasterKeyID")
        elif r["type"] == "s3_objects":
            listed = s3.list_objects_v2(Bucket=r["id"])
            keys = [o["Key"] for o in listed.get("Contents", [])]
            assert r["listed"] == len(keys) and r["sampled"] == min(20, len(keys))
            seen = {}
            for key in keys:
                head = s3.head_object(Bucket=r["id"], Key=key)
                kms = head.get("SSEKMSKeyId") or head.get("ServerSideEncryption") or "none"  # SSE-S3 objects: AES256
                seen[kms] = seen.get(kms, 0) + 1
            assert set(r["keys_seen"]) <= set(seen)
        elif r["type"] == "rds_cluster":
            rds = client(endpoint, "rds", region=r["region"])
            assert r["key_arn"] == rds.describe_db_clusters(DBClusterIdentifier=r["id"])["DBClusters"][0]["KmsKeyId"]
        elif r["type"] == "rds_instance":
            rds = client(endpoint, "rds", region=r["region"])
            assert r["key_arn"] == rds.describe_db_instances(DBInstanceIdentifier=r["id"])["DBInstances"][0]["KmsKeyId"]
        elif r["type"] == "ebs_volume":
            vol = ec2.describe_volumes(VolumeIds=[r["id"]])["Volumes"][0]
            assert (r["key_arn"], r["encrypted"]) == (vol.get("KmsKeyId"), vol["Encrypted"])
        elif r["type"] == "launch_template":
            version = ec2.describe_launch_template_versions(LaunchTemplateId=r["launch_template_id"], Versions=["$Default"])
            device = r["id"].split(" ", 1)[1]
            mapping = [m for m in version["LaunchTemplateVersions"][0]["LaunchTemplateData"]["BlockDeviceMappings"]
                       if m["DeviceName"] == device][0]
            assert r["key_arn"] == mapping["Ebs"].get("KmsKeyId")
        else:
            continue
        checked += 1
        if r["status"] != "not_enabled":
            assert r["status"] in ("other_key", "unencrypted"), r
    assert checked >= 5


def test_selective_enablement_is_reported_not_counted(demo_audit):
    artifacts = demo_audit[1]
    rep = report(artifacts, "initech")
    ebs = [r for r in rep["resources"] if r["service"] == "ebs"]
    assert ebs and all(r["status"] == "not_enabled" and r["expected_key_arn"] is None for r in ebs)
    assert rep["summary"]["by_service"]["ebs"]["enabled"] is False
    assert rep["summary"]["in_scope"] == sum(1 for r in rep["resources"] if r["service"] != "ebs")


def test_global_database_expects_each_regions_key(demo_audit):
    artifacts = demo_audit[1]
    rep = report(artifacts, "umbrella")
    hv = runner.demo_host_vars("umbrella")
    clusters = {r["id"]: r for r in rep["resources"] if r["type"] == "rds_cluster"}
    assert clusters["umbrella-db"]["expected_key_arn"] == hv["byok_keys"]["all"]
    assert clusters["umbrella-db-west"]["expected_key_arn"] == hv["byok_keys"]["rds_regions"]["us-west-2"]
    assert clusters["umbrella-db-west"]["region"] == "us-west-2"


def test_check_mode_audits_the_same(demo_audit, tmp_path):
    endpoint, artifacts = demo_audit[:2]
    proc = runner.run_playbook(endpoint, os.path.join(runner.DEMO_INVENTORY, "hosts.yml"), str(tmp_path), "--check", "-l", "globex", *AUDIT_ONLY)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert runner.read_json(str(tmp_path / "customers" / "globex.json")) == report(artifacts, "globex")


def test_audit_sees_resources_moved_to_the_customer_key(local_aws, tmp_path):
    """A customer whose S3 data is on its key: the same audit turns those records green, and only those."""
    endpoint = local_aws.endpoint_url
    inventory, _key, _bucket = customer_with_s3_on_its_key(endpoint, tmp_path, "auditco", "90")
    proc = runner.run_playbook(endpoint, inventory, str(tmp_path / "artifacts"), *AUDIT_ONLY)
    assert proc.returncode == 0, proc.stdout[-3000:]
    rep = runner.read_json(str(tmp_path / "artifacts" / "customers" / "auditco.json"))
    s3_records = [r for r in rep["resources"] if r["service"] == "s3"]
    assert {r["status"] for r in s3_records} == {"customer_key"}
    assert all(r["status"] in ("other_key", "unencrypted") for r in rep["resources"] if r["service"] != "s3")
    assert rep["summary"]["by_service"]["s3"]["not_on_customer_key"] == 0
    assert rep["summary"]["compliant"] is False


AUDIT_TASK = "Audit which key encrypts each of the customer's data stores, write its report and say where it stands"


def test_each_customer_says_where_it_stands(demo_audit):
    artifacts, proc = demo_audit[1:]
    for name in set(DEMO) - {"hooli"}:  # hooli stopped at its key check; its audit still ran (the rescue goes on)
        summary = report(artifacts, name)["summary"]
        assert (f"{name}: 0 of {summary['in_scope']} resources on the customer's key; "
                f"{summary['readable_count']} store(s) or copies would stay readable after revocation") in proc.stdout


def test_noncompliant_customer_fails_when_asked_after_its_report(demo_audit, tmp_path):
    endpoint, artifacts = demo_audit[:2]
    proc = runner.run_playbook(endpoint, os.path.join(runner.DEMO_INVENTORY, "hosts.yml"), str(tmp_path), "-l", "globex",
                               "-e", "byok_audit_fail_on_noncompliant=true", *AUDIT_ONLY)
    assert proc.returncode == 2, proc.stdout[-3000:]
    rep = runner.read_json(str(tmp_path / "customers" / "globex.json"))
    assert rep == report(artifacts, "globex")  # written before the customer fails
    [customer] = runner.read_json(str(tmp_path / "fleet-summary.json"))["customers"]
    assert customer["outcome"]["status"] == "failed" and customer["outcome"]["step"].endswith(AUDIT_TASK)
    assert customer["outcome"]["message"] == (f"{rep['summary']['not_on_customer_key']} resource(s) of globex are not on "
                                              f"the customer's key; see {tmp_path}/customers/globex.json")
    assert customer["summary"] == rep["summary"]  # the fleet summary still has the audit
