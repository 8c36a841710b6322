# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mattermost.byok.plugins.filter.key_policy_statements import FilterModule
from ansible_collections.mattermost.byok.plugins.filter.key_policy_statements import key_policy_statements
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.customer_config import validate_customer
from tests.unit.customer_vars import BASE, K1, K2, KW

REPO = Path(__file__).resolve().parents[4]
ALL_SIDS = ["Allow use of the key", "Allow use of the key role nodes", "Allow use of the key role masters",
            "Allow attachment of persistent resources", "Allow grant to the Auto Scaling service-linked role"]


def one_key():
    return validate_customer("acme", BASE)


def per_service_keys():
    """S3 and EBS share a key; RDS has its own, and a second one for the global database's other region."""
    return validate_customer("globex", dict(
        BASE, byok_keys={"s3": K1, "ebs": K1, "rds": K2, "rds_regions": {"us-west-2": KW}},
        byok_rds_clusters=[{"identifier": "globex-db", "region": "us-east-1"}, {"identifier": "globex-db-west", "region": "us-west-2"}]))


def sids(entries):
    return [e["sid"] for e in entries]


def test_filter_is_registered():
    assert FilterModule().filters() == {"key_policy_statements": key_policy_statements}


def test_default_covers_every_service_of_the_customer():
    entries = key_policy_statements(one_key())
    assert sids(entries) == ALL_SIDS
    assert all(e["statement"]["Resource"] == "*" for e in entries)


def test_key_arn_fills_resource_and_selects_the_keys_services():
    cfg = per_service_keys()
    shared = key_policy_statements(cfg, key_arn=K1)
    assert sids(shared) == ALL_SIDS  # S3 + EBS
    assert all(e["statement"]["Resource"] == K1 for e in shared)
    assert shared[0]["services"] == ["s3", "ebs"]
    rds = key_policy_statements(cfg, key_arn=K2)
    assert sids(rds) == ["Allow use of the key", "Allow use of the key role nodes", "Allow attachment of persistent resources"]
    assert all(e["services"] == ["rds"] for e in rds)
    west = key_policy_statements(cfg, key_arn=KW)
    assert sids(west) == sids(rds) and west[0]["statement"]["Resource"] == KW


def test_a_key_not_in_the_config_gets_the_customers_services():
    other = "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-0000000000ff"
    assert sids(key_policy_statements(one_key(), key_arn=other)) == ALL_SIDS


def test_services_override():
    assert sids(key_policy_statements(one_key(), services=["s3"])) == ALL_SIDS[:2]
    assert sids(key_policy_statements(per_service_keys(), key_arn=K2, services=["rds", "ebs"])) == ALL_SIDS


@pytest.mark.parametrize("only, expected", [
    ("all", ALL_SIDS),
    ("documented", ALL_SIDS[:2]),
    ("missing", ALL_SIDS[2:]),
])
def test_only(only, expected):
    entries = key_policy_statements(one_key(), only=only)
    assert sids(entries) == expected
    if only != "all":
        assert {e["documented"] for e in entries} == {only == "documented"}


@pytest.mark.parametrize("config, kwargs, fragment", [
    ("acme", {}, "must be the customer's normalized config"),
    ({"services": ["s3"]}, {}, "lacks principals, provider_account_id, region"),
    (None, {"only": "some"}, "only='some' is not one of all, documented, missing"),
    (None, {"services": ["efs"]}, "unknown service"),
    (None, {"key_arn": "alias/acme"}, "is an alias"),
])
def test_bad_input_is_a_filter_error(config, kwargs, fragment):
    with pytest.raises(AnsibleFilterError, match=re.escape(fragment)):
        key_policy_statements(one_key() if config is None else config, **kwargs)


def run_playbook(tmp_path: Path, playbook: str, variables: dict) -> None:
    """ansible-playbook on localhost with this checkout as mattermost.byok and no other configuration."""
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    (tmp_path / "play.yml").write_text(playbook)
    env = dict(os.environ)
    env.update({"ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"),
                "ANSIBLE_HOME": str(tmp_path / "ansible-home"), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"), "ANSIBLE_NOCOLOR": "1"})
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
               "-e", f"ansible_python_interpreter={sys.executable}", "-e", f"@{tmp_path}/vars.json", str(tmp_path / "play.yml")]
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_from_a_playbook_and_the_onboarding_template(tmp_path):
    """ansible-playbook uses the filter by its FQCN, and the byok_key role's template renders with it."""
    cfg = per_service_keys()
    run_playbook(tmp_path, f"""\
- name: Use the key_policy_statements filter
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Write what the filter returns
      ansible.builtin.copy:
        dest: "{tmp_path}/statements.json"
        content: "{{{{ byok_config_customer | mattermost.byok.key_policy_statements(key_arn='{K1}', only='missing') | to_json }}}}"
        mode: "0600"
    - name: Render the onboarding document
      ansible.builtin.template:
        src: "{REPO}/roles/byok_key/templates/onboarding.md.j2"
        dest: "{tmp_path}/onboarding.md"
        mode: "0600"
""", {"byok_config_customer": cfg, "byok_key_onboarding_customer": "globex"})

    assert json.loads((tmp_path / "statements.json").read_text()) == key_policy_statements(cfg, key_arn=K1, only="missing")

    doc = (tmp_path / "onboarding.md").read_text()
    assert doc.startswith("# Bring your own key: key policy changes for globex")
    blocks = re.findall(r"```json\n(.*?)\n```", doc, re.S)
    assert len(blocks) == len(cfg["distinct_keys"]) == 3
    for key, block in zip(cfg["distinct_keys"], blocks):
        assert f"| Key ARN | `{key['arn']}` |" in doc
        assert json.loads(block) == [e["statement"] for e in key_policy_statements(cfg, key_arn=key["arn"])]
    # The runbook's statements are printed as the runbook prints them (4-space JSON).
    assert '    {\n        "Sid": "Allow use of the key",\n        "Effect": "Allow",\n' in blocks[0]
    # The Auto Scaling grant note appears for the key used for EBS only, naming the key and the provider account.
    assert doc.count("### After you save the policy: the Auto Scaling grant") == 1
    assert f"--key-id {K1} \\" in doc and re.search(r"from\s+account 222222222222", doc)
    for entry in key_policy_statements(cfg, key_arn=K1):
        assert f"| {entry['sid']} |" in doc and entry["reason"] in doc


def test_onboarding_template_for_an_external_key(tmp_path):
    """With key material handed over, the provider holds the key: the document says there is nothing to change."""
    provider_key = "arn:aws:kms:us-east-1:222222222222:key/0acbe000-0000-4000-8000-000000000009"
    cfg = validate_customer("initech", dict(BASE, byok_key_source="external", byok_keys={"all": provider_key}, byok_services=["s3"]))
    run_playbook(tmp_path, f"""\
- name: Render the onboarding document
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Render
      ansible.builtin.template:
        src: "{REPO}/roles/byok_key/templates/onboarding.md.j2"
        dest: "{tmp_path}/onboarding.md"
        mode: "0600"
""", {"byok_config_customer": cfg, "byok_key_onboarding_customer": "initech"})
    doc = (tmp_path / "onboarding.md").read_text()
    assert re.search(r"there is nothing\s+for you to change", doc)
    assert "Auto Scaling grant" not in doc
    assert len(re.findall(r"```json\n", doc)) == 1
