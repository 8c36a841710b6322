"""Auto Scaling launches on a customer's key need the provider's grant; grants are found again and not duplicated.

Each behaviour runs against the extended local AWS and against plain moto, where it must fail (support.against_both).
"""
from __future__ import annotations

import base64

import pytest

from tests.emulator.support import CUSTOMER, PROVIDER, REGION, against_both, new_key
from botocore.exceptions import ClientError

SLR = f"arn:aws:iam::{PROVIDER}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
OPERATIONS = ["Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
              "DescribeKey", "CreateGrant"]
RETIRING = f"arn:aws:iam::{PROVIDER}:root"


def _group(aws, unique_name, key_arn):
    ec2 = aws.client("ec2", account=PROVIDER, region=REGION)
    autoscaling = aws.client("autoscaling", account=PROVIDER, region=REGION)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    name = unique_name("nodes")
    ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={
        "ImageId": image, "InstanceType": "t3.micro", "UserData": base64.b64encode(b"#!/bin/sh\n").decode(),
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8, "Encrypted": True, "KmsKeyId": key_arn}}]})
    autoscaling.create_auto_scaling_group(AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateName": name, "Version": "$Latest"},
                                          MinSize=1, MaxSize=1, DesiredCapacity=1, AvailabilityZones=[f"{REGION}a"])
    return autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


@against_both("launches on another account's key without a grant for the Auto Scaling role", raises=AssertionError)
def test_launch_on_customer_key_needs_the_grant(aws, unique_name):
    key = new_key(aws.client("kms", account=CUSTOMER, region=REGION))["Arn"]
    group = _group(aws, unique_name, key)
    assert group["Instances"] == []  # the launch failed: Client error on launch
    aws.client("kms", account=PROVIDER, region=REGION).create_grant(
        KeyId=key, GranteePrincipal=SLR, Operations=OPERATIONS, Name="byok-asg", RetiringPrincipal=RETIRING)
    assert len(_group(aws, unique_name, key)["Instances"]) == 1


def test_same_account_key_needs_no_grant(aws_extended, unique_name):
    key = new_key(aws_extended.client("kms", account=PROVIDER, region=REGION))["Arn"]
    assert len(_group(aws_extended, unique_name, key)["Instances"]) == 1


@against_both("CreateGrant with the same Name and parameters creates a second grant", raises=ClientError)
def test_named_grant_is_idempotent(aws, unique_name):
    key = new_key(aws.client("kms", account=CUSTOMER, region=REGION))["Arn"]
    kms = aws.client("kms", account=PROVIDER, region=REGION)
    ids = {kms.create_grant(KeyId=key, GranteePrincipal=SLR, Operations=OPERATIONS, Name="byok-asg",
                            RetiringPrincipal=RETIRING)["GrantId"] for _attempt in range(2)}
    assert len(ids) == 1
    other = kms.create_grant(KeyId=key, GranteePrincipal=SLR, Operations=["Decrypt"], Name="byok-asg", RetiringPrincipal=RETIRING)
    assert other["GrantId"] not in ids  # other parameters: another grant


@against_both("ListRetirableGrants only sees the caller's own keys", raises=ClientError)
def test_retirable_grants_include_other_accounts_keys(aws, unique_name):
    key = new_key(aws.client("kms", account=CUSTOMER, region=REGION))["Arn"]
    kms = aws.client("kms", account=PROVIDER, region=REGION)
    name = unique_name("grant")
    grant = kms.create_grant(KeyId=key, GranteePrincipal=SLR, Operations=OPERATIONS, Name=name, RetiringPrincipal=RETIRING)["GrantId"]
    found = [g for g in kms.list_retirable_grants(RetiringPrincipal=RETIRING)["Grants"] if g["Name"] == name]
    assert [(g["GrantId"], g["KeyId"]) for g in found] == [(grant, key)]


@pytest.fixture
def aws_extended(local_aws):
    return local_aws
