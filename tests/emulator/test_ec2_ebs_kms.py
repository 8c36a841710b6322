"""EBS encryption keys: checked (asynchronously in AWS), stored as ARNs, kept along snapshot chains; instances
from launch templates get exactly the template's volumes.

- EC2 API reference, CreateVolume / CopySnapshot ``KmsKeyId``: "Amazon Web Services authenticates the KMS key
  asynchronously. Therefore, if you specify an ID, alias, or ARN that is not valid, the action can appear to
  complete, but eventually fails." The createVolume event then has result "failed"
  (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-cloud-watch-events.html).
- Instances whose volumes cannot use their key terminate with ``Client.InvalidKMSKey.InvalidState``
  (https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html, kops#11545).
- https://docs.aws.amazon.com/ebs/latest/userguide/how-ebs-encryption-works.html (snapshots of encrypted volumes,
  and volumes from them, use the same key unless another is given).
- https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-launch-templates.html (the template's block device
  mappings and tag specifications apply to the launched instance and its volumes).
"""
from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from .support import CUSTOMER, PROVIDER, STATE_ERRORS, against_both, error_of, key_in_state, new_key

AZ = "us-east-1a"
NOT_VALIDATED = "EBS accepts any KmsKeyId: missing, disabled or pending deletion"


def unusable_key(aws, state):
    if state == "missing":
        return f"arn:aws:kms:us-east-1:{CUSTOMER}:key/{uuid.uuid4()}"
    return key_in_state(aws.client("kms", account=CUSTOMER), state)["Arn"]


_known_amis: dict[str, str] = {}


def known_ami(ec2):
    """An AMI moto knows, with root device /dev/sda1 (looked up once per server: moto holds ~1300 AMIs)."""
    endpoint = ec2.meta.endpoint_url
    if endpoint not in _known_amis:
        images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "root-device-name", "Values": ["/dev/sda1"]}])["Images"]
        _known_amis[endpoint] = images[0]["ImageId"]
    return _known_amis[endpoint]


def instance_volumes(ec2, instance_id):
    """Every volume attached to the instance, sorted by device (a list: two volumes may claim one device)."""
    volumes = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])["Volumes"]
    return sorted(volumes, key=lambda v: v["Attachments"][0]["Device"])


def summary(volumes):
    return [(v["Attachments"][0]["Device"], v["Size"], v["Encrypted"], v.get("KmsKeyId")) for v in volumes]


def ebs(device, size, key=None):
    mapping = {"DeviceName": device, "Ebs": {"VolumeSize": size, "VolumeType": "gp3", "DeleteOnTermination": True}}
    if key:
        mapping["Ebs"].update(Encrypted=True, KmsKeyId=key)
    return mapping


@pytest.mark.parametrize("state", ["missing", *sorted(STATE_ERRORS)])
@against_both(NOT_VALIDATED, raises=AssertionError)
def test_create_volume_with_unusable_key_fails(aws, state):
    ec2 = aws.client("ec2", account=PROVIDER)
    volume = ec2.create_volume(AvailabilityZone=AZ, Size=8, Encrypted=True, KmsKeyId=unusable_key(aws, state))
    assert volume["State"] == "creating"
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_volumes(VolumeIds=[volume["VolumeId"]])
    assert error_of(excinfo)[0] == "InvalidVolume.NotFound"


@against_both("KmsKeyId is stored as sent and a bare key id is not looked up", raises=AssertionError)
def test_volume_key_is_stored_as_arn(aws):
    ec2, kms = aws.client("ec2", account=PROVIDER), aws.client("kms", account=PROVIDER)
    own = new_key(kms)
    alias = f"alias/ebs-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=own["KeyId"])
    customer = new_key(aws.client("kms", account=CUSTOMER))
    for key_ref, expected in ((own["KeyId"], own["Arn"]), (alias, own["Arn"]), (customer["Arn"], customer["Arn"])):
        volume = ec2.create_volume(AvailabilityZone=AZ, Size=8, Encrypted=True, KmsKeyId=key_ref)
        assert volume["KmsKeyId"] == expected
    # The customer's bare key id resolves in the provider account, where it does not exist.
    failed = ec2.create_volume(AvailabilityZone=AZ, Size=8, Encrypted=True, KmsKeyId=customer["KeyId"])
    assert not ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [failed["VolumeId"]]}])["Volumes"]


