"""RDS behaviours of read replicas in Blue/Green, DeleteBlueGreenDeployment after a switchover, and the intermediate
states of an instance rename and of a global database switchover (tests/local_aws/extensions/rds.py cites each).

- Blue/Green of a DB instance with read replicas: each read replica gets a green replica, encrypted with the key of
  its own TargetResourceConfigurations entry or, without one, with its blue counterpart's key; the switchover renames
  every blue instance -old1 and gives each green one its blue counterpart's name (and endpoint).
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_TargetResourceConfiguration.html
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateBlueGreenDeployment.html
- DeleteBlueGreenDeployment: "You can't specify this option [DeleteTarget] if the blue/green deployment status is
  SWITCHOVER_COMPLETED". https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteBlueGreenDeployment.html
- ModifyDBInstance NewDBInstanceIdentifier with ApplyImmediately reboots the instance: renaming, rebooting, then
  available; modifying it meanwhile is refused (InvalidDBInstanceState).
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBInstance.html
- SwitchoverGlobalCluster: FailoverState pending, then switching-over (the target already the writer), then empty;
  RemoveFromGlobalCluster and a second switchover are refused until it clears.
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_FailoverState.html

Each test runs on the extended local AWS and on plain moto, where it must fail with EmulatorGap: the specific gap,
not any error.
"""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from .support import CUSTOMER, OTHER_REGION, PROVIDER, error_of, new_key

PASSWORD = "not-a-secret-123"


class EmulatorGap(AssertionError):
    """The behaviour under test is missing (what plain moto gets wrong)."""


def expect(condition: bool, gap: str) -> None:
    if not condition:
        raise EmulatorGap(gap)


def against_both(plain_moto_gap: str) -> pytest.MarkDecorator:
    plain = pytest.param("plain", marks=pytest.mark.xfail(strict=True, raises=EmulatorGap, reason=f"plain moto: {plain_moto_gap}"))
    return pytest.mark.parametrize("aws", ["extended", plain], indirect=True)


@pytest.fixture
def rds(aws):
    return aws.client("rds", account=PROVIDER)


def describe(rds, name):
    return rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]


def instance_with_replicas(rds, name, key_arn, replicas=2):
    rds.create_db_instance(DBInstanceIdentifier=name, Engine="postgres", DBInstanceClass="db.m6g.large", AllocatedStorage=20,
                           MasterUsername="mmuser", MasterUserPassword=PASSWORD, StorageEncrypted=True, KmsKeyId=key_arn)
    for n in range(1, replicas + 1):
        rds.create_db_instance_read_replica(DBInstanceIdentifier=f"{name}-r{n}", SourceDBInstanceIdentifier=name,
                                            DBInstanceClass="db.r6g.large")
    return {n: describe(rds, n)["DBInstanceArn"] for n in [name] + [f"{name}-r{i}" for i in range(1, replicas + 1)]}


def settle(rds, ident, wanted, limit=20):
    for dummy in range(limit):
        deployment = rds.describe_blue_green_deployments(BlueGreenDeploymentIdentifier=ident)["BlueGreenDeployments"][0]
        if deployment["Status"] == wanted:
            return deployment
    raise AssertionError(f"deployment {ident} never {wanted}")


@against_both("a Blue/Green deployment of an instance copies none of its read replicas")
def test_blue_green_replicas_each_on_its_entrys_key(aws, rds, unique_name):
    kms = aws.client("kms", account=CUSTOMER)
    old_key, new_key_arn = new_key(kms)["Arn"], new_key(kms)["Arn"]
    name = unique_name("pg")
    arns = instance_with_replicas(rds, name, old_key)
    deployment = rds.create_blue_green_deployment(
        BlueGreenDeploymentName=unique_name("bg"), Source=arns[name],
        TargetResourceConfigurations=[{"SourceArn": arns[name], "TargetKmsKeyId": new_key_arn},
                                      {"SourceArn": arns[f"{name}-r1"], "TargetKmsKeyId": new_key_arn}])["BlueGreenDeployment"]
    ident = deployment["BlueGreenDeploymentIdentifier"]
    settle(rds, ident, "AVAILABLE")
    green = deployment["Target"].rsplit(":", 1)[-1]
    green_replicas = describe(rds, green).get("ReadReplicaDBInstanceIdentifiers") or []
    expect(len(green_replicas) == 2, f"green {green} has replicas {green_replicas}, not one per blue replica")
    by_blue = {r.rsplit("-green-", 1)[0]: r for r in green_replicas}
    assert sorted(by_blue) == [f"{name}-r1", f"{name}-r2"]
    # r1 has its own entry; r2 has none and keeps its blue counterpart's configuration (the old key).
    assert describe(rds, by_blue[f"{name}-r1"])["KmsKeyId"] == new_key_arn
    assert describe(rds, by_blue[f"{name}-r2"])["KmsKeyId"] == old_key
    assert describe(rds, by_blue[f"{name}-r1"])["DBInstanceClass"] == "db.r6g.large"
    assert describe(rds, by_blue[f"{name}-r1"])["ReadReplicaSourceDBInstanceIdentifier"] == green
    pairs = {d["SourceMember"]: d["TargetMember"].rsplit(":", 1)[-1] for d in deployment["SwitchoverDetails"]}
    assert pairs[arns[f"{name}-r1"]] == by_blue[f"{name}-r1"]

    endpoints = {n: describe(rds, n)["Endpoint"]["Address"] for n in arns}
    rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=ident, SwitchoverTimeout=60)
    settle(rds, ident, "SWITCHOVER_COMPLETED")
    live = {n: describe(rds, n) for n in arns}
    expect(live[f"{name}-r1"]["KmsKeyId"] == new_key_arn, "the switchover left the blue replicas under their names")
    assert live[name]["KmsKeyId"] == new_key_arn and live[f"{name}-r2"]["KmsKeyId"] == old_key
    assert {n: live[n]["Endpoint"]["Address"] for n in arns} == endpoints
    assert sorted(live[name]["ReadReplicaDBInstanceIdentifiers"]) == [f"{name}-r1", f"{name}-r2"]
    assert live[f"{name}-r1"]["ReadReplicaSourceDBInstanceIdentifier"] == name
    old = describe(rds, f"{name}-old1")
    assert old["KmsKeyId"] == old_key and sorted(old["ReadReplicaDBInstanceIdentifiers"]) == [f"{name}-r1-old1", f"{name}-r2-old1"]
    assert describe(rds, f"{name}-r1-old1")["KmsKeyId"] == old_key


