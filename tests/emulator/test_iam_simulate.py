"""iam:SimulatePrincipalPolicy answers from the principal's real policies (tests/local_aws/extensions/iam_simulate.py).

AWS: "Simulate how a set of IAM policies attached to an IAM entity works with a list of API operations and AWS
resources ... If you specify a user, then the simulation also includes all of the policies that are attached to
groups that the user belongs to" (https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html);
an explicit Deny wins, a permissions boundary must allow too
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
Plain moto does not implement the call.
"""
from __future__ import annotations

import json
import uuid

import pytest
from botocore.parsers import ResponseParserError

from .support import CUSTOMER, PROVIDER

# Plain moto has no SimulatePrincipalPolicy: its server answers HTTP 500 with an HTML page, which botocore can't parse.
ONLY_EXTENDED = pytest.mark.parametrize("aws", ["extended", pytest.param("plain", marks=pytest.mark.xfail(
    strict=True, raises=ResponseParserError, reason="plain moto: SimulatePrincipalPolicy is not implemented (HTTP 500)"))],
    indirect=True)
KEY = f"arn:aws:kms:us-east-1:{CUSTOMER}:key/0acbe000-0000-4000-8000-00000000beef"
OTHER_KEY = f"arn:aws:kms:us-east-1:{CUSTOMER}:key/0acbe000-0000-4000-8000-00000000f00d"


def doc(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def decisions(iam, arn, actions, resource=KEY, **kwargs):
    answer = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=actions, ResourceArns=[resource], **kwargs)
    return {r["EvalActionName"]: r["EvalDecision"] for r in answer["EvaluationResults"]}


def name():
    return f"sim-{uuid.uuid4().hex[:8]}"


@ONLY_EXTENDED
def test_user_inline_and_managed_policies_decide(aws):
    iam = aws.client("iam", PROVIDER)
    user = name()
    arn = iam.create_user(UserName=user)["User"]["Arn"]
    iam.put_user_policy(UserName=user, PolicyName="s3-only", PolicyDocument=doc(
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::bucket/*"}))
    assert decisions(iam, arn, ["kms:Decrypt", "kms:GenerateDataKey"]) == {"kms:Decrypt": "implicitDeny", "kms:GenerateDataKey": "implicitDeny"}

    policy = iam.create_policy(PolicyName=name(), PolicyDocument=doc(
        {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": KEY}))["Policy"]["Arn"]
    iam.attach_user_policy(UserName=user, PolicyArn=policy)
    answer = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["kms:Decrypt", "kms:generatedatakey", "kms:Encrypt"],
                                           ResourceArns=[KEY])["EvaluationResults"]
    assert {r["EvalActionName"]: r["EvalDecision"] for r in answer} == {
        "kms:Decrypt": "allowed", "kms:generatedatakey": "allowed", "kms:Encrypt": "implicitDeny"}
    assert answer[0]["MatchedStatements"][0]["SourcePolicyId"] == policy
    assert answer[0]["MatchedStatements"][0]["SourcePolicyType"] == "user-managed"
    assert decisions(iam, arn, ["kms:Decrypt"], OTHER_KEY) == {"kms:Decrypt": "implicitDeny"}  # scoped to the key


@ONLY_EXTENDED
def test_explicit_deny_group_policies_and_boundary(aws):
    iam = aws.client("iam", PROVIDER)
    user, group = name(), name()
    arn = iam.create_user(UserName=user)["User"]["Arn"]
    iam.create_group(GroupName=group)
    iam.add_user_to_group(GroupName=group, UserName=user)
    iam.put_group_policy(GroupName=group, PolicyName="kms", PolicyDocument=doc(
        {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}))
    assert decisions(iam, arn, ["kms:Decrypt"]) == {"kms:Decrypt": "allowed"}  # a group's policy counts for its users
    iam.put_user_policy(UserName=user, PolicyName="deny", PolicyDocument=doc(
        {"Effect": "Deny", "Action": "kms:Decrypt", "Resource": KEY}))
    assert decisions(iam, arn, ["kms:Decrypt", "kms:Encrypt"]) == {"kms:Decrypt": "explicitDeny", "kms:Encrypt": "allowed"}

    role = name()
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=doc(
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}))["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName="kms", PolicyDocument=doc({"Effect": "Allow", "Action": "kms:*", "Resource": "*"}))
    boundary = iam.create_policy(PolicyName=name(), PolicyDocument=doc(
        {"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"}))["Policy"]["Arn"]
    iam.put_role_permissions_boundary(RoleName=role, PermissionsBoundary=boundary)
    assert decisions(iam, role_arn, ["kms:Decrypt", "kms:Encrypt"]) == {"kms:Decrypt": "implicitDeny", "kms:Encrypt": "allowed"}


@ONLY_EXTENDED
def test_conditions_use_the_context_entries_and_report_missing_ones(aws):
    iam = aws.client("iam", PROVIDER)
    role = name()
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=doc(
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}))["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName="via-s3", PolicyDocument=doc(
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*", "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}}))
    via = [{"ContextKeyName": "kms:ViaService", "ContextKeyValues": ["s3.us-east-1.amazonaws.com"], "ContextKeyType": "string"}]
    assert decisions(iam, arn, ["kms:Decrypt"], ContextEntries=via) == {"kms:Decrypt": "allowed"}
    via[0]["ContextKeyValues"] = ["ec2.us-east-1.amazonaws.com"]
    assert decisions(iam, arn, ["kms:Decrypt"], ContextEntries=via) == {"kms:Decrypt": "implicitDeny"}
    [result] = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=["kms:Decrypt"], ResourceArns=[KEY])["EvaluationResults"]
    assert result["EvalDecision"] == "implicitDeny" and result["MissingContextValues"] == ["kms:ViaService"]