@against_both("snapshots of encrypted volumes, and volumes from them, lose the KMS key", raises=KeyError)
def test_snapshot_chain_keeps_the_key(aws):
    ec2 = aws.client("ec2", account=PROVIDER)
    key = new_key(aws.client("kms", account=CUSTOMER))
    volume = ec2.create_volume(AvailabilityZone=AZ, Size=8, Encrypted=True, KmsKeyId=key["Arn"])
    snapshot = ec2.create_snapshot(VolumeId=volume["VolumeId"])
    assert snapshot["KmsKeyId"] == key["Arn"]
    restored = ec2.create_volume(AvailabilityZone=AZ, SnapshotId=snapshot["SnapshotId"])
    assert (restored["Encrypted"], restored["KmsKeyId"]) == (True, key["Arn"])


@against_both(NOT_VALIDATED, raises=AssertionError)
def test_copy_snapshot_with_unusable_key_ends_in_error(aws):
    ec2 = aws.client("ec2", account=PROVIDER)
    snapshot = ec2.create_snapshot(VolumeId=ec2.create_volume(AvailabilityZone=AZ, Size=8)["VolumeId"])
    copy = ec2.copy_snapshot(SourceSnapshotId=snapshot["SnapshotId"], SourceRegion="us-east-1", Encrypted=True, KmsKeyId=unusable_key(aws, "Disabled"))
    assert ec2.describe_snapshots(SnapshotIds=[copy["SnapshotId"]])["Snapshots"][0]["State"] == "error"

    kms = aws.client("kms", account=PROVIDER)
    key = new_key(kms)
    alias = f"alias/snap-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    good = ec2.copy_snapshot(SourceSnapshotId=snapshot["SnapshotId"], SourceRegion="us-east-1", Encrypted=True, KmsKeyId=alias)
    copied = ec2.describe_snapshots(SnapshotIds=[good["SnapshotId"]])["Snapshots"][0]
    assert (copied["State"], copied["KmsKeyId"]) == ("completed", key["Arn"])


@against_both("instances launch with volumes under unusable keys", raises=AssertionError)
def test_run_instances_with_unusable_key_terminates(aws):
    ec2 = aws.client("ec2", account=PROVIDER)
    reservation = ec2.run_instances(ImageId=known_ami(ec2), MinCount=1, MaxCount=1, InstanceType="t3.medium",
                                    BlockDeviceMappings=[ebs("/dev/sda1", 20, unusable_key(aws, "PendingDeletion"))])
    instance = ec2.describe_instances(InstanceIds=[reservation["Instances"][0]["InstanceId"]])["Reservations"][0]["Instances"][0]
    assert instance["State"]["Name"] == "terminated"
    assert instance["StateReason"]["Code"] == "Client.InvalidKMSKey.InvalidState"


@pytest.mark.parametrize("ami, root", [("known", "/dev/sda1"), ("ami-0123456789abcdef0", "/dev/xvda")])
@against_both("moto adds its own unencrypted 8 GiB root volume and drops the template's volume tags", raises=AssertionError)
def test_launch_template_volumes_are_exactly_the_templates(aws, unique_name, ami, root):
    ec2 = aws.client("ec2", account=PROVIDER)
    key = new_key(aws.client("kms", account=CUSTOMER))
    image_id = known_ami(ec2) if ami == "known" else ami
    template = ec2.create_launch_template(LaunchTemplateName=unique_name("nodes"), LaunchTemplateData={
        "ImageId": image_id, "InstanceType": "t3.medium",
        "BlockDeviceMappings": [ebs(root, 64, key["Arn"]), ebs("/dev/sdf", 20, key["Arn"])],
        "TagSpecifications": [{"ResourceType": "volume", "Tags": [{"Key": "KubernetesCluster", "Value": "byok.k8s.local"}]}],
    })["LaunchTemplate"]
    instance = ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"]})["Instances"][0]

    volumes = instance_volumes(ec2, instance["InstanceId"])
    assert summary(volumes) == sorted([(root, 64, True, key["Arn"]), ("/dev/sdf", 20, True, key["Arn"])])
    assert all({"Key": "KubernetesCluster", "Value": "byok.k8s.local"} in v.get("Tags", []) for v in volumes)


