# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The demo fleet through the fault proxy: AWS's throttling answers on 10 % of requests, 2 % of connections dropped.

A private local AWS is seeded with the demo fleet; every customer's resources are read with boto3 straight from the
local AWS (the independent reader); byok.yml then runs once over the whole fleet with every AWS call of the product
(modules, and the kops double as kops) going through tests/local_aws/fault_proxy.py; the resources are read again.
The run must end as the demo inventory says each customer ends (demo_expected_outcome), the proxy must have
throttled and dropped (else the test shows nothing), and the two reads may differ only in the key and in what the
docs say changes (IGNORED below, each with its reason). Slow (a whole demo run): marked `slow`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import ClientError

from tests.integration import runner
from tests.local_aws import fault_proxy
from tests.local_aws.harness import LocalAWS
from tests.tools import least_privilege as lp

pytestmark = pytest.mark.slow

# BYOK_FLEET_FAULTS overrides it, e.g. with lost:0.01 (answers lost after the request took effect).
FAULTS = os.environ.get("BYOK_FLEET_FAULTS", "throttle:0.10,drop:0.02,seed:14")
PROVIDER = "222222222222"
HOSTS = list(yaml.safe_load(Path(runner.DEMO_INVENTORY, "hosts.yml").read_text())["all"]["children"]["dedicated"]["hosts"])
GROUP = yaml.safe_load(Path(runner.DEMO_INVENTORY, "group_vars", "dedicated.yml").read_text())
STATE_BUCKET = GROUP["byok_kops_state_store"][len("s3://"):]

# Fields that change by design, per resource kind: the key itself, identities and times of re-created resources
# (docs/rds.md: a database re-keyed by snapshot_restore or Blue/Green is a new cluster under the original identifier
# and endpoint; docs/ebs-kops.md: the launch template gets a new version on the key and the nodes are replaced by a
# rolling update), and the run's own bookkeeping.
IGNORED = {
    "s3_object": {"ETag", "LastModified", "VersionId", "ServerSideEncryption", "SSEKMSKeyId", "BucketKeyEnabled"},
    "rds": {"KmsKeyId", "DbClusterResourceId", "DBClusterArn", "ClusterCreateTime", "EarliestRestorableTime", "LatestRestorableTime",
            "DbiResourceId", "DBInstanceArn", "InstanceCreateTime", "PerformanceInsightsKMSKeyId", "ResponseMetadata"},
    "launch_template": {"KmsKeyId", "Encrypted"},
}


def strip(value, ignored: set[str]):
    if isinstance(value, dict):
        return {k: strip(v, ignored) for k, v in value.items() if k not in ignored}
    if isinstance(value, list):
        return [strip(v, ignored) for v in value]
    return value


def no_byok_tags(tags: list[dict] | None) -> list[dict]:
    """Tags without the run's own `byok:*` bookkeeping (docs/rds.md)."""
    return sorted((t for t in tags or [] if not t["Key"].startswith("byok:")), key=lambda t: t["Key"])


def policy_without_byok_deny(policy: str | None):
    """The bucket policy without the statement the role adds on purpose (docs/s3.md, "Deny statement": Sid
    ByokDenyUploadsUnderOtherKeys); None when nothing else is left."""
    if policy is None:
        return None
    document = json.loads(policy)
    statements = [st for st in document.get("Statement", []) if st.get("Sid") != "ByokDenyUploadsUnderOtherKeys"]
    return {**document, "Statement": statements} if statements else None


def read_bucket(s3, bucket: str) -> dict:
    def call(fn, **kwargs):
        try:
            return fn(Bucket=bucket, **kwargs)
        except ClientError as e:
            return {"error": e.response["Error"]["Code"]}

    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            head = s3.head_object(Bucket=bucket, Key=item["Key"])
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            tags = s3.get_object_tagging(Bucket=bucket, Key=item["Key"])["TagSet"]
            objects[item["Key"]] = {**strip({k: v for k, v in head.items() if k != "ResponseMetadata"}, IGNORED["s3_object"]),
                                    "sha256": hashlib.sha256(body).hexdigest(), "tags": tags}
    encryption = call(s3.get_bucket_encryption)
    return {"versioning": strip(call(s3.get_bucket_versioning), {"ResponseMetadata"}),
            "tagging": strip(call(s3.get_bucket_tagging), {"ResponseMetadata"}),
            "policy": policy_without_byok_deny(call(s3.get_bucket_policy).get("Policy")),
            "objects": objects,
            "encryption_key": [r["ApplyServerSideEncryptionByDefault"].get("KMSMasterKeyID")
                               for r in encryption.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])]}


