# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The demo fleet runs under exactly the shipped IAM policies (docs/iam/) with the local AWS enforcing IAM.

A private local AWS is seeded with the demo fleet; the base user gets docs/iam/byok-base-policy.json, the
automation role (byok_assume_role_arn) exactly docs/iam/byok-automation-policy.json and nothing else; then every
request is authorized (moto's reset-auth, with tests/local_aws/extensions/iam_auth.py so that scoped Resources are
evaluated on the request's ARNs) and byok.yml runs as the base user. Every call the run makes is compared with the
shipped policy: a call it does not cover means a module or role changed its calls, and scripts/least-privilege must
be re-run. The negative, in the same run: a sixth customer shaped like acme, whose byok_assume_role_arn names a
role holding the shipped policy without kms:DescribeKey (the base user may also assume that role), is stopped
with AccessDenied while the others are not.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from tests.integration import runner
from tests.tools import least_privilege as lp

INVENTORY = str(Path(runner.DEMO_INVENTORY) / "hosts.yml")
SHIPPED = lp.DOCS_IAM


def shipped(name: str) -> dict:
    return json.loads((SHIPPED / name).read_text())


def without_action(policy: dict, action: str) -> dict:
    """The policy with ``action`` removed from every statement (statements left empty are dropped)."""
    policy = copy.deepcopy(policy)
    statements = []
    for statement in policy["Statement"]:
        actions = [a for a in lp._listed(statement["Action"]) if a != action]  # pylint: disable=protected-access
        if actions:
            statements.append({**statement, "Action": actions})
    policy["Statement"] = statements
    return policy


# A sixth customer, shaped like acme, whose role lacks kms:DescribeKey: the negative runs in the same playbook run.
DENIED_CUSTOMER = "acmedeny"
DENIED_ACCOUNT = "111111111109"
DENIED_KEY = f"arn:aws:kms:us-east-1:{DENIED_ACCOUNT}:key/0acbe000-0000-4000-8000-000000000009"
DENIED_ROLE = "mattermost-byok-automation-without-describe-key"


def denied_customer_vars(role_arn: str | None = None) -> dict:
    host_vars = runner.demo_host_vars("acme")
    host_vars.pop("byok_mattermost_installations", None)  # acme's installation writes acme's bucket, not this customer's
    host_vars.update({"byok_customer_account_id": DENIED_ACCOUNT, "byok_vpc_id": "vpc-0acbe000000000009",
                      "byok_kops_cluster_id": "acmedeny01", "byok_keys": {"all": DENIED_KEY},
                      "byok_s3_buckets": ["mattermost-acmedeny-filestore"],
                      "byok_rds_clusters": [{"identifier": "acmedeny-db", "region": "us-east-1"}],
                      "demo_expected_outcome": "failed"})
    if role_arn:
        host_vars["byok_assume_role_arn"] = role_arn
    return host_vars


def write_denied_customer(inventory: Path, role_arn: str | None = None) -> None:
    (inventory / "host_vars" / f"{DENIED_CUSTOMER}.yml").write_text(yaml.safe_dump(denied_customer_vars(role_arn)))


@pytest.fixture(scope="module")
def enforced(tmp_path_factory: pytest.TempPathFactory):
    """A private local AWS with the demo fleet (and the denied customer), the shipped identities, a call log,
    and IAM enforcement on."""
    work = tmp_path_factory.mktemp("least-privilege")
    inventory = work / "inventory"
    runner.copy_demo_inventory(str(inventory))
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
    hosts["all"]["children"]["dedicated"]["hosts"][DENIED_CUSTOMER] = None
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    write_denied_customer(inventory)
    call_log = work / "calls.jsonl"
    with lp.start_local_aws(call_log, work / "local-aws.log") as aws:
        runner.seed(aws.endpoint_url, str(inventory))
        settings = lp.inventory_settings(INVENTORY)
        account = settings["account"]
        credentials = lp.install_identities(aws, settings["role_arn"], shipped(lp.AUTOMATION_POLICY), shipped(lp.BASE_POLICY))
        # The denied customer's role: the shipped policy without kms:DescribeKey; the base user may assume it too.
        denied_role_arn = f"arn:aws:iam::{account}:role/{DENIED_ROLE}"
        iam = aws.client("iam", account)
        trust = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}]}
        iam.create_role(RoleName=DENIED_ROLE, AssumeRolePolicyDocument=json.dumps(trust))
        iam.put_role_policy(RoleName=DENIED_ROLE, PolicyName=lp.AUTOMATION_POLICY_NAME,
                            PolicyDocument=json.dumps(without_action(shipped(lp.AUTOMATION_POLICY), "kms:DescribeKey")))
        iam.put_user_policy(UserName=lp.BASE_USER, PolicyName="assume-the-denied-role",
                            PolicyDocument=json.dumps(lp.assume_role_policy(denied_role_arn)))
        write_denied_customer(inventory, denied_role_arn)
        lp.set_enforcement(aws.endpoint_url, True)
        try:
            call_log.write_text("")
            artifacts = work / "artifacts"
            result = lp.run(aws.endpoint_url, str(inventory / "hosts.yml"), "playbooks/byok.yml", artifacts, credentials,
                            work / "resource-actions.jsonl", *lp.ALLOW_DISRUPTION)
        finally:
            lp.set_enforcement(aws.endpoint_url, False)
        yield {"result": result, "artifacts": artifacts, "calls": lp.read_jsonl(call_log),
               "expected": {**settings["expected"], DENIED_CUSTOMER: "failed"},
               "identities": lp.identities_for(settings["role_arn"]), "denied": lp.identities_for(denied_role_arn)}


