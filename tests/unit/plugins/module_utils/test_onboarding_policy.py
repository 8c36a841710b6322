# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import copy
import itertools
import json

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.fleet.customer_config import provider_principals
from ansible_collections.mattermost.byok.plugins.module_utils.kms.onboarding_policy import GRANT_ACTIONS
from ansible_collections.mattermost.byok.plugins.module_utils.kms.onboarding_policy import USE_ACTIONS
from ansible_collections.mattermost.byok.plugins.module_utils.kms.onboarding_policy import key_policy_statements
from ansible_collections.mattermost.byok.plugins.module_utils.kms.onboarding_policy import required_access

PROVIDER = "222222222222"
REGION = "us-east-1"
VPC = "vpc-0ac0e000000000001"
CLUSTER = "acme01"
KEY = "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"
PRINCIPALS = provider_principals(PROVIDER, "prod", VPC, CLUSTER)
USER = PRINCIPALS["provisioning_user"]
NODES = PRINCIPALS["nodes_role"]
MASTERS = PRINCIPALS["masters_role"]
ASG = f"arn:aws:iam::{PROVIDER}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"

# Step 2 of "Configure BYOK" in the runbook (mattermost-cloud-byok.txt), verbatim.
RUNBOOK_BLOCKS = """\
{
    "Sid": "Allow use of the key",
    "Effect": "Allow",
    "Principal": {
        "AWS": "arn:aws:iam::<MATTERMOST_AWS_ACCOUNT_ID>:user/mattermost-cloud-<environment>-provisioning-<VPC_ID>"
    },
    "Action": [
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:ReEncrypt*",
        "kms:GenerateDataKey*",
        "kms:DescribeKey"
    ],
    "Resource": "<CUSTOM_CUSTOMER_KMS_ID>"
},
{
    "Sid": "Allow use of the key role nodes",
    "Effect": "Allow",
    "Principal": {
        "AWS": "arn:aws:iam::<MATTERMOST_AWS_ACCOUNT_ID>:role/nodes.<CLUSTER_ID>-kops.k8s.local"
    },
    "Action": [
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:ReEncrypt*",
        "kms:GenerateDataKey*",
        "kms:DescribeKey"
    ],
    "Resource": "<CUSTOM_CUSTOMER_KMS_ID>"
},
"""

ALL_COMBINATIONS = [list(c) for n in (1, 2, 3) for c in itertools.combinations(("s3", "rds", "ebs"), n)]
SID_USE = "Allow use of the key"
SID_NODES = "Allow use of the key role nodes"
SID_MASTERS = "Allow use of the key role masters"
SID_GRANTS = "Allow attachment of persistent resources"
SID_ASG = "Allow grant to the Auto Scaling service-linked role"
IAM_ACTIONS = {"kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
               "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey", "kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"}
EXPANDED = {"kms:ReEncrypt*": ["kms:ReEncryptFrom", "kms:ReEncryptTo"],
            "kms:GenerateDataKey*": ["kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext"]}


def runbook_text(key_arn: str) -> str:
    """The runbook's blocks with its placeholders filled in."""
    return (RUNBOOK_BLOCKS.replace("<MATTERMOST_AWS_ACCOUNT_ID>", PROVIDER).replace("<environment>", "prod")
            .replace("<VPC_ID>", VPC).replace("<CLUSTER_ID>", CLUSTER).replace("<CUSTOM_CUSTOMER_KMS_ID>", key_arn))


def as_runbook_prints(documented: list[dict]) -> str:
    """Statements written the way the runbook writes them: 4-space JSON, each followed by a comma."""
    return "".join(json.dumps(statement, indent=4) + ",\n" for statement in documented)


def statements(services, key_arn="*", principals=None, region=REGION):
    return key_policy_statements(principals or PRINCIPALS, services, PROVIDER, region, key_arn)


def by_sid(entries):
    return {e["sid"]: e for e in entries}


def names(statement):
    aws = statement["Principal"]["AWS"]
    return [aws] if isinstance(aws, str) else aws


# -- the documented statements --------------------------------------------------------------------------------
@pytest.mark.parametrize("services", ALL_COMBINATIONS, ids="-".join)
def test_documented_statements_are_the_runbook_text_exactly(services):
    documented = [e["statement"] for e in statements(services, KEY)[:2]]
    # Same keys in the same order, same values, same formatting as the runbook prints them.
    assert as_runbook_prints(documented) == runbook_text(KEY)
    assert json.loads("[" + runbook_text(KEY).rstrip().rstrip(",") + "]") == documented


