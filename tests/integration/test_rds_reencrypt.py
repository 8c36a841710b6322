# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""mattermost.byok.rds_reencrypt through ansible-playbook against the local AWS, checked with boto3 directly.

Each database is built with every setting the re-key must carry over (test_rds_helpers.make_cluster); the checks
read both sides with their own field list (test_rds_helpers.cluster_view), not with the module's settings code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.integration import runner
from tests.integration import test_rds_helpers as h

PLAYBOOK = os.path.join(runner.ROOT, "tests", "integration", "playbooks", "rds_reencrypt.yml")


@pytest.fixture
def play(local_aws, tmp_path):
    """play(*flags, **extra_vars) -> the registered result of one ansible-playbook run."""
    counter = iter(range(1000))

    def run(*flags, **extra_vars):
        n = next(counter)
        result_path = tmp_path / f"result-{n}.json"
        vars_path = tmp_path / f"vars-{n}.json"
        vars_path.write_text(json.dumps({"result_path": str(result_path), **extra_vars}))
        env = runner.ansible_env(local_aws.endpoint_url, str(tmp_path))
        env.update(local_aws.env(account=h.PROVIDER))
        cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", PLAYBOOK,
               "-e", f"@{vars_path}", *flags]
        proc = subprocess.run(cmd, cwd=runner.ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        result = json.loads(result_path.read_text())
        result["_output"] = proc.stdout
        return result

    return run


@pytest.fixture
def rds(local_aws):
    return local_aws.client("rds", account=h.PROVIDER)


@pytest.fixture
def keys(local_aws):
    return {"old": h.new_key(local_aws, account=h.PROVIDER), "new": h.new_key(local_aws)}


def endpoints(rds, name):
    c = rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]
    return c["Endpoint"], c["ReaderEndpoint"], c["Port"]


def test_blue_green_cluster(local_aws, play, rds, keys, unique_name):
    name = h.make_cluster(local_aws, unique_name("bg"), keys["old"])
    before, before_endpoints = h.cluster_view(rds, name), endpoints(rds, name)
    base = dict(identifier=name, key_arn=keys["new"])

    plan = play("--check", **base)
    assert plan["changed"] and not plan["complete"] and plan["step"] == "create_green"
    assert plan["plan"]["strategy"] == "blue_green" and "switchover" in plan["plan"]["steps"]
    assert {"from": name, "to": f"{name}-old1"} in plan["plan"]["renames"]
    assert "under a minute" in plan["plan"]["expected_disruption"] and plan["prerequisites"] == []
    assert h.inventory(rds, name)["clusters"] == [name] and h.key_of(rds, name) == keys["old"]

    result = play(**base)
    assert result.get("complete"), {k: v for k, v in result.items() if k != "_output"}
    assert result["changed"]
    assert [s["step"] for s in result["steps_run"]][:2] == ["create_green", "wait_green"]
    assert result["switchover_seconds"] is not None and result["switchover_seconds"] < 60
    assert h.key_of(rds, name) == keys["new"]
    assert h.cluster_view(rds, name) == before
    assert endpoints(rds, name) == before_endpoints
    # The way back: the old side, its instances, on the old key and protected; the deployment is gone.
    assert h.inventory(rds, name) == {"clusters": [name, f"{name}-old1"],
                                      "instances": sorted([f"{name}-1", f"{name}-2", f"{name}-1-old1", f"{name}-2-old1"]),
                                      "cluster_snapshots": [], "snapshots": [], "deployments": []}
    old = rds.describe_db_clusters(DBClusterIdentifier=f"{name}-old1")["DBClusters"][0]
    assert old["KmsKeyId"] == keys["old"] and old["DeletionProtection"]
    assert h.cluster_view(rds, f"{name}-old1", strip=("-old1",)) == before
    assert "rolled_back" in result["way_back"] and f"{name}-old1" in result["way_back"]

    again = play(**base)
    assert not again["changed"] and again["complete"] and again["step"] == "done"


