"""The demo fleet seeder: what the demo inventory describes exists in a fresh local AWS, read back with boto3.

The seeder runs as the command scripts/local-aws runs it, against a private extended server (the session's shared
server may already hold the fleet, which would hide a first run). The inventory is read here with plain YAML,
independently of the seeder's own parser.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

from tests.local_aws import demo_fleet
from tests.local_aws.harness import LocalAWS

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "inventories" / "demo"
PROFILES = yaml.safe_load((ROOT / "tests" / "local_aws" / "fixtures" / "demo-profiles.yml").read_text())
GROUP = yaml.safe_load((INVENTORY / "group_vars" / "dedicated.yml").read_text())
PROVIDER = GROUP["byok_provider_account_id"]
STATE_STORE = GROUP["byok_kops_state_store"][len("s3://"):]
CUSTOMERS = list(yaml.safe_load((INVENTORY / "hosts.yml").read_text())["all"]["children"]["dedicated"]["hosts"])
HOST_VARS = {name: yaml.safe_load((INVENTORY / "host_vars" / f"{name}.yml").read_text()) for name in CUSTOMERS}
RUNBOOK_ACTIONS = {"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"}


class Seeded(NamedTuple):
    aws: LocalAWS
    output: str


def key_parts(arn: str) -> tuple[str, str, str]:
    """(region, account, key id) of a key ARN."""
    region, account, resource = arn.split(":")[3:6]
    return region, account, resource.split("/", 1)[1]


def seed_command(endpoint: str, inventory: Path = INVENTORY) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.local_aws.demo_fleet", "--endpoint-url", endpoint, "--inventory", str(inventory)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def key_arns(hv: dict) -> set[str]:
    keys = hv["byok_keys"]
    return {v for k, v in keys.items() if k != "rds_regions"} | set(keys.get("rds_regions", {}).values())


def cluster_name(hv: dict) -> str:
    return f"{hv['byok_kops_cluster_id']}-kops.k8s.local"


def tags_of(resource: dict, key: str = "Tags") -> dict:
    return {t["Key"]: t["Value"] for t in resource.get(key, [])}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    """A private extended server with the demo fleet seeded once, and the first run's output."""
    server = LocalAWS.start(extended=True, log_path=tmp_path_factory.mktemp("demo-fleet") / "server.log")
    try:
        run = seed_command(server.endpoint_url)
        assert run.returncode == 0, run.stderr[-3000:]
        yield Seeded(server, run.stdout)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def provider_keys(fleet) -> dict[str, str]:
    """The provider key ARN of each region, found by its alias in the provider account."""
    aws = fleet.aws
    regions = {hv["byok_region"] for hv in HOST_VARS.values()} | {c["region"] for hv in HOST_VARS.values() for c in hv["byok_rds_clusters"]}
    alias = f"alias/mattermost-cloud-{GROUP['byok_environment']}"
    return {r: aws.client("kms", region=r).describe_key(KeyId=alias)["KeyMetadata"]["Arn"] for r in regions}


def test_first_run_creates_the_fleet_and_prints_a_summary(fleet):
    output = fleet.output
    assert "resource" in output and all(name in output for name in CUSTOMERS)
    created = int(output.strip().splitlines()[-1].split(" created")[0])
    assert created > 250 and ", 0 already present" in output


@pytest.mark.parametrize("customer", CUSTOMERS)
def test_every_key_arn_is_an_enabled_key_in_its_customer_account(fleet, customer):
    aws = fleet.aws
    for arn in key_arns(HOST_VARS[customer]):
        region, account, key_id = key_parts(arn)
        kms = aws.client("kms", account=account, region=region)
        meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        assert (meta["Arn"], meta["KeyState"], meta["Enabled"]) == (arn, "Enabled", True)
        assert meta["KeySpec"] == "SYMMETRIC_DEFAULT" and meta["KeyUsage"] == "ENCRYPT_DECRYPT" and meta["Description"]
        aliases = [a["AliasName"] for a in kms.list_aliases(KeyId=meta["KeyId"])["Aliases"]]
        assert len(aliases) == 1 and aliases[0].startswith("alias/mattermost-byok")
        assert "_custom_id_" not in {t["TagKey"] for t in kms.list_resource_tags(KeyId=meta["KeyId"])["Tags"]}