def test_the_demo_runs_under_exactly_the_shipped_policies(enforced):
    result, calls, identities = enforced["result"], enforced["calls"], enforced["identities"]
    ours = [c for c in calls if lp.identity_of(c["principal"], identities)]
    assert ours, "the call log is empty: is the local AWS's iam_auth extension loaded?"
    assert all(c["enforced"] for c in ours)

    # Every call of the run is one the shipped policies cover, per identity: otherwise re-derive them.
    for identity, name in (("automation", lp.AUTOMATION_POLICY), ("base", lp.BASE_POLICY)):
        missing = [m for m in lp.uncovered(calls, shipped(name), identities, identity) if not m.endswith(f"role/{DENIED_ROLE}")]
        assert not missing, f"docs/iam/{name} does not cover calls the playbook makes now: {missing}; run scripts/least-privilege"
    denied = sorted({f"{c['action']} on {c['resources']}" for c in ours if not c["allowed"]})
    assert not denied, f"denied under the shipped policy: {denied}"

    # Every demo customer ended as the demo inventory says (hooli is stopped by its key policy, not by IAM).
    assert lp.unexpected_outcomes(lp.outcomes(enforced["artifacts"]), enforced["expected"]) == [], result.stdout[-4000:]
    assert {c["action"].split(":")[0] for c in ours} >= {"sts", "kms", "s3", "rds", "ec2"}


def test_without_kms_describe_key_the_customer_is_stopped_with_access_denied(enforced):
    artifacts = enforced["artifacts"]
    customers = json.loads((artifacts / "fleet-summary.json").read_text())["customers"]
    [outcome] = [c["outcome"] for c in customers if c["customer"] == DENIED_CUSTOMER]
    assert outcome["status"] == "failed" and "AccessDeniedException" in outcome["message"], outcome
    [check] = json.loads((artifacts / "key-checks" / f"{DENIED_CUSTOMER}.json").read_text())
    assert [f["code"] for f in check["findings"] if f["severity"] == "error"] == ["KEY_ACCESS_DENIED"]
    refused = [c for c in enforced["calls"] if not c["allowed"] and lp.identity_of(c["principal"], enforced["denied"]) == "automation"]
    assert {c["action"] for c in refused} == {"kms:DescribeKey"}
    assert refused[0]["resources"] == [DENIED_KEY]
    assert enforced["result"].returncode != 0  # the fleet summary fails the run for the failed customers


# --- the derivation itself (no local AWS) ---------------------------------------------------------------------