@against_both("TargetResourceConfigurations is not checked: a repeated SourceArn or one outside the blue environment passes")
def test_target_configurations_are_checked(aws, rds, unique_name):
    kms = aws.client("kms", account=CUSTOMER)
    key = new_key(kms)["Arn"]
    name, stranger = unique_name("pg"), unique_name("pg")
    arns = instance_with_replicas(rds, name, key, replicas=1)
    other = instance_with_replicas(rds, stranger, key, replicas=0)
    for entries in ([arns[name], arns[name]], [arns[name], other[stranger]]):
        try:
            rds.create_blue_green_deployment(BlueGreenDeploymentName=unique_name("bg"), Source=arns[name],
                                             TargetResourceConfigurations=[{"SourceArn": a, "TargetKmsKeyId": key} for a in entries])
            refused = None
        except ClientError as e:
            refused = e.response["Error"]["Code"]
        expect(refused is not None, f"TargetResourceConfigurations {entries} accepted")
        assert refused == "InvalidParameterValue", refused


@against_both("DeleteBlueGreenDeployment accepts DeleteTarget after a completed switchover")
def test_delete_target_refused_after_switchover(aws, rds, unique_name):
    key = new_key(aws.client("kms", account=CUSTOMER))["Arn"]
    name = unique_name("pg")
    arns = instance_with_replicas(rds, name, key, replicas=0)
    ident = rds.create_blue_green_deployment(BlueGreenDeploymentName=unique_name("bg"),
                                             Source=arns[name])["BlueGreenDeployment"]["BlueGreenDeploymentIdentifier"]
    settle(rds, ident, "AVAILABLE")
    rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=ident)
    settle(rds, ident, "SWITCHOVER_COMPLETED")
    for delete_target in (True, False):  # any value: the option itself is refused
        try:
            rds.delete_blue_green_deployment(BlueGreenDeploymentIdentifier=ident, DeleteTarget=delete_target)
            code = None
        except ClientError as e:
            code = e.response["Error"]["Code"]
        expect(code is not None, f"DeleteTarget={delete_target} accepted after SWITCHOVER_COMPLETED")
        assert code == "InvalidBlueGreenDeploymentStateFault"
    # Without the option the deployment goes; both sides stay.
    rds.delete_blue_green_deployment(BlueGreenDeploymentIdentifier=ident)
    assert describe(rds, name) and describe(rds, f"{name}-old1")


@against_both("a renamed instance is available at once under its new name (no renaming / rebooting)")
def test_instance_rename_goes_through_renaming_and_rebooting(aws, rds, unique_name):
    key = new_key(aws.client("kms", account=CUSTOMER))["Arn"]
    name = unique_name("pg")
    instance_with_replicas(rds, name, key, replicas=1)
    rds.modify_db_instance(DBInstanceIdentifier=name, NewDBInstanceIdentifier=f"{name}-x", ApplyImmediately=True)
    try:
        rds.modify_db_instance(DBInstanceIdentifier=f"{name}-x", DeletionProtection=True, ApplyImmediately=True)
        refused = None
    except ClientError as e:
        refused = e.response["Error"]["Code"]
    seen = [describe(rds, f"{name}-x")["DBInstanceStatus"] for dummy in range(4)]
    expect(seen[0] == "renaming", f"statuses after the rename: {seen}")
    assert refused == "InvalidDBInstanceState"
    assert seen == ["renaming", "rebooting", "available", "available"]
    # The replica follows its renamed source.
    assert describe(rds, f"{name}-r1")["ReadReplicaSourceDBInstanceIdentifier"] == f"{name}-x"
    assert describe(rds, f"{name}-x")["ReadReplicaDBInstanceIdentifiers"] == [f"{name}-r1"]
    rds.modify_db_instance(DBInstanceIdentifier=f"{name}-x", DeletionProtection=True, ApplyImmediately=True)