def read_database(aws: LocalAWS, identifier: str, region: str) -> dict:
    rds = aws.client("rds", PROVIDER, region)
    try:
        [cluster] = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"]
    except ClientError:
        cluster = None
    if cluster:
        members = sorted(m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"])
        instances = [rds.describe_db_instances(DBInstanceIdentifier=m)["DBInstances"][0] for m in members]
    else:
        cluster, instances = {}, rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
    keys = sorted({r.get("KmsKeyId") for r in [cluster, *instances] if r.get("KmsKeyId")})
    out = {"cluster": strip({**cluster, "TagList": no_byok_tags(cluster.get("TagList"))}, IGNORED["rds"]) if cluster else None,
           "instances": [strip({**i, "TagList": no_byok_tags(i.get("TagList"))}, IGNORED["rds"]) for i in instances]}
    return {"settings": json.loads(json.dumps(out, default=str)), "keys": keys}


def read_kops(aws: LocalAWS, host_vars: dict) -> dict:
    cluster = f"{host_vars['byok_kops_cluster_id']}-kops.k8s.local"
    s3 = aws.client("s3", PROVIDER, GROUP.get("byok_region", "us-east-1"))
    ec2 = aws.client("ec2", PROVIDER, host_vars["byok_region"])
    autoscaling = aws.client("autoscaling", PROVIDER, host_vars["byok_region"])
    groups = {}
    listing = s3.list_objects_v2(Bucket=STATE_BUCKET, Prefix=f"{cluster}/instancegroup/").get("Contents", [])
    for item in listing:
        spec = yaml.safe_load(s3.get_object(Bucket=STATE_BUCKET, Key=item["Key"])["Body"].read())["spec"]
        keys = {"root": (spec.pop("rootVolumeEncryption", None), spec.pop("rootVolumeEncryptionKey", None)),
                "volumes": [(v.pop("encrypted", None), v.pop("key", None)) for v in spec.get("volumes") or []]}
        name = item["Key"].rsplit("/", 1)[1]
        template = ec2.describe_launch_template_versions(LaunchTemplateName=f"{name}.{cluster}", Versions=["$Default"])["LaunchTemplateVersions"][0]
        [asg] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[f"{name}.{cluster}"])["AutoScalingGroups"]
        template_keys = sorted({(m.get("Ebs") or {}).get("KmsKeyId") or "" for m in template["LaunchTemplateData"].get("BlockDeviceMappings", [])})
        groups[name] = {"spec": spec, "keys": keys, "template_keys": template_keys,
                        "template": strip(template["LaunchTemplateData"], IGNORED["launch_template"]),
                        "asg": {k: asg.get(k) for k in ("MinSize", "MaxSize", "DesiredCapacity", "LaunchTemplate", "VPCZoneIdentifier")},
                        "instances": len(asg["Instances"])}
    volumes = ec2.describe_volumes(Filters=[{"Name": "tag:KubernetesCluster", "Values": [cluster]}])["Volumes"]
    # An etcd member's volume is the one etcd-manager finds by its tags: the re-key replaces the volume (a new id) on the
    # key, so a member is named by its etcd tags, and only the run's own byok:* bookkeeping tags may differ.
    etcd = {",".join(sorted(f"{t['Key']}={t['Value']}" for t in v.get("Tags", []) if t["Key"].startswith("k8s.io/etcd/"))):
            {"KmsKeyId": v.get("KmsKeyId"), "Size": v["Size"], "AvailabilityZone": v["AvailabilityZone"], "VolumeType": v["VolumeType"],
             "Tags": sorted((t for t in v.get("Tags", []) if not t["Key"].startswith("byok:")), key=lambda t: t["Key"])}
            for v in volumes if any(t["Key"].startswith("k8s.io/etcd/") for t in v.get("Tags", []))}
    return {"groups": groups, "etcd": etcd}


def read_fleet(aws: LocalAWS) -> dict:
    fleet = {}
    for host in HOSTS:
        hv = runner.demo_host_vars(host)
        services = hv.get("byok_services", [])
        s3 = aws.client("s3", PROVIDER, hv["byok_region"])
        fleet[host] = {
            "s3": {b: read_bucket(s3, b) for b in hv.get("byok_s3_buckets", [])} if "s3" in services else {},
            "rds": {c["identifier"]: read_database(aws, c["identifier"], c["region"]) for c in hv.get("byok_rds_clusters", [])}
            if "rds" in services else {},
            "kops": read_kops(aws, hv) if "ebs" in services else {},
        }
    return fleet


def settings_only(fleet: dict) -> dict:
    """The fleet read without the keys themselves: what must be equal before and after."""
    fleet = copy.deepcopy(fleet)
    for customer in fleet.values():
        for bucket in customer["s3"].values():
            bucket.pop("encryption_key")
        for database in customer["rds"].values():
            database.pop("keys")
        for group in (customer["kops"] or {}).get("groups", {}).values():
            group.pop("keys")
            group.pop("template_keys")
        for volume in (customer["kops"] or {}).get("etcd", {}).values():
            volume.pop("KmsKeyId")
    return fleet


