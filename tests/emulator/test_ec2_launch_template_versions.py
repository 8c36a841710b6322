"""CreateLaunchTemplateVersion with SourceVersion inherits the source version's parameters.

EC2 API reference, CreateLaunchTemplateVersion "SourceVersion": "If you specify this parameter, the new version
inherits the launch parameters from the source version. If you specify additional launch parameters for the new
version, they overwrite any corresponding launch parameters inherited from the source version." Plain moto keeps only
the given parameters, and a UserData given to CreateLaunchTemplateVersion makes its Auto Scaling launches fail.
"""
from __future__ import annotations

import base64

import pytest
from botocore.parsers import ResponseParserError

from .support import PROVIDER


def against_both(plain_moto_gap: str, raises: type[BaseException]) -> pytest.MarkDecorator:
    """Extended and plain moto; on plain moto the test fails with exactly ``raises`` (the gap named)."""
    plain = pytest.param("plain", marks=pytest.mark.xfail(strict=True, raises=raises, reason=f"plain moto: {plain_moto_gap}"))
    return pytest.mark.parametrize("aws", ["extended", plain], indirect=True)


USER_DATA = base64.b64encode(b"#!/bin/bash\\necho node\\n").decode()
KEY = "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-0000000000aa"
MAPPINGS = [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 64, "VolumeType": "gp3", "Encrypted": True}}]


def template(ec2, name):
    ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={
        "ImageId": "ami-12c6146b", "InstanceType": "m5.large", "UserData": USER_DATA, "BlockDeviceMappings": MAPPINGS,
        "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1}})


def version(ec2, name, number):
    return ec2.describe_launch_template_versions(LaunchTemplateName=name, Versions=[str(number)])["LaunchTemplateVersions"][0]["LaunchTemplateData"]


@against_both("the new version holds only the given parameters (SourceVersion ignored)", AssertionError)
def test_source_version_parameters_are_inherited_and_given_ones_win(aws, unique_name):
    ec2 = aws.client("ec2", account=PROVIDER)
    name = unique_name("lt")
    template(ec2, name)
    keyed = [{"DeviceName": "/dev/xvda", "Ebs": {**MAPPINGS[0]["Ebs"], "KmsKeyId": KEY}}]
    ec2.create_launch_template_version(LaunchTemplateName=name, SourceVersion="1", LaunchTemplateData={"BlockDeviceMappings": keyed})
    data = version(ec2, name, 2)
    assert data["BlockDeviceMappings"][0]["Ebs"]["KmsKeyId"] == KEY
    assert (data.get("ImageId"), data.get("InstanceType"), data.get("UserData")) == ("ami-12c6146b", "m5.large", USER_DATA)
    assert data.get("MetadataOptions", {}).get("HttpTokens") == "required"


@against_both("SourceVersion ignored (a version made without it keeps nothing of the others on moto too)", AssertionError)
def test_without_source_version_only_the_given_parameters(aws, unique_name):
    ec2 = aws.client("ec2", account=PROVIDER)
    name = unique_name("lt")
    template(ec2, name)
    ec2.create_launch_template_version(LaunchTemplateName=name, LaunchTemplateData={"InstanceType": "m5.xlarge"})
    data = version(ec2, name, 2)
    assert data.get("InstanceType") == "m5.xlarge" and "ImageId" not in data and "UserData" not in data
    ec2.create_launch_template_version(LaunchTemplateName=name, SourceVersion="1", LaunchTemplateData={"InstanceType": "m5.xlarge"})
    assert version(ec2, name, 3).get("ImageId") == "ami-12c6146b"  # the gap itself, so the plain run fails here


@against_both("Auto Scaling launches from a version given UserData fail with HTTP 500", ResponseParserError)
def test_auto_scaling_launches_from_a_version_given_user_data(aws, unique_name):
    ec2 = aws.client("ec2", account=PROVIDER)
    autoscaling = aws.client("autoscaling", account=PROVIDER)
    name = unique_name("lt")
    template(ec2, name)
    ec2.create_launch_template_version(LaunchTemplateName=name, LaunchTemplateData={
        "ImageId": "ami-12c6146b", "InstanceType": "m5.large", "UserData": USER_DATA})
    ec2.modify_launch_template(LaunchTemplateName=name, DefaultVersion="2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = unique_name("asg")
    autoscaling.create_auto_scaling_group(AutoScalingGroupName=group, MinSize=1, MaxSize=1, DesiredCapacity=1,
                                          LaunchTemplate={"LaunchTemplateName": name, "Version": "$Default"}, VPCZoneIdentifier=subnet)
    [asg] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    assert len(asg["Instances"]) == 1
    assert version(ec2, name, 2).get("UserData") == USER_DATA
