# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rds_plan: observed state -> next step, for every stage of both strategies, rollbacks and global databases."""

from __future__ import annotations

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.rds import plan as rds_plan
from ansible_collections.mattermost.byok.plugins.module_utils.rds.plan import DEFERRED, DONE, Names, PlanError

KEY, OLD_KEY = "arn:aws:kms:us-east-1:111111111101:key/new", "arn:aws:kms:us-east-1:222222222222:key/old"
SR = Names("db", "snapshot_restore")
BG = Names("db", "blue_green")


def res(key=OLD_KEY, members=("db-1", "db-2"), status="available", step=None, protected=False, **extra):
    return {"key": key, "members": list(members), "status": status, "step": step, "protected": protected,
            "members_available": True, "rolled_back": step == "rolled-back", **extra}


def facts(**kw):
    base = {"target_key": KEY, "current": res(), "old": None, "new": None, "snapshot": None, "copy": None,
            "deployment": None, "allow_switchover": True}
    base.update(kw)
    return base


SNAPSHOT_CLUSTER = [
    ("untouched", facts(), "final_snapshot"),
    ("snapshot creating", facts(snapshot="creating"), "wait_snapshot"),
    ("snapshot ready", facts(snapshot="available"), "restore"),
    ("copy restoring", facts(snapshot="available", new=res(KEY, members=(), status="creating")), "wait_new"),
    ("copy without instances", facts(snapshot="available", new=res(KEY, members=())), "create_instances"),
    ("copy with one instance", facts(snapshot="available", new=res(KEY, members=("db-1-byok-new",))), "create_instances"),
    ("instances starting", facts(snapshot="available",
                                 new=dict(res(KEY, members=("db-1-byok-new", "db-2-byok-new")), members_available=False)), "wait_new"),
    ("copy complete", facts(snapshot="available", new=res(KEY, members=("db-1-byok-new", "db-2-byok-new"))), "verify_new"),
    ("copy verified", facts(snapshot="available", new=res(KEY, members=("db-1-byok-new", "db-2-byok-new"), step="verified")), "rename_old"),
    ("old instances half renamed", facts(current=res(members=("db-1-byok-old", "db-2")),
                                         new=res(KEY, members=("db-1-byok-new", "db-2-byok-new"), step="verified")), "rename_old"),
    ("old renamed", facts(current=None, old=res(members=("db-1-byok-old", "db-2-byok-old"), protected=True),
                          new=res(KEY, members=("db-1-byok-new", "db-2-byok-new"), step="verified")), "rename_new"),
    ("new instances half renamed", facts(current=None, old=res(members=("db-1-byok-old", "db-2-byok-old")),
                                         new=res(KEY, members=("db-1", "db-2-byok-new"), step="verified")), "rename_new"),
    ("swapped", facts(current=res(KEY, step="verified"), old=res(members=("db-1-byok-old",), protected=True)), "verify_cutover"),
    ("swapped, old unprotected", facts(current=res(KEY, step="verified"), old=res(members=("db-1-byok-old",))), "protect_old"),
    ("complete", facts(current=res(KEY), old=res(protected=True, cutover_verified=True)), DONE),
    ("complete, a byok tag left on the live one", facts(current=res(KEY, bookkeeping=["byok:reencrypt-step"]),
                                                        old=res(protected=True, cutover_verified=True)), "verify_cutover"),
    ("completed by an earlier version (tags on the live one, no record on the old)",
     facts(current=res(KEY, step="complete", bookkeeping=["byok:reencrypt-step"]), old=res(protected=True)), "verify_cutover"),
    ("already on the key, never re-keyed", facts(current=res(KEY, step=None)), DONE),
    ("on the key, old cleaned, tags left", facts(current=res(KEY, bookkeeping=["byok:reencrypt-key"])), "verify_cutover"),
]


@pytest.mark.parametrize("name,observed,expected", SNAPSHOT_CLUSTER, ids=[c[0] for c in SNAPSHOT_CLUSTER])
def test_snapshot_restore_cluster(name, observed, expected):
    assert rds_plan.next_step("snapshot_restore", "cluster", observed, SR) == expected


