# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import copy
import json
import os

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.kms.key_policy import KMS_ACTIONS
from ansible_collections.mattermost.byok.plugins.module_utils.kms.key_policy import PolicyDocumentError
from ansible_collections.mattermost.byok.plugins.module_utils.kms.key_policy import Requirement
from ansible_collections.mattermost.byok.plugins.module_utils.kms.key_policy import Verdict
from ansible_collections.mattermost.byok.plugins.module_utils.kms.key_policy import evaluate
from ansible_collections.mattermost.byok.plugins.module_utils.kms.key_policy import parse_policy
from ansible_collections.mattermost.byok.plugins.module_utils.kms.key_policy import evaluate_all
from ansible_collections.mattermost.byok.plugins.module_utils.kms.key_policy import expand_actions

HERE = os.path.dirname(os.path.abspath(__file__))

CUSTOMER = "111122223333"
EXTERNAL = "444455556666"
MM = "222222222222"
KEY = f"arn:aws:kms:us-east-1:{CUSTOMER}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"

# The customer's own principals (AWS documentation examples)
ROOT = f"arn:aws:iam::{CUSTOMER}:root"
EXAMPLE_USER = f"arn:aws:iam::{CUSTOMER}:user/ExampleUser"
EXAMPLE_ROLE = f"arn:aws:iam::{CUSTOMER}:role/ExampleRole"
ADMIN_USER = f"arn:aws:iam::{CUSTOMER}:user/KMSAdminUser"
ADMIN_ROLE = f"arn:aws:iam::{CUSTOMER}:role/KMSAdminRole"
OTHER_USER = f"arn:aws:iam::{CUSTOMER}:user/SomeoneElse"
EXTERNAL_ROLE = f"arn:aws:iam::{EXTERNAL}:role/ExampleRole"

# Mattermost's principals (the provider account)
PROV = f"arn:aws:iam::{MM}:user/mattermost-cloud-prod-provisioning-vpc-0123456789abcdef0"
NODES = f"arn:aws:iam::{MM}:role/nodes.acme01-kops.k8s.local"
NODES_SESSION = f"arn:aws:sts::{MM}:assumed-role/nodes.acme01-kops.k8s.local/i-0123456789abcdef0"
MASTERS = f"arn:aws:iam::{MM}:role/masters.acme01-kops.k8s.local"
ASG = f"arn:aws:iam::{MM}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
ASG_SESSION = f"arn:aws:sts::{MM}:assumed-role/AWSServiceRoleForAutoScaling/AutoScaling"
NODES_WRONG_ACCOUNT = "arn:aws:iam::222222222223:role/nodes.acme01-kops.k8s.local"

USE_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
USE_IAM_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
                   "kms:GenerateDataKeyWithoutPlaintext", "kms:GenerateDataKeyPair", "kms:GenerateDataKeyPairWithoutPlaintext", "kms:DescribeKey")
EC2 = {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}
RDS = {"kms:ViaService": "rds.us-east-1.amazonaws.com"}
GRANT_FOR_AWS = {"kms:GrantIsForAWSResource": True}
EC2_ONLY = {"StringEquals": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}}
RDS_ONLY = {"StringEquals": {"kms:ViaService": "rds.us-east-1.amazonaws.com"}}
RDS_EU_ONLY = {"StringEquals": {"kms:ViaService": "rds.eu-west-1.amazonaws.com"}}
NOT_RDS = {"StringNotEquals": {"kms:ViaService": "rds.us-east-1.amazonaws.com"}}


def fixture(name: str) -> dict:
    with open(os.path.join(HERE, "policies", name), encoding="utf-8") as f:
        return json.load(f)


DEFAULT = fixture("aws_default_programmatic.json")
CONSOLE = fixture("aws_console_default.json")
EXTERNAL_POLICY = fixture("aws_external_account.json")
AWS_MANAGED = fixture("aws_managed_ebs.json")
RUNBOOK = fixture("mattermost_runbook.json")

ENABLE_IAM = {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}


def policy(*statements) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(principal, actions, sid=None, condition=None, resource="*", **extra) -> dict:
    s = {"Effect": "Allow", "Principal": principal if principal == "*" or isinstance(principal, dict) else {"AWS": principal},
         "Action": actions, "Resource": resource}
    if sid:
        s["Sid"] = sid
    if condition:
        s["Condition"] = condition
    s.update(extra)
    return s


def deny(principal, actions, sid=None, condition=None, resource="*") -> dict:
    s = allow(principal, actions, sid, condition, resource)
    s["Effect"] = "Deny"
    return s


def with_statements(base: dict, *statements) -> dict:
    out = copy.deepcopy(base)
    out["Statement"].extend(statements)
    return out


def case(case_id, doc, principal, action, decision, context=None, allow_sids=None, deny_sids=None, says=None, conditions=None):
    return pytest.param(doc, principal, action, context or {}, decision, allow_sids, deny_sids, says, conditions, id=case_id)


