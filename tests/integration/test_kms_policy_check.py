# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kms_policy_check through Ansible against the local AWS: each unfit key gives its own clear error."""

from __future__ import annotations

import json
import uuid

import yaml

from ansible_collections.mattermost.byok.plugins.module_utils.fleet.customer_config import validate_customer
from ansible_collections.mattermost.byok.plugins.module_utils.kms.onboarding_policy import key_policy_statements
from tests.integration import runner
from tests.integration.test_audit import client

CUSTOMER = "111111111180"
PROVIDER = "222222222222"
VARIABLES = {
    "byok_customer_account_id": CUSTOMER, "byok_provider_account_id": PROVIDER, "byok_environment": "demo",
    "byok_region": "us-east-1", "byok_vpc_id": "vpc-0c0ec000000000080", "byok_kops_cluster_id": "checkco01",
    "byok_services": ["s3", "rds", "ebs"], "byok_keys": {"all": "arn:aws:kms:us-east-1:111111111180:key/00000000-0000-4000-8000-000000000000"},
    "byok_s3_buckets": ["b-checkco"], "byok_rds_clusters": ["checkco-db"], "byok_kops_state_store": "s3://state",
}


def full_policy(config, services=("s3", "rds", "ebs")):
    statements = [{"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{CUSTOMER}:root"},
                   "Action": "kms:*", "Resource": "*"}]
    statements += [s["statement"] for s in key_policy_statements(config["principals"], list(services), PROVIDER, "us-east-1")]
    return {"Version": "2012-10-17", "Statement": statements}


def run_checks(endpoint, tmp_path, cases, *args):
    """One playbook: a kms_policy_check task per case, every result written to results.json."""
    tasks = []
    for name, params in cases.items():
        tasks.append({"name": name, "mattermost.byok.kms_policy_check": {**params, "fail_on_error": False}, "register": "r_" + name,
                      "ignore_errors": True})
    tasks.append({"name": "Save", "ansible.builtin.copy": {
        "dest": str(tmp_path / "results.json"), "mode": "0600",
        "content": "{{ {" + ", ".join(f"'{n}': r_{n}" for n in cases) + "} | to_json }}"}, "check_mode": False})
    playbook = [{"name": "Checks", "hosts": "localhost", "gather_facts": False, "tasks": tasks,
                 "module_defaults": {"group/mattermost.byok.byok": {"region": "us-east-1"}},
                 "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"}}]
    path = tmp_path / "checks.yml"
    path.write_text(yaml.safe_dump(playbook, sort_keys=False))
    proc = runner.run_playbook(endpoint, "localhost,", str(tmp_path), "-c", "local", *args, playbook=str(path),
                               extra_env=runner.account_credentials(endpoint, PROVIDER))
    assert proc.returncode == 0, proc.stdout[-3000:]
    return json.loads((tmp_path / "results.json").read_text())


def codes(result):
    return sorted({f["code"] for f in result.get("findings", []) if f["severity"] == "error"})


