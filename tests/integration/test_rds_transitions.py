# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rds_reencrypt waits for what AWS says, not for a name: a renamed instance is renaming, then rebooting, and is
changed again only once available; a global switchover is over only when FailoverState clears.

A private local AWS whose intermediate states last TRANSITION_POLLS describes each (the shared one keeps the default
2, where the re-key's own describes would use them up): with a wait that looks for a name only, the next change
hits InvalidDBInstanceState / InvalidGlobalClusterStateFault. Through ansible-playbook; outcomes read with boto3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.integration import runner
from tests.integration import test_rds_helpers as h
from tests.local_aws.harness import LocalAWS

PLAYBOOK = os.path.join(runner.ROOT, "tests", "integration", "playbooks", "rds_reencrypt.yml")
TRANSITION_POLLS = 8


@pytest.fixture
def slow_aws(tmp_path, monkeypatch):
    monkeypatch.setenv("BYOK_LOCAL_AWS_RDS_TRANSITION_POLLS", str(TRANSITION_POLLS))
    with LocalAWS.start(extended=True, log_path=tmp_path / "local-aws.log") as server:
        yield server


def play(aws, tmp_path, **extra_vars):
    result_path, vars_path = tmp_path / "result.json", tmp_path / "vars.json"
    vars_path.write_text(json.dumps({"result_path": str(result_path), "poll_seconds": 0.02, **extra_vars}))
    env = {**runner.ansible_env(aws.endpoint_url, str(tmp_path)), **aws.env(account=h.PROVIDER)}
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", PLAYBOOK, "-e", f"@{vars_path}"]
    proc = subprocess.run(cmd, cwd=runner.ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return json.loads(result_path.read_text())


def test_instance_renames_wait_until_available(slow_aws, tmp_path):
    rds = slow_aws.client("rds", account=h.PROVIDER)
    old_key, new_key = h.new_key(slow_aws, account=h.PROVIDER), h.new_key(slow_aws)
    name = h.make_instance(slow_aws, "pg-renames", old_key)
    before = h.instance_view(rds, name)
    result = play(slow_aws, tmp_path, identifier=name, kind="instance", key_arn=new_key, strategy="snapshot_restore",
                  allow_downtime=True)
    assert result.get("complete"), {k: v for k, v in result.items() if k != "progress"}
    waits = [line for line in result["progress"] if "waiting for the rename" in line]
    assert any(line.endswith(")") and ": rebooting (" in line for line in waits), result["progress"]
    assert h.key_of(rds, name, "instance") == new_key and h.instance_view(rds, name) == before
    old = rds.describe_db_instances(DBInstanceIdentifier=f"{name}-byok-old")["DBInstances"][0]
    assert old["KmsKeyId"] == old_key and old["DeletionProtection"] and old["DBInstanceStatus"] == "available"


def test_global_switchover_waits_for_failover_state(slow_aws, tmp_path):
    east, west = slow_aws.client("rds", account=h.PROVIDER), slow_aws.client("rds", account=h.PROVIDER, region="us-west-2")
    keys = {"us-east-1": h.new_key(slow_aws), "us-west-2": h.new_key(slow_aws, region="us-west-2")}
    east.create_global_cluster(GlobalClusterIdentifier="g-waits", Engine="aurora-postgresql", StorageEncrypted=True)
    h.make_cluster(slow_aws, "p-waits", h.new_key(slow_aws, account=h.PROVIDER), global_cluster="g-waits", instances=1)
    h.make_cluster(slow_aws, "s-waits", h.new_key(slow_aws, account=h.PROVIDER, region="us-west-2"), region="us-west-2",
                   global_cluster="g-waits", primary=False, instances=1)
    result = play(slow_aws, tmp_path, identifier="p-waits", global_cluster="g-waits", region_keys=keys)
    assert result.get("complete"), {k: v for k, v in result.items() if k != "progress"}
    assert [s["to"] for s in result["switchovers"]] == ["s-waits", "p-waits"]
    waited = [line for line in result["progress"] if "waiting for the switchover" in line]
    assert any("switching-over" in line for line in waited) and any("pending" in line for line in waited), result["progress"]
    found = east.describe_global_clusters(GlobalClusterIdentifier="g-waits")["GlobalClusters"][0]
    assert not found.get("FailoverState")
    assert {m["DBClusterArn"].rsplit(":", 1)[-1]: m["IsWriter"] for m in found["GlobalClusterMembers"]} == {"p-waits": True, "s-waits": False}
    assert h.key_of(east, "p-waits") == keys["us-east-1"] and h.key_of(west, "s-waits") == keys["us-west-2"]