def test_keys_shared_between_services_exist_once():
    globex = HOST_VARS["globex"]["byok_keys"]
    assert globex["s3"] == globex["rds"]  # the inventory shares one key ...
    keys = demo_fleet.parse_keys("globex", HOST_VARS["globex"], {"us-east-1"})
    assert len(keys) == 2 and sorted(k.slots for k in keys) == [("ebs",), ("s3", "rds")]  # ... so it is created once


@pytest.mark.parametrize("customer", CUSTOMERS)
def test_key_policies_are_the_saved_documents(fleet, customer):
    """Each key carries the policy saved beside the inventory (key-policies/<key id>.json): the runbook's statements
    unless the customer left one out, and the default root statement."""
    aws = fleet.aws
    hv = HOST_VARS[customer]
    expected = {
        "Allow use of the key": f"arn:aws:iam::{PROVIDER}:user/mattermost-cloud-{GROUP['byok_environment']}-provisioning-{hv['byok_vpc_id']}",
        "Allow use of the key role nodes": f"arn:aws:iam::{PROVIDER}:role/nodes.{cluster_name(hv)}",
    }
    omitted = {"user": "Allow use of the key", "nodes": "Allow use of the key role nodes"}
    for name in hv.get("demo_key_policy_omits", []):
        expected.pop(omitted[name])
    for arn in key_arns(hv):
        region, account, key_id = key_parts(arn)
        kms = aws.client("kms", account=account, region=region)
        policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
        assert policy == json.loads((INVENTORY / "key-policies" / f"{key_id}.json").read_text())
        statements = {s["Sid"]: s for s in policy["Statement"]}
        root = statements.pop("Enable IAM User Permissions")
        assert root["Principal"] == {"AWS": f"arn:aws:iam::{account}:root"} and root["Action"] == "kms:*"
        assert set(expected) <= set(statements)
        assert not (set(omitted.values()) - set(expected)) & set(statements)  # what was left out is not there
        for sid, principal in expected.items():
            statement = statements[sid]
            assert statement["Effect"] == "Allow" and statement["Resource"] == "*"
            assert statement["Principal"] == {"AWS": principal}
            assert set(statement["Action"]) == RUNBOOK_ACTIONS and len(statement["Action"]) == len(RUNBOOK_ACTIONS)


def test_hooli_left_the_node_role_out():
    assert HOST_VARS["hooli"]["demo_key_policy_omits"] == ["nodes"]


@pytest.mark.parametrize("customer", CUSTOMERS)
def test_provider_principals_exist_as_kops_makes_them(fleet, customer):
    aws = fleet.aws
    iam = aws.client("iam")
    hv = HOST_VARS[customer]
    iam.get_user(UserName=f"mattermost-cloud-{GROUP['byok_environment']}-provisioning-{hv['byok_vpc_id']}")
    for role in ("nodes", "masters"):
        name = f"{role}.{cluster_name(hv)}"
        trust = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
        assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
        profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
        assert [r["RoleName"] for r in profile["Roles"]] == [name]


def test_automation_role_trusts_the_provider_account(fleet):
    aws = fleet.aws
    name = GROUP["byok_assume_role_arn"].split("/")[-1]
    trust = aws.client("iam").get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{PROVIDER}:root"}


@pytest.mark.parametrize("customer", CUSTOMERS)
def test_home_vpc_records_the_inventory_vpc_id(fleet, customer):
    aws = fleet.aws
    hv = HOST_VARS[customer]
    vpcs = aws.client("ec2", region=hv["byok_region"]).describe_vpcs(
        Filters=[{"Name": "tag:byok:vpc-id", "Values": [hv["byok_vpc_id"]]}])["Vpcs"]
    assert len(vpcs) == 1


