# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The key-policy statements a customer adds to their KMS key, and what a checker must find in the policy.

Pure: no AWS calls, importable without Ansible.

The runbook (Mattermost Cloud Dedicated BYOK) asks for two statements: key use for the provisioning user and
for the kops node role. AWS needs more for EBS and Aurora (docs/key-policy.md has the sources):

- the kops control-plane role ``masters.<cluster>`` uses the key for EBS (etcd-manager attaches the etcd
  volumes, the EBS CSI controller creates persistent volumes);
- EBS and Aurora create KMS grants for the resources they encrypt (``kms:CreateGrant`` restricted with
  ``kms:GrantIsForAWSResource``);
- EC2 Auto Scaling launches the kops nodes with its service-linked role, which can use a key of another
  account only through a grant created from the Auto Scaling group's account (the provider's), so the key
  policy must let the provisioning user create exactly that grant.

S3 uses no grants: the use actions are all it needs.

When the run assumes an automation role (``byok_assume_role_arn``), that role is the identity that re-encrypts the
S3 objects, creates the re-keyed databases and etcd volumes and probes the key, so it is a principal of the key
like the provisioning user (``principals["automation_role"]``, optional).

When the S3 step hands the copies to S3 Batch Operations (``byok_s3_engine``), the job's own role (the one S3 Batch
Operations assumes, ``principals["batch_job_role"]``, optional) writes the copies, so S3 asks KMS for it: a statement
of its own with the two actions S3 needs for a copy onto the key (GenerateDataKey for the copy, Decrypt for a source
already on it).

