# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Interrupted after each step in turn, a re-run converges to the same end state with no duplicate resource.

The driver of rds_reencrypt runs with its time box ending right after <step> (test_rds_helpers.time_box_ends_after:
as if the process had been killed right after that step), then again without it. The end state is read with boto3 (test_rds_helpers) and compared with what
an uninterrupted run gives: every cluster, instance, snapshot and deployment by name, the key, every setting.
"""

from __future__ import annotations

import uuid

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.rds.reencrypt import GlobalReencrypt
from ansible_collections.mattermost.byok.plugins.module_utils.rds.reencrypt import Reencrypt
from tests.integration import test_rds_helpers as h

SCENARIOS = {
    ("snapshot_restore", "cluster"): ["final_snapshot", "restore", "create_instances", "verify_new", "rename_old",
                                      "rename_new", "verify_cutover"],
    ("snapshot_restore", "instance"): ["final_snapshot", "copy_snapshot", "restore", "verify_new", "rename_old",
                                       "rename_new", "verify_cutover"],
    ("blue_green", "cluster"): ["create_green", "wait_green", "verify_green", "switchover", "delete_deployment",
                                "protect_old", "verify_cutover"],
    ("blue_green", "instance"): ["create_green", "wait_green", "verify_green", "switchover", "delete_deployment",
                                 "protect_old", "verify_cutover"],
}
CASES = [(strategy, kind, step) for (strategy, kind), steps in SCENARIOS.items() for step in steps]
ROLLBACK_STEPS = ["set_aside_new", "restore_old_names", "restore_settings"]


@pytest.fixture
def clients(local_aws):
    return lambda service, region: local_aws.client(service, account=h.PROVIDER, region=region)


def expected_inventory(name, strategy, kind):
    old = f"{name}-old1" if strategy == "blue_green" else f"{name}-byok-old"
    sfx = old[len(name):]
    state = {"clusters": [], "instances": [], "cluster_snapshots": [], "snapshots": [], "deployments": []}
    if kind == "cluster":
        state["clusters"] = sorted([name, old])
        state["instances"] = sorted([f"{name}-1", f"{name}-2", f"{name}-1{sfx}", f"{name}-2{sfx}"])
        if strategy == "snapshot_restore":
            state["cluster_snapshots"] = [f"{name}-byok-final"]
    else:
        state["instances"] = sorted([name, old])
        if strategy == "snapshot_restore":
            state["snapshots"] = sorted([f"{name}-byok-final", f"{name}-byok-rekeyed"])
    return state


def view(rds, name, kind):
    return h.cluster_view(rds, name) if kind == "cluster" else h.instance_view(rds, name)


@pytest.mark.parametrize("strategy,kind,step", CASES, ids=[f"{s}-{k}-{t}" for s, k, t in CASES])
def test_interrupted_after_step_resumes(local_aws, clients, unique_name, monkeypatch, strategy, kind, step):
    old_key, new_key = h.new_key(local_aws, account=h.PROVIDER), h.new_key(local_aws)
    name = f"{step.replace('_', '')[:12]}-{kind[:4]}-{uuid.uuid4().hex[:8]}"
    (h.make_cluster if kind == "cluster" else h.make_instance)(local_aws, name, old_key)
    rds = clients("rds", "us-east-1")
    before = view(rds, name, kind)

    limit = h.time_box_ends_after(monkeypatch, step)
    first = Reencrypt(clients, name, kind, "us-east-1", new_key, strategy, poll_seconds=0.05, max_seconds=limit).run()
    assert first["steps_run"][-1]["step"] == step, first
    assert not first["complete"] or step == SCENARIOS[(strategy, kind)][-1]
    monkeypatch.undo()

    second = Reencrypt(clients, name, kind, "us-east-1", new_key, strategy, poll_seconds=0.05).run()
    assert second["complete"], second
    assert step not in [s["step"] for s in second["steps_run"]] or step.startswith("wait_")
    assert h.inventory(rds, name) == expected_inventory(name, strategy, kind)
    assert h.key_of(rds, name, kind) == new_key
    assert view(rds, name, kind) == before
    assert not Reencrypt(clients, name, kind, "us-east-1", new_key, strategy, poll_seconds=0.05).run()["changed"]


@pytest.mark.parametrize("step", ROLLBACK_STEPS)
def test_interrupted_rollback_resumes(local_aws, clients, unique_name, monkeypatch, step):
    old_key, new_key = h.new_key(local_aws, account=h.PROVIDER), h.new_key(local_aws)
    name = unique_name("rb")
    h.make_cluster(local_aws, name, old_key)
    rds = clients("rds", "us-east-1")
    before = view(rds, name, "cluster")

    def driver(max_seconds=None):
        return Reencrypt(clients, name, "cluster", "us-east-1", new_key, "snapshot_restore", poll_seconds=0.05,
                         max_seconds=max_seconds)

    assert driver().run()["complete"]
    first = driver(h.time_box_ends_after(monkeypatch, step)).run("rolled_back")
    assert first["steps_run"][-1]["step"] == step
    monkeypatch.undo()
    assert driver().run("rolled_back")["complete"]
    assert h.key_of(rds, name) == old_key and view(rds, name, "cluster") == before
    assert h.inventory(rds, name)["clusters"] == sorted([name, f"{name}-byok-new"])
    assert sorted(h.inventory(rds, name)["instances"]) == sorted([f"{name}-1", f"{name}-2", f"{name}-1-byok-new", f"{name}-2-byok-new"])


GLOBAL_STEPS = ["s:remove_from_global", "s:rename_old", "s:create_secondary", "s:create_instances", "s:verify_cutover",
                "switchover_to", "p:remove_from_global", "p:rename_old", "p:create_secondary", "p:create_instances",
                "p:verify_cutover", "switchover_back"]


@pytest.mark.parametrize("step", GLOBAL_STEPS)
def test_global_interrupted_after_step_resumes(local_aws, clients, unique_name, monkeypatch, step):
    gid, primary, secondary = unique_name("g"), unique_name("p"), unique_name("s")
    keys = {"us-east-1": h.new_key(local_aws), "us-west-2": h.new_key(local_aws, region="us-west-2")}
    clients("rds", "us-east-1").create_global_cluster(GlobalClusterIdentifier=gid, Engine="aurora-postgresql", StorageEncrypted=True)
    h.make_cluster(local_aws, primary, h.new_key(local_aws, account=h.PROVIDER), global_cluster=gid)
    h.make_cluster(local_aws, secondary, h.new_key(local_aws, account=h.PROVIDER, region="us-west-2"),
                   region="us-west-2", global_cluster=gid, primary=False)
    regions = {primary: "us-east-1", secondary: "us-west-2"}
    before = {c: h.cluster_view(clients("rds", r), c) for c, r in regions.items()}

    def driver():
        return GlobalReencrypt(clients, gid, primary, regions, keys, poll_seconds=0.05)

    first = driver().run(max_seconds=h.time_box_ends_after(monkeypatch, step, primary, secondary))
    assert not first["complete"] or step == GLOBAL_STEPS[-1], first
    assert first["steps_run"][-1]["step"] == step.rpartition(":")[2], first
    monkeypatch.undo()
    second = driver().run()
    assert second["complete"], second
    members = clients("rds", "us-east-1").describe_global_clusters(GlobalClusterIdentifier=gid)["GlobalClusters"][0]["GlobalClusterMembers"]
    assert {m["DBClusterArn"].rsplit(":", 1)[-1]: m["IsWriter"] for m in members} == {primary: True, secondary: False}
    for cluster, region in regions.items():
        rds = clients("rds", region)
        assert h.key_of(rds, cluster) == keys[region]
        assert h.cluster_view(rds, cluster) == before[cluster]
        state = h.inventory(rds, cluster)
        assert state["clusters"] == sorted([cluster, f"{cluster}-byok-old"])
        assert state["instances"] == sorted([f"{cluster}-1", f"{cluster}-2", f"{cluster}-1-byok-old", f"{cluster}-2-byok-old"])
    assert not driver().run()["changed"]
