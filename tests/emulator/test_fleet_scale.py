"""The fleet-scale fast paths (tests/local_aws/extensions/fleet_scale.py) answer exactly what moto answers.

A local AWS runs in this process (moto's threaded server with every extension applied), seeded with the fleet
benchmark's customers by the demo seeder, so each request can be answered twice on the same state: with the fast
paths and with moto's own code (``FAST_PATHS_ENABLED = False``). The audit's EC2 reads (and variants: patterns,
several values, several tag filters, pages) must give identical responses, before and after tags, instances,
volumes and launch templates are created, changed and deleted.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError
from moto.iam.models import iam_backends
from moto.rds.models import DBCluster, DBInstance, rds_backends
from moto.server import ThreadedMotoServer

from benchmarks import fleet as bench
from tests.local_aws import extensions
from tests.local_aws.extensions import fleet_scale
from tests.local_aws.harness import LocalAWS, free_port

PROVIDER = "222222222222"
CLUSTER = "tag:KubernetesCluster"
LIVE_STATES = {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalAWS, list[dict]]]:
    """Two customers of the benchmark with kops clusters in one region (shapes one key and key per service),
    seeded into an in-process local AWS."""
    extensions.apply()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    aws = LocalAWS(f"http://127.0.0.1:{port}")
    try:
        aws.reset()
        work = tmp_path_factory.mktemp("fleet-scale")
        customers = [c for c in bench.fleet(len(bench.SHAPES)) if c["shape"] in ("one_key", "key_per_service")]
        bench.write_inventory(work, customers)
        objects = work / "s3-objects.yml"
        objects.write_text(yaml.safe_dump(bench.S3_OBJECTS))
        bench.seed(aws, work, [c["name"] for c in customers], 1, objects)
        yield aws, [c["reads"] for c in customers]
    finally:
        fleet_scale.FAST_PATHS_ENABLED = True
        aws.reset()
        server.stop()


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often each fast path changed something (so a passing comparison is not a comparison of moto with itself)."""
    counts = {"narrowed": 0, "resource_tags": 0}
    narrow, resource_tags = fleet_scale.narrow_by_tags, fleet_scale._fast_resource_tags  # pylint: disable=protected-access

    def counting_narrow(filters, objects):
        kept = narrow(filters, objects)
        counts["narrowed"] += len(kept) < len(objects)
        return kept

    def counting_resource_tags(backend, filters):
        found = resource_tags(backend, filters)
        counts["resource_tags"] += found is not None
        return found

    monkeypatch.setattr(fleet_scale, "narrow_by_tags", counting_narrow)
    monkeypatch.setattr(fleet_scale, "_fast_resource_tags", counting_resource_tags)
    return counts


def answer(call: Callable[..., dict], **kwargs: Any) -> dict:
    try:
        response = call(**kwargs)
    except ClientError as e:
        return {"error": e.response["Error"]}
    response.pop("ResponseMetadata", None)
    return response


def same_answer(call: Callable[..., dict], **kwargs: Any) -> dict:
    """The response with the fast paths, asserted equal to moto's own on the same state."""
    fleet_scale.FAST_PATHS_ENABLED = False
    try:
        plain = answer(call, **kwargs)
    finally:
        fleet_scale.FAST_PATHS_ENABLED = True
    fast = answer(call, **kwargs)
    assert fast == plain, f"{call.__name__}({kwargs})"
    return fast


def same_pages(call: Callable[..., dict], token_key: str = "NextToken", **kwargs: Any) -> list[dict]:
    """Every page of a paginated read, page by page equal to moto's own."""
    pages, token = [], None
    while True:
        page = same_answer(call, **kwargs, **({token_key: token} if token else {}))
        pages.append(page)
        token = page.get(token_key)
        if not token or len(pages) > 50:
            return pages