NOT_PRINCIPAL_ADMINS = {
    "Sid": "Deny everyone but the key admins", "Effect": "Deny",
    "NotPrincipal": {"AWS": [ADMIN_ROLE, ROOT]}, "Action": "kms:*", "Resource": "*",
}
DENY_NODES_ARNLIKE = deny("*", "kms:*", "No kops nodes", {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{MM}:role/nodes.*"}})
ASG_GRANT = allow(ASG, "kms:CreateGrant", "Allow the ASG SLR grants", {"Bool": {"kms:GrantIsForAWSResource": "true"}})

CASES = [
    # -- AWS's documented key policies ----------------------------------------------------------------------
    case("default-policy-user-delegated", DEFAULT, EXAMPLE_USER, "kms:Decrypt", "delegated_to_iam", allow_sids=("Enable IAM policies",),
         says="account 111122223333 as a whole"),
    case("default-policy-root-itself-allowed", DEFAULT, ROOT, "kms:ScheduleKeyDeletion", "allowed", allow_sids=("Enable IAM policies",)),
    case("default-policy-bare-account-caller", DEFAULT, CUSTOMER, "kms:PutKeyPolicy", "allowed"),
    case("default-policy-other-account", DEFAULT, NODES, "kms:Decrypt", "implicitly_denied", says="account 111122223333, not of 222222222222"),
    case("console-key-user-allowed", CONSOLE, EXAMPLE_USER, "kms:Decrypt", "allowed",
         allow_sids=("Enable IAM policies", "Allow use of the key")),
    case("console-key-user-grant-for-aws-resource", CONSOLE, EXAMPLE_ROLE, "kms:CreateGrant", "allowed", context=GRANT_FOR_AWS,
         allow_sids=("Enable IAM policies", "Allow attachment of persistent resources")),
    case("console-external-account-grant-unsettled", CONSOLE, EXTERNAL_ROLE, "kms:CreateGrant", "conditional",
         allow_sids=("Allow attachment of persistent resources",), conditions=({"Bool": {"kms:GrantIsForAWSResource": True}},)),
    case("console-external-account-direct-grant", CONSOLE, EXTERNAL_ROLE, "kms:CreateGrant", "implicitly_denied",
         context={"kms:GrantIsForAWSResource": False}, says="kms:GrantIsForAWSResource"),
    case("console-external-account-use", CONSOLE, EXTERNAL_ROLE, "kms:GenerateDataKeyWithoutPlaintext", "delegated_to_iam",
         allow_sids=("Allow use of the key",)),
    case("console-admin-can-administer", CONSOLE, ADMIN_ROLE, "kms:PutKeyPolicy", "allowed"),
    case("console-admin-describe-wildcard", CONSOLE, ADMIN_USER, "kms:DescribeKey", "allowed"),
    case("console-admin-create-wildcard-covers-grant", CONSOLE, ADMIN_USER, "kms:CreateGrant", "allowed"),
    case("console-admin-no-crypto-but-iam", CONSOLE, ADMIN_ROLE, "kms:Decrypt", "delegated_to_iam", allow_sids=("Enable IAM policies",)),
    case("external-account-doc-role", EXTERNAL_POLICY, EXTERNAL_ROLE, "kms:Encrypt", "delegated_to_iam",
         allow_sids=("Allow an external account to use this KMS key",)),
    case("external-account-doc-root", EXTERNAL_POLICY, f"arn:aws:iam::{EXTERNAL}:root", "kms:Encrypt", "allowed"),
    case("external-account-doc-grant-string-true", EXTERNAL_POLICY, EXTERNAL_ROLE, "kms:CreateGrant", "delegated_to_iam",
         context=GRANT_FOR_AWS, allow_sids=("Allow attachment of persistent resources",)),
    case("external-account-doc-third-account", EXTERNAL_POLICY, NODES, "kms:Encrypt", "implicitly_denied"),
    case("aws-managed-key-via-ec2", AWS_MANAGED, OTHER_USER, "kms:CreateGrant", "delegated_to_iam", context=EC2,
         allow_sids=("Allow access through EBS for all principals in the account that are authorized to use EBS",)),
    case("aws-managed-key-service-unknown", AWS_MANAGED, OTHER_USER, "kms:Decrypt", "conditional",
         conditions=({"StringEquals": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}},)),
    case("aws-managed-key-via-rds", AWS_MANAGED, OTHER_USER, "kms:Decrypt", "implicitly_denied", context=RDS,
         says="requires StringEquals kms:ViaService ec2.us-east-1.amazonaws.com, which does not hold (the request has rds.us-east-1.amazonaws.com)"),
    case("aws-managed-key-direct-call", AWS_MANAGED, OTHER_USER, "kms:Decrypt", "implicitly_denied", context={"kms:ViaService": None}),
    case("aws-managed-key-other-account", AWS_MANAGED, NODES, "kms:Decrypt", "implicitly_denied", context=EC2),
    case("aws-managed-key-metadata", AWS_MANAGED, OTHER_USER, "kms:GetKeyPolicy", "delegated_to_iam"),

    # -- the Mattermost runbook's two statements ------------------------------------------------------------
    *[case(f"runbook-provisioning-{a}", RUNBOOK, PROV, a, "allowed", allow_sids=("Allow use of the key",),
           says="it also needs an IAM policy there") for a in USE_IAM_ACTIONS],
    *[case(f"runbook-nodes-{a}", RUNBOOK, NODES, a, "allowed", allow_sids=("Allow use of the key role nodes",)) for a in USE_IAM_ACTIONS],
    case("runbook-nodes-session", RUNBOOK, NODES_SESSION, "kms:Decrypt", "allowed"),
    case("runbook-provisioning-no-creategrant", RUNBOOK, PROV, "kms:CreateGrant", "implicitly_denied", context=GRANT_FOR_AWS,
         says="'Allow use of the key' does not include kms:CreateGrant in its Action (kms:Encrypt, kms:Decrypt, kms:ReEncrypt*, "
              "kms:GenerateDataKey*, kms:DescribeKey)"),
    case("runbook-nodes-no-creategrant", RUNBOOK, NODES, "kms:CreateGrant", "implicitly_denied", context=GRANT_FOR_AWS),
    case("runbook-masters-nothing", RUNBOOK, MASTERS, "kms:Decrypt", "implicitly_denied"),
    case("runbook-masters-no-grant", RUNBOOK, MASTERS, "kms:CreateGrant", "implicitly_denied", context=GRANT_FOR_AWS),
    case("runbook-asg-slr-nothing", RUNBOOK, ASG, "kms:GenerateDataKeyWithoutPlaintext", "implicitly_denied"),
    case("runbook-asg-slr-session-nothing", RUNBOOK, ASG_SESSION, "kms:Decrypt", "implicitly_denied"),
    case("runbook-resource-is-key-id", policy(allow(NODES, USE_ACTIONS, "Ids", resource=KEY_ID)), NODES, "kms:Decrypt", "implicitly_denied",
         says="does not cover"),
    case("runbook-resource-wildcard-arn", policy(allow(NODES, USE_ACTIONS, "W", resource=f"arn:aws:kms:us-east-1:{CUSTOMER}:key/*")),
         NODES, "kms:Decrypt", "allowed"),
    case("runbook-resource-other-key", policy(allow(NODES, USE_ACTIONS, "K", resource=KEY.replace("1234abcd-", "9999abcd-"))),
         NODES, "kms:Decrypt", "implicitly_denied"),

    # -- looks allowed, isn't -------------------------------------------------------------------------------
    case("deny-further-down", with_statements(RUNBOOK, deny({"AWS": NODES}, "kms:Decrypt", "Nodes may not decrypt")),
         NODES, "kms:Decrypt", "denied", allow_sids=("Allow use of the key role nodes",), deny_sids=("Nodes may not decrypt",),
         says="an explicit Deny wins"),
    case("deny-further-down-other-action", with_statements(RUNBOOK, deny({"AWS": NODES}, "kms:Decrypt", "Nodes may not decrypt")),
         NODES, "kms:Encrypt", "allowed"),
    case("not-principal-deny-mattermost", with_statements(RUNBOOK, NOT_PRINCIPAL_ADMINS), NODES, "kms:Decrypt", "denied",
         deny_sids=("Deny everyone but the key admins",), says=f"its NotPrincipal does not list {NODES}"),
    case("not-principal-deny-exempts-admin", with_statements(CONSOLE, NOT_PRINCIPAL_ADMINS), ADMIN_ROLE, "kms:PutKeyPolicy", "conditional",
         says="exempts a session only by its exact name", conditions=({"NotPrincipal": {"AWS": [ADMIN_ROLE, ROOT]}},)),
    case("not-principal-deny-exempts-root", with_statements(CONSOLE, NOT_PRINCIPAL_ADMINS), ROOT, "kms:PutKeyPolicy", "allowed"),
    case("not-principal-deny-user-and-account", with_statements(RUNBOOK, {
        "Effect": "Deny", "NotPrincipal": {"AWS": [PROV, f"arn:aws:iam::{MM}:root", ROOT]}, "Action": "kms:*", "Resource": "*"}),
        PROV, "kms:Decrypt", "allowed"),
    case("not-principal-deny-role-without-account", with_statements(RUNBOOK, {
        "Effect": "Deny", "NotPrincipal": {"AWS": [NODES, ROOT]}, "Action": "kms:*", "Resource": "*"}),
        NODES, "kms:Decrypt", "denied", deny_sids=("#3",), says="but not its account"),
    case("not-principal-deny-session-role-account", with_statements(RUNBOOK, {
        "Effect": "Deny", "NotPrincipal": {"AWS": [NODES_SESSION, NODES, MM]}, "Action": "kms:*", "Resource": "*"}),
        NODES_SESSION, "kms:Decrypt", "allowed"),
    case("not-principal-deny-session-missing", with_statements(RUNBOOK, {
        "Effect": "Deny", "NotPrincipal": {"AWS": [NODES, MM]}, "Action": "kms:*", "Resource": "*"}),
        NODES_SESSION, "kms:Decrypt", "denied"),
    case("not-principal-allow-excludes", policy({"Effect": "Allow", "NotPrincipal": {"AWS": NODES}, "Action": "kms:*", "Resource": "*"}),
         NODES, "kms:Decrypt", "implicitly_denied", says="by its NotPrincipal"),
    case("not-principal-allow-everyone-else", policy({"Effect": "Allow", "NotPrincipal": {"AWS": NODES}, "Action": "kms:*", "Resource": "*"}),
         PROV, "kms:Decrypt", "allowed"),
    case("wrong-account-id", policy(allow(NODES_WRONG_ACCOUNT, USE_ACTIONS, "Typo")), NODES, "kms:Decrypt", "implicitly_denied",
         says="account 222222222223, not of 222222222222"),
    case("wrong-account-root", policy(allow("arn:aws:iam::222222222223:root", USE_ACTIONS)), NODES, "kms:Decrypt", "implicitly_denied"),
    case("via-service-other-region-in-context", policy(allow(NODES, USE_ACTIONS, "RDS only", RDS_EU_ONLY)),
         NODES, "kms:Decrypt", "implicitly_denied", context=RDS, says="rds.eu-west-1.amazonaws.com, which does not hold"),
    case("via-service-other-region-no-context", policy(allow(NODES, USE_ACTIONS, "RDS only", RDS_EU_ONLY)),
         NODES, "kms:Decrypt", "implicitly_denied", says="the request has a us-east-1 service, the key's Region"),
    case("via-service-key-region-no-context", policy(allow(NODES, USE_ACTIONS, "RDS only", RDS_ONLY)),
         NODES, "kms:Decrypt", "conditional", conditions=(RDS_ONLY,)),
    case("via-service-key-region-in-context", policy(allow(NODES, USE_ACTIONS, "RDS only", RDS_ONLY)),
         NODES, "kms:Decrypt", "allowed", context=RDS),
    case("via-service-wildcard-region", policy(allow(NODES, USE_ACTIONS, "Any RDS", {"StringLike": {"kms:ViaService": "rds.*.amazonaws.com"}})),
         NODES, "kms:Decrypt", "conditional"),
    case("not-action-excludes", policy({"Sid": "All but decrypt", "Effect": "Allow", "Principal": {"AWS": NODES},
                                        "NotAction": ["kms:Decrypt", "kms:ScheduleKeyDeletion"], "Resource": "*"}),
         NODES, "kms:Decrypt", "implicitly_denied", says="excludes kms:Decrypt by its NotAction"),
    case("not-action-allows-others", policy({"Effect": "Allow", "Principal": {"AWS": NODES}, "NotAction": "kms:Decrypt", "Resource": "*"}),
         NODES, "kms:Encrypt", "allowed"),
    case("deny-not-action", with_statements(RUNBOOK, {"Sid": "Read only", "Effect": "Deny", "Principal": "*", "NotAction": "kms:Describe*", "Resource": "*"}),
         NODES, "kms:Encrypt", "denied", deny_sids=("Read only",)),
    case("deny-not-action-spares-describe", with_statements(RUNBOOK, {"Sid": "Read only", "Effect": "Deny", "Principal": "*", "NotAction": "kms:Describe*",
                                                                      "Resource": "*"}),
         NODES, "kms:DescribeKey", "allowed"),
    case("service-principal", policy(allow({"Service": "autoscaling.amazonaws.com"}, USE_ACTIONS, "Service")), ASG, "kms:Decrypt", "implicitly_denied",
         says="never matches an IAM user or role"),
    case("service-principal-session", policy(allow({"Service": ["ec2.amazonaws.com", "autoscaling.amazonaws.com"]}, USE_ACTIONS)), ASG_SESSION,
         "kms:Decrypt", "implicitly_denied"),
    case("deny-principal-arn-like", with_statements(RUNBOOK, DENY_NODES_ARNLIKE), NODES, "kms:Decrypt", "denied", deny_sids=("No kops nodes",)),
    case("deny-principal-arn-like-not-provisioning", with_statements(RUNBOOK, DENY_NODES_ARNLIKE), PROV, "kms:Decrypt", "allowed"),
    case("deny-principal-arn-like-session-unknown", with_statements(RUNBOOK, DENY_NODES_ARNLIKE), NODES_SESSION, "kms:Decrypt", "conditional",
         deny_sids=("No kops nodes",), says="conditional at most",
         conditions=({"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{MM}:role/nodes.*"}},)),
    case("deny-principal-arn-like-session-known", with_statements(RUNBOOK, DENY_NODES_ARNLIKE), NODES_SESSION, "kms:Decrypt", "denied",
         context={"aws:PrincipalArn": NODES}),
    case("role-name-case", policy(allow(NODES.replace("nodes.", "Nodes."), USE_ACTIONS)), NODES, "kms:Decrypt", "implicitly_denied",
         says="letter case"),
    case("deleted-role-unique-id", policy(allow("AROAEXAMPLEID1234567", USE_ACTIONS)), NODES, "kms:Decrypt", "implicitly_denied",
         says="deleted"),
    case("reencrypt-api-name-is-not-an-action", policy(allow(NODES, ["kms:ReEncrypt", "kms:Decrypt"], "API names")), NODES, "kms:ReEncryptFrom",
         "implicitly_denied", says="kms:ReEncrypt is not an IAM action"),

    # -- role paths, service-linked roles and sessions ------------------------------------------------------
    case("asg-slr-with-path", policy(allow(ASG, USE_ACTIONS, "ASG")), ASG, "kms:Decrypt", "allowed"),
    case("asg-slr-session-matches-role", policy(allow(ASG, USE_ACTIONS, "ASG")), ASG_SESSION, "kms:GenerateDataKeyWithoutPlaintext", "allowed"),
    case("asg-slr-without-path", policy(allow(f"arn:aws:iam::{MM}:role/AWSServiceRoleForAutoScaling", USE_ACTIONS)), ASG, "kms:Decrypt",
         "implicitly_denied", says="another path"),
    case("asg-grant-for-aws-resource", policy(ASG_GRANT), ASG_SESSION, "kms:CreateGrant", "allowed", context=GRANT_FOR_AWS),
    case("grant-condition-on-non-grant-action", policy(allow(NODES, ["kms:Decrypt", "kms:CreateGrant"], "Grants only",
                                                             {"Bool": {"kms:GrantIsForAWSResource": True}})),
         NODES, "kms:Decrypt", "implicitly_denied"),
    case("session-principal-in-policy-only-that-session", policy(allow(NODES_SESSION, USE_ACTIONS)), NODES, "kms:Decrypt", "implicitly_denied"),

    # -- wildcards ------------------------------------------------------------------------------------------
    case("reencrypt-star-from", policy(allow(NODES, "kms:ReEncrypt*")), NODES, "kms:ReEncryptFrom", "allowed"),
    case("reencrypt-star-to", policy(allow(NODES, "kms:ReEncrypt*")), NODES, "kms:ReEncryptTo", "allowed"),
    case("generate-data-key-star-pair", policy(allow(NODES, "kms:GenerateDataKey*")), NODES, "kms:GenerateDataKeyPair", "allowed"),
    case("generate-data-key-star-pair-noplain", policy(allow(NODES, "kms:GenerateDataKey*")), NODES, "kms:GenerateDataKeyPairWithoutPlaintext",
         "allowed"),
    case("generate-data-key-star-not-decrypt", policy(allow(NODES, "kms:GenerateDataKey*")), NODES, "kms:Decrypt", "implicitly_denied"),
    case("kms-star", policy(allow(NODES, "kms:*")), NODES, "kms:CreateGrant", "allowed"),
    case("star", policy(allow(EXAMPLE_ROLE, "*")), EXAMPLE_ROLE, "kms:ScheduleKeyDeletion", "allowed"),
    case("star-cross-account-admin-never", policy(allow(NODES, "*")), NODES, "kms:ScheduleKeyDeletion", "implicitly_denied",
         says="never lets a principal of another account"),
    case("describe-star", policy(allow(NODES, "kms:Describe*")), NODES, "kms:DescribeKey", "allowed"),
    case("describe-star-not-decrypt", policy(allow(NODES, "kms:Describe*")), NODES, "kms:Decrypt", "implicitly_denied"),
    case("action-case-insensitive", policy(allow(NODES, "KMS:decrypt")), NODES, "kms:Decrypt", "allowed"),
    case("question-mark-wildcard", policy(allow(NODES, "kms:?ncrypt")), NODES, "kms:Encrypt", "allowed"),
    case("other-service-action", policy(allow(NODES, "s3:*")), NODES, "kms:Decrypt", "implicitly_denied"),

    # -- string and list forms ------------------------------------------------------------------------------
    case("statement-as-object", {"Version": "2012-10-17", "Statement": allow(NODES, "kms:Decrypt")}, NODES, "kms:Decrypt", "allowed"),
    case("principal-list", policy(allow([PROV, NODES], ["kms:Decrypt"], resource=["*"])), NODES, "kms:Decrypt", "allowed"),
    case("principal-bare-account", policy(allow(MM, "kms:Decrypt", "Acct")), NODES, "kms:Decrypt", "delegated_to_iam", allow_sids=("Acct",)),
    case("principal-bare-account-list", policy(allow([MM], "kms:Decrypt")), PROV, "kms:Decrypt", "delegated_to_iam", allow_sids=("#0",)),
    case("principal-string-star-public", policy(allow("*", "kms:Decrypt", "Public")), NODES, "kms:Decrypt", "allowed", says="every principal"),
    case("principal-aws-star-public", policy(allow({"AWS": "*"}, "kms:Decrypt")), NODES, "kms:Decrypt", "allowed"),
    case("principal-star-caller-account", policy(allow({"AWS": "*"}, "kms:Decrypt", "MM account", {"StringEquals": {"kms:CallerAccount": MM}})),
         NODES, "kms:Decrypt", "delegated_to_iam"),
    case("principal-star-caller-account-list", policy(allow({"AWS": ["*"]}, "kms:Decrypt", "Other", {"StringEquals": {"kms:CallerAccount": [EXTERNAL]}})),
         NODES, "kms:Decrypt", "implicitly_denied"),
    case("principal-star-principal-arn", policy(allow("*", "kms:Decrypt", "By ARN", {"ArnLike": {"aws:PrincipalArn": [f"arn:aws:iam::{MM}:role/nodes.*"]}})),
         NODES, "kms:Decrypt", "allowed"),
    case("principal-star-principal-arn-other", policy(allow("*", "kms:Decrypt", "By ARN", {"ArnEquals": {"aws:PrincipalArn": MASTERS}})),
         NODES, "kms:Decrypt", "implicitly_denied"),
    case("root-principal-list-and-role", policy(allow({"AWS": [f"arn:aws:iam::{MM}:root", NODES]}, "kms:Decrypt", "Both")), NODES, "kms:Decrypt",
         "allowed"),

    # -- conditions -----------------------------------------------------------------------------------------
    case("encryption-context-unknown", policy(allow(NODES, "kms:Decrypt", "Ctx", {"StringEquals": {"kms:EncryptionContext:aws:rds:db-id": "db-ABC"}})),
         NODES, "kms:Decrypt", "conditional", conditions=({"StringEquals": {"kms:EncryptionContext:aws:rds:db-id": "db-ABC"}},)),
    case("if-exists-missing-key", policy(allow(NODES, "kms:Decrypt", "IfExists", {"StringEqualsIfExists": EC2})),
         NODES, "kms:Decrypt", "allowed"),
    case("if-exists-key-present-mismatch", policy(allow(NODES, "kms:Decrypt", "IfExists", {"StringEqualsIfExists": EC2})),
         NODES, "kms:Decrypt", "implicitly_denied", context=RDS),
    case("null-true-missing", policy(allow(NODES, "kms:Decrypt", "Null", {"Null": {"kms:ViaService": "true"}})), NODES, "kms:Decrypt", "allowed"),
    case("null-false-missing", policy(allow(NODES, "kms:Decrypt", "Null", {"Null": {"kms:ViaService": "false"}})), NODES, "kms:Decrypt",
         "implicitly_denied"),
    case("null-false-present", policy(allow(NODES, "kms:Decrypt", "Null", {"Null": {"kms:ViaService": False}})), NODES, "kms:Decrypt", "allowed",
         context=EC2),
    case("values-or", policy(allow(NODES, "kms:Decrypt", "Two services",
                                   {"StringEquals": {"kms:ViaService": ["ec2.us-east-1.amazonaws.com", "rds.us-east-1.amazonaws.com"]}})),
         NODES, "kms:Decrypt", "allowed", context=RDS),
    case("keys-and", policy(allow("*", "kms:Decrypt", "Two keys",
                                  {"StringEquals": {"kms:ViaService": "ec2.us-east-1.amazonaws.com", "kms:CallerAccount": CUSTOMER}})),
         NODES, "kms:Decrypt", "implicitly_denied", context=EC2),
    case("operators-and", policy(allow(NODES, "kms:Decrypt", "Two ops", dict(EC2_ONLY, Bool={"aws:SecureTransport": "true"}))),
         NODES, "kms:Decrypt", "conditional", context=EC2, conditions=({"Bool": {"aws:SecureTransport": "true"}},)),
    case("string-not-equals-unknown", policy(allow(NODES, "kms:Decrypt", "NotEq", {"StringNotEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}})),
         NODES, "kms:Decrypt", "conditional"),
    case("string-not-equals-known-absent", policy(allow(NODES, "kms:Decrypt", "NotEq", {"StringNotEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}})),
         NODES, "kms:Decrypt", "allowed", context={"kms:ViaService": None}),
    case("string-not-equals-nor", policy(allow(NODES, "kms:Decrypt", "NotEq",
                                               {"StringNotEquals": {"kms:ViaService": ["s3.us-east-1.amazonaws.com", "rds.us-east-1.amazonaws.com"]}})),
         NODES, "kms:Decrypt", "implicitly_denied", context=RDS),
    case("string-equals-ignore-case", policy(allow(NODES, "kms:Decrypt", "IC", {"StringEqualsIgnoreCase": {"kms:ViaService": "RDS.US-EAST-1.amazonaws.com"}})),
         NODES, "kms:Decrypt", "allowed", context=RDS),
    case("string-like", policy(allow(NODES, "kms:Decrypt", "Like", {"StringLike": {"kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::acme-*"}})),
         NODES, "kms:Decrypt", "allowed", context={"kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::acme-files"}),
    case("arn-not-like-principal", policy(allow("*", "kms:Decrypt", "Except masters",
                                                {"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{MM}:role/masters.*"},
                                                 "StringEquals": {"aws:PrincipalAccount": MM}})),
         NODES, "kms:Decrypt", "delegated_to_iam"),
    case("for-any-value-grant-operations", policy(allow(ASG, "kms:CreateGrant", "Ops", {"ForAnyValue:StringEquals": {"kms:GrantOperations": ["Decrypt"]}})),
         ASG, "kms:CreateGrant", "allowed", context={"kms:GrantOperations": ["Encrypt", "Decrypt"]}),
    case("for-all-values-grant-operations", policy(allow(ASG, "kms:CreateGrant", "Ops", {"ForAllValues:StringEquals": {"kms:GrantOperations": ["Decrypt"]}})),
         ASG, "kms:CreateGrant", "implicitly_denied", context={"kms:GrantOperations": ["Encrypt", "Decrypt"]}),
    case("grantee-principal", policy(allow(NODES, "kms:CreateGrant", "Grantee", {"StringEquals": {"kms:GranteePrincipal": ASG}})),
         NODES, "kms:CreateGrant", "allowed", context={"kms:GranteePrincipal": ASG}),
    case("numeric", policy(allow(NODES, "kms:Decrypt", "Num", {"NumericLessThanEquals": {"aws:MultiFactorAuthAge": "3600"}})),
         NODES, "kms:Decrypt", "allowed", context={"aws:MultiFactorAuthAge": 120}),
    case("date", policy(allow(NODES, "kms:Decrypt", "Until", {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}})),
         NODES, "kms:Decrypt", "implicitly_denied", context={"aws:CurrentTime": "2031-06-01T00:00:00Z"}),
    case("ip-address", policy(allow(NODES, "kms:Decrypt", "Net", {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})),
         NODES, "kms:Decrypt", "allowed", context={"aws:SourceIp": "10.1.2.3"}),
    case("policy-variable", policy(allow("*", "kms:Decrypt", "Own account", {"StringEquals": {"kms:CallerAccount": "${aws:ResourceAccount}"}})),
         OTHER_USER, "kms:Decrypt", "delegated_to_iam"),
    case("account-scoped-star-root-caller", policy(allow("*", "kms:Decrypt", "Own account", {"StringEquals": {"kms:CallerAccount": CUSTOMER}})),
         ROOT, "kms:Decrypt", "allowed"),
    case("deny-unresolved-makes-conditional", with_statements(RUNBOOK, deny("*", "kms:*", "Only through RDS", NOT_RDS)),
         NODES, "kms:Decrypt", "conditional", allow_sids=("Allow use of the key role nodes",), deny_sids=("Only through RDS",),
         conditions=(NOT_RDS,)),
    case("deny-unresolved-settled-by-context", with_statements(RUNBOOK, deny("*", "kms:*", "Only through RDS", NOT_RDS)),
         NODES, "kms:Decrypt", "allowed", context=RDS),
    case("deny-resolved-by-context", with_statements(RUNBOOK, deny("*", "kms:*", "Only through RDS", NOT_RDS)),
         NODES, "kms:Decrypt", "denied", context=EC2),
    case("deny-unresolved-without-allow", policy(deny("*", "kms:*", "D", {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}})),
         NODES, "kms:Decrypt", "implicitly_denied"),
]


@pytest.mark.parametrize("doc, principal, action, context, decision, allow_sids, deny_sids, says, conditions", CASES)
def test_policy_cases(doc, principal, action, context, decision, allow_sids, deny_sids, says, conditions):
    v = evaluate(doc, Requirement(principal, action, context), KEY)
    assert isinstance(v, Verdict)
    assert (v.principal, v.action) == (principal, action)
    assert v.decision == decision, v.explanation
    if allow_sids is not None:
        assert v.allow_statements == allow_sids, v.explanation
    if deny_sids is not None:
        assert v.deny_statements == deny_sids, v.explanation
    if says:
        assert says in v.explanation
    if conditions is not None:
        assert v.conditions == conditions
    if decision != "conditional":
        assert v.conditions == ()
    assert v.explanation.endswith(".") and "\n" not in v.explanation
    # The same policy as JSON text gives the same verdict.
    assert evaluate(json.dumps(doc), Requirement(principal, action, context), KEY) == v


def test_enough_cases():
    assert len(CASES) >= 40


# -- the action list ---------------------------------------------------------------------------------------
def test_kms_actions_from_botocore():
    botocore = pytest.importorskip("botocore.session")
    ops = botocore.get_session().get_service_model("kms").operation_names
    assert KMS_ACTIONS == tuple(sorted(KMS_ACTIONS))
    assert "kms:ReEncrypt" not in KMS_ACTIONS
    assert {"kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:CreateGrant", "kms:Decrypt"} <= set(KMS_ACTIONS)
    assert len(KMS_ACTIONS) == len(ops) + 1
    assert all(a.startswith("kms:") for a in KMS_ACTIONS)


@pytest.mark.parametrize("pattern, expected", [
    ("kms:ReEncrypt*", {"kms:ReEncryptFrom", "kms:ReEncryptTo"}),
    ("kms:GenerateDataKey*", {"kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:GenerateDataKeyPair",
                              "kms:GenerateDataKeyPairWithoutPlaintext"}),
    ("kms:Describe*", {"kms:DescribeKey", "kms:DescribeCustomKeyStores"}),
    ("KMS:decrypt", {"kms:Decrypt"}),
    ("kms:?ncrypt", {"kms:Encrypt"}),
    ("s3:*", set()),
    ("kms:ReEncrypt", set()),
    ("kms:NoSuchThing", set()),
])
def test_expand_actions(pattern, expected):
    assert expand_actions(pattern) == frozenset(expected)


def test_expand_everything():
    assert expand_actions("*") == frozenset(KMS_ACTIONS) == expand_actions("kms:*")


# -- parsing -----------------------------------------------------------------------------------------------
def test_parse_policy_normalizes():
    doc = {"Statement": {"Effect": "Allow", "Principal": {"AWS": NODES, "Service": "ec2.amazonaws.com"}, "Action": "kms:Decrypt",
                         "Resource": "*", "Condition": {"Bool": {"kms:GrantIsForAWSResource": True}, "NumericLessThan": {"x:n": 3}}}}
    assert parse_policy(json.dumps(doc)) == {
        "Version": "2008-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": [NODES], "Service": ["ec2.amazonaws.com"]}, "Action": ["kms:Decrypt"],
                       "Resource": ["*"], "Condition": {"Bool": {"kms:GrantIsForAWSResource": ["true"]}, "NumericLessThan": {"x:n": ["3"]}}}],
    }


