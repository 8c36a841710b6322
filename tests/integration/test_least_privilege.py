# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The demo fleet runs under exactly the shipped IAM policies (docs/iam/) with the local AWS enforcing IAM.

A private local AWS is seeded with the demo fleet; the base user gets docs/iam/byok-base-policy.json, the
automation role (byok_assume_role_arn) exactly docs/iam/byok-automation-policy.json and nothing else; then every
request is authorized (moto's reset-auth, with tests/local_aws/extensions/iam_auth.py so that scoped Resources are
evaluated on the request's ARNs) and byok.yml runs as the base user. Every call the run makes is compared with the
shipped policy: a call it does not cover means a module or role changed its calls, and scripts/least-privilege must
be re-run. The negative: the same policy without kms:DescribeKey stops the customer with AccessDenied.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def enforced(tmp_path_factory: pytest.TempPathFactory):
    """A private local AWS with the demo fleet, the shipped identities, a call log, and IAM enforcement on."""
    work = tmp_path_factory.mktemp("least-privilege")
    call_log = work / "calls.jsonl"
    with lp.start_local_aws(call_log, work / "local-aws.log") as aws:
        runner.seed(aws.endpoint_url)
        settings = lp.inventory_settings(INVENTORY)
        credentials = lp.install_identities(aws, settings["role_arn"], shipped(lp.AUTOMATION_POLICY), shipped(lp.BASE_POLICY))
        lp.set_enforcement(aws.endpoint_url, True)
        try:
            yield {"aws": aws, "work": work, "log": call_log, "settings": settings, "credentials": credentials,
                   "identities": lp.identities_for(settings["role_arn"])}
        finally:
            lp.set_enforcement(aws.endpoint_url, False)


def run_demo(enforced: dict, name: str, *args: str):
    enforced["log"].write_text("")
    artifacts = enforced["work"] / name
    result = lp.run(enforced["aws"].endpoint_url, INVENTORY, "playbooks/byok.yml", artifacts, enforced["credentials"],
                    enforced["work"] / f"{name}-resource-actions.jsonl", *args)
    return result, artifacts, lp.read_jsonl(enforced["log"])


def test_the_demo_runs_under_exactly_the_shipped_policies(enforced):
    result, artifacts, calls = run_demo(enforced, "apply")
    ours = [c for c in calls if lp.identity_of(c["principal"], enforced["identities"])]
    assert ours, "the call log is empty: is the local AWS's iam_auth extension loaded?"
    assert all(c["enforced"] for c in ours)

    # Every call of the run is one the shipped policies cover, per identity: otherwise re-derive them.
    for identity, name in (("automation", lp.AUTOMATION_POLICY), ("base", lp.BASE_POLICY)):
        missing = lp.uncovered(calls, shipped(name), enforced["identities"], identity)
        assert not missing, f"docs/iam/{name} does not cover calls the playbook makes now: {missing}; run scripts/least-privilege"
    denied = sorted({f"{c['action']} on {c['resources']}" for c in ours if not c["allowed"]})
    assert not denied, f"denied under the shipped policy: {denied}"

    # Every customer ended as the demo inventory says (hooli is stopped by its key policy, not by IAM).
    assert lp.unexpected_outcomes(lp.outcomes(artifacts), enforced["settings"]["expected"]) == [], result.stdout[-4000:]
    assert "AccessDenied" not in result.stdout
    assert {c["action"].split(":")[0] for c in ours} >= {"sts", "kms", "s3", "rds", "ec2"}


def test_without_kms_describe_key_the_customer_is_stopped_with_access_denied(enforced):
    aws, role_arn = enforced["aws"], enforced["settings"]["role_arn"]
    lp.set_enforcement(aws.endpoint_url, False)  # the harness may change IAM; the playbook's run is enforced again
    try:
        enforced["credentials"] = lp.install_identities(aws, role_arn, without_action(shipped(lp.AUTOMATION_POLICY), "kms:DescribeKey"),
                                                        shipped(lp.BASE_POLICY))
    finally:
        lp.set_enforcement(aws.endpoint_url, True)

    result, artifacts, calls = run_demo(enforced, "no-describe-key", "-l", "acme", "--tags", "key_check")

    assert result.returncode != 0
    assert lp.outcomes(artifacts) == {"acme": "failed"}
    [acme] = json.loads((artifacts / "fleet-summary.json").read_text())["customers"]
    assert "AccessDeniedException" in acme["outcome"]["message"], acme["outcome"]
    [check] = json.loads((artifacts / "key-checks" / "acme.json").read_text())
    assert [f["code"] for f in check["findings"] if f["severity"] == "error"] == ["KEY_ACCESS_DENIED"]
    denied = [c for c in calls if not c["allowed"] and lp.identity_of(c["principal"], enforced["identities"]) == "automation"]
    assert denied and {c["action"] for c in denied} == {"kms:DescribeKey"}
    assert denied[0]["resources"] == ["arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"]
