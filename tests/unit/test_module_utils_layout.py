# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugins/module_utils is grouped by service, and its pure logic imports without ansible-core."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
MODULE_UTILS = REPO / "plugins" / "module_utils"
GROUPS = {"aws", "fleet", "kms", "kops", "mattermost", "rds", "s3"}
# The only pieces that need ansible-core, and why.
NEEDS_ANSIBLE = {
    "aws.module": "the module base: amazon.aws's AnsibleAWSModule",
    "fleet.revocation_drill": "reaches the customer's endpoints with ansible's open_url (proxy and CA settings)",
    "s3.bucket_kms": "drives AWS and tells its not-found cases apart with amazon.aws's is_boto3_error_code",
}
# Blocks ansible-core (and amazon.aws's Ansible-bound parts) the way a plain Python without Ansible would lack them.
_BLOCK = """
import importlib, sys
sys.path.insert(0, {collections!r})
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "ansible" or name.startswith("ansible."):
            raise ImportError("no ansible-core here: " + name)
sys.meta_path.insert(0, Block())
importlib.import_module("ansible_collections.mattermost.byok.plugins.module_utils." + sys.argv[1])
"""


def modules():
    return sorted(f"{p.parent.name}.{p.stem}" for p in MODULE_UTILS.glob("*/*.py") if p.stem != "__init__")


def test_every_piece_sits_in_a_service_group():
    loose = sorted(p.name for p in MODULE_UTILS.glob("*.py") if p.name != "__init__.py")
    assert loose == [], f"module_utils files outside a group: {loose}"
    assert {p.name for p in MODULE_UTILS.iterdir() if p.is_dir() and p.name != "__pycache__"} == GROUPS
    for group in GROUPS:
        assert (MODULE_UTILS / group / "__init__.py").read_text() == "", f"{group}/__init__.py must stay empty"


def test_the_allowlist_names_existing_modules():
    assert set(NEEDS_ANSIBLE) <= set(modules())


@pytest.mark.parametrize("name", [m for m in modules() if m not in NEEDS_ANSIBLE])
def test_pure_logic_imports_without_ansible_core(name):
    collections = str(REPO / ".collections")
    proc = subprocess.run([sys.executable, "-c", _BLOCK.format(collections=collections), name],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("name", sorted(NEEDS_ANSIBLE))
def test_the_ansible_bound_pieces_do_need_it(name):
    # If one no longer needs ansible-core, it leaves the allowlist.
    collections = str(REPO / ".collections")
    proc = subprocess.run([sys.executable, "-c", _BLOCK.format(collections=collections), name],
                          capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "no ansible-core here" in proc.stderr