def test_snapshot_restore_then_rollback_and_clean(local_aws, play, rds, keys, unique_name):
    name = h.make_cluster(local_aws, unique_name("sr"), keys["old"])
    before, before_endpoints = h.cluster_view(rds, name), endpoints(rds, name)
    base = dict(identifier=name, key_arn=keys["new"], strategy="snapshot_restore", allow_downtime=True)

    plan = play("--check", **base)
    assert plan["step"] == "final_snapshot" and "downtime" in plan["plan"]["expected_disruption"]
    assert {"from": f"{name}-byok-new", "to": name} in plan["plan"]["renames"]
    assert h.inventory(rds, name)["cluster_snapshots"] == []

    result = play("--diff", **base)
    assert result.get("complete"), {k: v for k, v in result.items() if k != "_output"}
    assert result["changed"]
    assert result["downtime_seconds"] is not None
    assert result["diff"]["before"]["key_arn"] == keys["old"] and result["diff"]["after"]["key_arn"] == keys["new"]
    assert h.key_of(rds, name) == keys["new"]
    assert h.cluster_view(rds, name) == before and endpoints(rds, name) == before_endpoints
    old = rds.describe_db_clusters(DBClusterIdentifier=f"{name}-byok-old")["DBClusters"][0]
    assert old["KmsKeyId"] == keys["old"] and old["DeletionProtection"]
    assert h.cluster_view(rds, f"{name}-byok-old", strip=("-byok-old",)) == {**before, "Tags": before["Tags"]}
    assert not play(**base)["changed"]

    # Rollback: the old database back under the original identifiers, the re-keyed one set aside.
    back = play(**dict(base, rds_state="rolled_back"))
    assert back["changed"] and back["complete"], back
    assert h.key_of(rds, name) == keys["old"] and h.cluster_view(rds, name) == before
    assert endpoints(rds, name) == before_endpoints
    assert h.key_of(rds, f"{name}-byok-new") == keys["new"]
    assert h.inventory(rds, name)["clusters"] == [name, f"{name}-byok-new"]
    assert not play(**dict(base, rds_state="rolled_back"))["changed"]
    # Re-keying again is refused until the set-aside copy is cleaned (a fresh snapshot must be taken).
    refused = play(**base)
    assert refused["failed"] and "state=cleaned" in refused["msg"]

    cleaned = play(**dict(base, rds_state="cleaned"))
    assert cleaned["changed"] and cleaned["deleted"] == [f"{name}-byok-new"]
    assert h.inventory(rds, name)["clusters"] == [name]
    assert h.key_of(rds, name) == keys["old"]


def test_time_boxed_calls_report_progress(local_aws, play, rds, keys, unique_name):
    name = h.make_cluster(local_aws, unique_name("tb"), keys["old"], instances=1)
    first = play(identifier=name, key_arn=keys["new"], max_seconds=0)
    assert not first["complete"] and first["step"] == "create_green" and not first["changed"]
    calls = [play(identifier=name, key_arn=keys["new"], max_seconds=1, allow_switchover=False) for dummy in range(3)]
    assert calls[-1]["deferred"] and calls[-1]["step"] == "deferred" and not calls[-1]["complete"]
    assert h.key_of(rds, name) == keys["old"]  # nothing switched outside the window
    assert len(h.inventory(rds, name)["deployments"]) == 1
    done = play(identifier=name, key_arn=keys["new"])
    assert done["complete"] and h.key_of(rds, name) == keys["new"]


@pytest.mark.parametrize("case", ["no_downtime", "unknown", "other_region", "disabled"])
def test_refusals_change_nothing(local_aws, play, rds, keys, unique_name, case):
    name = h.make_cluster(local_aws, unique_name("rf"), keys["old"], instances=1)
    params = dict(identifier=name, key_arn=keys["new"])
    expected = {
        "no_downtime": "allow_downtime=true",
        "unknown": "no such database",
        "other_region": "the key is in us-west-2 but the database is in us-east-1",
        "disabled": "is Disabled",
    }[case]
    if case == "no_downtime":
        params["strategy"] = "snapshot_restore"
    elif case == "unknown":
        params["identifier"] = unique_name("missing")
    elif case == "other_region":
        params["key_arn"] = h.new_key(local_aws, region="us-west-2")
    else:
        params["key_arn"] = h.new_key(local_aws, state="Disabled")
    state = h.inventory(rds, name)
    result = play(**params)
    assert result["failed"] and expected in result["msg"], result["msg"]
    assert not result.get("changed")
    assert h.inventory(rds, name) == state and h.key_of(rds, name) == keys["old"]