def test_parse_policy_keeps_sid_id_and_not_elements():
    doc = {"Version": "2012-10-17", "Id": "k", "Statement": [
        {"Sid": "S", "Effect": "Deny", "NotPrincipal": {"AWS": [ROOT]}, "NotAction": "kms:Describe*", "NotResource": KEY}]}
    assert parse_policy(doc) == {"Version": "2012-10-17", "Id": "k", "Statement": [
        {"Sid": "S", "Effect": "Deny", "NotPrincipal": {"AWS": [ROOT]}, "NotAction": ["kms:Describe*"], "NotResource": [KEY]}]}
    assert parse_policy(policy(allow("*", "kms:*")))["Statement"][0]["Principal"] == "*"


@pytest.mark.parametrize("doc, message", [
    ("{not json", "not JSON"),
    ("[]", "must be a JSON object"),
    ({"Version": "2012-10-17"}, "no Statement"),
    ({"Statement": []}, "non-empty list"),
    ({"Statement": "x"}, "non-empty list"),
    ({"Statement": ["x"]}, "Statement[0] must be an object"),
    ({"Statement": [{"Principal": "*", "Action": "kms:*", "Resource": "*"}]}, "Statement[0] has no Effect"),
    ({"Statement": [allow(NODES, "kms:*"), {"Sid": "B", "Principal": "*", "Action": "kms:*", "Resource": "*"}]}, "Statement[1] (Sid 'B') has no Effect"),
    (policy(dict(allow(NODES, "kms:*"), Effect="allow")), "must be \"Allow\" or \"Deny\""),
    (policy(dict(allow(NODES, "kms:*"), NotAction="kms:Decrypt")), "has both Action and NotAction"),
    (policy({"Effect": "Allow", "Principal": "*", "Resource": "*"}), "has no Action (or NotAction)"),
    (policy({"Effect": "Allow", "Action": "kms:*", "Resource": "*"}), "has no Principal (or NotPrincipal)"),
    (policy(dict(allow(NODES, "kms:*"), Principal=NODES)), "must be \"*\" or an object"),
    (policy(allow({"AWS": f"arn:aws:iam::{MM}:role/nodes.*"}, "kms:*")), "wildcard"),
    (policy(allow({"AWS": "nodes-role"}, "kms:*")), "is not an AWS principal"),
    (policy(allow({"aws": NODES}, "kms:*")), "principal type 'aws'"),
    (policy(allow(NODES, "Decrypt")), "is not an action"),
    (policy(allow(NODES, [])), "non-empty list of strings"),
    (policy(allow(NODES, "kms:*", resource=7)), "Resource must be a string"),
    (policy(allow(NODES, "kms:*", condition={"StringEqual": {"kms:ViaService": "x"}})), "unknown condition operator 'StringEqual'"),
    (policy(allow(NODES, "kms:*", condition={"ForSomeValues:StringEquals": {"a:b": "x"}})), "set qualifiers"),
    (policy(allow(NODES, "kms:*", condition={"Null": {"kms:ViaService": "yes"}})), "Null takes"),
    (policy(allow(NODES, "kms:*", condition={"NumericLessThan": {"a:b": "many"}})), "not a number"),
    (policy(allow(NODES, "kms:*", condition={"DateLessThan": {"aws:CurrentTime": "tomorrow"}})), "not a date"),
    (policy(allow(NODES, "kms:*", condition={"IpAddress": {"aws:SourceIp": "10.0.0.300/8"}})), "not an IP address"),
    (policy(allow(NODES, "kms:*", condition={"StringEquals": {"a:b": {"x": 1}}})), "must be a string, number, boolean"),
    (policy(allow(NODES, "kms:*", condition={"StringEquals": {}})), "non-empty object"),
    (policy(allow(NODES, "kms:*", condition=["x"])), "must be an object of operator"),
    (policy(dict(allow(NODES, "kms:*"), Actions="kms:Decrypt")), "unknown element(s) 'Actions'"),
    ({"Version": "2012-10-18", "Statement": [allow(NODES, "kms:*")]}, "Version '2012-10-18'"),
    ({"Statement": [allow(NODES, "kms:*")], "Policy": 1}, "unknown top-level element(s) 'Policy'"),
])
def test_malformed(doc, message):
    with pytest.raises(PolicyDocumentError) as e:
        parse_policy(doc)
    assert message in str(e.value)
    with pytest.raises(PolicyDocumentError):
        evaluate(doc, Requirement(NODES, "kms:Decrypt"), KEY)
    with pytest.raises(PolicyDocumentError):
        evaluate_all(doc, [Requirement(NODES, "kms:Decrypt")], KEY)