def audit_reads(ec2: Any, clusters: list[str], variants: bool = True) -> dict[str, Any]:
    """The audit's EC2 reads for each cluster (and variants of them); every answer checked against moto's."""
    seen: dict[str, Any] = {}
    for cluster in clusters:
        tag = [{"Name": CLUSTER, "Values": [cluster]}]
        templates = same_answer(ec2.describe_launch_templates, Filters=tag)["LaunchTemplates"]
        for template in templates:
            same_answer(ec2.describe_launch_template_versions, LaunchTemplateId=template["LaunchTemplateId"], Versions=["$Default"])
        volumes = same_answer(ec2.describe_volumes, Filters=tag)["Volumes"]
        instances = same_answer(ec2.describe_instances, Filters=tag + [LIVE_STATES])["Reservations"]
        same_answer(ec2.describe_instances, Filters=tag)
        for volume in volumes:
            same_answer(ec2.describe_tags, Filters=[{"Name": "resource-id", "Values": [volume["VolumeId"]]}])
        seen[cluster] = {"templates": len(templates), "volumes": len(volumes), "reservations": len(instances)}
        if not variants:
            continue
        if volumes:
            same_answer(ec2.describe_volumes, VolumeIds=[v["VolumeId"] for v in volumes][:2], Filters=tag)
        # Pages: moto's (volumes, instances) and the ec2 extension's (launch templates).
        same_pages(ec2.describe_volumes, Filters=tag, MaxResults=5)
        same_pages(ec2.describe_instances, Filters=tag, MaxResults=5)
        same_pages(ec2.describe_launch_templates, Filters=tag, MaxResults=1)
        # Two tag filters; one of them on a key some resources lack.
        same_answer(ec2.describe_volumes, Filters=tag + [{"Name": "tag:Name", "Values": ["new", "none"]}])
        same_answer(ec2.describe_instances, Filters=tag + [{"Name": "tag:k8s.io/role/node", "Values": ["1"]}])
    if not variants:
        return seen
    # Several values; a pattern (moto's own path); tag-key; a value no resource has; an unknown volume id.
    same_answer(ec2.describe_volumes, Filters=[{"Name": CLUSTER, "Values": clusters}])
    same_answer(ec2.describe_instances, Filters=[{"Name": CLUSTER, "Values": clusters[:2]}, LIVE_STATES])
    same_answer(ec2.describe_launch_templates, Filters=[{"Name": CLUSTER, "Values": ["bench000*"]}])
    same_answer(ec2.describe_volumes, Filters=[{"Name": CLUSTER, "Values": ["bench000?-kops.k8s.local"]}])
    same_answer(ec2.describe_volumes, Filters=[{"Name": "tag-key", "Values": ["KubernetesCluster"]}])
    same_answer(ec2.describe_instances, Filters=[{"Name": CLUSTER, "Values": ["nobody"]}])
    same_answer(ec2.describe_volumes, VolumeIds=["vol-0123456789abcdef0"], Filters=[{"Name": CLUSTER, "Values": clusters[:1]}])
    same_answer(ec2.describe_tags, Filters=[{"Name": "resource-id", "Values": ["vol-0123456789abcdef0"]}])
    same_answer(ec2.describe_tags, Filters=[{"Name": "key", "Values": ["KubernetesCluster"]}])
    return seen


def by_region(customers: list[dict]) -> dict[str, list[str]]:
    regions: dict[str, list[str]] = {}
    for c in customers:
        regions.setdefault(c["region"], []).append(c["cluster_name"])
    return regions


def test_audit_reads_answer_as_moto_does(fleet, taken):
    """Per customer, the audit's launch templates, versions, volumes, instances and tags: identical answers."""
    aws, customers = fleet
    found = {}
    for region, clusters in by_region(customers).items():
        found.update(audit_reads(aws.client("ec2", account=PROVIDER, region=region), clusters))
    # Seeded kops clusters have launch templates, volumes and instances (what the comparison is about).
    assert sum(1 for f in found.values() if f["templates"] and f["volumes"] and f["reservations"]) >= 2, found
    assert taken["narrowed"] and taken["resource_tags"], taken