def test_default_resource_is_this_key():
    documented = [e["statement"] for e in statements(["s3", "rds", "ebs"])[:2]]
    assert as_runbook_prints(documented) == runbook_text("*")
    assert all(e["statement"]["Resource"] == "*" for e in statements(["s3", "rds", "ebs"]))


def test_use_actions_are_the_runbooks_in_its_order():
    assert USE_ACTIONS == ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey")
    assert GRANT_ACTIONS == ("kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant")


@pytest.mark.parametrize("services", ALL_COMBINATIONS, ids="-".join)
def test_documented_come_first_and_only_they_are_marked(services):
    entries = statements(services)
    assert [e["sid"] for e in entries[:2]] == [SID_USE, SID_NODES]
    assert [e["documented"] for e in entries] == [True, True] + [False] * (len(entries) - 2)
    assert entries[0]["services"] == entries[1]["services"] == services


# -- what AWS also requires, per service combination ----------------------------------------------------------
@pytest.mark.parametrize("services", ALL_COMBINATIONS, ids="-".join)
def test_statements_for_every_service_combination(services):
    ebs, rds = "ebs" in services, "rds" in services
    expected = [SID_USE, SID_NODES] + ([SID_MASTERS] if ebs else []) + ([SID_GRANTS] if ebs or rds else []) + ([SID_ASG] if ebs else [])
    entries = statements(services, KEY)
    assert [e["sid"] for e in entries] == expected
    sids = by_sid(entries)
    if ebs:
        assert sids[SID_MASTERS]["services"] == ["ebs"]
        assert names(sids[SID_MASTERS]["statement"]) == [MASTERS]
        assert sids[SID_ASG]["services"] == ["ebs"]
    if ebs or rds:
        grants = sids[SID_GRANTS]
        assert grants["services"] == [s for s in ("rds", "ebs") if s in services]
        assert names(grants["statement"]) == ([USER, NODES, MASTERS] if ebs else [USER])
    for entry in entries:
        assert entry["statement"]["Sid"] == entry["sid"]
        assert entry["statement"]["Effect"] == "Allow"
        assert entry["statement"]["Resource"] == KEY
        assert entry["reason"] and "\n" not in entry["reason"]
        assert set(entry["services"]) <= set(services)
    json.dumps(entries)  # JSON-able as it is


def test_s3_needs_only_the_use_statements():
    entries = statements(["s3"])
    assert [e["sid"] for e in entries] == [SID_USE, SID_NODES]
    assert all(e["statement"]["Action"] == list(USE_ACTIONS) and "Condition" not in e["statement"] for e in entries)


def test_masters_statement_has_the_runbook_shape():
    masters = by_sid(statements(["ebs"], KEY))[SID_MASTERS]["statement"]
    assert list(masters) == ["Sid", "Effect", "Principal", "Action", "Resource"]
    assert masters == {"Sid": SID_MASTERS, "Effect": "Allow", "Principal": {"AWS": MASTERS}, "Action": list(USE_ACTIONS), "Resource": KEY}
    assert "etcd" in by_sid(statements(["ebs"]))[SID_MASTERS]["reason"]


def test_persistent_resources_statement():
    grants = by_sid(statements(["s3", "rds", "ebs"]))[SID_GRANTS]["statement"]
    assert grants == {
        "Sid": "Allow attachment of persistent resources", "Effect": "Allow", "Principal": {"AWS": [USER, NODES, MASTERS]},
        "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"], "Resource": "*",
        "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
    }
    rds_only = by_sid(statements(["rds"]))[SID_GRANTS]
    assert rds_only["statement"]["Principal"] == {"AWS": USER}
    assert "Aurora" in rds_only["reason"] and "EBS" not in rds_only["reason"]


def test_autoscaling_grant_statement():
    entry = by_sid(statements(["ebs"], KEY))[SID_ASG]
    assert entry["statement"] == {
        "Sid": SID_ASG, "Effect": "Allow", "Principal": {"AWS": USER}, "Action": "kms:CreateGrant", "Resource": KEY,
        "Condition": {
            "StringEquals": {"kms:GranteePrincipal": ASG},
            "ForAllValues:StringEquals": {"kms:GrantOperations": ["Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKey",
                                                                  "GenerateDataKeyWithoutPlaintext", "DescribeKey", "CreateGrant"]},
        },
    }
    assert "provider account" in entry["reason"] and "after the policy is saved" in entry["reason"]