# -- requirements and the API ------------------------------------------------------------------------------
@pytest.mark.parametrize("req, message", [
    (Requirement(NODES, "kms:Decrypt*"), "no wildcards"),
    (Requirement(NODES, "Decrypt"), "no wildcards"),
    (Requirement("nodes.acme01", "kms:Decrypt"), "not an IAM principal ARN"),
    (Requirement(f"arn:aws:iam::{MM}:role/*", "kms:Decrypt"), "not an IAM principal ARN"),
    (Requirement(NODES, "kms:Decrypt", ["x"]), "must be a dict"),
])
def test_bad_requirement(req, message):
    with pytest.raises(ValueError) as e:
        evaluate(RUNBOOK, req, KEY)
    assert message in str(e.value)


@pytest.mark.parametrize("key", [KEY_ID, "alias/acme", f"arn:aws:kms:us-east-1:{CUSTOMER}:alias/acme", None])
def test_bad_key_arn(key):
    with pytest.raises(ValueError) as e:
        evaluate(RUNBOOK, Requirement(NODES, "kms:Decrypt"), key)
    assert "not a KMS key ARN" in str(e.value)


def test_evaluate_all_in_order():
    reqs = [Requirement(p, a) for p in (PROV, NODES, MASTERS) for a in ("kms:Decrypt", "kms:CreateGrant")]
    verdicts = evaluate_all(json.dumps(RUNBOOK), reqs, KEY)
    assert [(v.principal, v.action, v.decision) for v in verdicts] == [
        (PROV, "kms:Decrypt", "allowed"), (PROV, "kms:CreateGrant", "implicitly_denied"),
        (NODES, "kms:Decrypt", "allowed"), (NODES, "kms:CreateGrant", "implicitly_denied"),
        (MASTERS, "kms:Decrypt", "implicitly_denied"), (MASTERS, "kms:CreateGrant", "implicitly_denied"),
    ]