def test_resource_arns_generalize_to_every_customer():
    assert lp.generalize("arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001") == "arn:aws:kms:*:*:key/*"
    assert lp.generalize("arn:aws:s3:::mattermost-acme-filestore/a/b.txt") == "arn:aws:s3:::mattermost-*/*"
    assert lp.generalize("arn:aws:s3:::mattermost-acme-filestore") == "arn:aws:s3:::mattermost-*"
    assert lp.generalize("arn:aws:s3:::elsewhere", ["mattermost-*"]) == "arn:aws:s3:::elsewhere"
    assert lp.generalize("arn:aws:rds:eu-west-1:222222222222:cluster:acme-db") == "arn:aws:rds:*:*:cluster:*"
    assert lp.generalize("arn:aws:rds::222222222222:global-cluster:g") == "arn:aws:rds::*:global-cluster:*"
    assert lp.generalize("arn:aws:ec2:us-east-1::snapshot/snap-1") == "arn:aws:ec2:*::snapshot/*"
    assert lp.generalize("arn:aws:iam::222222222222:role/mattermost-byok-automation") == "arn:aws:iam::*:role/mattermost-byok-automation"


def test_real_aws_resource_actions_map_to_iam_actions():
    observed = lp.Observed()
    observed.add_resource_actions([
        {"module": "mattermost.byok.s3_bucket_kms", "resource_actions": ["s3:CopyObject", "s3:GetBucketEncryption", "kms:DescribeKey"]},
        {"module": "amazon.aws.sts_assume_role", "resource_actions": ["sts:AssumeRole"]},
        {"module": "mattermost.byok.encryption_audit_info", "resource_actions": []}], "apply")
    automation = observed.permissions["automation"]
    assert automation["s3:GetObject"] == automation["s3:PutObject"] == {"arn:aws:s3:::mattermost-*/*"}
    assert automation["s3:GetEncryptionConfiguration"] == {"arn:aws:s3:::mattermost-*"}
    assert automation["kms:DescribeKey"] == {"arn:aws:kms:*:*:key/*"}
    assert set(observed.permissions["base"]) == {"sts:AssumeRole"}


def test_policy_groups_per_service_and_adds_kms_use_on_our_behalf():
    policy = lp.build_policy({"kms:DescribeKey": {"arn:aws:kms:*:*:key/*"}, "s3:PutObject": {"arn:aws:s3:::mattermost-*/*"},
                              "ec2:DescribeVolumes": {"*"}, "ec2:CopySnapshot": {"arn:aws:ec2:*::snapshot/*"}})
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["Ec2Unscoped"]["Action"] == ["ec2:DescribeVolumes"] and by_sid["Ec2Unscoped"]["Resource"] == "*"
    assert by_sid["Ec2Snapshots"]["Action"] == ["ec2:CopySnapshot"]
    via = by_sid["KmsKeysUsedByServicesOnOurBehalf"]
    assert "kms:GenerateDataKey" in via["Action"] and "kms:CreateGrant" in via["Action"]
    assert via["Condition"] == {"StringLike": {"kms:ViaService": ["ec2.*.amazonaws.com", "s3.*.amazonaws.com"]}}
    assert lp.allows(policy, "kms:describekey", "arn:aws:kms:us-east-1:111111111101:key/k")
    assert not lp.allows(policy, "kms:Decrypt", "arn:aws:kms:us-east-1:111111111101:key/k")  # only via S3/EC2
    identities = lp.identities_for("arn:aws:iam::222222222222:role/r")
    calls = [{"principal": "arn:aws:sts::222222222222:assumed-role/r/byok-acme", "action": "kms:Decrypt", "resources": ["arn:aws:kms:x:1:key/k"]},
             {"principal": "arn:aws:sts::222222222222:assumed-role/r/byok-acme", "action": "sts:GetCallerIdentity", "resources": ["*"]},
             {"principal": "arn:aws:sts::222222222222:assumed-role/other/s", "action": "iam:CreateUser", "resources": ["*"]}]
    assert lp.uncovered(calls, policy, identities, "automation") == ["kms:Decrypt on arn:aws:kms:x:1:key/k"]