def all_objects(s3, bucket: str) -> list[dict]:
    return [o for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page.get("Contents", [])]


@pytest.mark.parametrize("customer", CUSTOMERS)
def test_buckets_hold_varied_objects_on_the_provider_key(fleet, provider_keys, customer):
    aws = fleet.aws
    hv = HOST_VARS[customer]
    region = hv["byok_region"]
    s3 = aws.client("s3", region=region)
    for bucket in hv["byok_s3_buckets"]:
        rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": provider_keys[region]}
        objects = all_objects(s3, bucket)
        assert 15 <= len(objects) <= 40
        sizes = [o["Size"] for o in objects]
        assert 0 in sizes and any(0 < s < 16 for s in sizes) and any(1024 <= s < 1024 * 1024 for s in sizes)
        big = [o for o in objects if o["Size"] >= 6 * 1024 * 1024]
        assert len(big) == 1 and big[0]["ETag"].strip('"').endswith("-2")  # uploaded in two parts
        assert any("/" in o["Key"].rstrip("/") for o in objects)
        heads = {o["Key"]: s3.head_object(Bucket=bucket, Key=o["Key"]) for o in objects}
        # The file the Mattermost server double uploaded carries the headers of the server's setting (AES256 when on).
        server = {k: heads.pop(k) for k in [k for k in heads if "/server-uploads/" in k]}
        sends_sse_s3 = bool(hv.get("demo_mattermost_sse_s3"))
        assert {h["ServerSideEncryption"] for h in server.values()} <= ({"AES256"} if sends_sse_s3 else {"aws:kms"})
        assert {(h["ServerSideEncryption"], h["SSEKMSKeyId"]) for h in heads.values()} == {("aws:kms", provider_keys[region])}
        assert len({h["ContentType"] for h in heads.values()}) >= 4
        assert any(h.get("ContentEncoding") == "gzip" for h in heads.values())
        assert any(h.get("ContentDisposition", "").startswith("attachment") for h in heads.values())
        assert any(h.get("CacheControl") for h in heads.values())
        assert any(h.get("Metadata") for h in heads.values())
        assert any(s3.get_object_tagging(Bucket=bucket, Key=k)["TagSet"] for k in heads)


def test_fleet_data_stays_small(fleet):
    aws = fleet.aws
    total = 0
    for hv in HOST_VARS.values():
        s3 = aws.client("s3", region=hv["byok_region"])
        total += sum(o["Size"] for bucket in hv["byok_s3_buckets"] for o in all_objects(s3, bucket))
    assert total < 40 * 1000 * 1000


def test_object_content_is_deterministic():
    first, second = demo_fleet.bucket_objects("mattermost-acme-filestore"), demo_fleet.bucket_objects("mattermost-acme-filestore")
    assert [(o.key, o.body) for o in first] == [(o.key, o.body) for o in second]
    assert [o.key for o in first] != [o.key for o in demo_fleet.bucket_objects("mattermost-hooli-filestore")]


def test_one_bucket_is_versioned_with_history(fleet):
    aws = fleet.aws
    versioned = [(name, b) for name, p in PROFILES["customers"].items() for b in p.get("versioned_buckets", [])]
    assert len(versioned) == 1
    customer, bucket = versioned[0]
    s3 = aws.client("s3", region=HOST_VARS[customer]["byok_region"])
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    listing = s3.list_object_versions(Bucket=bucket)
    counts = {}
    for version in listing["Versions"]:
        counts[version["Key"]] = counts.get(version["Key"], 0) + 1
    assert any(n >= 2 for n in counts.values())  # an object with an older version
    assert listing.get("DeleteMarkers")  # and a deleted one whose data is still there


def rds_for(aws, region):
    return aws.client("rds", region=region)