`key_policy_statements` renders the statements (the runbook's two exactly as the runbook prints them, then
the ones AWS also requires, each with its reason). `required_access` lists every (principal, action, request
context) a checker must find allowed, with the Sid of the statement that grants it.
"""

from __future__ import annotations

from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import parse_kms_key_arn
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import validate_account_id
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import validate_region

SERVICES = ("s3", "rds", "ebs")

# The runbook's list, in its order.
USE_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey")
GRANT_ACTIONS = ("kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant")

# What the wildcards of USE_ACTIONS stand for when a service calls KMS (the *Pair variants serve no data store).
EXPANDED_ACTIONS = {
    "kms:ReEncrypt*": ("kms:ReEncryptFrom", "kms:ReEncryptTo"),
    "kms:GenerateDataKey*": ("kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext"),
}

# The operations the Auto Scaling service-linked role gets in its grant (AWS: EC2 Auto Scaling user guide,
# "Required AWS KMS key policy for use with encrypted volumes", cross-account example).
AUTOSCALING_GRANT_OPERATIONS = ("Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKey",
                                "GenerateDataKeyWithoutPlaintext", "DescribeKey", "CreateGrant")

PRINCIPAL_NAMES = ("provisioning_user", "nodes_role", "masters_role")

# The endpoint prefix that appears in kms:ViaService when the service calls KMS for the caller.
VIA_SERVICE = {"s3": "s3", "rds": "rds", "ebs": "ec2"}

SID_USE = "Allow use of the key"
SID_USE_NODES = "Allow use of the key role nodes"
SID_USE_MASTERS = "Allow use of the key role masters"
SID_GRANTS = "Allow attachment of persistent resources"
SID_AUTOSCALING = "Allow grant to the Auto Scaling service-linked role"
SID_SERVER = "Allow use of the key Mattermost server"
SID_AUTOMATION = "Allow use of the key BYOK automation"
SID_BATCH_JOB = "Allow use of the key S3 Batch Operations"

# What the Mattermost server's own S3 identity asks KMS for through S3: GenerateDataKey for every upload (PutObject,
# CreateMultipartUpload, CopyObject's destination), Decrypt for every read and for each multipart part.
SERVER_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")

REASONS = {
    SID_USE: "The provisioning user creates and re-encrypts {things} with the key.",
    SID_USE_NODES: "Mattermost and its add-ons run on the kops worker nodes under the nodes role and use the key.",
    SID_USE_MASTERS: "On the kops control plane, etcd-manager attaches the encrypted etcd volumes and the EBS CSI controller "
                     "creates and attaches persistent volumes, both as the masters role.",
    SID_GRANTS: "{services} a grant on the key for each volume or cluster encrypted with it (the service calls kms:CreateGrant "
                "as the caller); the condition allows only grants for AWS resources, never direct calls.",
    SID_AUTOSCALING: "EC2 Auto Scaling launches the kops nodes with its service-linked role, which can use another account's key "
                     "only through a grant created from the provider account; this lets the provisioning user create that one "
                     "grant, which the provider does after the policy is saved.",
    SID_AUTOMATION: "The BYOK automation role copies {things} onto the key and probes the key before using it.",
    SID_BATCH_JOB: "S3 Batch Operations copies the S3 objects onto the key as the BYOK job role (the role the job assumes), "
                   "so S3 asks KMS for it.",
    SID_SERVER: "The Mattermost server reads and writes its files in the S3 bucket with its own identity, so S3 asks KMS for it.",
}

# Why each principal needs the grant actions, per principal and service (for required_access).
GRANT_REASONS = {
    ("provisioning_user", "rds"): "RDS creates a grant when the provisioning user creates, restores or copies an Aurora cluster or snapshot "
                                  "encrypted with the key",
    ("provisioning_user", "ebs"): "EC2 creates a grant when the provisioning user (kops) creates encrypted volumes, "
                                  "such as the etcd volumes",
    ("automation_role", "rds"): "RDS creates a grant when the BYOK automation creates the re-keyed Aurora cluster or copies "
                                "a snapshot with the key",
    ("automation_role", "ebs"): "EC2 creates a grant when the BYOK automation creates the etcd volumes and snapshot copies on the key",
    ("nodes_role", "ebs"): "EC2 creates a grant when an encrypted EBS volume is created or attached for the nodes role",
    ("masters_role", "ebs"): "EC2 creates a grant when etcd-manager attaches the etcd volumes and when the EBS CSI controller creates "
                             "and attaches persistent volumes",
}
DIRECT_DESCRIBE_REASON = "the provider verifies the key with a direct DescribeKey (no AWS service in between) before using it"


def _services(services) -> list[str]:
    if isinstance(services, str) or not isinstance(services, (list, tuple)):
        raise ValueError(f"services: {services!r} must be a list of {', '.join(SERVICES)}")
    unknown = [s for s in services if s not in SERVICES]
    if unknown:
        raise ValueError(f"services: unknown service(s) {', '.join(map(repr, unknown))}; BYOK covers {', '.join(SERVICES)}")
    if not services:
        raise ValueError(f"services: empty; give the services the key serves ({', '.join(SERVICES)})")
    return [s for s in SERVICES if s in services]


def server_identities(principals: dict) -> list[str]:
    """The Mattermost servers' own S3 identities listed in principals["server_identities"] (may be empty)."""
    value = principals.get("server_identities") if isinstance(principals, dict) else None
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"principals.server_identities: {value!r} must be a list of IAM user or role ARNs")
    return list(dict.fromkeys(value))


def _principal(principals: dict, name: str) -> str:
    if name.startswith("server_identities["):
        value = server_identities(principals)[int(name[len("server_identities["):-1])]
        if not isinstance(value, str) or not (":user/" in value or ":role/" in value) or not value.startswith("arn:"):
            raise ValueError(f"principals.{name}: {value!r} is not an IAM user or role ARN (the Mattermost server's s3_identity_arn)")
        return value
    value = principals.get(name) if isinstance(principals, dict) else None
    if not isinstance(value, str) or not value.startswith("arn:"):
        raise ValueError(f"principals.{name}: {value!r} is not an IAM ARN; take the principals from mattermost.byok.customer_config")
    return value


def autoscaling_role_arn(principals: dict, provider_account_id: str) -> str:
    """The provider account's Auto Scaling service-linked role (the grantee of the Auto Scaling grant)."""
    value = principals.get("autoscaling_role") if isinstance(principals, dict) else None
    if value is None:
        return (f"arn:aws:iam::{provider_account_id}:role/aws-service-role/autoscaling.amazonaws.com/"
                "AWSServiceRoleForAutoScaling")
    if not isinstance(value, str) or not value.startswith("arn:"):
        raise ValueError(f"principals.autoscaling_role: {value!r} is not an IAM ARN")
    return value


