"""RDS/Aurora KmsKeyId: a key that is missing or not Enabled fails with KMSKeyNotAccessibleFault (HTTP 400); the
key is stored as its ARN; a customer key is usable by key ARN or alias ARN from the provider account.

- https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBCluster.html (KmsKeyId; Errors:
  KMSKeyNotAccessibleFault "An error occurred accessing an AWS KMS key."), and the same for CreateDBInstance,
  RestoreDBClusterFromSnapshot, RestoreDBClusterToPointInTime, RestoreDBInstanceFromDBSnapshot,
  CopyDBClusterSnapshot, CopyDBSnapshot, CreateBlueGreenDeployment.
- https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Overview.Encryption.Keys.html ("To use a KMS key
  in a different AWS account, specify the key ARN or alias ARN"; without KmsKeyId, the aws/rds key).
"""
from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from .support import CUSTOMER, DID_NOT_RAISE, PROVIDER, against_both, error_of, key_in_state, new_key

NOT_VALIDATED = "RDS accepts any KmsKeyId string, or checks only that the key exists"
NOT_ACCESSIBLE = ("KMSKeyNotAccessibleFault", 400)
CLUSTER = {"Engine": "aurora-postgresql", "MasterUsername": "mmuser", "MasterUserPassword": "not-a-secret-123"}
INSTANCE = {"Engine": "postgres", "DBInstanceClass": "db.t3.medium", "AllocatedStorage": 20,
            "MasterUsername": "mmuser", "MasterUserPassword": "not-a-secret-123"}


def fault(excinfo):
    return error_of(excinfo)[:2]


@pytest.fixture
def rds(aws):
    return aws.client("rds", account=PROVIDER)


@pytest.fixture
def disabled_key(aws):
    return key_in_state(aws.client("kms", account=CUSTOMER), "Disabled")


def cluster_with_snapshot(rds, unique_name, key_arn):
    cluster = unique_name("db")
    rds.create_db_cluster(DBClusterIdentifier=cluster, StorageEncrypted=True, KmsKeyId=key_arn, **CLUSTER)
    rds.create_db_cluster_snapshot(DBClusterIdentifier=cluster, DBClusterSnapshotIdentifier=f"{cluster}-snap")
    return cluster, f"{cluster}-snap"


@pytest.mark.parametrize("state", ["missing", "Disabled", "PendingDeletion"])
@against_both(NOT_VALIDATED, raises=DID_NOT_RAISE)
def test_create_db_cluster_with_unusable_key_fails(aws, rds, unique_name, state):
    kms = aws.client("kms", account=CUSTOMER)
    key_arn = f"arn:aws:kms:us-east-1:{CUSTOMER}:key/{uuid.uuid4()}" if state == "missing" else key_in_state(kms, state)["Arn"]
    with pytest.raises(ClientError) as excinfo:
        rds.create_db_cluster(DBClusterIdentifier=unique_name("db"), StorageEncrypted=True, KmsKeyId=key_arn, **CLUSTER)
    assert fault(excinfo) == NOT_ACCESSIBLE


@against_both("KmsKeyId is stored as sent (alias, id), a bare customer key id is accepted, no key means a placeholder", raises=AssertionError)
def test_cluster_key_is_stored_as_arn(aws, rds, unique_name):
    kms = aws.client("kms", account=PROVIDER)
    own = new_key(kms)
    alias = f"alias/rds-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=own["KeyId"])
    customer = new_key(aws.client("kms", account=CUSTOMER))
    customer_kms = aws.client("kms", account=CUSTOMER)
    customer_alias = f"alias/byok-{uuid.uuid4().hex[:8]}"
    customer_kms.create_alias(AliasName=customer_alias, TargetKeyId=customer["KeyId"])
    cases = [(alias, own["Arn"]), (own["KeyId"], own["Arn"]), (customer["Arn"], customer["Arn"]),
             (f"arn:aws:kms:us-east-1:{CUSTOMER}:{customer_alias}", customer["Arn"])]
    for key_ref, expected in cases:
        cluster = rds.create_db_cluster(DBClusterIdentifier=unique_name("db"), StorageEncrypted=True, KmsKeyId=key_ref, **CLUSTER)["DBCluster"]
        assert cluster["KmsKeyId"] == expected
    default = rds.create_db_cluster(DBClusterIdentifier=unique_name("db"), StorageEncrypted=True, **CLUSTER)["DBCluster"]
    assert default["KmsKeyId"] == kms.describe_key(KeyId="alias/aws/rds")["KeyMetadata"]["Arn"]
    with pytest.raises(ClientError) as excinfo:  # resolves in the provider account
        rds.create_db_cluster(DBClusterIdentifier=unique_name("db"), StorageEncrypted=True, KmsKeyId=customer["KeyId"], **CLUSTER)
    assert fault(excinfo) == NOT_ACCESSIBLE


@against_both(NOT_VALIDATED, raises=DID_NOT_RAISE)
def test_create_db_instance_checks_and_normalizes_key(aws, rds, unique_name, disabled_key):
    with pytest.raises(ClientError) as excinfo:
        rds.create_db_instance(DBInstanceIdentifier=unique_name("pg"), StorageEncrypted=True, KmsKeyId=disabled_key["Arn"], **INSTANCE)
    assert fault(excinfo) == NOT_ACCESSIBLE
    kms = aws.client("kms", account=PROVIDER)
    key = new_key(kms)
    instance = rds.create_db_instance(DBInstanceIdentifier=unique_name("pg"), StorageEncrypted=True, KmsKeyId=key["KeyId"], **INSTANCE)["DBInstance"]
    assert instance["KmsKeyId"] == key["Arn"]