def test_requirement_context_defaults_and_positional():
    r = Requirement(NODES, "kms:Decrypt")
    assert not r.context
    assert Requirement(NODES, "kms:Decrypt", {"a": 1}).context == {"a": 1}
    assert Requirement(NODES, "kms:Decrypt").context is not r.context


def test_principal_keys_are_filled_but_context_wins():
    doc = policy(allow("*", "kms:Decrypt", "Acct", {"StringEquals": {"aws:PrincipalAccount": MM, "aws:PrincipalType": "AssumedRole"}}))
    assert evaluate(doc, Requirement(NODES, "kms:Decrypt"), KEY).decision == "delegated_to_iam"
    assert evaluate(doc, Requirement(PROV, "kms:Decrypt"), KEY).decision == "implicitly_denied"
    assert evaluate(doc, Requirement(NODES, "kms:Decrypt", {"aws:PrincipalAccount": EXTERNAL}), KEY).decision == "implicitly_denied"


def test_explicit_deny_names_the_allow_it_overrides():
    v = evaluate(with_statements(RUNBOOK, DENY_NODES_ARNLIKE), Requirement(NODES, "kms:Decrypt"), KEY)
    assert "'No kops nodes' explicitly denies" in v.explanation
    assert "'Allow use of the key role nodes'" in v.explanation


