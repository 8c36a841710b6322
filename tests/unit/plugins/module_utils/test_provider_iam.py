# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The provider-side IAM plan (provider_iam), the server's onboarding statement and the canary's credentials."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.kms import provider_iam
from ansible_collections.mattermost.byok.plugins.module_utils.s3 import canary as s3_canary
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.customer_config import provider_principals
from ansible_collections.mattermost.byok.plugins.module_utils.kms.key_policy import Requirement
from ansible_collections.mattermost.byok.plugins.module_utils.kms.key_policy import evaluate_all
from ansible_collections.mattermost.byok.plugins.module_utils.kms.onboarding_policy import SID_SERVER
from ansible_collections.mattermost.byok.plugins.module_utils.kms.onboarding_policy import key_policy_statements
from ansible_collections.mattermost.byok.plugins.module_utils.kms.onboarding_policy import required_access

MM = "222222222222"
KEY = "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"
SERVER = f"arn:aws:iam::{MM}:user/mattermost-acme01inst"
SERVER_ROLE = f"arn:aws:iam::{MM}:role/mattermost-acme02inst"
AUTOMATION = f"arn:aws:iam::{MM}:role/mattermost-byok-automation"


def principals(*servers):
    return {**provider_principals(MM, "prod", "vpc-0ac0e000000000001", "acme01"), "server_identities": list(servers)}


# -- the server's statement in the key policy -------------------------------------------------------------------
@pytest.mark.parametrize("services, servers, present", [
    (["s3"], [SERVER], True), (["s3", "rds", "ebs"], [SERVER, SERVER_ROLE], True), (["rds", "ebs"], [SERVER], False),
    (["s3"], [], False), (["s3"], [SERVER, SERVER], True),
])
def test_the_server_statement_is_there_for_s3_with_a_server(services, servers, present):
    statements = key_policy_statements(principals(*servers), services, MM, "us-east-1", KEY)
    server = [s for s in statements if s["sid"] == SID_SERVER]
    assert bool(server) == present
    if present:
        [s] = server
        expected = sorted(set(servers))
        who = s["statement"]["Principal"]["AWS"]
        assert sorted([who] if isinstance(who, str) else who) == expected
        assert s["statement"]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
        assert "Condition" not in s["statement"]  # the IAM half (the managed policy) carries kms:ViaService
        assert s["reason"].count(".") == 1 and "S3" in s["reason"]  # one line
        assert not s["documented"]


def test_the_server_statement_satisfies_exactly_the_servers_requirements():
    p = principals(SERVER)
    statements = key_policy_statements(p, ["s3"], MM, "us-east-1", KEY)
    reqs = [r for r in required_access(p, ["s3"], MM, "us-east-1") if r["principal"] == SERVER]
    assert {r["action"] for r in reqs} == {"kms:Decrypt", "kms:GenerateDataKey"}
    policy = {"Version": "2012-10-17", "Statement": [s["statement"] for s in statements]}
    verdicts = evaluate_all(policy, [Requirement(r["principal"], r["action"], r["context"]) for r in reqs], KEY)
    assert [v.decision for v in verdicts] == ["allowed", "allowed"]
    # Not another action (the IAM half keeps it to requests through S3).
    other = evaluate_all(policy, [Requirement(SERVER, "kms:Encrypt", {"kms:ViaService": "s3.us-east-1.amazonaws.com"}),
                                  Requirement(SERVER, "kms:CreateGrant", {"kms:ViaService": "s3.us-east-1.amazonaws.com"})], KEY)
    assert [v.decision for v in other] == ["implicitly_denied", "implicitly_denied"]


@pytest.mark.parametrize("bad", ["mattermost-acme01inst", "arn:aws:iam::222222222222:group/g", "arn:aws:s3:::bucket", 5])
def test_a_server_identity_that_is_not_a_user_or_role_arn_is_refused(bad):
    with pytest.raises(ValueError, match=r"principals.server_identities\[0\]"):
        key_policy_statements(principals(bad), ["s3"], MM, "us-east-1", KEY)


def test_server_identities_must_be_a_list():
    with pytest.raises(ValueError, match="must be a list"):
        key_policy_statements({**principals(), "server_identities": SERVER}, ["s3"], MM, "us-east-1", KEY)