@pytest.mark.parametrize("customer", CUSTOMERS)
def test_clusters_and_instances_are_on_the_provider_key(fleet, provider_keys, customer):
    aws = fleet.aws
    for cluster in HOST_VARS[customer]["byok_rds_clusters"]:
        rds = rds_for(aws, cluster["region"])
        found = rds.describe_db_clusters(DBClusterIdentifier=cluster["identifier"])["DBClusters"][0]
        key = provider_keys[cluster["region"]]
        assert found["StorageEncrypted"] and found["KmsKeyId"] == key and found["Engine"] == "aurora-postgresql"
        assert found["BackupRetentionPeriod"] >= 1 and found["DBSubnetGroup"] and found["VpcSecurityGroups"]
        assert {"Customer": customer, "Environment": GROUP["byok_environment"]}.items() <= tags_of(found, "TagList").items()
        members = {m["DBInstanceIdentifier"]: m["IsClusterWriter"] for m in found["DBClusterMembers"]}
        assert set(members) == {f"{cluster['identifier']}-1", f"{cluster['identifier']}-2"}
        for identifier in members:
            instance = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
            assert (instance["KmsKeyId"], instance["DBInstanceClass"]) == (key, "db.r6g.large")


def test_primary_clusters_have_a_writer_and_a_reader(fleet):
    aws = fleet.aws
    for customer, hv in HOST_VARS.items():
        cluster = hv["byok_rds_clusters"][0]
        found = rds_for(aws, cluster["region"]).describe_db_clusters(DBClusterIdentifier=cluster["identifier"])["DBClusters"][0]
        writers = {m["DBInstanceIdentifier"] for m in found["DBClusterMembers"] if m["IsClusterWriter"]}
        assert writers == {f"{cluster['identifier']}-1"}, customer


def test_logical_replication_is_on_for_some_customers_only(fleet):
    aws = fleet.aws
    seen = {}
    for customer, hv in HOST_VARS.items():
        cluster = hv["byok_rds_clusters"][0]
        rds = rds_for(aws, cluster["region"])
        group = rds.describe_db_clusters(DBClusterIdentifier=cluster["identifier"])["DBClusters"][0]["DBClusterParameterGroup"]
        parameters = rds.describe_db_cluster_parameters(DBClusterParameterGroupName=group, Source="user")["Parameters"]
        seen[customer] = {p["ParameterName"]: p["ParameterValue"] for p in parameters}.get("rds.logical_replication") == "1"
        profile = {**PROFILES["defaults"], **PROFILES["customers"].get(customer, {})}
        assert seen[customer] == profile["logical_replication"], customer
    assert set(seen.values()) == {True, False}


def test_global_database_spans_both_regions(fleet, provider_keys):
    aws = fleet.aws
    hv = HOST_VARS["umbrella"]
    rds = rds_for(aws, hv["byok_region"])
    found = [g for g in rds.describe_global_clusters()["GlobalClusters"] if g["GlobalClusterIdentifier"] == hv["byok_rds_global_cluster"]]
    assert len(found) == 1 and found[0]["StorageEncrypted"]
    members = {m["DBClusterArn"].split(":")[3]: m for m in found[0]["GlobalClusterMembers"]}
    assert set(members) == {"us-east-1", "us-west-2"}
    assert members["us-east-1"]["IsWriter"] and not members["us-west-2"]["IsWriter"]
    for cluster in hv["byok_rds_clusters"]:
        described = rds_for(aws, cluster["region"]).describe_db_clusters(DBClusterIdentifier=cluster["identifier"])["DBClusters"][0]
        assert members[cluster["region"]]["DBClusterArn"] == described["DBClusterArn"]
        assert described["KmsKeyId"] == provider_keys[cluster["region"]]


def state_document(s3, key: str):
    return s3.get_object(Bucket=STATE_STORE, Key=key)["Body"].read().decode()


def test_state_store_is_versioned_and_on_the_provider_key(fleet, provider_keys):
    aws = fleet.aws
    s3 = aws.client("s3")
    assert s3.get_bucket_versioning(Bucket=STATE_STORE)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=STATE_STORE)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == provider_keys["us-east-1"]


