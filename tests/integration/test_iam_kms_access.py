# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""iam_kms_access through Ansible against the local AWS: a key policy that leaves the server's access to the
provider account (delegated_to_iam) is confirmed or refuted by the provider-side IAM simulation, and the fix is
read back with boto3 (attachments, the managed policy's document, a fresh simulation)."""

from __future__ import annotations

import json
import uuid

import yaml

from ansible_collections.mattermost.byok.plugins.module_utils.fleet.customer_config import provider_principals
from tests.integration import runner
from tests.integration.test_audit import client

CUSTOMER = "111111111181"
PROVIDER = "222222222222"


def play(endpoint, tmp_path, name, tasks, *args):
    tasks = tasks + [{"name": "Save", "ansible.builtin.copy": {
        "dest": str(tmp_path / f"{name}.json"), "mode": "0600", "content": "{{ {'check': r_check, 'iam': r_iam} | to_json }}"},
        "check_mode": False}]
    playbook = [{"name": name, "hosts": "localhost", "gather_facts": False, "tasks": tasks,
                 "module_defaults": {"group/mattermost.byok.byok": {"region": "us-east-1"}},
                 "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"}}]
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(playbook, sort_keys=False))
    proc = runner.run_playbook(endpoint, "localhost,", str(tmp_path), "-c", "local", *args, playbook=str(path),
                               extra_env=runner.account_credentials(endpoint, PROVIDER))
    assert proc.returncode == 0, proc.stdout[-3000:]
    return json.loads((tmp_path / f"{name}.json").read_text()), proc


def test_a_delegation_to_the_provider_account_is_decided_by_its_iam_policies(local_aws, tmp_path):
    endpoint = local_aws.endpoint_url
    suffix = uuid.uuid4().hex[:8]
    vpc, cluster = f"vpc-0{suffix}", f"deleg{suffix}"
    principals = provider_principals(PROVIDER, "demo", vpc, cluster)
    server = f"arn:aws:iam::{PROVIDER}:user/mattermost-deleg{suffix}inst"
    iam = client(endpoint, "iam")
    iam.create_user(UserName=principals["provisioning_user"].rsplit("/", 1)[1])
    iam.create_user(UserName=server.rsplit("/", 1)[1])
    iam.create_role(RoleName=principals["nodes_role"].rsplit("/", 1)[1], AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    # The customer's key policy lets the provider account as a whole use the key: its IAM policies decide.
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{CUSTOMER}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "Provider account", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{PROVIDER}:root"},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"], "Resource": "*"}]}
    key = client(endpoint, "kms", account=CUSTOMER).create_key(Policy=json.dumps(policy))["KeyMetadata"]["Arn"]
    config = {"principals": {**principals, "server_identities": [server]}, "provider_account_id": PROVIDER, "region": "us-east-1",
              "services": ["s3"], "distinct_keys": [{"arn": key, "region": "us-east-1", "services": ["s3"]}]}
    check = {"key_arn": key, "config": config, "policy": json.dumps(policy), "offline": True, "fail_on_error": False}
    access = {"key_arn": key, "config": config, "server_identities": [server], "fix": "{{ fix }}",
              "key_verdicts": "{{ r_check.verdicts }}", "fail_on_error": False}
    tasks = [{"name": "Key check", "mattermost.byok.kms_policy_check": check, "register": "r_check"},
             {"name": "IAM", "mattermost.byok.iam_kms_access": access, "register": "r_iam"}]

    refuted, _proc = play(endpoint, tmp_path, "refuted", tasks, "-e", "fix=false")
    server_verdicts = [v for v in refuted["check"]["verdicts"] if v["principal"] == server]
    assert server_verdicts and {v["decision"] for v in server_verdicts} == {"delegated_to_iam"}
    assert refuted["iam"]["passed"] is False
    delegations = [d for d in refuted["iam"]["delegations"] if d["principal"] == server]
    assert delegations and not any(d["confirmed"] for d in delegations)
    assert {"IAM_DELEGATION_REFUTED", "IAM_PERMISSION_MISSING"} <= {f["code"] for f in refuted["iam"]["findings"] if f["principal"] == server}
    assert iam.list_attached_user_policies(UserName=server.rsplit("/", 1)[1])["AttachedPolicies"] == []

    confirmed, proc = play(endpoint, tmp_path, "confirmed", tasks, "-e", "fix=true", "--diff")
    assert confirmed["iam"]["changed"] and confirmed["iam"]["passed"], confirmed["iam"]["summary"]
    assert all(d["confirmed"] for d in confirmed["iam"]["delegations"] if d["principal"] == server)
    policy_arn = f"arn:aws:iam::{PROVIDER}:policy/mattermost-byok/mattermost-byok-{key.rsplit('/', 1)[1]}-server"
    assert policy_arn in proc.stdout  # the diff names it
    assert [p["PolicyArn"] for p in iam.list_attached_user_policies(UserName=server.rsplit("/", 1)[1])["AttachedPolicies"]] == [policy_arn]
    decisions = iam.simulate_principal_policy(
        PolicySourceArn=server, ActionNames=["kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt"], ResourceArns=[key],
        ContextEntries=[{"ContextKeyName": "kms:ViaService", "ContextKeyValues": ["s3.us-east-1.amazonaws.com"], "ContextKeyType": "string"}])
    assert {r["EvalActionName"]: r["EvalDecision"] for r in decisions["EvaluationResults"]} == {
        "kms:Decrypt": "allowed", "kms:GenerateDataKey": "allowed", "kms:Encrypt": "implicitDeny"}

    again, _proc = play(endpoint, tmp_path, "again", tasks, "-e", "fix=true")
    assert again["iam"]["changed"] is False and again["iam"]["changes"] == []