@against_both("SwitchoverGlobalCluster is missing (no FailoverState)")
def test_global_switchover_shows_failover_state(aws, rds, unique_name):
    global_id = unique_name("g")
    rds.create_global_cluster(GlobalClusterIdentifier=global_id, Engine="aurora-postgresql", StorageEncrypted=True)
    primary = rds.create_db_cluster(DBClusterIdentifier=unique_name("p"), GlobalClusterIdentifier=global_id,
                                    Engine="aurora-postgresql", MasterUsername="mmuser", MasterUserPassword=PASSWORD)["DBCluster"]
    west = aws.client("rds", account=PROVIDER, region=OTHER_REGION)
    secondary = west.create_db_cluster(DBClusterIdentifier=unique_name("s"), GlobalClusterIdentifier=global_id,
                                       Engine="aurora-postgresql")["DBCluster"]
    try:
        rds.switchover_global_cluster(GlobalClusterIdentifier=global_id, TargetDbClusterIdentifier=secondary["DBClusterArn"])
    except Exception as e:  # plain moto answers HTTP 500 for an action it does not know  # pylint: disable=broad-except
        raise EmulatorGap(f"SwitchoverGlobalCluster: {e}") from None

    def look():
        found = rds.describe_global_clusters(GlobalClusterIdentifier=global_id)["GlobalClusters"][0]
        writer = next(m["DBClusterArn"] for m in found["GlobalClusterMembers"] if m["IsWriter"])
        return (found.get("FailoverState") or {}).get("Status"), writer

    first = look()
    expect(first[0] == "pending", f"no FailoverState after SwitchoverGlobalCluster: {first}")
    with pytest.raises(ClientError) as excinfo:
        west.remove_from_global_cluster(GlobalClusterIdentifier=global_id, DbClusterIdentifier=secondary["DBClusterArn"])
    assert error_of(excinfo)[0] == "InvalidGlobalClusterStateFault"
    with pytest.raises(ClientError) as excinfo:
        rds.switchover_global_cluster(GlobalClusterIdentifier=global_id, TargetDbClusterIdentifier=primary["DBClusterArn"])
    assert error_of(excinfo)[0] == "InvalidGlobalClusterStateFault"
    states = [first] + [look() for dummy in range(2)]
    # The promoted cluster is the writer before the operation is over: a wait on the writer alone stops too early.
    assert states == [("pending", primary["DBClusterArn"]), ("switching-over", secondary["DBClusterArn"]),
                      (None, secondary["DBClusterArn"])]
    assert not rds.describe_global_clusters(GlobalClusterIdentifier=global_id)["GlobalClusters"][0].get("FailoverState")
    rds.switchover_global_cluster(GlobalClusterIdentifier=global_id, TargetDbClusterIdentifier=primary["DBClusterArn"])


@against_both("green cluster members take the cluster's CopyTagsToSnapshot and log exports, and every cluster gets its own HostedZoneId")
def test_green_members_keep_their_settings_and_the_zone(aws, rds, unique_name):
    """CreateBlueGreenDeployment copies each blue resource's configuration (API_CreateBlueGreenDeployment.html, "Any
    resource that you don't include ... retains the same configuration as its counterpart in the blue environment");
    HostedZoneId is the Route 53 zone of the region's RDS endpoints (API_DBCluster.html), the same for every cluster."""
    name = unique_name("db")
    blue = rds.create_db_cluster(DBClusterIdentifier=name, Engine="aurora-postgresql", MasterUsername="mmuser",
                                 MasterUserPassword=PASSWORD, CopyTagsToSnapshot=True,
                                 EnableCloudwatchLogsExports=["postgresql"])["DBCluster"]
    rds.create_db_instance(DBInstanceIdentifier=f"{name}-1", DBClusterIdentifier=name, Engine="aurora-postgresql",
                           DBInstanceClass="db.r6g.large")
    blue_member = describe(rds, f"{name}-1")
    deployment = rds.create_blue_green_deployment(BlueGreenDeploymentName=unique_name("bg"),
                                                  Source=blue["DBClusterArn"])["BlueGreenDeployment"]
    green = rds.describe_db_clusters(DBClusterIdentifier=deployment["Target"].rsplit(":", 1)[-1])["DBClusters"][0]
    green_member = describe(rds, green["DBClusterMembers"][0]["DBInstanceIdentifier"])
    seen = {f: (blue_member.get(f), green_member.get(f)) for f in ("CopyTagsToSnapshot", "EnabledCloudwatchLogsExports")}
    expect(all(b == g for b, g in seen.values()), f"green member settings differ from the blue member's: {seen}")
    expect(green["HostedZoneId"] == blue["HostedZoneId"], f"HostedZoneId {blue['HostedZoneId']} -> {green['HostedZoneId']}")