@pytest.mark.parametrize("customer", CUSTOMERS)
def test_state_store_holds_kops_documents(fleet, customer):
    aws = fleet.aws
    hv = HOST_VARS[customer]
    name, region = cluster_name(hv), hv["byok_region"]
    s3 = aws.client("s3")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=STATE_STORE, Prefix=f"{name}/")["Contents"]}
    groups = [f"master-{region}a", f"nodes-{region}a", f"nodes-{region}b"]
    assert keys == {f"{name}/config", f"{name}/kops-version.txt"} | {f"{name}/instancegroup/{g}" for g in groups}
    cluster = yaml.safe_load(state_document(s3, f"{name}/config"))
    assert (cluster["apiVersion"], cluster["kind"], cluster["metadata"]["name"]) == ("kops.k8s.io/v1alpha2", "Cluster", name)
    etcd = {c["name"]: c["etcdMembers"] for c in cluster["spec"]["etcdClusters"]}
    assert set(etcd) == {"main", "events"}
    for members in etcd.values():
        assert members == [{"encryptedVolume": True, "instanceGroup": f"master-{region}a", "name": "a"}]  # no kmsKeyId
    vpc = aws.client("ec2", region=region).describe_vpcs(VpcIds=[cluster["spec"]["networkID"]])["Vpcs"][0]
    assert tags_of(vpc)["byok:vpc-id"] == hv["byok_vpc_id"]
    for group in groups:
        spec = yaml.safe_load(state_document(s3, f"{name}/instancegroup/{group}"))
        assert (spec["kind"], spec["metadata"]["name"]) == ("InstanceGroup", group)
        assert spec["spec"]["role"] == ("Master" if group.startswith("master") else "Node")
        assert "rootVolumeEncryptionKey" not in spec["spec"]
    version = state_document(s3, f"{name}/kops-version.txt")
    assert version in PROFILES["kops_releases"]


def test_kops_versions_and_extra_volumes_vary(fleet):
    aws = fleet.aws
    s3 = aws.client("s3")
    versions, extra = set(), []
    for hv in HOST_VARS.values():
        name, region = cluster_name(hv), hv["byok_region"]
        versions.add(state_document(s3, f"{name}/kops-version.txt"))
        for zone in "ab":
            spec = yaml.safe_load(state_document(s3, f"{name}/instancegroup/nodes-{region}{zone}"))["spec"]
            extra += [(name, v["device"]) for v in spec.get("volumes", [])]
    assert len({v.rsplit(".", 1)[0] for v in versions}) >= 2
    assert len(extra) == 1


@pytest.mark.parametrize("customer", CUSTOMERS)
def test_launch_templates_and_groups_run_instances_on_the_provider_key(fleet, provider_keys, customer):
    aws = fleet.aws
    hv = HOST_VARS[customer]
    name, region = cluster_name(hv), hv["byok_region"]
    key = provider_keys[region]
    ec2, autoscaling = aws.client("ec2", region=region), aws.client("autoscaling", region=region)
    for group, size in ((f"master-{region}a", 1), (f"nodes-{region}a", 2), (f"nodes-{region}b", 2)):
        full = f"{group}.{name}"
        template = ec2.describe_launch_templates(LaunchTemplateNames=[full])["LaunchTemplates"][0]
        expected_tags = {"KubernetesCluster": name, f"kubernetes.io/cluster/{name}": "owned", "kops.k8s.io/instancegroup": group,
                         ("k8s.io/role/master" if size == 1 else "k8s.io/role/node"): "1"}
        assert expected_tags.items() <= tags_of(template).items()
        data = ec2.describe_launch_template_versions(LaunchTemplateId=template["LaunchTemplateId"], Versions=["$Latest"])
        mappings = {m["DeviceName"]: m["Ebs"] for m in data["LaunchTemplateVersions"][0]["LaunchTemplateData"]["BlockDeviceMappings"]}
        root = mappings["/dev/xvda"]
        assert (root["VolumeType"], root["Encrypted"], root["KmsKeyId"]) == ("gp3", True, key)
        scaling = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[full])["AutoScalingGroups"][0]
        assert (scaling["MinSize"], scaling["DesiredCapacity"], len(scaling["Instances"])) == (size, size, size)
        assert expected_tags.items() <= {t["Key"]: t["Value"] for t in scaling["Tags"]}.items()
        ids = [i["InstanceId"] for i in scaling["Instances"]]
        volumes = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": ids}])["Volumes"]
        roots = [v for v in volumes if v["Attachments"][0]["Device"] == "/dev/xvda"]
        assert len(roots) == size and all(v["Encrypted"] and v["KmsKeyId"] == key for v in volumes)


