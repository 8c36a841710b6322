# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An RDS instance with read replicas re-keyed by blue_green through ansible-playbook, read back with boto3.

RDS encrypts each DB instance on its own: the Blue/Green deployment needs a TargetResourceConfigurations entry for
the instance and one for each read replica, and the local AWS leaves a replica without an entry on the old key, as
AWS does. Afterwards every instance must be on the customer key under its original identifier and endpoint, with
its settings and the replication topology unchanged.
"""

from __future__ import annotations

from tests.integration import test_rds_helpers as h
from tests.integration.test_rds_reencrypt import keys, play, rds  # noqa: F401  pylint: disable=unused-import


def describe(rds, name):  # noqa: F811
    return rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]


def instance_with_replicas(local_aws, rds, name, key):  # noqa: F811
    h.make_instance(local_aws, name, key)
    for n, az in ((1, "us-east-1b"), (2, "us-east-1c")):
        rds.create_db_instance_read_replica(DBInstanceIdentifier=f"{name}-r{n}", SourceDBInstanceIdentifier=name,
                                            DBInstanceClass="db.r6g.large", AvailabilityZone=az,
                                            Tags=[{"Key": "Customer", "Value": "test"}, {"Key": "Role", "Value": f"reader-{n}"}])
    return [name, f"{name}-r1", f"{name}-r2"]


def reader(rds, names):  # noqa: F811
    """Per instance: its settings (the helpers' independent field list), key, endpoint and replication links."""
    view = {}
    for name in names:
        described = describe(rds, name)
        view[name] = {"settings": h.instance_view(rds, name), "key": described.get("KmsKeyId"),
                      "endpoint": (described["Endpoint"]["Address"], described["Endpoint"]["Port"]),
                      "replicas": sorted(described.get("ReadReplicaDBInstanceIdentifiers") or []),
                      "source": described.get("ReadReplicaSourceDBInstanceIdentifier")}
    return view


def test_instance_and_two_read_replicas_blue_green(local_aws, play, rds, keys, unique_name):  # noqa: F811
    name = unique_name("rr")
    names = instance_with_replicas(local_aws, rds, name, keys["old"])
    before = reader(rds, names)
    assert before[name]["replicas"] == [f"{name}-r1", f"{name}-r2"] and {before[n]["key"] for n in names} == {keys["old"]}

    plan = play("--check", identifier=name, kind="instance", key_arn=keys["new"])
    assert plan["step"] == "create_green" and plan["prerequisites"] == [] and not plan["complete"]
    assert reader(rds, names) == before and h.inventory(rds, name)["deployments"] == []

    result = play(identifier=name, kind="instance", key_arn=keys["new"])
    assert result.get("complete"), {k: v for k, v in result.items() if k != "_output"}
    assert [s["step"] for s in result["steps_run"]][:3] == ["create_green", "wait_green", "verify_green"]
    assert result["read_replicas"] == [{"identifier": f"{name}-r1", "current_key": keys["new"], "on_key": True},
                                       {"identifier": f"{name}-r2", "current_key": keys["new"], "on_key": True}]

    after = reader(rds, names)
    for instance in names:
        # Same identifier, endpoint, settings and replication links; only the key changed.
        assert after[instance]["key"] == keys["new"], instance
        assert {k: v for k, v in after[instance].items() if k != "key"} == {k: v for k, v in before[instance].items() if k != "key"}
    # The way back: every instance kept as <name>-old1 on the old key, protected, still replicating from the old one.
    old = reader(rds, [f"{n}-old1" for n in names])
    assert old[f"{name}-old1"]["replicas"] == [f"{name}-r1-old1", f"{name}-r2-old1"]
    for instance in names:
        kept = describe(rds, f"{instance}-old1")
        assert kept["KmsKeyId"] == keys["old"] and kept["DeletionProtection"], instance
    assert h.inventory(rds, name)["deployments"] == []
    assert sorted(h.inventory(rds, name)["instances"]) == sorted(names + [f"{n}-old1" for n in names])

    again = play(identifier=name, kind="instance", key_arn=keys["new"])
    assert not again["changed"] and again["complete"] and again["step"] == "done"

    # Rollback: the old instance and its replicas back under the original names (and endpoints), the re-keyed ones
    # set aside as *-byok-new; then cleaned.
    back = play(identifier=name, kind="instance", key_arn=keys["new"], rds_state="rolled_back")
    assert back["changed"] and back["complete"], back
    restored = reader(rds, names)
    for instance in names:
        assert restored[instance]["key"] == keys["old"], instance
        assert {k: v for k, v in restored[instance].items() if k != "key"} == {k: v for k, v in before[instance].items() if k != "key"}
    aside = reader(rds, [f"{n}-byok-new" for n in names])
    assert aside[f"{name}-byok-new"]["replicas"] == [f"{name}-r1-byok-new", f"{name}-r2-byok-new"]
    assert {v["key"] for v in aside.values()} == {keys["new"]}
    cleaned = play(identifier=name, kind="instance", key_arn=keys["new"], rds_state="cleaned")
    assert cleaned["changed"] and cleaned["deleted"] == [f"{name}-r1-byok-new", f"{name}-r2-byok-new", f"{name}-byok-new"]
    assert h.inventory(rds, name)["instances"] == sorted(names)
    assert reader(rds, names) == restored


def test_snapshot_restore_refuses_an_instance_with_replicas(local_aws, play, rds, keys, unique_name):  # noqa: F811
    name = unique_name("rs")
    names = instance_with_replicas(local_aws, rds, name, keys["old"])
    before = h.inventory(rds, name)
    result = play(identifier=name, kind="instance", key_arn=keys["new"], strategy="snapshot_restore", allow_downtime=True)
    assert result["failed"] and "strategy=blue_green" in result["msg"] and f"{name}-r1" in result["msg"], result["msg"]
    assert not result.get("changed") and h.inventory(rds, name) == before
    assert {describe(rds, n)["KmsKeyId"] for n in names} == {keys["old"]}


def test_a_replica_left_on_the_old_key_is_never_reported_done(local_aws, play, rds, keys, unique_name):  # noqa: F811
    """A deployment made with an entry for the instance only (as this collection did before): the green replicas stay
    on the old key, and the module refuses to switch over, naming them."""
    name = unique_name("rx")
    names = instance_with_replicas(local_aws, rds, name, keys["old"])
    arn = describe(rds, name)["DBInstanceArn"]
    rds.create_blue_green_deployment(BlueGreenDeploymentName=f"{name}-byok", Source=arn,
                                     TargetResourceConfigurations=[{"SourceArn": arn, "TargetKmsKeyId": keys["new"]}])
    result = play(identifier=name, kind="instance", key_arn=keys["new"])
    assert result["failed"] and "green read replicas" in result["msg"] and "delete the deployment" in result["msg"], result
    assert {describe(rds, n)["KmsKeyId"] for n in names} == {keys["old"]}


def test_cross_region_replica_is_a_prerequisite_named_before_any_change(local_aws, play, rds, keys, unique_name):  # noqa: F811
    """Blue/Green deployments do not support cross-Region read replicas (RDS User Guide, blue/green limitations)."""
    name = unique_name("xr")
    h.make_instance(local_aws, name, keys["old"])
    west = local_aws.client("rds", account=h.PROVIDER, region="us-west-2")
    # moto copies the source's parameter group name to the replica and answers HTTP 500 when the destination Region
    # has no group of that name; one is made there first.
    west.create_db_parameter_group(DBParameterGroupName=f"{name}-params", DBParameterGroupFamily="postgres15", Description="t")
    west.create_db_instance_read_replica(DBInstanceIdentifier=f"{name}-west", SourceDBInstanceIdentifier=describe(rds, name)["DBInstanceArn"],
                                         DBInstanceClass="db.r6g.large", KmsKeyId=h.new_key(local_aws, account=h.PROVIDER, region="us-west-2"))
    plan = play("--check", identifier=name, kind="instance", key_arn=keys["new"])
    assert any("cross-Region read replicas" in p and "fix:" in p for p in plan["prerequisites"]), plan["prerequisites"]
    result = play(identifier=name, kind="instance", key_arn=keys["new"])
    assert result["failed"] and "cross-Region" in result["msg"] and not result.get("changed")
    assert h.inventory(rds, name)["deployments"] == [] and describe(rds, name)["KmsKeyId"] == keys["old"]
