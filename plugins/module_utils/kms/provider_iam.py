# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The provider-side half of access to a customer's key: the IAM policies of Mattermost's own principals.

A principal of another account can use a KMS key only when the key policy allows it AND an IAM policy in its own
account allows it (AWS KMS developer guide, "Allowing users in other accounts to use a KMS key"). The key policy is
checked by key_policy/key_check; this module checks the IAM half with iam:SimulatePrincipalPolicy on the key ARN,
with the request context the service gives KMS (kms:ViaService, kms:GrantIsForAWSResource, ...), and plans the fix:

- IAM users (the provisioning user, a server identity that is a user) and roles that kops does not manage get one
  customer managed policy per key and purpose, ``mattermost-byok-<key id>-<purpose>`` under path
  ``/mattermost-byok/``, attached to them;
- the kops node and control-plane roles get the statements through the cluster spec (``spec.additionalPolicies``),
  because kops detaches managed policies it was not told about; the EBS step writes them;
- the automation role is only checked: its policy is the shipped docs/iam/byok-automation-policy.json.

Pure planning here (documents, names, decisions); the AWS calls are made by the module with a client passed in.
"""

from __future__ import annotations

import json
import re

from ansible_collections.mattermost.byok.plugins.module_utils.kms.onboarding_policy import required_access
from ansible_collections.mattermost.byok.plugins.module_utils.kms.onboarding_policy import via_service

POLICY_PATH = "/mattermost-byok/"
KOPS_ROLES = {"nodes_role": "node", "masters_role": "master"}
PURPOSES = {"provisioning_user": "provisioning", "nodes_role": "nodes", "masters_role": "masters", "batch_job_role": "s3-batch-job"}
# What the automation role itself does with a customer key (direct DescribeKey; S3 copies; EBS/RDS through services).
AUTOMATION_ACTIONS = {
    "s3": ("kms:Decrypt", "kms:GenerateDataKey"),
    "rds": ("kms:CreateGrant", "kms:DescribeKey"),
    "ebs": ("kms:CreateGrant", "kms:Decrypt"),
}
_ARN = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):(user|role)/(?:.*/)?([\w+=,.@-]+)$")


class ProviderIamError(ValueError):
    """Bad input; the message names the argument."""


def principal_kind(arn: str) -> tuple[str, str]:
    """("user" | "role", name) of an IAM user or role ARN."""
    m = _ARN.match(arn or "")
    if not m:
        raise ProviderIamError(f"{arn!r} is not the ARN of an IAM user or role (arn:aws:iam::<account>:user/<name> or :role/<name>)")
    return m.group(3), m.group(4)


def key_id(key_arn: str) -> str:
    return key_arn.rsplit("/", 1)[-1]


def policy_name(key_arn: str, purpose: str) -> str:
    return f"mattermost-byok-{key_id(key_arn)}-{purpose}"


def policy_arn(account: str, key_arn: str, purpose: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account}:policy{POLICY_PATH}{policy_name(key_arn, purpose)}"


def purpose_of(name: str) -> str:
    if name.startswith("server_identities["):
        return "server"
    return PURPOSES.get(name, name)


def requirements(principals: dict, services: list, provider_account_id: str, region: str, automation_role: str | None = None) -> list[dict]:
    """Every (principal, action, context) the provider-side IAM policies must allow on the key: the key policy's
    requirements (required_access) for the provider's principals, plus the automation role's own use."""
    # The automation role's key-policy statement is broad (the runbook's five actions); its IAM half is what the run
    # itself does with the key, below.
    out = [dict(r) for r in required_access(principals, services, provider_account_id, region) if r["principal_name"] != "automation_role"]
    if automation_role:
        principal_kind(automation_role)
        out.append({"principal": automation_role, "principal_name": "automation_role", "action": "kms:DescribeKey",
                    "context": {"kms:ViaService": None}, "services": list(services), "sid": None, "documented": False,
                    "reason": "the run verifies the key with a direct DescribeKey"})
        for service in services:
            for action in AUTOMATION_ACTIONS[service]:
                out.append({"principal": automation_role, "principal_name": "automation_role", "action": action,
                            "context": {"kms:ViaService": via_service(service, region)}, "services": [service], "sid": None,
                            "documented": False, "reason": f"the run's {service.upper()} step uses the key through {service.upper()}"})
    return out


def context_entries(context: dict) -> list[dict]:
    """SimulatePrincipalPolicy ContextEntries for a request context (keys known absent are left out)."""
    entries = []
    for name, value in sorted((context or {}).items()):
        if value is None:
            continue
        if isinstance(value, bool):
            entries.append({"ContextKeyName": name, "ContextKeyValues": ["true" if value else "false"], "ContextKeyType": "boolean"})
        elif isinstance(value, (list, tuple)):
            entries.append({"ContextKeyName": name, "ContextKeyValues": [str(v) for v in value], "ContextKeyType": "stringList"})
        else:
            entries.append({"ContextKeyName": name, "ContextKeyValues": [str(value)], "ContextKeyType": "string"})
    return entries


def simulation_groups(reqs: list[dict]) -> list[dict]:
    """Requirements grouped by (principal, context) so one SimulatePrincipalPolicy call answers each group."""
    groups: dict = {}
    for r in reqs:
        key = (r["principal"], json.dumps(r["context"], sort_keys=True))
        group = groups.setdefault(key, {"principal": r["principal"], "context": r["context"], "requirements": []})
        group["requirements"].append(r)
    return list(groups.values())


def _condition(context: dict) -> dict:
    """The IAM Condition that admits exactly the request context of a requirement."""
    condition: dict = {}
    if context.get("kms:ViaService"):
        condition.setdefault("StringEquals", {})["kms:ViaService"] = [context["kms:ViaService"]]
    if context.get("kms:GrantIsForAWSResource") is True:
        condition.setdefault("Bool", {})["kms:GrantIsForAWSResource"] = "true"
    if context.get("kms:GranteePrincipal"):
        condition.setdefault("StringEquals", {})["kms:GranteePrincipal"] = context["kms:GranteePrincipal"]
    if context.get("kms:GrantOperations"):
        condition["ForAllValues:StringEquals"] = {"kms:GrantOperations": list(context["kms:GrantOperations"])}
    return condition


def statements_for(reqs: list[dict], key_arn: str, purpose: str) -> list[dict]:
    """The smallest statements that allow `reqs` (of one principal) on the key: actions with the same condition
    (ignoring kms:ViaService) share a statement, and their kms:ViaService values are merged."""
    merged: dict = {}
    for r in reqs:
        condition = _condition(r["context"])
        via = condition.get("StringEquals", {}).pop("kms:ViaService", None)
        if "StringEquals" in condition and not condition["StringEquals"]:
            del condition["StringEquals"]
        shape = json.dumps(condition, sort_keys=True)
        entry = merged.setdefault(shape, {"actions": [], "via": [], "condition": condition, "direct": False})
        if r["action"] not in entry["actions"]:
            entry["actions"].append(r["action"])
        if via:
            entry["via"].extend(v for v in via if v not in entry["via"])
        else:
            entry["direct"] = True
    out = []
    for i, entry in enumerate(merged.values()):
        condition = json.loads(json.dumps(entry["condition"]))
        if entry["via"] and not entry["direct"]:
            condition.setdefault("StringEquals", {})["kms:ViaService"] = sorted(entry["via"])
        statement = {"Sid": _sid(purpose, i), "Effect": "Allow", "Action": sorted(entry["actions"]), "Resource": key_arn}
        if condition:
            statement["Condition"] = condition
        out.append(statement)
    return out


def _sid(purpose: str, index: int) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", f"MattermostByok{purpose.title()}Key{index}")


def policy_document(statements: list[dict]) -> dict:
    return {"Version": "2012-10-17", "Statement": statements}


def normalize_document(document) -> dict:
    """A policy document as read back from IAM (a dict, or URL-encoded / plain JSON text), for comparison."""
    if isinstance(document, str):
        from urllib.parse import unquote  # pylint: disable=import-outside-toplevel
        try:
            document = json.loads(document)
        except ValueError:
            document = json.loads(unquote(document))
    return json.loads(json.dumps(document, sort_keys=True))


def fix_route(name: str, arn: str) -> str:
    """How a missing permission of principal `name` is fixed: managed_policy | kops_spec | none."""
    if name == "automation_role":
        return "none"
    if name in KOPS_ROLES:
        return "kops_spec"
    principal_kind(arn)
    return "managed_policy"


def kops_additional_policies(missing_by_principal: dict, key_arn: str) -> dict:
    """{"node": [statements], "master": [statements]} for the kops roles that lack permissions."""
    out = {}
    for name, reqs in missing_by_principal.items():
        if name in KOPS_ROLES and reqs:
            statements = statements_for(reqs, key_arn, purpose_of(name))
            # One list per role holds the statements of every key: the Sid names the whole key id (keys of one customer
            # can share a prefix), so merging by Sid never lets one key's statement replace another's.
            for i, statement in enumerate(statements):
                statement["Sid"] = f"MattermostByok{purpose_of(name).title()}{key_id(key_arn).replace('-', '')}Key{i}"
            out[KOPS_ROLES[name]] = statements
    return out


def describe_missing(principal: str, reqs: list[dict]) -> str:
    by_context: dict = {}
    for r in reqs:
        via = (r.get("context") or {}).get("kms:ViaService")
        by_context.setdefault(via or "a direct call", []).append(r["action"])
    parts = [f"{', '.join(sorted(set(actions)))} ({'through ' + via if via != 'a direct call' else via})" for via, actions in by_context.items()]
    return f"the IAM policies of {principal} do not allow " + "; ".join(parts) + " on the key"