def test_blue_green_prerequisite_names_the_fix(local_aws, play, rds, keys, unique_name):
    name = h.make_cluster(local_aws, unique_name("pq"), keys["old"], replication=False, instances=1)
    plan = play("--check", identifier=name, key_arn=keys["new"])
    assert any("rds.logical_replication" in p and "fix:" in p for p in plan["prerequisites"])
    result = play(identifier=name, key_arn=keys["new"])
    assert result["failed"] and "rds.logical_replication=1" in result["msg"]
    assert h.inventory(rds, name)["deployments"] == [] and h.key_of(rds, name) == keys["old"]
    mysql = h.make_cluster(local_aws, unique_name("my"), keys["old"], engine="aurora-mysql", replication=False, instances=1)
    result = play(identifier=mysql, key_arn=keys["new"])
    assert result["failed"] and "binlog_format" in result["msg"]


def test_instance_and_mysql_cluster(local_aws, play, rds, keys, unique_name):
    instance = h.make_instance(local_aws, unique_name("pg"), keys["old"])
    before = h.instance_view(rds, instance)
    result = play(identifier=instance, kind="instance", key_arn=keys["new"], strategy="snapshot_restore", allow_downtime=True)
    assert result["complete"] and h.key_of(rds, instance, "instance") == keys["new"]
    assert h.instance_view(rds, instance) == before
    assert h.key_of(rds, f"{instance}-byok-old", "instance") == keys["old"]
    assert h.inventory(rds, instance)["snapshots"] == sorted([f"{instance}-byok-final", f"{instance}-byok-rekeyed"])

    mysql = h.make_cluster(local_aws, unique_name("my"), keys["old"], engine="aurora-mysql")
    before = h.cluster_view(rds, mysql)
    result = play(identifier=mysql, key_arn=keys["new"])
    assert result["complete"] and h.key_of(rds, mysql) == keys["new"] and h.cluster_view(rds, mysql) == before


def test_databases_in_one_call_each_its_own_result_and_a_missing_one_fails_alone(local_aws, play, rds, keys, unique_name):
    """`databases`: each database as `identifier` would move it, side by side, one result each in the list's order;
    a database that is not there fails the call with its name while the others move; a bad entry changes nothing."""
    first, second = (h.make_cluster(local_aws, unique_name(n), keys["old"], instances=1) for n in ("da", "db"))
    missing = unique_name("missing")
    state = {name: h.inventory(rds, name) for name in (first, second)}

    refused = play(databases=[{"identifier": first, "key_arn": keys["new"]}, {"identifier": second}], concurrency=2)
    assert refused["failed"] and f"databases[1] ({second}): key_arn: required" in refused["msg"], refused["msg"]
    assert {name: h.inventory(rds, name) for name in (first, second)} == state

    plan = play("--check", databases=[{"identifier": first, "key_arn": keys["new"]}, {"identifier": second, "key_arn": keys["new"]}])
    assert [r["identifier"] for r in plan["results"]] == [first, second] and plan["changed"]
    assert all(r["plan"]["steps"] and not r["complete"] for r in plan["results"])
    assert {name: h.inventory(rds, name) for name in (first, second)} == state

    moved = play(databases=[{"identifier": first, "key_arn": keys["new"]}, {"identifier": missing, "key_arn": keys["new"]},
                            {"identifier": second, "key_arn": keys["new"], "region": "us-east-1"}], concurrency=3)
    assert moved["failed"] and missing in moved["msg"] and first not in moved["msg"], moved["msg"]
    assert [r["identifier"] for r in moved["results"]] == [first, missing, second]
    assert moved["results"][1]["failed"] and "no such database" in moved["results"][1]["msg"]
    for result in (moved["results"][0], moved["results"][2]):
        assert result["complete"] and not result.get("failed") and result["way_back"]
    assert h.key_of(rds, first) == keys["new"] and h.key_of(rds, second) == keys["new"]