@pytest.mark.parametrize("customer", CUSTOMERS)
def test_etcd_volumes_are_tagged_as_kops_tags_them(fleet, provider_keys, customer):
    aws = fleet.aws
    hv = HOST_VARS[customer]
    name, region = cluster_name(hv), hv["byok_region"]
    ec2 = aws.client("ec2", region=region)
    for etcd in ("main", "events"):
        volume = ec2.describe_volumes(Filters=[{"Name": "tag:Name", "Values": [f"a.etcd-{etcd}.{name}"]}])["Volumes"]
        assert len(volume) == 1
        tags = tags_of(volume[0])
        assert tags["KubernetesCluster"] == name and tags[f"k8s.io/etcd/{etcd}"] == "a/a" and tags["k8s.io/role/control-plane"] == "1"
        assert volume[0]["Encrypted"] and volume[0]["KmsKeyId"] == provider_keys[region]
        assert volume[0]["State"] == "in-use"


def fleet_counts(aws) -> dict:
    """How many of each resource exist, read independently of the seeder."""
    counts = {"iam roles": len(aws.client("iam").list_roles()["Roles"]), "iam users": len(aws.client("iam").list_users()["Users"])}
    for hv in HOST_VARS.values():
        for arn in key_arns(hv):
            region, account = key_parts(arn)[:2]
            counts[f"keys {account} {region}"] = len(aws.client("kms", account=account, region=region).list_keys()["Keys"])
    for region in ("us-east-1", "us-west-2"):
        ec2, rds = aws.client("ec2", region=region), rds_for(aws, region)
        s3 = aws.client("s3", region=region)
        counts[f"{region} provider keys"] = len(aws.client("kms", region=region).list_keys()["Keys"])
        counts[f"{region} vpcs"] = len(ec2.describe_vpcs()["Vpcs"])
        counts[f"{region} volumes"] = len(ec2.describe_volumes(Filters=[{"Name": "tag-key", "Values": ["KubernetesCluster"]}])["Volumes"])
        counts[f"{region} launch template versions"] = sum(t["LatestVersionNumber"] for t in ec2.describe_launch_templates()["LaunchTemplates"])
        counts[f"{region} instances"] = sum(len(r["Instances"]) for r in ec2.describe_instances()["Reservations"])
        counts[f"{region} db clusters"] = len(rds.describe_db_clusters()["DBClusters"])
        counts[f"{region} db instances"] = len(rds.describe_db_instances()["DBInstances"])
        counts[f"{region} global clusters"] = len(rds.describe_global_clusters()["GlobalClusters"])
        buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        counts["buckets"] = len(buckets)
        for bucket in buckets:
            listing = s3.list_object_versions(Bucket=bucket)
            counts[f"versions {bucket}"] = len(listing.get("Versions", [])) + len(listing.get("DeleteMarkers", []))
    return counts


def test_second_run_creates_nothing(fleet):
    aws = fleet.aws
    before = fleet_counts(aws)
    run = seed_command(aws.endpoint_url)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1].startswith("0 created, ")
    assert fleet_counts(aws) == before