SNAPSHOT_INSTANCE = [
    ("untouched", facts(current=res(members=())), "final_snapshot"),
    ("snapshot ready", facts(current=res(members=()), snapshot="available"), "copy_snapshot"),
    ("copy copying", facts(current=res(members=()), snapshot="available", copy="copying"), "wait_copy"),
    ("copy ready", facts(current=res(members=()), snapshot="available", copy="available"), "restore"),
    ("snapshot gone, copy kept", facts(current=res(members=()), copy="available"), "restore"),
    ("restored", facts(current=res(members=()), copy="available", new=res(KEY, members=())), "verify_new"),
]


@pytest.mark.parametrize("name,observed,expected", SNAPSHOT_INSTANCE, ids=[c[0] for c in SNAPSHOT_INSTANCE])
def test_snapshot_restore_instance(name, observed, expected):
    assert rds_plan.next_step("snapshot_restore", "instance", observed, SR) == expected


def dep(status, key=KEY, verified=False, details=None):
    return {"status": status, "target_key": key, "green_verified": verified, "details": details}


BLUE_GREEN = [
    ("untouched", facts(), "create_green"),
    ("provisioning", facts(deployment=dep("PROVISIONING")), "wait_green"),
    ("green ready", facts(deployment=dep("AVAILABLE")), "verify_green"),
    ("green verified", facts(deployment=dep("AVAILABLE", verified=True)), "switchover"),
    ("green verified, outside the window", facts(deployment=dep("AVAILABLE", verified=True), allow_switchover=False), DEFERRED),
    ("switching", facts(deployment=dep("SWITCHOVER_IN_PROGRESS")), "wait_switchover"),
    ("switching, names in flux", facts(current=None, deployment=dep("SWITCHOVER_IN_PROGRESS")), "wait_switchover"),
    ("switched", facts(current=res(KEY), old=res(), deployment=dep("SWITCHOVER_COMPLETED")), "delete_deployment"),
    ("deployment deleted", facts(current=res(KEY), old=res()), "protect_old"),
    ("old protected", facts(current=res(KEY), old=res(protected=True)), "verify_cutover"),
    ("complete", facts(current=res(KEY), old=res(protected=True, cutover_verified=True)), DONE),
    ("verified green tag still on the live one", facts(current=res(KEY, step="verified", bookkeeping=["byok:reencrypt-step"]),
                                                       old=res(protected=True, cutover_verified=True)), "verify_cutover"),
]


@pytest.mark.parametrize("name,observed,expected", BLUE_GREEN, ids=[c[0] for c in BLUE_GREEN])
def test_blue_green(name, observed, expected):
    assert rds_plan.next_step("blue_green", "cluster", observed, BG) == expected


REFUSED = [
    ("snapshot_restore", "unknown", facts(current=None), "no such database"),
    ("snapshot_restore", "copy on another key", facts(snapshot="available", new=res("arn:other", members=())), "not " + KEY),
    ("snapshot_restore", "rolled-back copy", facts(new=res(KEY, step="rolled-back")), "state=cleaned"),
    ("snapshot_restore", "old and original both", facts(old=res()), "interrupted by hand"),
    ("snapshot_restore", "copy beside a re-keyed db", facts(current=res(KEY), new=res(KEY)), "already on the key"),
    ("snapshot_restore", "rollback interrupted", facts(current=res(KEY, members=("db-1-byok-new",))), "state=rolled_back"),
    ("blue_green", "failed deployment", facts(deployment=dep("INVALID_CONFIGURATION", details="binlog")), "binlog"),
    ("blue_green", "green on another key", facts(deployment=dep("AVAILABLE", key="arn:other")), "green side"),
    ("blue_green", "old1 already there", facts(old=res()), "state=cleaned"),
    ("blue_green", "unknown", facts(current=None), "no such database"),
]


