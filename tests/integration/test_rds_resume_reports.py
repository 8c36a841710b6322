# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stopped rds_reencrypt run, run again through ansible-playbook, says it resumed: at which step, from what it found.

The first run stops right after a step (BYOK_RDS_STOP_AFTER, as if killed there); the second must report `resumed`
naming the step it continued at and the earlier run's resources it found (read with boto3 to be there), and finish;
a third, with nothing left to do, reports no resumption (nor does the first, which found nothing).
"""

from __future__ import annotations

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.rds.reencrypt import STOP_AFTER_ENV
from tests.integration import test_rds_helpers as h
from tests.integration.test_rds_reencrypt import keys, play, rds  # noqa: F401  pylint: disable=unused-import


@pytest.mark.parametrize("stop_after,resumes_at,found", [
    ("restore", "create_instances", ["-byok-new", "-byok-final"]),
    ("rename_old", "rename_new", ["-byok-old", "-byok-new", "-byok-final"]),
])
def test_a_resumed_snapshot_restore_says_where_it_resumed(local_aws, play, rds, keys, unique_name, monkeypatch,  # noqa: F811
                                                          stop_after, resumes_at, found):
    name = h.make_cluster(local_aws, unique_name("rs"), keys["old"], instances=1)
    base = dict(identifier=name, key_arn=keys["new"], strategy="snapshot_restore", allow_downtime=True)
    monkeypatch.setenv(STOP_AFTER_ENV, stop_after)
    first = play(**base)
    assert not first["complete"] and first["resumed"] is None and first["steps_run"][-1]["step"] == stop_after
    monkeypatch.delenv(STOP_AFTER_ENV)

    second = play(**base)
    assert second["complete"], {k: v for k, v in second.items() if k != "_output"}
    assert second["resumed"] == {"at_step": resumes_at, "found": [name + suffix for suffix in found]}
    state = h.inventory(rds, name)
    there = set(state["clusters"]) | set(state["cluster_snapshots"])
    assert {f"{name}-byok-final", f"{name}-byok-old"} <= there  # what it said it found, read back (the new one is renamed now)
    assert h.key_of(rds, name) == keys["new"]
    assert play(**base)["resumed"] is None


# Stopped after the switchover to the re-keyed secondary: a member done and the writer moved, both reported. Add
# "s:verify_cutover" (a member done, the writer unchanged) for the other shape; it costs a minute of suite time.
@pytest.mark.parametrize("stop_after", ["switchover_to"])
def test_a_resumed_global_database_says_which_members_were_done(local_aws, play, keys, unique_name, monkeypatch,  # noqa: F811
                                                                 stop_after):
    gid, primary, secondary = unique_name("g"), unique_name("p"), unique_name("s")
    region_keys = {"us-east-1": h.new_key(local_aws), "us-west-2": h.new_key(local_aws, region="us-west-2")}
    local_aws.client("rds", account=h.PROVIDER).create_global_cluster(GlobalClusterIdentifier=gid, Engine="aurora-postgresql",
                                                                      StorageEncrypted=True)
    h.make_cluster(local_aws, primary, h.new_key(local_aws, account=h.PROVIDER), global_cluster=gid, instances=1)
    h.make_cluster(local_aws, secondary, h.new_key(local_aws, account=h.PROVIDER, region="us-west-2"),
                   region="us-west-2", global_cluster=gid, primary=False, instances=1)
    base = dict(identifier=primary, global_cluster=gid, region_keys=region_keys)
    monkeypatch.setenv(STOP_AFTER_ENV, stop_after.replace("s:", f"{secondary}:"))
    first = play(**base)
    assert not first["complete"] and first["resumed"] is None, {k: v for k, v in first.items() if k != "_output"}
    monkeypatch.delenv(STOP_AFTER_ENV)

    second = play(**base)
    assert second["complete"], {k: v for k, v in second.items() if k != "_output"}
    resumed = second["resumed"]
    assert resumed["members_done"] == [secondary] and resumed["members_out_of_global"] == []
    assert resumed["writer"] == (secondary if stop_after == "switchover_to" else primary)
    first_step = second["steps_run"][0]
    if stop_after == "switchover_to":  # the old primary, now a secondary, is re-keyed next
        assert (resumed["at_step"], resumed["target"], first_step["cluster"]) == ("rekey_secondary", primary, primary)
    else:  # the secondary is done: the switchover to it comes next
        assert (resumed["at_step"], resumed["target"], first_step["step"]) == ("switchover_to", secondary, "switchover_to")
    members = local_aws.client("rds", account=h.PROVIDER).describe_global_clusters(GlobalClusterIdentifier=gid)["GlobalClusters"][0]
    assert {m["DBClusterArn"].rsplit(":", 1)[-1]: m["IsWriter"] for m in members["GlobalClusterMembers"]} == {primary: True, secondary: False}
    assert play(**base)["resumed"] is None
