"""IAM enforcement (``POST /moto-api/reset-auth``) that can test a resource-scoped policy, and a call log.

Plain moto, with IAM enforcement on, authorizes KMS, RDS, EC2 and Auto Scaling requests against Resource ``*``:
a statement scoped to ``arn:aws:kms:*:*:key/*`` never matches, so only ``"Resource": "*"`` policies can be
tested. It also reads a trust policy's ``arn:aws:iam::<account>:root`` principal as one literal principal, where
AWS lets every principal of that account assume the role (when its own policy allows sts:AssumeRole), and it
names S3's GetBucketEncryption/PutBucketEncryption ``s3:ListBucket``/``s3:CreateBucket``. This module:

- computes the resource ARN(s) of KMS, RDS, EC2, Auto Scaling, IAM (users, roles, managed policies) and Secrets
  Manager requests from their parameters, as AWS's
  Service Authorization Reference defines them, and requires every one to be allowed (AWS checks each resource
  of a request; e.g. CreateAlias needs the alias and the key). Describe/List calls without a resource stay ``*``;
- treats ``<account>:root`` and a bare account id in a trust policy as "any principal of that account";
- words a denial as AWS does, naming the resource, and for JSON-protocol services (KMS) as JSON
  ``AccessDeniedException`` (moto answers XML, which botocore reports as a bare ``403``);
- gives the S3 bucket sub-resources BYOK uses their IAM action names (s3:GetEncryptionConfiguration, ...);
- names the Resource Groups Tagging API's actions with their IAM prefix ``tag:`` (moto uses the signing name,
  ``tagging:``, so no real policy could allow tag:GetResources);
- when the server runs with ``BYOK_LOCAL_AWS_CALL_LOG=<file>``, appends one JSON line per authorized request
  (enforcement on or off): principal ARN, IAM action, resources, and whether it was allowed. ``scripts/
  least-privilege`` derives the IAM policy from it, and tests compare it with the shipped policy.

Still not modelled (docs/least-privilege.md): Condition keys in identity policies (moto ignores them), resource
policies (KMS key policies, S3 bucket policies) in the decision, S3 CopyObject's read of the source object,
and policy variables.
"""
from __future__ import annotations

import json
import os
import threading
from typing import Any

from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import AccessDeniedError, JsonRESTError
from moto.iam import access_control
from moto.s3 import responses as s3_responses
from moto.utilities.utils import get_partition

from ._patching import require, wrap
from .kms_keys import find_key, parse_kms_arn

CALL_LOG_VARIABLE = "BYOK_LOCAL_AWS_CALL_LOG"
_LOG_LOCK = threading.Lock()

# S3 bucket and object sub-resources moto leaves to its default action (ListBucket, CreateBucket, GetObject).
S3_ACTIONS = {
    ("BUCKET", "GET"): {"encryption": "GetEncryptionConfiguration", "object-lock": "GetBucketObjectLockConfiguration",
                        "ownershipControls": "GetBucketOwnershipControls", "replication": "GetReplicationConfiguration"},
    ("BUCKET", "PUT"): {"encryption": "PutEncryptionConfiguration", "object-lock": "PutBucketObjectLockConfiguration"},
    ("BUCKET", "DELETE"): {"encryption": "PutEncryptionConfiguration"},
    ("KEY", "GET"): {"retention": "GetObjectRetention", "legal-hold": "GetObjectLegalHold", "attributes": "GetObjectAttributes"},
}