def test_autoscaling_role_defaults_to_the_provider_accounts():
    principals = {k: v for k, v in PRINCIPALS.items() if k != "autoscaling_role"}
    entry = by_sid(statements(["ebs"], principals=principals))[SID_ASG]
    assert entry["statement"]["Condition"]["StringEquals"]["kms:GranteePrincipal"] == ASG


def test_sids_are_stable_and_unique():
    sids = [e["sid"] for e in statements(["s3", "rds", "ebs"])]
    assert sids == [SID_USE, SID_NODES, SID_MASTERS, SID_GRANTS, SID_ASG]
    assert statements(["ebs", "s3", "rds"]) == statements(["s3", "rds", "ebs"])


def test_masters_role_is_needed_only_for_ebs():
    principals = {k: v for k, v in PRINCIPALS.items() if k != "masters_role"}
    assert [e["sid"] for e in statements(["s3", "rds"], principals=principals)] == [SID_USE, SID_NODES, SID_GRANTS]
    with pytest.raises(ValueError, match="principals.masters_role"):
        statements(["ebs"], principals=principals)


def test_input_is_not_modified():
    principals, services = copy.deepcopy(PRINCIPALS), ["ebs", "s3"]
    statements(services, principals=principals)
    required_access(principals, services, PROVIDER, REGION)
    assert principals == PRINCIPALS and services == ["ebs", "s3"]


@pytest.mark.parametrize("services, fragment", [
    (["s3", "dynamodb"], "unknown service"),
    ([], "services: empty"),
    ("s3", "must be a list"),
    (None, "must be a list"),
])
def test_bad_services(services, fragment):
    with pytest.raises(ValueError, match=fragment):
        statements(services)
    with pytest.raises(ValueError, match=fragment):
        required_access(PRINCIPALS, services, PROVIDER, REGION)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"provider_account_id": "2222"}, "provider_account_id"),
    ({"region": "useast1"}, "region"),
    ({"key_arn": "alias/mattermost"}, "key_arn: 'alias/mattermost' is an alias"),
    ({"key_arn": "0acbe000-0000-4000-8000-000000000001"}, "bare key id"),
    ({"principals": {"provisioning_user": USER}}, "principals.nodes_role"),
    ({"principals": dict(PRINCIPALS, provisioning_user="mattermost")}, "principals.provisioning_user"),
])
def test_bad_arguments_name_the_argument(kwargs, fragment):
    args = {"principals": PRINCIPALS, "services": ["s3", "rds", "ebs"], "provider_account_id": PROVIDER, "region": REGION, "key_arn": "*"}
    args.update(kwargs)
    with pytest.raises(ValueError, match=fragment):
        key_policy_statements(**args)


# -- required_access ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("services", ALL_COMBINATIONS, ids="-".join)
def test_required_access_matches_the_statements(services):
    """Every requirement names a statement that grants it, and every statement's (principal, action) is required."""
    reqs = required_access(PRINCIPALS, services, PROVIDER, REGION)
    sids = by_sid(statements(services))
    expected = set()
    for sid, entry in sids.items():
        actions = entry["statement"]["Action"]
        for principal in names(entry["statement"]):
            for action in [actions] if isinstance(actions, str) else actions:
                expected |= {(sid, principal, a) for a in EXPANDED.get(action, [action])}
    assert {(r["sid"], r["principal"], r["action"]) for r in reqs} == expected
    for r in reqs:
        assert set(r) == {"principal", "principal_name", "action", "context", "services", "sid", "documented", "reason"}
        assert r["action"] in IAM_ACTIONS and "*" not in r["action"] and "Pair" not in r["action"]
        assert PRINCIPALS[r["principal_name"]] == r["principal"]
        assert r["principal_name"] in ("provisioning_user", "nodes_role", "masters_role")
        assert r["documented"] is sids[r["sid"]]["documented"]
        assert r["documented"] == (r["sid"] in (SID_USE, SID_NODES))
        assert r["services"] and set(r["services"]) <= set(sids[r["sid"]]["services"])
        assert r["reason"]
    json.dumps(reqs)