def test_answers_stay_the_same_after_changes(fleet, taken):
    """Tags moved, added and removed, instances terminated, volumes and templates created and deleted: no stale
    answer (nothing is cached; this shows it)."""
    aws, customers = fleet
    region, clusters = next((r, cs) for r, cs in by_region(customers).items() if len(cs) > 1)
    ec2 = aws.client("ec2", account=PROVIDER, region=region)
    first, second = clusters[0], clusters[1]
    own = [{"Name": CLUSTER, "Values": [first]}]
    volumes = ec2.describe_volumes(Filters=own)["Volumes"]
    instances = [i for r in ec2.describe_instances(Filters=own + [LIVE_STATES])["Reservations"] for i in r["Instances"]]
    templates = ec2.describe_launch_templates(Filters=own)["LaunchTemplates"]
    assert volumes and instances and templates

    def retag():
        # A volume moves to another cluster; an instance loses its cluster tag; another is renamed.
        ec2.create_tags(Resources=[volumes[0]["VolumeId"]], Tags=[{"Key": "KubernetesCluster", "Value": second}])
        ec2.delete_tags(Resources=[instances[0]["InstanceId"]], Tags=[{"Key": "KubernetesCluster"}])
        ec2.create_tags(Resources=[instances[-1]["InstanceId"]], Tags=[{"Key": "Name", "Value": "renamed"}])

    def lifecycle():
        # An instance terminated; volumes created (one deleted again); a template replaced.
        ec2.terminate_instances(InstanceIds=[instances[-1]["InstanceId"]])
        tagged = [{"ResourceType": "volume", "Tags": [{"Key": "KubernetesCluster", "Value": first}, {"Key": "Name", "Value": "new"}]}]
        ec2.create_volume(AvailabilityZone=f"{region}a", Size=1, TagSpecifications=tagged)
        ec2.delete_volume(VolumeId=ec2.create_volume(AvailabilityZone=f"{region}a", Size=1, TagSpecifications=tagged)["VolumeId"])
        ec2.delete_launch_template(LaunchTemplateId=templates[0]["LaunchTemplateId"])
        ec2.create_launch_template(LaunchTemplateName=f"{first}-new", LaunchTemplateData={"ImageId": "ami-12c6146b"},
                                   TagSpecifications=[{"ResourceType": "launch-template", "Tags": [{"Key": "KubernetesCluster", "Value": first}]}])

    def pattern_value():
        # A tag value that looks like a pattern: read literally (moto's path) and matched by patterns.
        ec2.create_tags(Resources=[volumes[-1]["VolumeId"]], Tags=[{"Key": "KubernetesCluster", "Value": "odd*[x]?"}])

    for change in (retag, lifecycle, pattern_value):
        change()
        audit_reads(ec2, [first, second, "odd*[x]?"], variants=False)
    same_pages(ec2.describe_volumes, Filters=[{"Name": CLUSTER, "Values": [first, second]}], MaxResults=5)
    same_answer(ec2.describe_volumes, Filters=[{"Name": CLUSTER, "Values": ["odd*"]}])
    moved = same_answer(ec2.describe_volumes, Filters=[{"Name": CLUSTER, "Values": [second]}])["Volumes"]
    assert volumes[0]["VolumeId"] in {v["VolumeId"] for v in moved}
    assert taken["narrowed"] and taken["resource_tags"], taken


def test_role_lookup_tolerates_roles_created_meanwhile():
    """IAM walks an account's roles on every request with assumed-role credentials; a role created by another
    request during that walk no longer fails it (it did with moto's live dict view: HTTP 500 while seeding)."""
    extensions.apply()
    iam = iam_backends["123456789099"]["aws"]
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    iam.create_role("walked", trust, "/", None, "", [], None)
    for index, _role in enumerate(iam.get_roles()):
        iam.create_role(f"created-meanwhile-{index}", trust, "/", None, "", [], None)
    assert iam.get_role_by_arn("arn:aws:iam::123456789099:role/walked").name == "walked"
    assert len(list(iam.get_roles())) == 2


def test_moto_package_listing_read_once():
    """The Host lookup's listing of moto's services is the installed package's, read once (same content)."""
    extensions.apply()
    from moto import backends  # pylint: disable=import-outside-toplevel

    listed = list(backends.list_of_moto_modules())
    assert "ec2" in listed and "s3" in listed and listed == sorted(listed)
    assert list(backends.list_of_moto_modules()) == listed
    assert Path(backends.__file__).parent.is_dir()


class ChangingMeanwhile(dict):
    """A dict that another request changes during the first walk of its values or items."""

    interrupted = 0

    def _walk(self, view):
        if not self.interrupted:
            self.interrupted += 1
            raise RuntimeError("OrderedDict mutated during iteration")
        return view()

    def values(self):
        return self._walk(super().values)

    def items(self):
        return self._walk(super().items)


def test_cluster_members_read_from_a_copy_of_the_instances():
    """RDS walks the region's DB instances to find a cluster's members; an instance created during the walk made
    it fail ("OrderedDict mutated during iteration", HTTP 500 while seeding). The walk copies them first, and the
    copy is taken again when a change interrupts it."""
    extensions.apply()
    assert DBCluster._members.fget is fleet_scale._cluster_members  # pylint: disable=protected-access

    instances = ChangingMeanwhile(a=1, b=2)
    assert fleet_scale._values_copy(instances) == [1, 2] and instances.interrupted == 1  # pylint: disable=protected-access


def test_rds_filtered_describes_walk_a_copy_of_the_instances():
    """DescribeDBInstances with a db-cluster-id filter walks every DB instance of the region; an instance created by
    another request during the walk made it fail (HTTP 500 in a fleet apply). The filter now walks a copy, taken again
    when a change interrupts it, and filters as before."""
    extensions.apply()
    backend = rds_backends["123456789099"]["us-east-1"]  # called directly: the race needs a change mid-walk

    class Instance:
        def __init__(self, cluster):
            self.db_cluster_identifier = cluster

    instances = ChangingMeanwhile(one=Instance("c1"), two=Instance("c2"), three=Instance("c1"))
    kept = backend._filter_resources(instances, {"db-cluster-id": ["c1"]}, DBInstance)  # pylint: disable=protected-access
    assert list(kept) == ["one", "three"] and instances.interrupted == 1
