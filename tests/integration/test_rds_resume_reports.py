# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stopped rds_reencrypt run, run again through ansible-playbook, says it resumed: at which step, from what it found.

The first run is killed right after a step: it goes through the fault proxy, which holds the first request of the
next step unanswered while the test kills ansible-playbook and the module, then drops it (it never reaches the local
AWS). The second must report `resumed` naming the step it continued at and the earlier run's resources it found (read
with boto3 to be there), and finish; a third, with nothing left to do, reports no resumption.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from urllib.parse import parse_qs

import pytest

from tests.integration import runner
from tests.integration import test_rds_helpers as h
from tests.integration.test_rds_reencrypt import PLAYBOOK
from tests.integration.test_rds_reencrypt import keys, play, rds  # noqa: F401  pylint: disable=unused-import
from tests.integration.test_s3_bucket_kms import process_tree
from tests.local_aws import fault_proxy


def rds_call(action, **fields):
    """A fault proxy matcher: the RDS query-protocol request `action` whose form fields include `fields`."""
    def matches(_method, _path, _query, _headers, body):
        form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
        return form.get("Action") == action and all(form.get(k) == v for k, v in fields.items())
    return matches


def killed_at(local_aws, tmp_path, matches, **extra_vars):
    """Run the playbook through a fault proxy until the request `matches` arrives; kill ansible-playbook and the module
    then (the request is dropped, never reaching the local AWS)."""
    proxy = fault_proxy.start(local_aws.endpoint_url, fault_proxy.FaultSpec())
    try:
        held = proxy.hold(matches)
        vars_path = tmp_path / "killed-vars.json"
        vars_path.write_text(json.dumps({"result_path": str(tmp_path / "killed.json"), **extra_vars}))
        env = {**runner.ansible_env(proxy.endpoint_url, str(tmp_path)), **local_aws.env(account=h.PROVIDER),
               "AWS_ENDPOINT_URL": proxy.endpoint_url}
        proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", PLAYBOOK,
                                 "-e", f"@{vars_path}"], cwd=runner.ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        reached = held.reached.wait(240)
        for pid in reversed(process_tree(proc.pid)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
        held.release()
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert reached, "the run never reached the request to stop at"


@pytest.mark.parametrize("stop_after,resumes_at,found", [
    ("restore", "create_instances", ["-byok-new", "-byok-final"]),
    ("rename_old", "rename_new", ["-byok-old", "-byok-new", "-byok-final"]),
])  # killed at the first request of `resumes_at`
def test_a_resumed_snapshot_restore_says_where_it_resumed(local_aws, tmp_path, play, rds, keys, unique_name,  # noqa: F811
                                                          stop_after, resumes_at, found):
    name = h.make_cluster(local_aws, unique_name("rs"), keys["old"], instances=1)
    base = dict(identifier=name, key_arn=keys["new"], strategy="snapshot_restore", allow_downtime=True)
    next_request = {"create_instances": rds_call("CreateDBInstance"),
                    "rename_new": rds_call("ModifyDBCluster", DBClusterIdentifier=f"{name}-byok-new", NewDBClusterIdentifier=name)}
    killed_at(local_aws, tmp_path, next_request[resumes_at], **base)

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
def test_a_resumed_global_database_says_which_members_were_done(local_aws, tmp_path, play, keys, unique_name,  # noqa: F811
                                                                 stop_after):
    gid, primary, secondary = unique_name("g"), unique_name("p"), unique_name("s")
    region_keys = {"us-east-1": h.new_key(local_aws), "us-west-2": h.new_key(local_aws, region="us-west-2")}
    local_aws.client("rds", account=h.PROVIDER).create_global_cluster(GlobalClusterIdentifier=gid, Engine="aurora-postgresql",
                                                                      StorageEncrypted=True)
    h.make_cluster(local_aws, primary, h.new_key(local_aws, account=h.PROVIDER), global_cluster=gid, instances=1)
    h.make_cluster(local_aws, secondary, h.new_key(local_aws, account=h.PROVIDER, region="us-west-2"),
                   region="us-west-2", global_cluster=gid, primary=False, instances=1)
    base = dict(identifier=primary, global_cluster=gid, region_keys=region_keys)
    # Killed at the first request of what follows: the primary's removal from the global database (its re-key).
    arns = {m["DBClusterArn"].rsplit(":", 1)[-1]: m["DBClusterArn"] for m in local_aws.client("rds", account=h.PROVIDER)
            .describe_global_clusters(GlobalClusterIdentifier=gid)["GlobalClusters"][0]["GlobalClusterMembers"]}
    killed_at(local_aws, tmp_path, rds_call("RemoveFromGlobalCluster", DbClusterIdentifier=arns[primary]), **base)

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
