# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The key step (mattermost.byok.key_step, the byok_key role's one task) through ansible-playbook against the local
AWS: an external key's material used only for its own customer and only into the key the inventory names, and the
kops roles' statements kept for the EBS step as byok_key_kops_additional_policies. Read back with plain boto3 and
from the key-check reports."""

from __future__ import annotations

import base64
import json
import os
import uuid

import yaml

from tests.integration import runner
from tests.integration.test_audit import client

PROVIDER = "222222222222"
KEY_CHECK = ("--tags", "key_check")
STEP = "Verify the customer's keys and stop this customer before any change when a key is not ready"


def external_customer(endpoint, tmp_path, number):
    """An external-key customer alone in an inventory (its key in the provider account, awaiting its material), seeded."""
    key = f"arn:aws:kms:us-east-1:{PROVIDER}:key/0e0e{uuid.uuid4().hex[:4]}-0000-4000-8000-0000000000{number}"
    hv = runner.demo_host_vars("acme")
    hv.pop("byok_mattermost_installations", None)
    hv.update({
        "byok_customer_account_id": f"1111111111{number}", "byok_vpc_id": f"vpc-0e0e00000000000{number}", "byok_kops_cluster_id": f"ext{number}",
        "byok_key_source": "external", "byok_keys": {"all": key}, "byok_services": ["s3", "rds"],
        "byok_s3_buckets": [f"mattermost-ext{number}-filestore"], "byok_rds_clusters": [{"identifier": f"ext{number}-db", "region": "us-east-1"}],
    })
    name = f"ext{number}{uuid.uuid4().hex[:6]}"  # its own alias (named after the customer) on a shared local AWS
    inventory = runner.write_inventory(str(tmp_path / "inventory"), {name: hv})
    runner.seed(endpoint, os.path.dirname(inventory))
    return name, inventory, key


def outcome(artifacts, name):
    [customer] = [c for c in runner.read_json(os.path.join(artifacts, "fleet-summary.json"))["customers"] if c["customer"] == name]
    return customer["outcome"]


def test_material_of_another_customer_is_not_imported(local_aws, tmp_path):
    endpoint = local_aws.endpoint_url
    name, inventory, key = external_customer(endpoint, tmp_path, "72")
    material = base64.b64encode(os.urandom(32)).decode()
    artifacts = str(tmp_path / "a")
    proc = runner.run_playbook(endpoint, inventory, artifacts, "-e", f"byok_key_material={material}",
                               "-e", "byok_key_material_customer=someone-else", *KEY_CHECK)
    assert proc.returncode == 2, proc.stdout[-3000:]
    assert client(endpoint, "kms").describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingImport"
    failed = outcome(artifacts, name)
    assert failed["status"] == "failed" and failed["step"].endswith(STEP)
    [check] = runner.read_json(os.path.join(artifacts, "key-checks", f"{name}.json"))
    assert [f["code"] for f in check["findings"] if f["severity"] == "error"] == ["KEY_PENDING_IMPORT"]
    assert material not in proc.stdout + proc.stderr


def test_an_alias_leading_to_another_key_stops_the_customer_naming_both(local_aws, tmp_path):
    endpoint = local_aws.endpoint_url
    name, inventory, key = external_customer(endpoint, tmp_path, "73")
    kms = client(endpoint, "kms")
    other = kms.create_key(Origin="EXTERNAL", Description="another customer's key")["KeyMetadata"]["Arn"]
    alias = f"alias/mattermost-byok-wrong-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=other)
    material = base64.b64encode(os.urandom(32)).decode()
    artifacts = str(tmp_path / "a")
    proc = runner.run_playbook(endpoint, inventory, artifacts, "-e", f"byok_key_material={material}",
                               "-e", f"byok_key_external_alias={alias}", *KEY_CHECK)
    assert proc.returncode == 2, proc.stdout[-3000:]
    failed = outcome(artifacts, name)
    assert failed["step"].endswith(STEP)
    assert failed["message"] == (f"{alias} in us-east-1 is {other}, but byok_keys names {key}: point the alias at the key in "
                                 "byok_keys, or correct byok_keys")
    # Stopped before the check: the inventory's key is untouched, no report written.
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingImport"
    assert not os.path.exists(os.path.join(artifacts, "key-checks", f"{name}.json"))
    assert material not in proc.stdout + proc.stderr


def test_the_kops_roles_statements_are_kept_for_the_ebs_step(local_aws, tmp_path):
    """globex's keys (one for S3 and RDS, one for EBS) in check mode: the fact merges what each key's IAM check found
    the kops roles lack, as the key-check report has it."""
    endpoint = local_aws.endpoint_url
    runner.seed(endpoint)
    facts = tmp_path / "facts.json"
    playbook = [{"name": "Key step", "hosts": "dedicated", "gather_facts": False,
                 "module_defaults": {"group/mattermost.byok.byok": {
                     "region": "{{ byok_config_customer.region | default(byok_region | default(omit)) }}",
                     "access_key": "{{ byok_config_aws_credentials.access_key | default(omit) }}",
                     "secret_key": "{{ byok_config_aws_credentials.secret_key | default(omit) }}",
                     "session_token": "{{ byok_config_aws_credentials.session_token | default(omit) }}"}},
                 "tasks": [
                     {"ansible.builtin.import_role": {"name": "mattermost.byok.byok_config"}},
                     {"ansible.builtin.import_role": {"name": "mattermost.byok.byok_key"}},
                     {"name": "Save", "ansible.builtin.copy": {"dest": str(facts), "mode": "0600",
                                                               "content": "{{ byok_key_kops_additional_policies | to_json }}"},
                      "check_mode": False}]}]
    path = tmp_path / "key-step.yml"
    path.write_text(yaml.safe_dump(playbook, sort_keys=False))
    artifacts = str(tmp_path / "a")
    proc = runner.run_playbook(endpoint, os.path.join(runner.DEMO_INVENTORY, "hosts.yml"), artifacts, "--check", "-l", "globex",
                               playbook=str(path))
    assert proc.returncode == 0, proc.stdout[-3000:]
    records = runner.read_json(os.path.join(artifacts, "key-checks", "globex.json"))
    assert len(records) == 2
    want = {}
    for r in records:
        for role, statements in r["iam"]["kops_additional_policies"].items():
            want.setdefault(role, []).extend(statements)
    kept = json.loads(facts.read_text())
    assert kept == {role: s for role, s in want.items() if s}
    assert kept.get("node"), "the demo's nodes role lacks the keys in its IAM policies"
    assert all(s["Resource"] in {r["key_arn"] for r in records} for statements in kept.values() for s in statements)
