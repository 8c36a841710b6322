"""IAM and Secrets Manager requests are authorized on their resource ARNs (tests/local_aws/extensions/iam_auth.py).

AWS's Service Authorization Reference names the resource of each action: IAM's ListAttachedUserPolicies and
AttachUserPolicy act on the user, SimulatePrincipalPolicy on the principal it simulates, GetPolicy/CreatePolicy/
CreatePolicyVersion on the managed policy
(https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html);
Secrets Manager's GetSecretValue on the secret
(https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecretsmanager.html).
Plain moto authorizes them on ``*``, so a statement scoped to a user, a policy path or a secret never matches.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.local_aws.harness import LocalAWS

from .support import PROVIDER, REGION
from .test_iam_auth import allow, policy, set_enforcement

OPERATOR, ROLE, TARGET, OTHER = "iam-res-operator", "iam-res-automation", "iam-res-target", "iam-res-other"
PATH = "/mattermost-byok/"


class World:
    def __init__(self, aws: LocalAWS):
        self.aws = aws
        iam = aws.client("iam", PROVIDER)
        iam.create_user(UserName=OPERATOR)
        key = iam.create_access_key(UserName=OPERATOR)["AccessKey"]
        self.keys = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
        role_arn = f"arn:aws:iam::{PROVIDER}:role/{ROLE}"
        iam.put_user_policy(UserName=OPERATOR, PolicyName="assume", PolicyDocument=policy(allow("sts:AssumeRole", role_arn)))
        iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=policy(
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{PROVIDER}:user/{OPERATOR}"}, "Action": "sts:AssumeRole"}))
        for user in (TARGET, OTHER):
            iam.create_user(UserName=user)
        self.target, self.other = (f"arn:aws:iam::{PROVIDER}:user/{u}" for u in (TARGET, OTHER))
        document = policy(allow("kms:Decrypt", "*"))
        self.ours = iam.create_policy(PolicyName="ours", Path=PATH, PolicyDocument=document)["Policy"]["Arn"]
        self.theirs = iam.create_policy(PolicyName="theirs", PolicyDocument=document)["Policy"]["Arn"]
        secrets = aws.client("secretsmanager", PROVIDER)
        self.allowed_secret = secrets.create_secret(Name="allowed-canary", SecretString="{}")["ARN"]
        secrets.create_secret(Name="other-secret", SecretString="{}")
        iam.put_role_policy(RoleName=ROLE, PolicyName="scoped", PolicyDocument=policy(
            allow(["iam:SimulatePrincipalPolicy", "iam:ListAttachedUserPolicies", "iam:AttachUserPolicy"], self.target),
            allow(["iam:GetPolicy", "iam:CreatePolicy"], f"arn:aws:iam::{PROVIDER}:policy{PATH}*"),
            allow("secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:{REGION}:{PROVIDER}:secret:allowed-*")))
        set_enforcement(aws, "0")

    def client(self, service: str) -> Any:
        user = boto3.client("sts", region_name=REGION, endpoint_url=self.aws.endpoint_url, **self.keys)
        creds = user.assume_role(RoleArn=f"arn:aws:iam::{PROVIDER}:role/{ROLE}", RoleSessionName="iam-res")["Credentials"]
        return boto3.client(service, region_name=REGION, endpoint_url=self.aws.endpoint_url, config=Config(retries={"total_max_attempts": 1}),
                            aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["SessionToken"])


@pytest.fixture(scope="module", params=["extended", "plain"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    directory = tmp_path_factory.mktemp(f"iam-res-{request.param}")
    with LocalAWS.start(extended=request.param == "extended", log_path=directory / "server.log") as aws:
        yield World(aws)


def gap_on_plain(request: pytest.FixtureRequest, gap: str) -> None:
    if "plain" in request.node.callspec.id:
        request.applymarker(pytest.mark.xfail(strict=True, raises=ClientError, reason=f"plain moto: {gap}"))


def refused(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as excinfo:
        call(**kwargs)
    return excinfo.value.response["Error"]["Code"]


def test_iam_user_actions_are_authorized_on_the_user(world: World, request: pytest.FixtureRequest) -> None:
    gap_on_plain(request, "IAM is authorized on Resource '*', so a user-scoped statement never matches")
    iam = world.client("iam")
    assert iam.list_attached_user_policies(UserName=TARGET)["AttachedPolicies"] == []
    iam.simulate_principal_policy(PolicySourceArn=world.target, ActionNames=["kms:Decrypt"])
    iam.attach_user_policy(UserName=TARGET, PolicyArn=world.ours)
    assert "AccessDenied" in refused(iam.list_attached_user_policies, UserName=OTHER)
    assert "AccessDenied" in refused(iam.simulate_principal_policy, PolicySourceArn=world.other, ActionNames=["kms:Decrypt"])
    assert "AccessDenied" in refused(iam.attach_user_policy, UserName=OTHER, PolicyArn=world.ours)


def test_managed_policy_actions_are_authorized_on_the_policy(world: World, request: pytest.FixtureRequest) -> None:
    gap_on_plain(request, "IAM is authorized on Resource '*', so a policy-path statement never matches")
    iam = world.client("iam")
    assert iam.get_policy(PolicyArn=world.ours)["Policy"]["Arn"] == world.ours
    iam.create_policy(PolicyName="made-by-the-run", Path=PATH, PolicyDocument=policy(allow("kms:Decrypt", "*")))
    assert "AccessDenied" in refused(iam.get_policy, PolicyArn=world.theirs)
    assert "AccessDenied" in refused(iam.create_policy, PolicyName="elsewhere", PolicyDocument=policy(allow("kms:Decrypt", "*")))


def test_secrets_are_authorized_on_the_secret_arn(world: World, request: pytest.FixtureRequest) -> None:
    gap_on_plain(request, "Secrets Manager is authorized on Resource '*', so a secret-scoped statement never matches")
    secrets = world.client("secretsmanager")
    assert secrets.get_secret_value(SecretId="allowed-canary")["ARN"] == world.allowed_secret
    assert json.loads(secrets.get_secret_value(SecretId=world.allowed_secret)["SecretString"]) == {}
    assert "AccessDenied" in refused(secrets.get_secret_value, SecretId="other-secret")