# RDS request parameters naming a resource, and the ARN resource type they name.
RDS_PARAMETERS = {
    "DBClusterIdentifier": "cluster", "NewDBClusterIdentifier": "cluster",
    "DBInstanceIdentifier": "db", "NewDBInstanceIdentifier": "db",
    "DBClusterSnapshotIdentifier": "cluster-snapshot", "SourceDBClusterSnapshotIdentifier": "cluster-snapshot",
    "TargetDBClusterSnapshotIdentifier": "cluster-snapshot",
    "DBSnapshotIdentifier": "snapshot", "SourceDBSnapshotIdentifier": "snapshot", "TargetDBSnapshotIdentifier": "snapshot",
    "GlobalClusterIdentifier": "global-cluster", "BlueGreenDeploymentIdentifier": "deployment",
    "DBSubnetGroupName": "subgrp", "DBClusterParameterGroupName": "cluster-pg", "DBParameterGroupName": "pg",
    "ResourceName": None, "Source": None, "SourceDBClusterIdentifier": "cluster",
}
# Restores name their snapshot "SnapshotIdentifier" (a cluster snapshot for RestoreDBClusterFromSnapshot).
RDS_SNAPSHOT_PARAMETER = {"RestoreDBClusterFromSnapshot": "cluster-snapshot", "RestoreDBInstanceFromDBSnapshot": "snapshot"}
# Describe calls without an identifier are authorized on every resource of their type.
RDS_DESCRIBE_TYPES = {
    "DescribeDBClusters": "cluster", "DescribeDBInstances": "db", "DescribeDBClusterSnapshots": "cluster-snapshot",
    "DescribeDBSnapshots": "snapshot", "DescribeGlobalClusters": "global-cluster", "DescribeBlueGreenDeployments": "deployment",
}
# Services whose IAM action prefix is not the name moto knows them by (signing name, or its service name).
IAM_PREFIXES = {"tagging": "tag", "resourcegroupstaggingapi": "tag"}
EC2_ID_TYPES = {"lt-": "launch-template", "vol-": "volume", "snap-": "snapshot", "i-": "instance", "ami-": "image"}
EC2_PARAMETERS = ("LaunchTemplateId", "VolumeId", "SnapshotId", "SourceSnapshotId", "InstanceId")


def _param(response: Any, name: str) -> Any:
    try:
        return response._get_param(name)  # pylint: disable=protected-access
    except Exception:  # pylint: disable=broad-except
        return None  # a parameter this protocol can't hold


def _kms_key_arn(account: str, region: str, ref: Any) -> str | None:
    if not isinstance(ref, str) or not ref:
        return None
    key = find_key(account, region, ref)
    if key is not None:
        return key.arn
    arn = parse_kms_arn(ref)
    if arn and arn.kind == "key":
        return ref
    return None  # an unknown alias or key: the call fails as NotFound; authorize on "*"


def kms_resources(response: Any, account: str, region: str, action: str) -> list[str]:
    partition = get_partition(region)
    resources = []
    for name in ("KeyId", "SourceKeyId", "DestinationKeyId", "TargetKeyId"):
        if arn := _kms_key_arn(account, region, _param(response, name)):
            resources.append(arn)
    if action in ("CreateAlias", "UpdateAlias", "DeleteAlias") and (alias := _param(response, "AliasName")):
        resources.append(f"arn:{partition}:kms:{region}:{account}:{alias}")
    return resources


def _rds_arn(partition: str, region: str, account: str, kind: str | None, value: str) -> str:
    if value.startswith("arn:") or kind is None:
        return value
    if kind == "global-cluster":
        return f"arn:{partition}:rds::{account}:global-cluster:{value.lower()}"
    return f"arn:{partition}:rds:{region}:{account}:{kind}:{value.lower()}"


def rds_resources(response: Any, account: str, region: str, action: str) -> list[str]:
    partition = get_partition(region)
    parameters = dict(RDS_PARAMETERS)
    if action in RDS_SNAPSHOT_PARAMETER:
        parameters["SnapshotIdentifier"] = RDS_SNAPSHOT_PARAMETER[action]
    resources = [_rds_arn(partition, region, account, kind, value) for name, kind in parameters.items()
                 if isinstance(value := _param(response, name), str) and value]
    if not resources and action in RDS_DESCRIBE_TYPES:
        kind = RDS_DESCRIBE_TYPES[action]
        resources.append(_rds_arn(partition, region, account, kind, "*"))
    return resources


def ec2_resources(response: Any, account: str, region: str, action: str) -> list[str]:
    if action.startswith("Describe") or action.startswith("Get"):
        return []  # EC2 has no resource-level permissions for these
    partition = get_partition(region)
    ids = [v for name in EC2_PARAMETERS if isinstance(v := _param(response, name), str) and v]
    ids += [v for v in (response._get_multi_param("ResourceId") or []) if isinstance(v, str)]  # pylint: disable=protected-access
    if (name := _param(response, "LaunchTemplateName")) and not _param(response, "LaunchTemplateId"):
        from moto.ec2.models import ec2_backends  # pylint: disable=import-outside-toplevel
        template_id = ec2_backends[account][region].launch_template_name_to_ids.get(name)
        if template_id:
            ids.append(template_id)
    resources = []
    for resource_id in ids:
        kind = next((k for prefix, k in EC2_ID_TYPES.items() if resource_id.startswith(prefix)), None)
        if kind:
            owner = "" if kind in ("snapshot", "image") else account  # EC2 snapshot and image ARNs have no account
            resources.append(f"arn:{partition}:ec2:{region}:{owner}:{kind}/{resource_id}")
    return resources