def via_service(service: str, region: str) -> str:
    """The kms:ViaService value of `service` (s3, rds, ebs) in `region`."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{VIA_SERVICE[service]}.{region}.{suffix}"


def _plan(services: list[str], servers: int = 0, automation: bool = False, batch_job: bool = False) -> list[dict]:
    """Which statements the services need: sid, kind, documented, and the principals with the services each serves."""
    grant_services = [s for s in services if s in ("rds", "ebs")]
    plan = [
        {"sid": SID_USE, "kind": "use", "documented": True, "grantees": [("provisioning_user", services)]},
        {"sid": SID_USE_NODES, "kind": "use", "documented": True, "grantees": [("nodes_role", services)]},
    ]
    if "ebs" in services:
        plan.append({"sid": SID_USE_MASTERS, "kind": "use", "documented": False, "grantees": [("masters_role", ["ebs"])]})
    if automation:
        plan.append({"sid": SID_AUTOMATION, "kind": "use", "documented": False, "grantees": [("automation_role", services)]})
    if grant_services:
        grantees = [("provisioning_user", grant_services)]
        if "ebs" in services:
            grantees += [("nodes_role", ["ebs"]), ("masters_role", ["ebs"])]
        if automation:
            grantees.append(("automation_role", grant_services))
        plan.append({"sid": SID_GRANTS, "kind": "grants", "documented": False, "grantees": grantees})
    if "ebs" in services:
        plan.append({"sid": SID_AUTOSCALING, "kind": "autoscaling", "documented": False, "grantees": [("provisioning_user", ["ebs"])]})
    if "s3" in services and batch_job:
        plan.append({"sid": SID_BATCH_JOB, "kind": "server", "documented": False, "grantees": [("batch_job_role", ["s3"])]})
    if "s3" in services and servers:
        plan.append({"sid": SID_SERVER, "kind": "server", "documented": False,
                     "grantees": [(f"server_identities[{i}]", ["s3"]) for i in range(servers)]})
    for item in plan:
        item["services"] = [s for s in SERVICES if any(s in served for _name, served in item["grantees"])]
    return plan


def _check(principals, services, provider_account_id, region):
    services = _services(services)
    validate_account_id(provider_account_id, "provider_account_id")
    validate_region(region, "region")
    automation = isinstance(principals, dict) and principals.get("automation_role") is not None
    batch_job = isinstance(principals, dict) and principals.get("batch_job_role") is not None
    plan = _plan(services, len(server_identities(principals)), automation, batch_job)
    arns = {name: _principal(principals, name) for item in plan for name, _served in item["grantees"]}
    return services, plan, arns


def _reason(item: dict) -> str:
    if item["sid"] == SID_GRANTS:
        names = {"ebs": "EBS", "rds": "Aurora/RDS"}
        who = _join([names[s] for s in item["services"]])
        return REASONS[SID_GRANTS].format(services=who + (" need" if len(item["services"]) > 1 else " needs"))
    if item["sid"] in (SID_USE, SID_AUTOMATION):
        things = {"s3": "the S3 objects", "rds": "the Aurora clusters", "ebs": "the kops volumes"}
        return REASONS[item["sid"]].format(things=_join([things[s] for s in item["services"]]))
    return REASONS[item["sid"]]


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _statement(item: dict, arns: dict, key_arn: str, autoscaling_role: str) -> dict:
    principals = [arns[name] for name, _served in item["grantees"]]
    principal = {"AWS": principals[0] if len(principals) == 1 else principals}
    statement = {"Sid": item["sid"], "Effect": "Allow", "Principal": principal}
    if item["kind"] == "use":
        statement["Action"] = list(USE_ACTIONS)
        statement["Resource"] = key_arn
    elif item["kind"] == "grants":
        statement["Action"] = list(GRANT_ACTIONS)
        statement["Resource"] = key_arn
        statement["Condition"] = {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    elif item["kind"] == "server":
        # The provider-side IAM policy the run attaches to the server's identity narrows this to requests through S3
        # (kms:ViaService); the key policy names the principal and the two actions only.
        statement["Action"] = list(SERVER_ACTIONS)
        statement["Resource"] = key_arn
    else:
        statement["Action"] = "kms:CreateGrant"
        statement["Resource"] = key_arn
        statement["Condition"] = {
            "StringEquals": {"kms:GranteePrincipal": autoscaling_role},
            "ForAllValues:StringEquals": {"kms:GrantOperations": list(AUTOSCALING_GRANT_OPERATIONS)},
        }
    return statement


def key_policy_statements(principals: dict, services: list[str], provider_account_id: str, region: str, key_arn: str = "*") -> list[dict]:
    """The statements to add to the key policy of a key serving `services`, in order.

    First the runbook's two statements exactly as the runbook prints them (documented), then the ones AWS also
    requires for these services. Each entry: sid, statement (JSON-able), documented, services, reason.
    `key_arn` fills Resource; the default "*" means "this key" inside a key policy.
    Raises ValueError naming the bad argument.
    """
    services, plan, arns = _check(principals, services, provider_account_id, region)
    if key_arn != "*":
        key_arn = str(parse_kms_key_arn(key_arn, "key_arn"))
    autoscaling_role = autoscaling_role_arn(principals, provider_account_id) if "ebs" in services else None
    return [{"sid": item["sid"], "statement": _statement(item, arns, key_arn, autoscaling_role), "documented": item["documented"],
             "services": item["services"], "reason": _reason(item)} for item in plan]


def _expanded(actions) -> list[str]:
    return [name for action in actions for name in EXPANDED_ACTIONS.get(action, (action,))]


def required_access(principals: dict, services: list[str], provider_account_id: str, region: str) -> list[dict]:
    """Every (principal, action, request context) the key policy must allow for `services`.

    Actions are IAM action names (no wildcards). `context` is the request context AWS evaluates when the
    service calls KMS for the principal (kms:ViaService of the service in `region`, kms:GrantIsForAWSResource
    for grants); `sid` names the statement of key_policy_statements that allows it; `documented` says whether
    the runbook's two statements cover it. Raises ValueError naming the bad argument.
    """
    services, plan, arns = _check(principals, services, provider_account_id, region)
    out = []

    def add(item, name, action, context, served, reason):
        out.append({"principal": arns[name], "principal_name": name, "action": action, "context": context,
                    "services": list(served), "sid": item["sid"], "documented": item["documented"], "reason": reason})

    for item in plan:
        for name, served in item["grantees"]:
            if item["kind"] == "use":
                reason = _reason(item)
                for action in _expanded(USE_ACTIONS):
                    for service in served:
                        add(item, name, action, {"kms:ViaService": via_service(service, region)}, [service], reason)
                if name in ("provisioning_user", "automation_role"):
                    add(item, name, "kms:DescribeKey", {"kms:ViaService": None}, served, DIRECT_DESCRIBE_REASON)  # a direct call: no service in between
            elif item["kind"] == "server":
                for action in SERVER_ACTIONS:
                    add(item, name, action, {"kms:ViaService": via_service("s3", region)}, ["s3"], REASONS[item["sid"]])
            elif item["kind"] == "grants":
                for action in GRANT_ACTIONS:
                    for service in served:
                        context = {"kms:GrantIsForAWSResource": True, "kms:ViaService": via_service(service, region)}
                        add(item, name, action, context, [service], GRANT_REASONS[(name, service)])
            else:
                # A direct call: kms:GrantIsForAWSResource is never true for it, whatever statement allows grants to services.
                context = {"kms:GranteePrincipal": autoscaling_role_arn(principals, provider_account_id),
                           "kms:GrantOperations": list(AUTOSCALING_GRANT_OPERATIONS), "kms:GrantIsForAWSResource": False}
                add(item, name, "kms:CreateGrant", context, served,
                    "the provider creates the Auto Scaling service-linked role's grant directly from its account "
                    "(no AWS service in between), so kms:GrantIsForAWSResource does not cover it")
    return out