def test_each_unfit_key_gives_its_own_error(local_aws, tmp_path):
    endpoint = local_aws.endpoint_url
    config = validate_customer("checkco", VARIABLES)
    kms = client(endpoint, "kms", account=CUSTOMER)
    kms_west = client(endpoint, "kms", account=CUSTOMER, region="us-west-2")
    policy = json.dumps(full_policy(config))
    good = kms.create_key(Policy=policy)["KeyMetadata"]["Arn"]
    disabled = kms.create_key(Policy=policy)["KeyMetadata"]["Arn"]
    kms.disable_key(KeyId=disabled)
    deleting = kms.create_key(Policy=policy)["KeyMetadata"]["Arn"]
    kms.schedule_key_deletion(KeyId=deleting.rsplit("/", 1)[1], PendingWindowInDays=7)  # moto wants the id here
    west = kms_west.create_key(Policy=policy)["KeyMetadata"]["Arn"]
    rsa = kms.create_key(Policy=policy, KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["Arn"]
    missing = f"arn:aws:kms:us-east-1:{CUSTOMER}:key/{uuid.uuid4()}"
    # KMS lets no other account read a key policy: the customer sends it, and the check reads the rest from AWS.
    base = {"config": config, "policy": policy}
    cases = {
        "good": {**base, "key_arn": good},
        "unreadable": {"config": config, "key_arn": good},
        "disabled": {**base, "key_arn": disabled},
        "deleting": {**base, "key_arn": deleting},
        "west": {**base, "key_arn": west, "expected_region": "us-east-1"},
        "rsa": {**base, "key_arn": rsa},
        "missing": {**base, "key_arn": missing},
        "alias": {**base, "key_arn": "alias/customer-key"},
        "malformed": {**base, "key_arn": f"arn:aws:kms:us-east-1:{CUSTOMER}:key/not-a-key"},
    }
    r = run_checks(endpoint, tmp_path, cases)
    assert r["good"]["passed"] is True and codes(r["good"]) == [], r["good"]["findings"]
    assert r["good"]["policy_source"] == "document"
    assert {s["operation"] for s in r["good"]["probe"] if s["ok"]} == {"Encrypt", "GenerateDataKey+Decrypt", "CreateGrant"}
    assert all(v["decision"] == "allowed" for v in r["good"]["verdicts"])
    # Without the customer's document the policy is reported unread, never as a pass; the probe still ran.
    assert codes(r["unreadable"]) == ["POLICY_UNREADABLE"] and r["unreadable"]["policy_source"] == "unreadable"
    assert r["unreadable"]["passed"] is False and all(s["ok"] for s in r["unreadable"]["probe"])
    assert codes(r["disabled"]) == ["KEY_DISABLED"]
    assert codes(r["deleting"]) == ["KEY_PENDING_DELETION"]
    assert codes(r["west"]) == ["KEY_WRONG_REGION"]
    assert codes(r["rsa"]) == ["KEY_NOT_SYMMETRIC"]
    assert codes(r["missing"]) == ["KEY_NOT_FOUND"]
    assert r["alias"]["failed"] and "is an alias" in r["alias"]["msg"] and "findings" not in r["alias"]
    assert r["malformed"]["failed"] and "not a KMS key ARN" in r["malformed"]["msg"]
    messages = {name: " ".join(f["message"] for f in r[name]["findings"]) for name in ("disabled", "deleting", "west", "rsa", "missing")}
    assert len(set(messages.values())) == 5
    # Independent reader: the states the module reported, and no grant left behind by the probe.
    assert kms.describe_key(KeyId=disabled)["KeyMetadata"]["KeyState"] == "Disabled"
    assert kms.list_grants(KeyId=good)["Grants"] == []


def test_runbook_policy_is_not_enough_for_ebs_and_aurora(local_aws, tmp_path):
    """The two documented statements, checked offline: S3 passes; EBS and Aurora miss grants and the control-plane role."""
    config = validate_customer("checkco", VARIABLES)
    runbook = [s["statement"] for s in key_policy_statements(config["principals"], ["s3"], PROVIDER, "us-east-1")]
    doc = json.dumps({"Version": "2012-10-17", "Statement": runbook})
    key = VARIABLES["byok_keys"]["all"]
    cases = {svc: {"config": config, "key_arn": key, "services": [svc], "policy": doc, "offline": True} for svc in ("s3", "rds", "ebs")}
    r = run_checks(local_aws.endpoint_url, tmp_path, cases)
    assert r["s3"]["passed"] is True
    for svc in ("rds", "ebs"):
        assert r[svc]["passed"] is False
        missing = [f for f in r[svc]["findings"] if f["code"] == "POLICY_MISSING_PERMISSION"]
        assert any("kms:CreateGrant" in f["actions"] for f in missing), missing
        assert all(f["fix"].startswith("Add this statement to the key policy:") and f["statement"] for f in missing)
    ebs_principals = {f["principal"] for f in r["ebs"]["findings"] if f["code"] == "POLICY_MISSING_PERMISSION"}
    assert config["principals"]["masters_role"] in ebs_principals
    assert all(not r[svc]["probe"] and r[svc]["key"] is None for svc in r)  # offline: no AWS call


def test_check_mode_is_the_same_and_leaves_nothing(local_aws, tmp_path):
    endpoint = local_aws.endpoint_url
    config = validate_customer("checkco", VARIABLES)
    kms = client(endpoint, "kms", account=CUSTOMER)
    key = kms.create_key(Policy=json.dumps(full_policy(config)))["KeyMetadata"]["Arn"]
    r = run_checks(endpoint, tmp_path, {"key": {"config": config, "key_arn": key, "policy": json.dumps(full_policy(config))}}, "--check")
    assert r["key"]["passed"] is True and r["key"]["changed"] is False
    assert kms.list_grants(KeyId=key)["Grants"] == []