def autoscaling_resources(response: Any, account: str, region: str, action: str) -> list[str]:
    if action.startswith("Describe"):
        return []
    name = _param(response, "AutoScalingGroupName")
    if not name:
        return []
    from moto.autoscaling.models import autoscaling_backends  # pylint: disable=import-outside-toplevel
    group = autoscaling_backends[account][region].autoscaling_groups.get(name)
    arn = getattr(group, "arn", None)
    return [arn or f"arn:{get_partition(region)}:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/{name}"]


def _iam_entity_arn(account: str, kind: str, name: str) -> str:
    from moto.iam.models import iam_backends  # pylint: disable=import-outside-toplevel
    backend = iam_backends[account]["aws"]
    try:
        entity = backend.get_user(name) if kind == "user" else backend.get_role(name)
        return entity.arn
    except Exception:  # pylint: disable=broad-except
        return f"arn:aws:iam::{account}:{kind}/{name}"  # not found: the call fails as NoSuchEntity


def iam_resources(response: Any, account: str, region: str, action: str) -> list[str]:
    """IAM actions on users, roles and managed policies (Service Authorization Reference, IAM: AttachUserPolicy and
    ListAttachedUserPolicies on the user, *RolePolicy on the role, CreatePolicy/CreatePolicyVersion/GetPolicy/
    GetPolicyVersion/ListPolicyVersions/DeletePolicyVersion on the policy, SimulatePrincipalPolicy on the principal).
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html"""
    if action == "SimulatePrincipalPolicy":
        return [v] if isinstance(v := _param(response, "PolicySourceArn"), str) and v else []
    if isinstance(arn := _param(response, "PolicyArn"), str) and arn and action not in ("AttachUserPolicy", "AttachRolePolicy",
                                                                                        "DetachUserPolicy", "DetachRolePolicy"):
        return [arn]
    if action == "CreatePolicy" and isinstance(name := _param(response, "PolicyName"), str):
        path = _param(response, "Path") or "/"
        return [f"arn:aws:iam::{account}:policy{path}{name}"]
    if action in ("AttachUserPolicy", "DetachUserPolicy", "ListAttachedUserPolicies") and (user := _param(response, "UserName")):
        return [_iam_entity_arn(account, "user", user)]
    if action in ("AttachRolePolicy", "DetachRolePolicy", "ListAttachedRolePolicies") and (role := _param(response, "RoleName")):
        return [_iam_entity_arn(account, "role", role)]
    return []


def secretsmanager_resources(response: Any, account: str, region: str, action: str) -> list[str]:
    """A secret's actions on the secret's ARN (Service Authorization Reference, Secrets Manager: resource type Secret)."""
    secret_id = _param(response, "SecretId")
    if not isinstance(secret_id, str) or not secret_id:
        return []
    from moto.secretsmanager.models import secretsmanager_backends  # pylint: disable=import-outside-toplevel
    try:
        return [secretsmanager_backends[account][region].secrets[secret_id].arn]
    except Exception:  # pylint: disable=broad-except
        return [secret_id] if secret_id.startswith("arn:") else []  # not found: the call fails as ResourceNotFound


RESOURCES = {"kms": kms_resources, "rds": rds_resources, "ec2": ec2_resources, "autoscaling": autoscaling_resources,
             "iam": iam_resources, "secretsmanager": secretsmanager_resources}


def request_resources(response: Any) -> list[str]:
    """The resource ARNs AWS authorizes this request on; empty for "*"."""
    compute = RESOURCES.get(getattr(response, "service_name", None) or "")
    if compute is None:
        return []
    try:
        return compute(response, response.current_account, response.region, response._get_action())  # pylint: disable=protected-access
    except Exception:  # pylint: disable=broad-except
        return []  # never break a request over the call log; authorization then uses "*"


def enforcing() -> bool:
    return ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT


def principal_arn(response: Any) -> str | None:
    """The ARN of the IAM user or assumed role behind the request's access key, as AWS reports it."""
    headers = getattr(response, "headers", {}) or {}
    access_key = getattr(response, "access_key", None)
    if not access_key or "Authorization" not in headers:
        return None
    try:
        key = access_control.create_access_key(account_id=response.current_account, partition=get_partition(response.region),
                                               access_key_id=access_key, headers=headers)
        return key.arn
    except Exception:  # pylint: disable=broad-except
        return None  # e.g. the "testing" key: no IAM user, no assumed role


