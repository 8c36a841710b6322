"""RDS behaviours rds_reencrypt relies on: renames, Blue/Green switchover, global databases, snapshots, waits.

- Renaming a cluster (ModifyDBCluster NewDBClusterIdentifier) moves its instances with it and is refused onto an
  existing name (DBClusterAlreadyExistsFault); CreateDBCluster onto an existing name is refused too.
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBCluster.html (Errors)
- Blue/Green with TargetResourceConfigurations[].TargetKmsKeyId: the green cluster and its instances are on the
  target key, with the blue cluster's settings; the switchover renames blue to -old1 (cluster and instances) and
  green to the blue names. https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html
- A deployment stays PROVISIONING / SWITCHOVER_IN_PROGRESS for a few describes, so waiters really wait.
- A snapshot of an encrypted cluster keeps the cluster's key.
- Global databases: RemoveFromGlobalCluster works for a secondary in another region; SwitchoverGlobalCluster.
"""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from .support import CUSTOMER, DID_NOT_RAISE, OTHER_REGION, PROVIDER, against_both, error_of, new_key

CLUSTER = {"Engine": "aurora-postgresql", "MasterUsername": "mmuser", "MasterUserPassword": "not-a-secret-123"}


@pytest.fixture
def rds(aws):
    return aws.client("rds", account=PROVIDER)


def make_cluster(rds, name, key_arn=None, instances=2, **extra):
    params = dict(DBClusterIdentifier=name, **CLUSTER, **extra)
    if key_arn:
        params.update(StorageEncrypted=True, KmsKeyId=key_arn)
    cluster = rds.create_db_cluster(**params)["DBCluster"]
    for n in range(1, instances + 1):
        rds.create_db_instance(DBInstanceIdentifier=f"{name}-{n}", DBClusterIdentifier=name, Engine="aurora-postgresql",
                               DBInstanceClass="db.r6g.large", PromotionTier=n)
    return cluster


def members(rds, name):
    cluster = rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]
    return sorted(m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"])


def instance_cluster(rds, name):
    return rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["DBClusterIdentifier"]


@against_both("a renamed cluster's instances stay under the old name", raises=AssertionError)
def test_rename_moves_instances(rds, unique_name):
    name = unique_name("db")
    make_cluster(rds, name)
    rds.modify_db_cluster(DBClusterIdentifier=name, NewDBClusterIdentifier=f"{name}-old", ApplyImmediately=True)
    assert members(rds, f"{name}-old") == [f"{name}-1", f"{name}-2"]
    assert instance_cluster(rds, f"{name}-1") == f"{name}-old"
    # A new cluster under the freed name starts empty.
    rds.create_db_cluster(DBClusterIdentifier=name, **CLUSTER)
    assert members(rds, name) == []


@against_both("a rename onto an existing cluster silently replaces it", raises=DID_NOT_RAISE)
def test_rename_onto_existing_name_is_refused(rds, unique_name):
    first, second = unique_name("db"), unique_name("db")
    make_cluster(rds, first, instances=1)
    make_cluster(rds, second, instances=1)
    with pytest.raises(ClientError) as excinfo:
        rds.modify_db_cluster(DBClusterIdentifier=first, NewDBClusterIdentifier=second, ApplyImmediately=True)
    assert error_of(excinfo)[0] == "DBClusterAlreadyExistsFault"
    assert members(rds, first) == [f"{first}-1"] and members(rds, second) == [f"{second}-1"]


@against_both("CreateDBCluster onto an existing name silently replaces it", raises=AssertionError)
def test_create_onto_existing_name_is_refused(rds, unique_name):
    name = unique_name("db")
    make_cluster(rds, name, instances=1)
    with pytest.raises(ClientError) as excinfo:
        rds.create_db_cluster(DBClusterIdentifier=name, **CLUSTER)
    assert error_of(excinfo)[0] == "DBClusterAlreadyExistsFault"


def test_snapshot_of_encrypted_cluster_keeps_key(local_aws, unique_name):
    """Plain moto gets this right too; a guard, since the snapshot cutover depends on it."""
    rds = local_aws.client("rds", account=PROVIDER)
    key = new_key(local_aws.client("kms", account=CUSTOMER))["Arn"]
    name = unique_name("db")
    make_cluster(rds, name, key_arn=key, instances=1)
    snapshot = rds.create_db_cluster_snapshot(DBClusterIdentifier=name, DBClusterSnapshotIdentifier=f"{name}-s")["DBClusterSnapshot"]
    assert (snapshot["StorageEncrypted"], snapshot["KmsKeyId"]) == (True, key)
    listed = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=f"{name}-s")["DBClusterSnapshots"][0]
    assert listed["KmsKeyId"] == key