# An instance with read replicas: every green replica and, after the switchover, every live replica on the key.
INSTANCE_REPLICAS = [
    ("green replicas on the key", facts(current=res(members=()), deployment=dict(dep("AVAILABLE"),
                                                                                 green_keys={"db-r1-green-a": KEY, "db-r2-green-b": KEY})), "verify_green"),
    ("green verified with replicas", facts(current=res(members=()), deployment=dict(dep("AVAILABLE", verified=True),
                                                                                    green_keys={"db-r1-green-a": KEY})), "switchover"),
    ("no replicas", facts(current=res(members=()), deployment=dict(dep("AVAILABLE"), green_keys={})), "verify_green"),
    ("switched, replicas on the key", facts(current=res(KEY, members=(), replicas_off_key=[]), old=res(members=(), protected=True)), "verify_cutover"),
    ("switched, old unprotected, a replica off the key", facts(current=res(KEY, members=(), replicas_off_key=["db-r2"]), old=res(members=())), "protect_old"),
]


@pytest.mark.parametrize("name,observed,expected", INSTANCE_REPLICAS, ids=[c[0] for c in INSTANCE_REPLICAS])
def test_blue_green_instance_with_replicas(name, observed, expected):
    assert rds_plan.next_step("blue_green", "instance", observed, BG) == expected


REPLICAS_REFUSED = [
    ("a green replica on the old key", facts(current=res(members=()), deployment=dict(
        dep("AVAILABLE", verified=True), green_keys={"db-r1-green-a": KEY, "db-r2-green-b": OLD_KEY})), "db-r2-green-b are not on"),
    ("a green replica unencrypted", facts(current=res(members=()), deployment=dict(dep("AVAILABLE"), green_keys={"db-r1-green-a": None})), "db-r1-green-a"),
    ("a live replica on the old key", facts(current=res(KEY, members=(), replicas_off_key=["db-r2"]), old=res(members=(), protected=True)),
     "read replicas db-r2 are not"),
    ("completed by an earlier version, a replica off the key", facts(current=res(KEY, members=(), step="complete", replicas_off_key=["db-r1", "db-r2"])),
     "db-r1, db-r2"),
]


@pytest.mark.parametrize("name,observed,message", REPLICAS_REFUSED, ids=[c[0] for c in REPLICAS_REFUSED])
def test_replicas_off_the_key_are_never_done(name, observed, message):
    with pytest.raises(PlanError, match=message):
        rds_plan.next_step("blue_green", "instance", observed, BG)


@pytest.mark.parametrize("strategy,name,observed,message", REFUSED, ids=[c[1] for c in REFUSED])
def test_refused_states_name_the_fix(strategy, name, observed, message):
    with pytest.raises(PlanError, match=message):
        rds_plan.next_step(strategy, "cluster", observed, Names("db", strategy))


ROLLBACK = [
    ("after cut-over", facts(current=res(KEY), old=res(members=("db-1-byok-old",))), "set_aside_new"),
    ("new set aside", facts(current=None, old=res(members=("db-1-byok-old",)), new=res(KEY, members=("db-1-byok-new",))), "restore_old_names"),
    ("old instances half back", facts(current=None, old=res(members=("db-1",)), new=res(KEY)), "restore_old_names"),
    ("old cluster back, an instance still suffixed", facts(current=res(members=("db-1-byok-old",)), new=res(KEY)), "restore_old_names"),
    ("rolled back", facts(current=res(), new=res(KEY, step="rolled-back")), DONE),
    ("rolled back, the original still tagged", facts(current=res(bookkeeping=["byok:original-deletion-protection"]),
                                                     new=res(KEY, step="rolled-back")), "restore_settings"),
]


@pytest.mark.parametrize("name,observed,expected", ROLLBACK, ids=[c[0] for c in ROLLBACK])
def test_rollback(name, observed, expected):
    assert rds_plan.next_rollback_step(observed, SR) == expected


def test_rollback_without_retained_old_is_refused():
    with pytest.raises(PlanError, match="nothing to roll back"):
        rds_plan.next_rollback_step(facts(current=res(KEY)), SR)