# -- the provider-side plan ---------------------------------------------------------------------------------------
def test_requirements_cover_every_provider_principal_and_the_automation_role():
    reqs = provider_iam.requirements(principals(SERVER), ["s3", "rds", "ebs"], MM, "us-east-1", AUTOMATION)
    names = {r["principal_name"] for r in reqs}
    assert names == {"provisioning_user", "nodes_role", "masters_role", "server_identities[0]", "automation_role"}
    automation = {(r["action"], r["context"]["kms:ViaService"]) for r in reqs if r["principal_name"] == "automation_role"}
    assert ("kms:DescribeKey", None) in automation and ("kms:Decrypt", "s3.us-east-1.amazonaws.com") in automation
    assert ("kms:CreateGrant", "ec2.us-east-1.amazonaws.com") in automation and ("kms:CreateGrant", "rds.us-east-1.amazonaws.com") in automation


@pytest.mark.parametrize("name, arn, route", [
    ("provisioning_user", f"arn:aws:iam::{MM}:user/p", "managed_policy"), ("server_identities[0]", SERVER, "managed_policy"),
    ("server_identities[1]", SERVER_ROLE, "managed_policy"), ("nodes_role", f"arn:aws:iam::{MM}:role/nodes.x", "kops_spec"),
    ("masters_role", f"arn:aws:iam::{MM}:role/masters.x", "kops_spec"), ("automation_role", AUTOMATION, "none"),
])
def test_fix_routes(name, arn, route):
    assert provider_iam.fix_route(name, arn) == route


def test_policy_names_are_per_key_and_purpose():
    assert provider_iam.policy_name(KEY, "server") == "mattermost-byok-0acbe000-0000-4000-8000-000000000001-server"
    assert provider_iam.policy_arn(MM, KEY, "provisioning") == (
        f"arn:aws:iam::{MM}:policy/mattermost-byok/mattermost-byok-0acbe000-0000-4000-8000-000000000001-provisioning")
    assert provider_iam.purpose_of("server_identities[3]") == "server" and provider_iam.purpose_of("nodes_role") == "nodes"


@pytest.mark.parametrize("context, entries", [
    ({"kms:ViaService": "s3.us-east-1.amazonaws.com"},
     [{"ContextKeyName": "kms:ViaService", "ContextKeyValues": ["s3.us-east-1.amazonaws.com"], "ContextKeyType": "string"}]),
    ({"kms:ViaService": None}, []),
    ({"kms:GrantIsForAWSResource": True}, [{"ContextKeyName": "kms:GrantIsForAWSResource", "ContextKeyValues": ["true"], "ContextKeyType": "boolean"}]),
    ({"kms:GrantIsForAWSResource": False}, [{"ContextKeyName": "kms:GrantIsForAWSResource", "ContextKeyValues": ["false"], "ContextKeyType": "boolean"}]),
    ({"kms:GrantOperations": ["Decrypt", "Encrypt"]},
     [{"ContextKeyName": "kms:GrantOperations", "ContextKeyValues": ["Decrypt", "Encrypt"], "ContextKeyType": "stringList"}]),
    ({}, []),
])
def test_context_entries(context, entries):
    assert provider_iam.context_entries(context) == entries


def test_simulation_groups_one_call_per_principal_and_context():
    reqs = provider_iam.requirements(principals(SERVER), ["s3"], MM, "us-east-1")
    groups = provider_iam.simulation_groups(reqs)
    keys = [(g["principal"], json.dumps(g["context"], sort_keys=True)) for g in groups]
    assert len(keys) == len(set(keys))
    assert sum(len(g["requirements"]) for g in groups) == len(reqs)
    [server] = [g for g in groups if g["principal"] == SERVER]
    assert sorted(r["action"] for r in server["requirements"]) == ["kms:Decrypt", "kms:GenerateDataKey"]


def _allowed(statements, action, context):
    """A small reading of the generated statements: does one of them admit (action, context)?"""
    for s in statements:
        if action not in s["Action"] or s["Resource"] != KEY:
            continue
        cond = s.get("Condition", {})
        via = cond.get("StringEquals", {}).get("kms:ViaService")
        if via is not None and context.get("kms:ViaService") not in via:
            continue
        if cond.get("Bool", {}).get("kms:GrantIsForAWSResource") == "true" and context.get("kms:GrantIsForAWSResource") is not True:
            continue
        grantee = cond.get("StringEquals", {}).get("kms:GranteePrincipal")
        if grantee is not None and context.get("kms:GranteePrincipal") != grantee:
            continue
        return True
    return False