@pytest.mark.parametrize("services", ALL_COMBINATIONS, ids="-".join)
def test_use_is_required_through_each_service(services):
    reqs = required_access(PRINCIPALS, services, PROVIDER, "eu-west-1")
    via = {"s3": "s3.eu-west-1.amazonaws.com", "rds": "rds.eu-west-1.amazonaws.com", "ebs": "ec2.eu-west-1.amazonaws.com"}
    principals = [("provisioning_user", SID_USE), ("nodes_role", SID_NODES)] + ([("masters_role", SID_MASTERS)] if "ebs" in services else [])
    for name, sid in principals:
        for service in (services if name != "masters_role" else ["ebs"]):
            got = [r for r in reqs if r["principal_name"] == name and r["services"] == [service] and r["sid"] == sid and r["context"].get("kms:ViaService")]
            assert [r["action"] for r in got] == ["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
                                                  "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey"]
            assert all(r["context"] == {"kms:ViaService": via[service]} for r in got)
    # The provider calls DescribeKey on the key directly, with no service in between.
    direct = [r for r in reqs if r["context"] == {"kms:ViaService": None}]
    assert [(r["principal_name"], r["action"], r["services"], r["sid"]) for r in direct] == [("provisioning_user", "kms:DescribeKey", services, SID_USE)]


def test_grants_are_required_for_ebs_and_rds_with_their_context():
    reqs = required_access(PRINCIPALS, ["s3", "rds", "ebs"], PROVIDER, REGION)
    grants = [(r["principal_name"], r["action"], r["services"], r["context"]) for r in reqs if r["sid"] == SID_GRANTS]
    ec2 = {"kms:GrantIsForAWSResource": True, "kms:ViaService": "ec2.us-east-1.amazonaws.com"}
    rds = {"kms:GrantIsForAWSResource": True, "kms:ViaService": "rds.us-east-1.amazonaws.com"}
    assert grants == (
        [("provisioning_user", a, [s], c) for a in GRANT_ACTIONS for s, c in (("rds", rds), ("ebs", ec2))]
        + [("nodes_role", a, ["ebs"], ec2) for a in GRANT_ACTIONS]
        + [("masters_role", a, ["ebs"], ec2) for a in GRANT_ACTIONS]
    )
    assert not [r for r in reqs if r["action"] in GRANT_ACTIONS and "s3" in r["services"]]


def test_autoscaling_grant_requirement():
    reqs = required_access(PRINCIPALS, ["ebs"], PROVIDER, REGION)
    asg = [r for r in reqs if r["sid"] == SID_ASG]
    assert len(asg) == 1
    assert asg[0]["principal"] == USER and asg[0]["action"] == "kms:CreateGrant" and asg[0]["services"] == ["ebs"]
    assert asg[0]["context"]["kms:GranteePrincipal"] == ASG
    assert asg[0]["context"]["kms:GrantOperations"] == ["Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKey",
                                                        "GenerateDataKeyWithoutPlaintext", "DescribeKey", "CreateGrant"]
    assert asg[0]["context"]["kms:GrantIsForAWSResource"] is False  # a direct call, not one a service makes
    assert asg[0]["documented"] is False


def test_s3_only_requires_no_grant_and_only_documented_statements():
    reqs = required_access(PRINCIPALS, ["s3"], PROVIDER, REGION)
    assert {r["sid"] for r in reqs} == {SID_USE, SID_NODES}
    assert all(r["documented"] for r in reqs)
    assert {r["action"] for r in reqs} == IAM_ACTIONS - set(GRANT_ACTIONS)
    assert not [r for r in reqs if r["principal_name"] == "masters_role"]


def test_required_access_counts():
    count = {tuple(s): len(required_access(PRINCIPALS, s, PROVIDER, REGION)) for s in ALL_COMBINATIONS}
    # 7 use actions per principal and service, 1 direct DescribeKey, 3 grant actions per grantee and service, 1 ASG grant
    assert count[("s3",)] == 7 * 2 + 1
    assert count[("rds",)] == 7 * 2 + 1 + 3
    assert count[("ebs",)] == 7 * 3 + 1 + 3 * 3 + 1
    assert count[("s3", "rds", "ebs")] == 7 * 3 * 2 + 7 + 1 + 3 * 4 + 1


def test_china_regions_use_their_endpoint_suffix():
    reqs = required_access(PRINCIPALS, ["s3"], PROVIDER, "cn-north-1")
    assert {r["context"].get("kms:ViaService") for r in reqs} == {"s3.cn-north-1.amazonaws.com.cn", None}