@against_both("ASG instances get an extra unencrypted root volume and untagged volumes", raises=ClientError)
def test_auto_scaling_instances_get_template_volumes(aws, unique_name):
    ec2, autoscaling = aws.client("ec2", account=PROVIDER), aws.client("autoscaling", account=PROVIDER)
    key = new_key(aws.client("kms", account=CUSTOMER))
    # Auto Scaling uses another account's key only through a grant for its service-linked role, made from this account.
    aws.client("kms", account=PROVIDER).create_grant(
        KeyId=key["Arn"], GranteePrincipal=f"arn:aws:iam::{PROVIDER}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
        Operations=["Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
                    "DescribeKey", "CreateGrant"])
    template = ec2.create_launch_template(LaunchTemplateName=unique_name("asg"), LaunchTemplateData={
        "ImageId": known_ami(ec2), "InstanceType": "t3.medium", "BlockDeviceMappings": [ebs("/dev/sda1", 48, key["Arn"])],
        "TagSpecifications": [{"ResourceType": "volume", "Tags": [{"Key": "k8s.io/role/node", "Value": "1"}]}],
    })["LaunchTemplate"]
    group = unique_name("nodes")
    autoscaling.create_auto_scaling_group(AutoScalingGroupName=group, MinSize=2, MaxSize=2, DesiredCapacity=2, AvailabilityZones=[AZ],
                                          LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "$Latest"})
    instances = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"]
    assert len(instances) == 2
    for instance in instances:
        volumes = instance_volumes(ec2, instance["InstanceId"])
        assert summary(volumes) == [("/dev/sda1", 48, True, key["Arn"])]
        assert {"Key": "k8s.io/role/node", "Value": "1"} in volumes[0].get("Tags", [])


@against_both("ASG instances launch with volumes under disabled keys", raises=AssertionError)
def test_auto_scaling_launch_with_disabled_key_fails(aws, unique_name):
    ec2, autoscaling = aws.client("ec2", account=PROVIDER), aws.client("autoscaling", account=PROVIDER)
    template = ec2.create_launch_template(LaunchTemplateName=unique_name("asg"), LaunchTemplateData={
        "ImageId": known_ami(ec2), "InstanceType": "t3.medium", "BlockDeviceMappings": [ebs("/dev/sda1", 48, unusable_key(aws, "Disabled"))]})["LaunchTemplate"]
    group = unique_name("nodes")
    autoscaling.create_auto_scaling_group(AutoScalingGroupName=group, MinSize=1, MaxSize=1, DesiredCapacity=1, AvailabilityZones=[AZ],
                                          LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"]})
    assert autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"] == []
    launched = ec2.describe_instances(Filters=[{"Name": "tag:aws:autoscaling:groupName", "Values": [group]}])["Reservations"]
    reasons = {i["StateReason"]["Code"] for r in launched for i in r["Instances"]}
    assert reasons == {"Client.InvalidKMSKey.InvalidState"}


def test_volume_not_from_a_snapshot_reports_an_empty_snapshot_id(local_aws):
    """DescribeVolumes returns SnapshotId "" for a volume not created from a snapshot (EC2 API reference, Volume)."""
    ec2 = local_aws.client("ec2", account="222222222222", region="us-east-1")
    vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    assert ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]["SnapshotId"] == ""


def test_launch_templates_are_paged_not_cut(local_aws):
    """DescribeLaunchTemplates returns every template across pages (NextToken); plain moto stops at 15."""
    ec2 = local_aws.client("ec2", account="222222222222", region="eu-west-1")
    names = {f"paging-{uuid.uuid4().hex[:8]}" for i in range(20)}
    for name in names:
        ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={"InstanceType": "t3.micro"})
    seen = {t["LaunchTemplateName"] for page in ec2.get_paginator("describe_launch_templates").paginate(PaginationConfig={"PageSize": 7})
            for t in page["LaunchTemplates"]}
    assert names <= seen
    assert names <= {t["LaunchTemplateName"] for t in ec2.describe_launch_templates()["LaunchTemplates"]}