@pytest.mark.parametrize("services", [["s3"], ["rds"], ["ebs"], ["s3", "rds", "ebs"]])
@pytest.mark.parametrize("name", ["provisioning_user", "nodes_role", "masters_role", "server_identities[0]"])
def test_generated_statements_allow_every_requirement_of_the_principal(services, name):
    reqs = [r for r in provider_iam.requirements(principals(SERVER), services, MM, "us-east-1") if r["principal_name"] == name]
    if not reqs:
        pytest.skip(f"{name} needs nothing for {services}")
    statements = provider_iam.statements_for(reqs, KEY, provider_iam.purpose_of(name))
    assert all(_allowed(statements, r["action"], r["context"]) for r in reqs)
    assert len({s["Sid"] for s in statements}) == len(statements)
    assert all(s["Resource"] == KEY for s in statements)  # the full key ARN, never "*"


def test_the_server_gets_only_decrypt_and_generate_data_key_through_s3():
    reqs = [r for r in provider_iam.requirements(principals(SERVER), ["s3", "rds", "ebs"], MM, "us-east-1")
            if r["principal"] == SERVER]
    assert provider_iam.statements_for(reqs, KEY, "server") == [{
        "Sid": "MattermostByokServerKey0", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": KEY,
        "Condition": {"StringEquals": {"kms:ViaService": ["s3.us-east-1.amazonaws.com"]}}}]


def test_a_direct_call_is_never_folded_under_a_service_condition():
    reqs = [{"action": "kms:DescribeKey", "context": {"kms:ViaService": None}},
            {"action": "kms:DescribeKey", "context": {"kms:ViaService": "rds.us-east-1.amazonaws.com"}}]
    [statement] = provider_iam.statements_for(reqs, KEY, "provisioning")
    assert "Condition" not in statement  # the direct call needs it unconditioned


def test_kops_additional_policies_only_for_kops_roles():
    reqs = provider_iam.requirements(principals(SERVER), ["ebs"], MM, "us-east-1")
    missing = {name: [r for r in reqs if r["principal_name"] == name] for name in ("nodes_role", "masters_role", "provisioning_user")}
    policies = provider_iam.kops_additional_policies(missing, KEY)
    assert set(policies) == {"node", "master"}
    assert all(s["Resource"] == KEY for statements in policies.values() for s in statements)
    assert provider_iam.kops_additional_policies({"nodes_role": []}, KEY) == {}


@pytest.mark.parametrize("document", [
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY}]},
    json.dumps({"Statement": [{"Resource": KEY, "Action": "kms:Decrypt", "Effect": "Allow"}], "Version": "2012-10-17"}),
    quote(json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY}]})),
])
def test_documents_compare_whatever_form_iam_returns(document):
    assert provider_iam.normalize_document(document) == provider_iam.normalize_document(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY}]})


@pytest.mark.parametrize("arn, kind", [(SERVER, ("user", "mattermost-acme01inst")), (SERVER_ROLE, ("role", "mattermost-acme02inst")),
                                       (f"arn:aws:iam::{MM}:user/path/to/u", ("user", "u"))])
def test_principal_kind(arn, kind):
    assert provider_iam.principal_kind(arn) == kind


@pytest.mark.parametrize("bad", ["", "u", f"arn:aws:sts::{MM}:assumed-role/r/s", f"arn:aws:iam::{MM}:root", f"arn:aws:iam::{MM}:group/g"])
def test_principal_kind_refuses_other_arns(bad):
    with pytest.raises(provider_iam.ProviderIamError, match="IAM user or role"):
        provider_iam.principal_kind(bad)


def test_describe_missing_names_actions_and_how_they_are_called():
    text = provider_iam.describe_missing(SERVER, [{"action": "kms:Decrypt", "context": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}},
                                                  {"action": "kms:DescribeKey", "context": {"kms:ViaService": None}}])
    assert SERVER in text and "kms:Decrypt (through s3.us-east-1.amazonaws.com)" in text and "kms:DescribeKey (a direct call)" in text