def log_call(response: Any, action: str, resources: list[str], allowed: bool) -> None:
    path = os.environ.get(CALL_LOG_VARIABLE)
    if not path:
        return
    service = getattr(response, "service_name", None) or "s3"
    service = IAM_PREFIXES.get(service, service)
    record = {"principal": principal_arn(response), "account": response.current_account, "region": response.region,
              "action": f"{service}:{action}", "resources": resources or ["*"], "allowed": allowed, "enforced": enforcing()}
    line = json.dumps(record, sort_keys=True)
    with _LOG_LOCK, open(path, "a", encoding="utf-8") as log:
        log.write(line + "\n")


def _check_each(original: Any, response: Any, resources: list[str], *args: Any) -> None:
    if not enforcing() or len(resources) <= 1:
        original(response, *args, resources[0] if resources else "*")
        return
    for resource in resources:  # AWS requires every resource of the request to be allowed
        original(response, *args, resource)


class JsonAccessDenied(JsonRESTError):
    """KMS and the other JSON-protocol services answer a denial as JSON AccessDeniedException."""

    code = 403

    def __init__(self, message: str):
        super().__init__("AccessDeniedException", message)


def _account_of(principal: str) -> str | None:
    parts = principal.split(":")
    return parts[4] if len(parts) > 5 else None


def apply() -> None:
    for (kind, method), actions in S3_ACTIONS.items():
        table = require(s3_responses, "ACTION_MAP")[kind][method]
        for subresource, action in actions.items():
            table.setdefault(subresource, action)

    @wrap(ActionAuthenticatorMixin, "_authenticate_and_authorize_normal_action")
    def authorize_normal(original, self, resource="*"):
        wanted = enforcing() or os.environ.get(CALL_LOG_VARIABLE)
        resources = [resource] if resource != "*" else (request_resources(self) if wanted else [])
        action = self._get_action()  # pylint: disable=protected-access
        try:
            _check_each(original, self, resources)
        except Exception:
            log_call(self, action, resources, False)
            raise
        log_call(self, action, resources, True)

    @wrap(ActionAuthenticatorMixin, "_authenticate_and_authorize_s3_action")
    def authorize_s3(original, self, bucket_name=None, key_name=None):
        arn = f"{bucket_name or '*'}/{key_name}" if key_name else (bucket_name or "*")
        resources = [f"arn:{get_partition(self.region)}:s3:::{arn}"]
        action = self._get_action()  # pylint: disable=protected-access
        try:
            original(self, bucket_name=bucket_name, key_name=key_name)
        except Exception:
            log_call(self, action, resources, False)
            raise
        log_call(self, action, resources, True)

    @wrap(access_control.IAMRequest, "__init__")
    def iam_request(original, self, *args, **kwargs):
        original(self, *args, **kwargs)
        service, operation = self._action.split(":", 1)  # pylint: disable=protected-access
        if service in IAM_PREFIXES:
            self._action = f"{IAM_PREFIXES[service]}:{operation}"  # pylint: disable=protected-access

    @wrap(access_control.IAMRequest, "check_action_permitted")
    def check_action_permitted(original, self, resource):
        try:
            original(self, resource)
        except AccessDeniedError as denial:
            # pylint: disable=protected-access
            user, action, headers = self._access_key.arn, f"{self._action} on resource: {resource}", self._headers
            if headers.get("X-Amz-Target") or headers.get("x-amz-target"):
                raise JsonAccessDenied(f"User: {user} is not authorized to perform: {action}") from denial
            raise AccessDeniedError(user_arn=user, action=action) from denial

    @wrap(access_control.IAMPolicyStatement, "_check_principal")
    def check_principal(original, self, principal):
        # "arn:aws:iam::<account>:root" (or the bare account id) trusts every principal of that account.
        expected = (self._statement.get("Principal") or {})  # pylint: disable=protected-access
        expected = expected.get("AWS") if isinstance(expected, dict) else None
        expected = [expected] if isinstance(expected, str) else list(expected or [])
        account = _account_of(principal)
        for entry in expected:
            if account and entry in (account, f"arn:aws:iam::{account}:root"):
                return True
        return original(self, principal)
