# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the collection's playbooks the way an SRE does: ansible-playbook in a subprocess, against the local AWS."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import boto3
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEMO_INVENTORY = os.path.join(ROOT, "inventories", "demo")


def ansible_env(endpoint_url: str, artifacts: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "BYOK_ARTIFACTS_DIR": artifacts,
        "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(ROOT, ".collections"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    })
    return env


def run_playbook(endpoint_url: str, inventory: str, artifacts: str, *args: str, playbook: str = "playbooks/byok.yml",
                 extra_env: dict | None = None):
    """ansible-playbook with the venv's interpreter; returns the CompletedProcess (output captured)."""
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory, os.path.join(ROOT, playbook), *args]
    env = {**ansible_env(endpoint_url, artifacts), **(extra_env or {})}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)


def account_credentials(endpoint_url: str, account: str) -> dict:
    """Environment variables that make AWS calls act as `account` (the local AWS maps assumed-role keys to it)."""
    sts = boto3.client("sts", endpoint_url=endpoint_url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/byok-tests", RoleSessionName="byok-tests")["Credentials"]
    return {"AWS_ACCESS_KEY_ID": c["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": c["SecretAccessKey"], "AWS_SESSION_TOKEN": c["SessionToken"]}


def seed(endpoint_url: str, inventory: str = DEMO_INVENTORY):
    # The test processes of `pytest -n 2` share one local AWS, and a seeding creates what it does not find (the
    # automation role, ...): two seedings of one server at once race, so they take turns.
    lock = os.path.join(tempfile.gettempdir(), f"byok-seed-{hashlib.sha1(endpoint_url.encode()).hexdigest()[:12]}.lock")
    with open(lock, "w") as turn:
        fcntl.flock(turn, fcntl.LOCK_EX)
        done = subprocess.run([sys.executable, "-m", "tests.local_aws.demo_fleet", "--endpoint-url", endpoint_url, "--inventory", inventory],
                              cwd=ROOT, check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"seeding {inventory} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"


def read_json(path: str):
    with open(path) as f:
        return json.load(f)


def write_inventory(directory: str, customers: dict, group_vars: dict | None = None) -> str:
    """An inventory directory of the demo's shape: customers maps name -> host_vars."""
    if group_vars is None:
        with open(os.path.join(DEMO_INVENTORY, "group_vars", "dedicated.yml")) as f:
            group_vars = yaml.safe_load(f)
    os.makedirs(os.path.join(directory, "host_vars"), exist_ok=True)
    os.makedirs(os.path.join(directory, "group_vars"), exist_ok=True)
    with open(os.path.join(directory, "hosts.yml"), "w") as f:
        yaml.safe_dump({"all": {"children": {"dedicated": {"hosts": {name: None for name in customers}}}}}, f)
    with open(os.path.join(directory, "group_vars", "dedicated.yml"), "w") as f:
        yaml.safe_dump(group_vars, f)
    for name, host_vars in customers.items():
        with open(os.path.join(directory, "host_vars", f"{name}.yml"), "w") as f:
            yaml.safe_dump(host_vars, f)
    return os.path.join(directory, "hosts.yml")


def demo_host_vars(name: str) -> dict:
    with open(os.path.join(DEMO_INVENTORY, "host_vars", f"{name}.yml")) as f:
        return yaml.safe_load(f)


def copy_demo_inventory(directory: str) -> str:
    shutil.copytree(DEMO_INVENTORY, directory, dirs_exist_ok=True)
    return os.path.join(directory, "hosts.yml")
