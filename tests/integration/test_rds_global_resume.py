# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A global database interrupted after each step, re-run with the same arguments as the module gets them.

Unlike test_rds_resume.py, the members are found again on every call the way the module finds them
(find_global_members: the global database's member list and the tags set on a member before its removal), so a
secondary already out of the global database is still re-keyed. The end state is read with boto3.
"""

from __future__ import annotations

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.rds.reencrypt import GlobalReencrypt
from ansible_collections.mattermost.byok.plugins.module_utils.rds.reencrypt import find_global_members
from tests.integration import test_rds_helpers as h

STEPS = ["s:remove_from_global", "s:rename_old", "s:create_secondary", "s:create_instances", "s:verify_cutover",
         "switchover_to", "p:remove_from_global", "p:rename_old", "p:create_secondary", "p:create_instances",
         "p:verify_cutover"]


@pytest.fixture
def clients(local_aws):
    return lambda service, region: local_aws.client(service, account=h.PROVIDER, region=region)


@pytest.mark.parametrize("step", STEPS)
def test_global_rediscovered_after_step(local_aws, clients, unique_name, monkeypatch, step):
    gid, primary, secondary = unique_name("g"), unique_name("p"), unique_name("s")
    keys = {"us-east-1": h.new_key(local_aws), "us-west-2": h.new_key(local_aws, region="us-west-2")}
    clients("rds", "us-east-1").create_global_cluster(GlobalClusterIdentifier=gid, Engine="aurora-postgresql", StorageEncrypted=True)
    h.make_cluster(local_aws, primary, h.new_key(local_aws, account=h.PROVIDER), global_cluster=gid)
    h.make_cluster(local_aws, secondary, h.new_key(local_aws, account=h.PROVIDER, region="us-west-2"),
                   region="us-west-2", global_cluster=gid, primary=False)
    regions = {primary: "us-east-1", secondary: "us-west-2"}
    before = {c: h.cluster_view(clients("rds", r), c) for c, r in regions.items()}

    def call(max_seconds=None):
        # What run_global does on every call: the members found again from AWS, the same arguments otherwise.
        members = find_global_members(clients, gid, primary, "us-east-1", keys)
        assert members == regions, members
        return GlobalReencrypt(clients, gid, primary, members, keys, poll_seconds=0.05).run(max_seconds=max_seconds)

    first = call(h.time_box_ends_after(monkeypatch, step, primary, secondary))
    assert not first["complete"] and first["steps_run"][-1]["step"] == step.rpartition(":")[2], first
    monkeypatch.undo()
    second = call()
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
    assert not call()["changed"]