def wait_status(rds, identifier, wanted, limit=20):
    seen = []
    for dummy in range(limit):
        status = rds.describe_blue_green_deployments(BlueGreenDeploymentIdentifier=identifier)["BlueGreenDeployments"][0]["Status"]
        seen.append(status)
        if status == wanted:
            return seen
    raise AssertionError(seen)


@against_both("green ignores TargetKmsKeyId and the subnet group; switchover leaves the instances' names", raises=AssertionError)
def test_blue_green_switchover_on_target_key(aws, rds, unique_name):
    kms = aws.client("kms", account=CUSTOMER)
    old_key, new_key_arn = new_key(kms)["Arn"], new_key(kms)["Arn"]
    subnets = [s["SubnetId"] for s in aws.client("ec2", account=PROVIDER).describe_subnets()["Subnets"]][:2]
    group = unique_name("sng")
    rds.create_db_subnet_group(DBSubnetGroupName=group, DBSubnetGroupDescription="t", SubnetIds=subnets)
    name = unique_name("db")
    blue = make_cluster(rds, name, key_arn=old_key, DBSubnetGroupName=group, EnableIAMDatabaseAuthentication=True)
    deployment = rds.create_blue_green_deployment(
        BlueGreenDeploymentName=unique_name("bg"), Source=blue["DBClusterArn"],
        TargetResourceConfigurations=[{"SourceArn": blue["DBClusterArn"], "TargetKmsKeyId": new_key_arn}])["BlueGreenDeployment"]
    ident = deployment["BlueGreenDeploymentIdentifier"]
    seen = wait_status(rds, ident, "AVAILABLE")
    assert seen[0] == "PROVISIONING"
    green = rds.describe_db_clusters(DBClusterIdentifier=deployment["Target"].rsplit(":", 1)[-1])["DBClusters"][0]
    assert (green["KmsKeyId"], green["DBSubnetGroup"], green["IAMDatabaseAuthenticationEnabled"]) == (new_key_arn, group, True)
    for member in green["DBClusterMembers"]:
        assert rds.describe_db_instances(DBInstanceIdentifier=member["DBInstanceIdentifier"])["DBInstances"][0]["KmsKeyId"] == new_key_arn

    rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=ident, SwitchoverTimeout=60)
    wait_status(rds, ident, "SWITCHOVER_COMPLETED")
    live = rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]
    assert live["KmsKeyId"] == new_key_arn
    assert members(rds, name) == [f"{name}-1", f"{name}-2"]
    assert members(rds, f"{name}-old1") == [f"{name}-1-old1", f"{name}-2-old1"]
    assert rds.describe_db_clusters(DBClusterIdentifier=f"{name}-old1")["DBClusters"][0]["KmsKeyId"] == old_key
    rds.delete_blue_green_deployment(BlueGreenDeploymentIdentifier=ident)
    assert members(rds, f"{name}-old1") == [f"{name}-1-old1", f"{name}-2-old1"]


@against_both("RemoveFromGlobalCluster ignores a secondary in another region; SwitchoverGlobalCluster is missing", raises=AssertionError)
def test_global_cluster_remove_and_switchover(aws, rds, unique_name):
    global_id = unique_name("g")
    rds.create_global_cluster(GlobalClusterIdentifier=global_id, Engine="aurora-postgresql", StorageEncrypted=True)
    primary = rds.create_db_cluster(DBClusterIdentifier=unique_name("p"), GlobalClusterIdentifier=global_id, **CLUSTER)["DBCluster"]
    west = aws.client("rds", account=PROVIDER, region=OTHER_REGION)
    first = west.create_db_cluster(DBClusterIdentifier=unique_name("s"), GlobalClusterIdentifier=global_id,
                                   Engine="aurora-postgresql")["DBCluster"]
    second = west.create_db_cluster(DBClusterIdentifier=unique_name("s"), GlobalClusterIdentifier=global_id,
                                    Engine="aurora-postgresql")["DBCluster"]

    def writers():
        found = rds.describe_global_clusters(GlobalClusterIdentifier=global_id)["GlobalClusters"][0]["GlobalClusterMembers"]
        return {m["DBClusterArn"]: m["IsWriter"] for m in found}

    west.remove_from_global_cluster(GlobalClusterIdentifier=global_id, DbClusterIdentifier=first["DBClusterArn"])
    assert set(writers()) == {primary["DBClusterArn"], second["DBClusterArn"]}
    rds.switchover_global_cluster(GlobalClusterIdentifier=global_id, TargetDbClusterIdentifier=second["DBClusterArn"])
    # In progress while FailoverState is shown (test_rds_replicas_and_states pins the states).
    for dummy in range(10):
        if not rds.describe_global_clusters(GlobalClusterIdentifier=global_id)["GlobalClusters"][0].get("FailoverState"):
            break
    assert writers() == {primary["DBClusterArn"]: False, second["DBClusterArn"]: True}