SECONDARY = [
    ("in the global, old key", {"current": res(in_global=True)}, "remove_from_global"),
    ("detached", {"current": res(in_global=False)}, "rename_old"),
    ("old instances half renamed", {"current": None, "old": res(members=("db-1-byok-old", "db-2"))}, "rename_old"),
    ("set aside", {"current": None, "old": res(members=("db-1-byok-old", "db-2-byok-old"))}, "create_secondary"),
    ("re-added, creating", {"current": res(KEY, members=(), status="creating", in_global=True), "old": res(members=("db-1-byok-old",))}, "wait_new"),
    ("re-added, no instances", {"current": res(KEY, members=(), in_global=True), "old": res(members=("db-1-byok-old",))}, "create_instances"),
    ("instances there", {"current": res(KEY, members=("db-1",), in_global=True), "old": res(members=("db-1-byok-old",), protected=True)}, "verify_cutover"),
    ("done", {"current": res(KEY, members=("db-1",), in_global=True), "old": res(members=("db-1-byok-old",), protected=True, cutover_verified=True)}, DONE),
    ("tags left on the re-created secondary", {"current": res(KEY, members=("db-1",), in_global=True, bookkeeping=["byok:reencrypt-global-cluster"]),
                                               "old": res(members=("db-1-byok-old",), protected=True, cutover_verified=True)}, "verify_cutover"),
    ("not yet verified", {"current": res(KEY, members=("db-1",), in_global=True), "old": res(members=("db-1-byok-old",), protected=True)}, "verify_cutover"),
]


@pytest.mark.parametrize("name,observed,expected", SECONDARY, ids=[c[0] for c in SECONDARY])
def test_secondary(name, observed, expected):
    assert rds_plan.next_secondary_step({"target_key": KEY, **observed}, SR) == expected


def test_secondary_on_key_outside_the_global_is_refused():
    with pytest.raises(PlanError, match="not in the global database"):
        rds_plan.next_secondary_step({"target_key": KEY, "current": res(KEY, in_global=False)}, SR)


def global_facts(writer="p", p=False, s=False, allow=True):
    return {"primary": "p", "writer": writer, "allow_switchover": allow,
            "clusters": {"p": {"complete": p, "on_key": p, "in_global": True}, "s": {"complete": s, "on_key": s, "in_global": True}}}


GLOBAL = [
    ("nothing done", global_facts(), ("rekey_secondary", "s")),
    ("secondary done", global_facts(s=True), ("switchover_to", "s")),
    ("secondary done, outside the window", global_facts(s=True, allow=False), (DEFERRED, "s")),
    ("switched away", global_facts(writer="s", s=True), ("rekey_secondary", "p")),
    ("primary re-keyed as a secondary", global_facts(writer="s", s=True, p=True), ("switchover_back", "p")),
    ("all done", global_facts(s=True, p=True), (DONE, None)),
]


@pytest.mark.parametrize("name,observed,expected", GLOBAL, ids=[c[0] for c in GLOBAL])
def test_global(name, observed, expected):
    assert rds_plan.next_global_step(observed) == expected


def test_plan_for_check_mode():
    plan = rds_plan.describe_plan("snapshot_restore", "cluster", SR, ["db-1"])
    assert plan["steps"][0] == "final_snapshot" and {"from": "db-byok-new", "to": "db"} in plan["renames"]
    assert {"from": "db-1", "to": "db-1-byok-old"} in plan["renames"] and "downtime" in plan["expected_disruption"]
    plan = rds_plan.describe_plan("blue_green", "cluster", BG, ["db-1"])
    assert {"from": "db", "to": "db-old1"} in plan["renames"] and "under a minute" in plan["expected_disruption"]


@pytest.mark.parametrize("value", ["1db", "db_x", "db--x", "db-", "x" * 51, ""])
def test_identifier_checked(value):
    with pytest.raises(PlanError, match="identifier"):
        rds_plan.check_identifier(value)