def test_runbook_with_missing_statements_added():
    """The runbook plus what EBS/Aurora/Auto Scaling need: CreateGrant for AWS resources, the masters role, the ASG account grant."""
    doc = with_statements(
        RUNBOOK,
        allow([PROV, NODES, MASTERS], ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"], "Allow attachment of persistent resources",
              {"Bool": {"kms:GrantIsForAWSResource": True}}),
        allow(MASTERS, USE_ACTIONS, "Allow use of the key role masters"),
        allow(f"arn:aws:iam::{MM}:root", USE_ACTIONS + ["kms:CreateGrant"], "Allow the provider account to create the Auto Scaling grant"),
    )
    reqs = [Requirement(p, "kms:CreateGrant", GRANT_FOR_AWS) for p in (PROV, NODES, MASTERS)]
    reqs += [Requirement(MASTERS, a) for a in USE_IAM_ACTIONS]
    assert {v.decision for v in evaluate_all(doc, reqs, KEY)} == {"allowed"}
    # The direct CreateGrant for the ASG service-linked role comes from the provider account's IAM.
    assert evaluate(doc, Requirement(PROV, "kms:CreateGrant", {"kms:GrantIsForAWSResource": False}), KEY).decision == "delegated_to_iam"


# -- issue 14 item 8: statements without Resource, actions KMS never allows across accounts -------------------------
def no_resource(principal, actions, sid="NoResource", effect="Allow"):
    statement = allow(principal, actions, sid=sid)
    del statement["Resource"]
    statement["Effect"] = effect
    return statement