# -- the automation role (byok_assume_role_arn) ---------------------------------------------------------------
AUTOMATION = f"arn:aws:iam::{PROVIDER}:role/mattermost-byok-automation"
SID_AUTOMATION = "Allow use of the key BYOK automation"


def with_automation():
    return dict(PRINCIPALS, automation_role=AUTOMATION)


@pytest.mark.parametrize("services", ALL_COMBINATIONS, ids="-".join)
def test_automation_role_is_a_principal_of_the_key_when_the_run_assumes_it(services):
    sids = by_sid(statements(services, principals=with_automation()))
    entry = sids[SID_AUTOMATION]
    assert entry["statement"] == {"Sid": SID_AUTOMATION, "Effect": "Allow", "Principal": {"AWS": AUTOMATION},
                                  "Action": list(USE_ACTIONS), "Resource": "*"}
    assert entry["documented"] is False and entry["services"] == [s for s in ("s3", "rds", "ebs") if s in services]
    assert "BYOK automation role" in entry["reason"]
    # RDS and EBS create grants for the resources the automation creates on the key; S3 uses none.
    grants = sids.get(SID_GRANTS)
    assert (AUTOMATION in names(grants["statement"])) == bool({"rds", "ebs"} & set(services)) if grants else services == ["s3"]
    # The runbook's statements are unchanged by it.
    assert as_runbook_prints([e["statement"] for e in statements(services, KEY, with_automation()) if e["documented"]]) == runbook_text(KEY)


def test_no_automation_statement_without_an_automation_role():
    assert SID_AUTOMATION not in by_sid(statements(["s3", "rds", "ebs"]))
    assert not [r for r in required_access(PRINCIPALS, ["s3", "rds", "ebs"], PROVIDER, REGION) if r["principal"] == AUTOMATION]


def test_automation_role_requirements():
    reqs = [r for r in required_access(with_automation(), ["s3", "rds", "ebs"], PROVIDER, REGION) if r["principal"] == AUTOMATION]
    assert {r["principal_name"] for r in reqs} == {"automation_role"}
    # Its probe and checks call KMS directly; its copies and creations go through each service.
    assert ("kms:DescribeKey", SID_AUTOMATION) in {(r["action"], r["sid"]) for r in reqs if r["context"] == {"kms:ViaService": None}}
    s3 = {r["action"] for r in reqs if r["context"] == {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}
    assert {"kms:Decrypt", "kms:GenerateDataKey"} <= s3
    grants = {(r["action"], r["context"]["kms:ViaService"]) for r in reqs if r["sid"] == SID_GRANTS}
    assert grants == {(a, f"{svc}.us-east-1.amazonaws.com") for a in GRANT_ACTIONS for svc in ("rds", "ec2")}


def test_batch_job_role_gets_its_own_s3_statement_with_a_reason_and_is_required():
    batch_role = "arn:aws:iam::222222222222:role/byok-s3-batch"
    base = {"provisioning_user": "arn:aws:iam::222222222222:user/prov", "nodes_role": "arn:aws:iam::222222222222:role/nodes.c"}
    statements = key_policy_statements({**base, "batch_job_role": batch_role}, ["s3", "rds"], "222222222222", "us-east-1")
    mine = [s for s in statements if s["sid"] == "Allow use of the key S3 Batch Operations"]
    assert len(mine) == 1 and mine[0]["services"] == ["s3"] and "S3 Batch Operations" in mine[0]["reason"]
    assert mine[0]["statement"]["Principal"] == {"AWS": batch_role}
    assert mine[0]["statement"]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"] and not mine[0]["documented"]
    needed = [r for r in required_access({**base, "batch_job_role": batch_role}, ["s3"], "222222222222", "us-east-1")
              if r["principal_name"] == "batch_job_role"]
    assert {(r["action"], r["context"]["kms:ViaService"]) for r in needed} == {
        ("kms:Decrypt", "s3.us-east-1.amazonaws.com"), ("kms:GenerateDataKey", "s3.us-east-1.amazonaws.com")}
    assert all(r["sid"] == "Allow use of the key S3 Batch Operations" for r in needed)
    # Without S3 among the services, or without the role, no statement.
    assert not [s for s in key_policy_statements({**base, "batch_job_role": batch_role}, ["rds"], "222222222222", "us-east-1")
                if s["sid"] == "Allow use of the key S3 Batch Operations"]
    assert not [s for s in key_policy_statements(base, ["s3"], "222222222222", "us-east-1")
                if s["sid"] == "Allow use of the key S3 Batch Operations"]