# -- the canary's credentials and headers ---------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ('{"ID": "AKIA1", "Secret": "s1"}', {"aws_access_key_id": "AKIA1", "aws_secret_access_key": "s1", "aws_session_token": None}),
    ('{"AccessKeyId": "AKIA2", "SecretAccessKey": "s2"}', {"aws_access_key_id": "AKIA2", "aws_secret_access_key": "s2", "aws_session_token": None}),
])
def test_access_key_from_the_provisioners_secret(text, expected):
    assert s3_canary.access_key_from_secret(text, "v") == expected


@pytest.mark.parametrize("text, says", [
    ("not json", "not a JSON object"), ("[1]", "not a JSON object"), (None, "not a JSON object"),
    ('{"ID": "AKIA1"}', "found ID"), ('{"ID": "", "Secret": "s3cr3t-value"}', "expected the fields ID and Secret"), ("{}", "found none"),
    ('{"Secret": "s3cr3t-value", "Note": 1}', "found Note, Secret"),
])
def test_unreadable_secrets_name_the_variable_and_never_the_secret(text, says):
    with pytest.raises(s3_canary.CanaryCredentialsError) as e:
        s3_canary.access_key_from_secret(text, "byok_mattermost_installations[0].canary_credentials.secret")
    assert str(e.value).startswith("byok_mattermost_installations[0].canary_credentials.secret: ") and says in str(e.value)
    assert "s3cr3t-value" not in str(e.value)


@pytest.mark.parametrize("sse_on, headers", [(True, {"ServerSideEncryption": "AES256"}), (False, {})])
def test_the_canary_sends_the_servers_headers(sse_on, headers):
    assert s3_canary.server_write_headers(sse_on) == headers


@pytest.mark.parametrize("head, on_key", [
    ({"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KEY}, True), ({"ServerSideEncryption": "AES256"}, False),
    ({"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KEY.replace("0001", "0002")}, False), ({}, False),
])
def test_on_key(head, on_key):
    assert s3_canary.on_key(head, KEY) is on_key


def test_kops_statements_of_two_keys_with_a_common_prefix_keep_their_own_sids():
    other = KEY.replace("000000000001", "000000000002")
    reqs = provider_iam.requirements(principals(), ["ebs"], MM, "us-east-1")
    nodes = [r for r in reqs if r["principal_name"] == "nodes_role"]
    first = provider_iam.kops_additional_policies({"nodes_role": nodes}, KEY)["node"]
    second = provider_iam.kops_additional_policies({"nodes_role": nodes}, other)["node"]
    assert not {s["Sid"] for s in first} & {s["Sid"] for s in second}
    assert all(s["Sid"].isalnum() for s in first + second)


BATCH_ROLE = f"arn:aws:iam::{MM}:role/mattermost-byok-s3-batch"


def test_the_batch_job_role_statement_satisfies_its_requirements_and_gets_a_managed_policy():
    """The key check verifies the S3 Batch Operations role like the server (the rendered statement allows exactly
    its requirements), and iam_kms_access gives it its IAM half as a managed policy of its own."""
    p = {**principals(), "batch_job_role": BATCH_ROLE}
    statements = key_policy_statements(p, ["s3"], MM, "us-east-1", KEY)
    reqs = [r for r in required_access(p, ["s3"], MM, "us-east-1") if r["principal"] == BATCH_ROLE]
    assert {r["action"] for r in reqs} == {"kms:Decrypt", "kms:GenerateDataKey"}
    policy = {"Version": "2012-10-17", "Statement": [s["statement"] for s in statements]}
    verdicts = evaluate_all(policy, [Requirement(r["principal"], r["action"], r["context"]) for r in reqs], KEY)
    assert [v.decision for v in verdicts] == ["allowed", "allowed"]
    without = {"Version": "2012-10-17", "Statement": [s["statement"] for s in statements if "Batch" not in s["sid"]]}
    assert {v.decision for v in evaluate_all(without, [Requirement(r["principal"], r["action"], r["context"]) for r in reqs], KEY)} \
        == {"implicitly_denied"}
    provider = [r for r in provider_iam.requirements(p, ["s3"], MM, "us-east-1") if r["principal"] == BATCH_ROLE]
    assert provider and provider_iam.fix_route(provider[0]["principal_name"], BATCH_ROLE) == "managed_policy"
    assert provider_iam.purpose_of("batch_job_role") == "s3-batch-job"