@against_both("every cluster gets a random endpoint hash, so a renamed cluster does not take over the endpoint", raises=AssertionError)
def test_renamed_cluster_takes_over_the_endpoint_name(rds, unique_name):
    name = unique_name("db")
    before = make_cluster(rds, name, instances=0)
    other = make_cluster(rds, f"{name}-x", instances=0)
    rds.modify_db_cluster(DBClusterIdentifier=name, NewDBClusterIdentifier=f"{name}-old", ApplyImmediately=True)
    rds.modify_db_cluster(DBClusterIdentifier=other["DBClusterIdentifier"], NewDBClusterIdentifier=name, ApplyImmediately=True)
    after = rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]
    assert (after["Endpoint"], after["ReaderEndpoint"]) == (before["Endpoint"], before["ReaderEndpoint"])


@against_both("a secondary cluster has no master user or database name", raises=AssertionError)
def test_secondary_takes_master_user_and_database_from_primary(aws, rds, unique_name):
    global_id = unique_name("g")
    rds.create_global_cluster(GlobalClusterIdentifier=global_id, Engine="aurora-postgresql", StorageEncrypted=True)
    rds.create_db_cluster(DBClusterIdentifier=unique_name("p"), GlobalClusterIdentifier=global_id, DatabaseName="mattermost", **CLUSTER)
    west = aws.client("rds", account=PROVIDER, region=OTHER_REGION)
    secondary = west.create_db_cluster(DBClusterIdentifier=unique_name("s"), GlobalClusterIdentifier=global_id,
                                       Engine="aurora-postgresql")["DBCluster"]
    assert (secondary.get("MasterUsername"), secondary.get("DatabaseName")) == ("mmuser", "mattermost")


@against_both("Performance Insights settings are dropped; a green instance loses its blue's settings", raises=AssertionError)
def test_performance_insights_kept_and_copied_to_green(aws, rds, unique_name):
    key = new_key(aws.client("kms", account=CUSTOMER))["Arn"]
    name = unique_name("pg")
    blue = rds.create_db_instance(DBInstanceIdentifier=name, Engine="postgres", DBInstanceClass="db.m6g.large",
                                  AllocatedStorage=20, MasterUsername="mmuser", MasterUserPassword="not-a-secret-123",
                                  StorageEncrypted=True, KmsKeyId=key, EnablePerformanceInsights=True,
                                  PerformanceInsightsRetentionPeriod=7, PreferredMaintenanceWindow="sun:06:00-sun:07:00")["DBInstance"]
    described = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
    assert (described.get("PerformanceInsightsEnabled"), described.get("PerformanceInsightsRetentionPeriod")) == (True, 7)
    rds.modify_db_instance(DBInstanceIdentifier=name, PerformanceInsightsRetentionPeriod=31, ApplyImmediately=True)
    assert rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["PerformanceInsightsRetentionPeriod"] == 31
    deployment = rds.create_blue_green_deployment(BlueGreenDeploymentName=unique_name("bg"), Source=blue["DBInstanceArn"])["BlueGreenDeployment"]
    green = rds.describe_db_instances(DBInstanceIdentifier=deployment["Target"].rsplit(":", 1)[-1])["DBInstances"][0]
    assert (green.get("PerformanceInsightsEnabled"), green["PreferredMaintenanceWindow"]) == (True, "sun:06:00-sun:07:00")


@against_both("DescribeGlobalClusters ignores GlobalClusterIdentifier and lists every global cluster", raises=AssertionError)
def test_describe_global_cluster_by_identifier(rds, unique_name):
    first, second = unique_name("g"), unique_name("g")
    for name in (first, second):
        rds.create_global_cluster(GlobalClusterIdentifier=name, Engine="aurora-postgresql")
    found = rds.describe_global_clusters(GlobalClusterIdentifier=second)["GlobalClusters"]
    assert [g["GlobalClusterIdentifier"] for g in found] == [second]
    with pytest.raises(ClientError) as excinfo:
        rds.describe_global_clusters(GlobalClusterIdentifier=unique_name("missing"))
    assert error_of(excinfo)[0] == "GlobalClusterNotFoundFault"
