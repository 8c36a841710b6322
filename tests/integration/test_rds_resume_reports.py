# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stopped rds_reencrypt run, run again through ansible-playbook, says it resumed: at which step, from what it found.

The first run stops right after a step (BYOK_RDS_STOP_AFTER, as if killed there); the second must report `resumed`
naming the step it continued at and the earlier run's resources it found (read with boto3 to be there), and finish;
a third, with nothing left to do, reports no resumption.
"""

from __future__ import annotations

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.rds_reencrypt import STOP_AFTER_ENV
from tests.integration import test_rds_helpers as h
from tests.integration.test_rds_reencrypt import keys, play, rds  # noqa: F401  pylint: disable=unused-import


@pytest.mark.parametrize("stop_after,resumes_at,found", [
    ("final_snapshot", "restore", ["-byok-final"]),
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


def test_a_first_run_does_not_claim_to_resume(local_aws, play, rds, keys, unique_name):  # noqa: F811
    name = h.make_cluster(local_aws, unique_name("fr"), keys["old"], instances=1)
    result = play(identifier=name, key_arn=keys["new"], strategy="snapshot_restore", allow_downtime=True)
    assert result["complete"] and result["resumed"] is None
