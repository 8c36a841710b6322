"""RDS automated backups of a deleted Aurora cluster (extension tests/local_aws/extensions/rds_backups.py).

- DeleteDBCluster removes the cluster's automated backups unless DeleteAutomatedBackups=false ("The default is to
  remove automated backups immediately after the DB cluster is deleted",
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBCluster.html).
- DescribeDBClusterAutomatedBackups lists a deleted cluster's retained backup (Status retained, its key and
  resource id); DeleteDBClusterAutomatedBackup deletes it
  (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBClusterAutomatedBackups.html,
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBClusterAutomatedBackup.html).
- A cluster snapshot carries the resource id of the cluster it was taken of (API_DBClusterSnapshot.html).
"""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from .support import PROVIDER, error_of, new_key

CLUSTER = {"Engine": "aurora-postgresql", "MasterUsername": "mmuser", "MasterUserPassword": "not-a-secret-123"}


def plain_fails(gap, raises):
    plain = pytest.param("plain", marks=pytest.mark.xfail(strict=True, raises=raises, reason=f"plain moto: {gap}"))
    return pytest.mark.parametrize("aws", ["extended", plain], indirect=True)


@pytest.fixture
def rds(aws):
    return aws.client("rds", account=PROVIDER)


def cluster(rds, aws, name):
    key = new_key(aws.client("kms", account=PROVIDER))["Arn"]
    return rds.create_db_cluster(DBClusterIdentifier=name, StorageEncrypted=True, KmsKeyId=key, BackupRetentionPeriod=7,
                                 **CLUSTER)["DBCluster"]


def automated(rds, name):
    return [s for s in rds.describe_db_cluster_snapshots(DBClusterIdentifier=name)["DBClusterSnapshots"]
            if s["SnapshotType"] == "automated"]


@plain_fails("a deleted cluster's automated snapshots stay forever", AssertionError)
def test_delete_removes_automated_backups_by_default(rds, aws, unique_name):
    name = unique_name("db")
    cluster(rds, aws, name)
    assert automated(rds, name)
    rds.delete_db_cluster(DBClusterIdentifier=name, SkipFinalSnapshot=True)
    assert automated(rds, name) == []


@plain_fails("DescribeDBClusterAutomatedBackups is not implemented (HTTP 500)", ResponseParserError)
def test_retained_backup_listed_and_deleted(rds, aws, unique_name):
    name = unique_name("db")
    created = cluster(rds, aws, name)
    rds.delete_db_cluster(DBClusterIdentifier=name, SkipFinalSnapshot=True, DeleteAutomatedBackups=False)
    [backup] = rds.describe_db_cluster_automated_backups(DBClusterIdentifier=name)["DBClusterAutomatedBackups"]
    assert backup["Status"] == "retained"
    assert backup["DbClusterResourceId"] == created["DbClusterResourceId"]
    assert backup["KmsKeyId"] == created["KmsKeyId"] and backup["StorageEncrypted"] is True
    assert backup["BackupRetentionPeriod"] == 7
    rds.delete_db_cluster_automated_backup(DbClusterResourceId=created["DbClusterResourceId"])
    assert rds.describe_db_cluster_automated_backups(DBClusterIdentifier=name)["DBClusterAutomatedBackups"] == []
    with pytest.raises(ClientError) as e:
        rds.delete_db_cluster_automated_backup(DbClusterResourceId=created["DbClusterResourceId"])
    assert error_of(e)[:2] == ("DBClusterAutomatedBackupNotFoundFault", 404)


@plain_fails("a cluster snapshot has no DbClusterResourceId", KeyError)
def test_snapshot_names_the_cluster_resource_id_through_a_rename(rds, aws, unique_name):
    name = unique_name("db")
    created = cluster(rds, aws, name)
    rds.modify_db_cluster(DBClusterIdentifier=name, NewDBClusterIdentifier=f"{name}-old1", ApplyImmediately=True)
    [snap] = automated(rds, name)
    assert snap["DbClusterResourceId"] == created["DbClusterResourceId"]
    # Deleting the renamed cluster takes the automated snapshot taken under its first name with it.
    rds.delete_db_cluster(DBClusterIdentifier=f"{name}-old1", SkipFinalSnapshot=True)
    assert automated(rds, name) == []