def differences(before, after, path="") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after), key=str):
            if key not in before or key not in after:
                out.append(f"{path}.{key}: {'added' if key in after else 'removed'} ({json.dumps(after.get(key, before.get(key)), default=str)[:200]})")
            else:
                out += differences(before[key], after[key], f"{path}.{key}")
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [d for i, (b, a) in enumerate(zip(before, after)) for d in differences(b, a, f"{path}[{i}]")]
    return [] if before == after else [f"{path}: {json.dumps(before, default=str)[:200]} -> {json.dumps(after, default=str)[:200]}"]


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("fleet-faults")
    with LocalAWS.start(extended=True, log_path=work / "local-aws.log") as aws:
        runner.seed(aws.endpoint_url)
        before = read_fleet(aws)
        proxy = fault_proxy.start(aws.endpoint_url, fault_proxy.FaultSpec.parse(FAULTS))
        try:
            started = time.monotonic()
            result = runner.run_playbook(proxy.endpoint_url, str(Path(runner.DEMO_INVENTORY) / "hosts.yml"), str(work / "artifacts"),
                                         "-e", "byok_allow_disruption=true")
            seconds = time.monotonic() - started
            stats = proxy.stats()
        finally:
            proxy.shutdown()
            proxy.server_close()
        after = read_fleet(aws)
        (work / "reads.json").write_text(json.dumps({"before": before, "after": after, "stats": stats, "seconds": seconds}, indent=1, default=str))
        yield {"result": result, "artifacts": work / "artifacts", "before": before, "after": after, "stats": stats, "seconds": seconds}


def test_the_demo_fleet_ends_as_without_faults(faulty_run):
    result, stats = faulty_run["result"], faulty_run["stats"]
    totals = stats["totals"]
    assert totals.get("throttle", 0) > 20 and totals.get("drop", 0) > 3, f"the proxy hardly faulted anything: {stats}"
    expected = {host: runner.demo_host_vars(host).get("demo_expected_outcome", "ok") for host in HOSTS}
    got = lp.outcomes(faulty_run["artifacts"])
    assert lp.unexpected_outcomes(got, expected) == [], result.stdout[-6000:]
    summary = json.loads((faulty_run["artifacts"] / "fleet-summary.json").read_text())
    for customer in summary["customers"]:
        if customer["outcome"]["status"] == "ok":
            # Everything on the key, etcd included, unless the inventory says the customer must end not compliant
            # (globex: its Mattermost server sends AES256).
            expected_compliant = runner.demo_host_vars(customer["customer"]).get("demo_expected_compliant", True)
            assert bool(customer["summary"]["compliant"]) == bool(expected_compliant), customer
    print(f"demo fleet through the fault proxy ({FAULTS}): {faulty_run['seconds']:.1f} s; proxy: {json.dumps(totals)}")


def changes_of(faulty_run, service: str) -> dict:
    before, after = settings_only(faulty_run["before"]), settings_only(faulty_run["after"])
    changed = {host: differences(before[host][service], after[host][service]) for host in HOSTS}
    return {h: d for h, d in changed.items() if d}


@pytest.mark.parametrize("service", ["s3", "kops"])
def test_nothing_changed_but_the_key(faulty_run, service):
    assert changes_of(faulty_run, service) == {}


def test_nothing_changed_in_the_databases_but_the_key(faulty_run):
    assert changes_of(faulty_run, "rds") == {}


def test_every_customer_that_went_through_is_on_its_key(faulty_run):
    after = faulty_run["after"]
    for host in HOSTS:
        hv = runner.demo_host_vars(host)
        if hv.get("demo_expected_outcome", "ok") != "ok":
            assert after[host] == faulty_run["before"][host], f"{host} failed before any change, yet something changed"
            continue
        keys = hv["byok_keys"]
        for bucket in after[host]["s3"].values():
            assert bucket["encryption_key"] == [keys.get("s3", keys.get("all"))]
        for identifier, database in after[host]["rds"].items():
            region = next(c["region"] for c in hv["byok_rds_clusters"] if c["identifier"] == identifier)
            wanted = (keys.get("rds_regions") or {}).get(region) or keys.get("rds", keys.get("all"))
            assert database["keys"] == [wanted], identifier
        for name, group in (after[host]["kops"] or {}).get("groups", {}).items():
            key = keys.get("ebs", keys.get("all"))
            assert group["keys"]["root"] == (True, key) and group["template_keys"] == [key], name
