"""A revoked key (extension tests/local_aws/extensions/revocation.py, and the reads of s3.py and ec2.py).

KMS developer guide, "How unusable KMS keys affect data keys": data keys already in use keep working until the
service needs the KMS key again - here, when an object is read, an instance starts, a volume is made from a snapshot,
or RDS checks its key (re:Post knowledge-center/rds-aurora-inaccessible-state: inaccessible-encryption-credentials-
recoverable, recovered by enabling the key and starting the database).
"""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from .support import PROVIDER, error_of, new_key

AZ = "us-east-1a"
CLUSTER = {"Engine": "aurora-postgresql", "MasterUsername": "mmuser", "MasterUserPassword": "not-a-secret-123"}


# The gap shows as a failed assertion, or as pytest.raises' "DID NOT RAISE".
GAP = (AssertionError, pytest.fail.Exception)


def plain_fails(gap, raises=GAP):
    plain = pytest.param("plain", marks=pytest.mark.xfail(strict=True, raises=raises, reason=f"plain moto: {gap}"))
    return pytest.mark.parametrize("aws", ["extended", plain], indirect=True)


def customer_key(aws):
    """A key the customer would revoke (in the resources' account here: the behaviour does not depend on where the
    key lives, and plain moto has no cross-account keys to compare with)."""
    kms = aws.client("kms", account=PROVIDER)
    return Revoker(kms), new_key(kms)["Arn"]


class Revoker:
    """Disables and enables by key id (plain moto answers 500 to DisableKey with a key ARN)."""

    def __init__(self, kms):
        self.kms = kms

    def disable_key(self, KeyId):  # noqa: N803  pylint: disable=invalid-name
        self.kms.disable_key(KeyId=KeyId.rsplit("/", 1)[1])

    def enable_key(self, KeyId):  # noqa: N803  pylint: disable=invalid-name
        self.kms.enable_key(KeyId=KeyId.rsplit("/", 1)[1])


def ami(ec2):
    return ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]


@plain_fails("a stopped instance whose volume key is disabled starts anyway")
def test_instance_with_revoked_volume_key_does_not_start(aws):
    kms, key = customer_key(aws)
    ec2 = aws.client("ec2", account=PROVIDER)
    instance = ec2.run_instances(ImageId=ami(ec2), MinCount=1, MaxCount=1, Placement={"AvailabilityZone": AZ}, BlockDeviceMappings=[
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8, "Encrypted": True, "KmsKeyId": key}}])["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[instance])
    kms.disable_key(KeyId=key)
    ec2.start_instances(InstanceIds=[instance])
    found = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    assert found["State"]["Name"] == "stopped"
    assert found["StateReason"]["Code"] == "Client.InternalError"
    kms.enable_key(KeyId=key)
    ec2.start_instances(InstanceIds=[instance])
    assert ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"


@plain_fails("a volume is made from a snapshot whose key is disabled")
def test_no_volume_from_a_snapshot_under_a_revoked_key(aws):
    kms, key = customer_key(aws)
    ec2 = aws.client("ec2", account=PROVIDER)
    volume = ec2.create_volume(AvailabilityZone=AZ, Size=8, Encrypted=True, KmsKeyId=key)["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    kms.disable_key(KeyId=key)
    made = ec2.create_volume(AvailabilityZone=AZ, SnapshotId=snapshot)
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_volumes(VolumeIds=[made["VolumeId"]])
    assert error_of(excinfo)[0] == "InvalidVolume.NotFound"


@plain_fails("an object under a disabled key is read")
def test_s3_read_under_a_revoked_key_fails_with_kms_error(aws, unique_name):
    kms, key = customer_key(aws)
    s3 = aws.client("s3", account=PROVIDER)
    bucket = unique_name("drill")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    kms.disable_key(KeyId=key)
    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket=bucket, Key="k")
    assert error_of(excinfo)[:2] == ("KMS.DisabledException", 400)
    kms.enable_key(KeyId=key)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


@plain_fails("a database whose key is disabled stays available")
def test_database_reaches_inaccessible_encryption_credentials_and_recovers(aws, unique_name):
    kms, key = customer_key(aws)
    rds = aws.client("rds", account=PROVIDER)
    name = unique_name("db")
    rds.create_db_cluster(DBClusterIdentifier=name, StorageEncrypted=True, KmsKeyId=key, **CLUSTER)
    rds.create_db_instance(DBInstanceIdentifier=f"{name}-1", DBClusterIdentifier=name, Engine="aurora-postgresql",
                           DBInstanceClass="db.r6g.large")
    kms.disable_key(KeyId=key)
    assert rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]["Status"] == "inaccessible-encryption-credentials-recoverable"
    assert rds.describe_db_instances(DBInstanceIdentifier=f"{name}-1")["DBInstances"][0]["DBInstanceStatus"] == \
        "inaccessible-encryption-credentials-recoverable"
    with pytest.raises(ClientError) as excinfo:
        rds.start_db_cluster(DBClusterIdentifier=name)
    assert error_of(excinfo)[0] == "KMSKeyNotAccessibleFault"
    kms.enable_key(KeyId=key)
    # Enabling the key is not enough: the database is started again (re:Post rds-aurora-inaccessible-state).
    assert rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]["Status"] == "inaccessible-encryption-credentials-recoverable"
    rds.start_db_cluster(DBClusterIdentifier=name)
    assert rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]["Status"] == "available"
    assert rds.describe_db_instances(DBInstanceIdentifier=f"{name}-1")["DBInstances"][0]["DBInstanceStatus"] == "available"