@pytest.mark.parametrize("doc, principal, action, decision, says", [
    pytest.param(policy(no_resource(NODES, "kms:Decrypt")), NODES, "kms:Decrypt", "implicitly_denied", "has no Resource element",
                 id="allow-without-resource-has-no-effect"),
    pytest.param(policy(no_resource(NODES, "kms:*"), allow(NODES, "kms:Decrypt", sid="Real")), NODES, "kms:Decrypt", "allowed", "'Real'",
                 id="allow-without-resource-beside-a-real-one"),
    pytest.param(policy(allow(NODES, "kms:Decrypt", sid="Use"), no_resource(NODES, "kms:Decrypt", sid="NoResDeny", effect="Deny")),
                 NODES, "kms:Decrypt", "allowed", "'Use'", id="deny-without-resource-has-no-effect"),
    pytest.param(policy(no_resource("*", "kms:*")), PROV, "kms:Encrypt", "implicitly_denied", "has no Resource element",
                 id="public-without-resource-has-no-effect"),
    pytest.param(policy(no_resource(ROOT, "kms:*")), EXAMPLE_USER, "kms:Decrypt", "implicitly_denied", "No statement allows",
                 id="account-without-resource-delegates-nothing"),
])
def test_statement_without_resource_is_ignored_not_rejected(doc, principal, action, decision, says):
    v = evaluate(doc, Requirement(principal, action), KEY)
    assert v.decision == decision, v.explanation
    assert says in v.explanation
    kept = [st for st in parse_policy(doc)["Statement"] if st.get("Sid", "").startswith("NoRes")]
    assert kept and all("Resource" not in st and "NotResource" not in st for st in kept)  # kept as saved: nothing invented