@against_both(NOT_VALIDATED, raises=DID_NOT_RAISE)
def test_cluster_restores_check_the_key(aws, rds, unique_name, disabled_key):
    cluster, snapshot = cluster_with_snapshot(rds, unique_name, new_key(aws.client("kms", account=CUSTOMER))["Arn"])
    with pytest.raises(ClientError) as from_snapshot:
        rds.restore_db_cluster_from_snapshot(DBClusterIdentifier=unique_name("restored"), SnapshotIdentifier=snapshot,
                                             Engine="aurora-postgresql", KmsKeyId=disabled_key["Arn"])
    with pytest.raises(ClientError) as to_point_in_time:
        rds.restore_db_cluster_to_point_in_time(DBClusterIdentifier=unique_name("pitr"), SourceDBClusterIdentifier=cluster,
                                                UseLatestRestorableTime=True, KmsKeyId=disabled_key["Arn"])
    assert fault(from_snapshot) == fault(to_point_in_time) == NOT_ACCESSIBLE


@against_both(NOT_VALIDATED, raises=DID_NOT_RAISE)
def test_restore_db_instance_inherits_and_checks_snapshot_key(aws, rds, unique_name):
    customer_kms = aws.client("kms", account=CUSTOMER)
    key = new_key(customer_kms)
    source = unique_name("pg")
    rds.create_db_instance(DBInstanceIdentifier=source, StorageEncrypted=True, KmsKeyId=key["Arn"], **INSTANCE)
    rds.create_db_snapshot(DBInstanceIdentifier=source, DBSnapshotIdentifier=f"{source}-snap")
    customer_kms.disable_key(KeyId=key["KeyId"])
    with pytest.raises(ClientError) as excinfo:
        rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier=unique_name("restored"), DBSnapshotIdentifier=f"{source}-snap")
    assert fault(excinfo) == NOT_ACCESSIBLE


@against_both("snapshot copies check only that the key exists, not that it is enabled", raises=DID_NOT_RAISE)
def test_snapshot_copies_need_an_enabled_key(aws, rds, unique_name, disabled_key):
    cluster_snapshot = cluster_with_snapshot(rds, unique_name, new_key(aws.client("kms", account=CUSTOMER))["Arn"])[1]
    with pytest.raises(ClientError) as cluster_copy:
        rds.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=cluster_snapshot, TargetDBClusterSnapshotIdentifier=unique_name("copy"),
                                     KmsKeyId=disabled_key["Arn"])
    instance = unique_name("pg")
    rds.create_db_instance(DBInstanceIdentifier=instance, **INSTANCE)
    rds.create_db_snapshot(DBInstanceIdentifier=instance, DBSnapshotIdentifier=f"{instance}-snap")
    with pytest.raises(ClientError) as instance_copy:
        rds.copy_db_snapshot(SourceDBSnapshotIdentifier=f"{instance}-snap", TargetDBSnapshotIdentifier=unique_name("copy"), KmsKeyId=disabled_key["Arn"])
    assert fault(cluster_copy) == fault(instance_copy) == NOT_ACCESSIBLE


@against_both("TargetResourceConfigurations[].TargetKmsKeyId is ignored", raises=DID_NOT_RAISE)
def test_blue_green_target_kms_key(aws, rds, unique_name, disabled_key):
    """https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_TargetResourceConfiguration.html"""
    customer_kms = aws.client("kms", account=CUSTOMER)
    old_key, new_key_arn = new_key(customer_kms)["Arn"], new_key(customer_kms)["Arn"]
    cluster = unique_name("db")
    blue = rds.create_db_cluster(DBClusterIdentifier=cluster, StorageEncrypted=True, KmsKeyId=old_key, **CLUSTER)["DBCluster"]
    rds.create_db_instance(DBInstanceIdentifier=f"{cluster}-1", DBClusterIdentifier=cluster, Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")

    with pytest.raises(ClientError) as excinfo:
        rds.create_blue_green_deployment(BlueGreenDeploymentName=unique_name("bg"), Source=blue["DBClusterArn"],
                                         TargetResourceConfigurations=[{"SourceArn": blue["DBClusterArn"], "TargetKmsKeyId": disabled_key["Arn"]}])
    assert fault(excinfo) == NOT_ACCESSIBLE

    deployment = rds.create_blue_green_deployment(BlueGreenDeploymentName=unique_name("bg"), Source=blue["DBClusterArn"],
                                                  TargetResourceConfigurations=[{"SourceArn": blue["DBClusterArn"], "TargetKmsKeyId": new_key_arn}])
    green_arn = deployment["BlueGreenDeployment"]["Target"]
    green = rds.describe_db_clusters(DBClusterIdentifier=green_arn.split(":")[-1])["DBClusters"][0]
    assert (green["StorageEncrypted"], green["KmsKeyId"]) == (True, new_key_arn)
    assert rds.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]["KmsKeyId"] == old_key