@pytest.mark.parametrize(("host_vars", "message"), [
    ({"byok_keys": {"all": "alias/customer-key"}}, "byok_keys.all"),
    ({"byok_keys": {"everything": "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"}}, "byok_keys.everything"),
    ({"byok_services": ["s3", "efs"]}, "efs"),
    ({"demo_key_policy_omits": ["admins"]}, "demo_key_policy_omits"),
    ({"byok_rds_global_cluster": "acme-global"}, "byok_rds_global_cluster"),
    ({"byok_rds_clusters": [{"identifier": "acme-db", "region": "us-east-1", "engine": "mysql"}]}, "byok_rds_clusters[0]"),
    ({"byok_region": "xx-nowhere-1"}, "byok_region"),
])
def test_inventory_the_seeder_cannot_seed_fails_clearly(tmp_path, host_vars, message):
    """Refused before any AWS call: nothing listens at the endpoint."""
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"dedicated": {"hosts": {"acme": None}}}}}))
    (tmp_path / "group_vars" / "dedicated.yml").write_text(yaml.safe_dump(GROUP))
    (tmp_path / "host_vars" / "acme.yml").write_text(yaml.safe_dump({**HOST_VARS["acme"], **host_vars}))
    run = seed_command("http://127.0.0.1:9", tmp_path)
    assert run.returncode == 2
    assert message in run.stderr and "Traceback" not in run.stderr


def test_other_documented_inventory_shapes_are_seeded(fleet, tmp_path):
    """Variables of docs/inventory.md the demo doesn't use: an RDS instance, an external (imported) key, a state
    store prefix and an external id on the automation role. A separate environment, so names don't meet the demo's."""
    aws = fleet.aws
    group = {**GROUP, "byok_environment": "staging", "byok_assume_role_external_id": "staging-external-id",
             "byok_assume_role_arn": f"arn:aws:iam::{PROVIDER}:role/mattermost-byok-automation-staging",
             "byok_kops_state_store": "s3://mattermost-kops-state-staging/clusters"}
    key = f"arn:aws:kms:us-east-1:{PROVIDER}:key/0e0c0000-0000-4000-8000-000000000099"
    host = {"byok_customer_account_id": "111111111199", "byok_region": "us-east-1", "byok_vpc_id": "vpc-0e0c0000000000099",
            "byok_kops_cluster_id": "extco01", "byok_services": ["s3", "rds", "ebs"], "byok_key_source": "external",
            "byok_keys": {"all": key}, "byok_s3_buckets": ["mattermost-extco-filestore"],
            "byok_rds_clusters": [{"identifier": "extco-db", "kind": "instance"}]}
    for directory in ("host_vars", "group_vars"):
        (tmp_path / directory).mkdir()
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"dedicated": {"hosts": {"extco": None}}}}}))
    (tmp_path / "group_vars" / "dedicated.yml").write_text(yaml.safe_dump(group))
    (tmp_path / "host_vars" / "extco.yml").write_text(yaml.safe_dump(host))
    run = seed_command(aws.endpoint_url, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]

    meta = aws.client("kms").describe_key(KeyId=key)["KeyMetadata"]
    assert (meta["Arn"], meta["Origin"], meta["KeyState"]) == (key, "EXTERNAL", "PendingImport")
    provider_key = aws.client("kms").describe_key(KeyId="alias/mattermost-cloud-staging")["KeyMetadata"]["Arn"]
    instance = rds_for(aws, "us-east-1").describe_db_instances(DBInstanceIdentifier="extco-db")["DBInstances"][0]
    assert (instance["Engine"], instance["StorageEncrypted"], instance["KmsKeyId"]) == ("postgres", True, provider_key)
    assert not instance.get("DBClusterIdentifier")
    s3 = aws.client("s3")
    config = s3.get_object(Bucket="mattermost-kops-state-staging", Key="clusters/extco01-kops.k8s.local/config")["Body"].read()
    assert yaml.safe_load(config)["spec"]["configBase"] == "s3://mattermost-kops-state-staging/clusters/extco01-kops.k8s.local"
    trust = aws.client("iam").get_role(RoleName="mattermost-byok-automation-staging")["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Condition"] == {"StringEquals": {"sts:ExternalId": "staging-external-id"}}