CROSS_ACCOUNT_OK = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom",
                    "kms:ReEncryptTo", "kms:GenerateDataKeyPair", "kms:Sign", "kms:Verify", "kms:GenerateMac", "kms:VerifyMac",
                    "kms:CreateGrant", "kms:DescribeKey", "kms:GetKeyRotationStatus", "kms:GetPublicKey", "kms:ListGrants",
                    "kms:RetireGrant", "kms:RevokeGrant"]
CROSS_ACCOUNT_NEVER = ["kms:PutKeyPolicy", "kms:GetKeyPolicy", "kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:EnableKey",
                       "kms:CreateAlias", "kms:TagResource", "kms:UpdateKeyDescription", "kms:ImportKeyMaterial",
                       "kms:GetParametersForImport", "kms:EnableKeyRotation", "kms:ListResourceTags", "kms:RotateKeyOnDemand"]


@pytest.mark.parametrize("action", CROSS_ACCOUNT_OK)
@pytest.mark.parametrize("principal", [NODES, PROV, f"arn:aws:iam::{MM}:root", NODES_SESSION])
def test_cross_account_operations_follow_the_key_policy(principal, action):
    assert evaluate(policy(allow(principal if principal != NODES_SESSION else NODES, "kms:*")), Requirement(principal, action), KEY).decision \
        == "allowed"


@pytest.mark.parametrize("action", CROSS_ACCOUNT_NEVER)
@pytest.mark.parametrize("principal, statement", [
    (NODES, allow(NODES, "kms:*")), (PROV, allow(PROV, "*")), (f"arn:aws:iam::{MM}:root", allow(MM, "kms:*")),
    (NODES, allow("*", "kms:*")), (EXTERNAL_ROLE, allow(f"arn:aws:iam::{EXTERNAL}:root", "kms:*")),
])
def test_actions_kms_never_allows_across_accounts(principal, statement, action):
    v = evaluate(policy(statement), Requirement(principal, action), KEY)
    assert v.decision == "implicitly_denied", v.explanation
    assert "never lets a principal of another account" in v.explanation


@pytest.mark.parametrize("action", CROSS_ACCOUNT_NEVER)
def test_the_key_owner_keeps_its_administrative_actions(action):
    assert evaluate(policy(allow(ROOT, "kms:*")), Requirement(EXAMPLE_USER, action), KEY).decision == "delegated_to_iam"
    assert evaluate(policy(allow(ADMIN_ROLE, "kms:*")), Requirement(ADMIN_ROLE, action), KEY).decision == "allowed"
