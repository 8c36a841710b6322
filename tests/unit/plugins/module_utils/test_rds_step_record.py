# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rds/step_record.py: what the RDS step moves, keeps per round, prints and records.

The expected values are written out for each case; the same cases are also rendered with the byok_rds role's
Jinja that this code replaced (FORMER_JINJA, verbatim), so the lines and records the user sees stay the same.
"""

from __future__ import annotations

import copy

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.rds import step_record as sr

KEY_E = "arn:aws:kms:us-east-1:111111111101:key/east"
KEY_W = "arn:aws:kms:us-west-2:111111111101:key/west"
ACME = {"region": "us-east-1", "rds_global_cluster": None,
        "rds_clusters": [{"identifier": "acme-db", "region": "us-east-1", "kind": "cluster", "key_arn": KEY_E},
                         {"identifier": "acme-reports", "region": "us-west-2", "kind": "instance", "key_arn": KEY_W}]}
UMBRELLA = {"region": "us-east-1", "rds_global_cluster": "umbrella-global",
            "rds_clusters": [{"identifier": "umbrella-db-west", "region": "us-west-2", "kind": "cluster", "key_arn": KEY_W},
                             {"identifier": "umbrella-db", "region": "us-east-1", "kind": "cluster", "key_arn": KEY_E}]}
GLOBAL_TARGET = {"identifier": "umbrella-db", "region": "us-east-1", "kind": "cluster", "key_arn": KEY_E,
                 "global_cluster": "umbrella-global"}
BG_PLAN = {"strategy": "blue_green", "steps": ["create_green", "wait_green", "switchover"], "disruptive": True,
           "expected_disruption": "writes pause for under a minute"}
SR_PLAN = {"strategy": "snapshot_restore", "steps": ["final_snapshot", "restore", "swap"], "disruptive": True,
           "expected_disruption": "writes stop for the cut-over"}


def answer(identifier, **kw):
    """One database's entry of rds_reencrypt's `results`."""
    base = {"identifier": identifier, "changed": True, "complete": False, "deferred": False, "step": "wait_green",
            "status": "available", "elapsed_seconds": 120.04, "plan": BG_PLAN, "resumed": None}
    base.update(kw)
    return base


# --- what the step moves


def test_regional_databases_are_each_a_target():
    assert sr.targets(ACME) == ACME["rds_clusters"]


def test_a_global_database_is_one_target_through_its_home_region_member():
    assert sr.targets(UMBRELLA) == [GLOBAL_TARGET]


def test_a_global_database_without_a_home_region_member_goes_through_the_first():
    customer = dict(UMBRELLA, region="eu-west-1")
    assert sr.targets(customer)[0]["identifier"] == "umbrella-db-west"


@pytest.mark.parametrize("customer", [{"rds_clusters": []}, {"rds_clusters": [], "rds_global_cluster": "g"}, {}])
def test_no_database_no_target(customer):
    assert sr.targets(customer) == []


@pytest.mark.parametrize("allowed,strategy,customer,expected", [
    (False, "snapshot_restore", ACME, True),
    (True, "snapshot_restore", ACME, False),
    (False, "blue_green", ACME, False),
    (True, "blue_green", ACME, False),
    (False, "snapshot_restore", UMBRELLA, False),  # switchovers, gated by the module itself
])
def test_plan_only_outside_the_window_for_snapshot_restore(allowed, strategy, customer, expected):
    assert sr.plan_only(allowed, strategy, customer) is expected


def test_databases_argument_regional():
    assert sr.databases_argument(ACME["rds_clusters"], ACME) == [
        {"identifier": "acme-db", "kind": "cluster", "region": "us-east-1", "key_arn": KEY_E},
        {"identifier": "acme-reports", "kind": "instance", "region": "us-west-2", "key_arn": KEY_W}]


def test_databases_argument_global_has_every_region_key():
    assert sr.databases_argument([GLOBAL_TARGET], UMBRELLA) == [
        {"identifier": "umbrella-db", "kind": "cluster", "region": "us-east-1", "global_cluster": "umbrella-global",
         "region_keys": {"us-west-2": KEY_W, "us-east-1": KEY_E}}]


def test_databases_argument_kind_defaults_to_cluster():
    assert sr.databases_argument([{"identifier": "x", "region": "us-east-1", "key_arn": KEY_E}], ACME)[0]["kind"] == "cluster"


# --- per-round state


def test_first_round_starts_the_totals():
    state = sr.fold_round({}, [answer("acme-db", switchover_seconds=None, downtime_seconds=None)], deferred_plan=False)
    assert state == {"acme-db": {"seconds": 120.04, "changed": True, "measured": {},
                                 "last": {"step": "wait_green", "status": "available", "complete": False, "deferred": False,
                                          "plan": BG_PLAN}}}


def test_rounds_add_seconds_keep_changed_and_the_measured_disruption():
    state = sr.fold_round({}, [answer("acme-db", elapsed_seconds=100)], False)
    state = sr.fold_round(state, [answer("acme-db", elapsed_seconds=21.5, changed=False, switchover_seconds=21.5,
                                         complete=True, step="done", retained_old="acme-db-old1", strategy="blue_green")], False)
    state = sr.fold_round(state, [answer("acme-db", elapsed_seconds=None, changed=False, switchover_seconds=None)], False)
    s = state["acme-db"]
    assert s["seconds"] == 121.5 and s["changed"] is True and s["measured"] == {"switchover_seconds": 21.5}
    assert s["last"]["step"] == "wait_green"  # the latest answer


def test_fold_round_leaves_the_given_state_alone():
    before = {"acme-db": {"seconds": 1.0, "changed": False, "measured": {"downtime_seconds": 3}, "last": {}}}
    kept = copy.deepcopy(before)
    sr.fold_round(before, [answer("acme-db", downtime_seconds=9)], False)
    assert before == kept


def test_a_plan_outside_the_window_changes_nothing():
    state = sr.fold_round({}, [answer("globex-db", changed=True, plan=SR_PLAN)], deferred_plan=True)
    assert state["globex-db"]["changed"] is False


def test_only_the_last_fields_are_kept():
    r = answer("acme-db", strategy="blue_green", retained_old="x", dr_exposure=["d"], prerequisites=["p"],
               progress=["..."], way_back="...", steps_run=[{"step": "a"}])
    assert set(sr.fold_round({}, [r], False)["acme-db"]["last"]) == set(sr.LAST_FIELDS)


def test_pending_are_neither_complete_nor_deferred():
    targets = ACME["rds_clusters"] + [{"identifier": "c", "region": "us-east-1", "key_arn": KEY_E}]
    results = [answer("acme-db", complete=True), answer("acme-reports", deferred=True), answer("c")]
    assert [t["identifier"] for t in sr.still_pending(targets, results)] == ["c"]
    assert sr.still_pending(targets, [answer("acme-db", complete=False)]) == [targets[0]]
    assert sr.still_pending(targets, []) == []


# --- progress lines


def lines_of(results, planning=False, state=None):
    state = sr.fold_round(state or {}, results, False)
    return sr.progress_lines(results, state, planning)


def test_progress_line():
    assert lines_of([answer("acme-db", elapsed_seconds=241.04)]) == ["acme-db: step wait_green, status available, elapsed 241.0 s"]


def test_progress_line_elapsed_is_over_all_rounds():
    state = sr.fold_round({}, [answer("acme-db", elapsed_seconds=120.0)], False)
    assert lines_of([answer("acme-db", elapsed_seconds=0.26)], state=state)[0].endswith("elapsed 120.3 s")


@pytest.mark.parametrize("status", [None, "", "__missing__"])
def test_progress_line_without_status(status):
    r = answer("acme-db", status=status)
    if status == "__missing__":
        del r["status"]
    assert lines_of([r]) == ["acme-db: step wait_green, status -, elapsed 120.0 s"]


def test_progress_line_deferred_and_planned():
    [line] = lines_of([answer("acme-db", deferred=True, step="deferred")], planning=True)
    assert line == ("acme-db: step deferred, status available, elapsed 120.0 s (deferred: the switchover waits for the "
                    "maintenance window) (plan only)")


def test_progress_line_resumed_with_what_was_found():
    [line] = lines_of([answer("acme-db", resumed={"at_step": "switchover", "found": ["bg-1", "acme-db-old1"]})])
    assert line.endswith("elapsed 120.0 s; resumed at switchover what an earlier run left (bg-1, acme-db-old1)")


def test_progress_line_resumed_global_names_the_members_done():
    [line] = lines_of([answer("umbrella-db", resumed={"at_step": "create_secondary", "members_done": ["umbrella-db-west"]})])
    assert line.endswith("; resumed at create_secondary what an earlier run left (umbrella-db-west)")
    [line] = lines_of([answer("umbrella-db", resumed={"at_step": "create_secondary"})])
    assert line.endswith("; resumed at create_secondary what an earlier run left ()")


def test_one_line_per_database_in_the_answers_order():
    lines = lines_of([answer("b", elapsed_seconds=1), answer("a", elapsed_seconds=2, step="done", status=None)])
    assert lines == ["b: step wait_green, status available, elapsed 1.0 s", "a: step done, status -, elapsed 2.0 s"]


# --- records


def record_of(results, target=None, plan_only=False, check_mode=False, strategy="blue_green", rounds=1):
    state = {}
    for dummy in range(rounds):
        state = sr.fold_round(state, results, plan_only and not check_mode)
    target = target or {"identifier": results[0]["identifier"], "region": "us-east-1", "key_arn": KEY_E}
    [record] = sr.records([target], state, plan_only, check_mode, strategy)
    return record


def test_record_blue_green_done():
    rec = record_of([answer("acme-db", complete=True, step="done", strategy="blue_green", switchover_seconds=21.3,
                            retained_old="acme-db-old1")])
    assert rec == {"step": "rds", "resource": "acme-db", "changed": True, "disruptive": True, "deferred": False,
                   "estimated_disruption_seconds": 21.3,
                   "summary": "on the customer key (blue_green, switchover 21.3 s); old kept as acme-db-old1"}


def test_record_snapshot_restore_done_with_downtime():
    rec = record_of([answer("globex-db", complete=True, step="done", strategy="snapshot_restore", downtime_seconds=95.0,
                            retained_old=None, plan=SR_PLAN)], strategy="snapshot_restore")
    assert rec["summary"] == "on the customer key (snapshot_restore, downtime 95.0 s); old kept as <id>-byok-old"
    assert rec["estimated_disruption_seconds"] == 95.0


def test_record_done_without_a_strategy_in_the_answer_names_the_runs():
    r = answer("acme-db", complete=True, step="done", changed=False)
    rec = record_of([r], strategy="snapshot_restore")
    assert rec["summary"] == "on the customer key (snapshot_restore); old kept as <id>-byok-old"
    assert rec["changed"] is False and rec["estimated_disruption_seconds"] is None


def test_record_global_done():
    rec = record_of([answer("umbrella-db", complete=True, step="done", dr_exposure=["a", "b"], switchover_seconds=40,
                            retained_old="umbrella-db-byok-old", plan={"disruptive": True})], target=GLOBAL_TARGET)
    assert rec["resource"] == "umbrella-global"
    assert rec["summary"] == ("on the customer key (each region on its own key; 2 DR exposure note(s), switchover 40 s); "
                              "old kept as umbrella-db-byok-old")


def test_record_deferred_switchover():
    rec = record_of([answer("acme-db", deferred=True, step="deferred")])
    assert rec["deferred"] is True and rec["estimated_disruption_seconds"] == 60
    assert rec["summary"] == "deferred to the maintenance window at step deferred (writes pause for under a minute)"


def test_record_plan_only_is_deferred_and_unchanged():
    rec = record_of([answer("globex-db", step="final_snapshot", plan=SR_PLAN)], plan_only=True, strategy="snapshot_restore")
    assert rec["deferred"] is True and rec["changed"] is False and rec["estimated_disruption_seconds"] is None
    assert rec["summary"] == "deferred to the maintenance window at step final_snapshot (writes stop for the cut-over)"


def test_record_check_mode_is_the_plan():
    rec = record_of([answer("acme-db", step="create_green")], check_mode=True)
    assert rec["summary"] == "plan: create_green, wait_green, switchover"
    assert rec["changed"] is True and rec["deferred"] is False


def test_record_check_mode_plan_only_says_deferred():
    rec = record_of([answer("globex-db", step="final_snapshot", plan=SR_PLAN)], plan_only=True, check_mode=True,
                    strategy="snapshot_restore")
    assert rec["deferred"] is True and rec["changed"] is True
    assert rec["summary"].startswith("deferred to the maintenance window")


def test_record_not_finished():
    rec = record_of([answer("acme-db", step="wait_green")], rounds=3)
    assert rec["summary"] == "not finished at step wait_green; resumes on the next run"


def test_record_prerequisites_not_met():
    rec = record_of([answer("hooli-db", step="create_green", prerequisites=["set rds.logical_replication=1", "upgrade"])])
    assert rec["summary"] == ("not finished at step create_green; resumes on the next run; Blue/Green prerequisites not "
                              "met: set rds.logical_replication=1; upgrade")


def test_record_of_a_database_without_an_answer():
    [rec] = sr.records([ACME["rds_clusters"][0]], {}, False, False, "blue_green")
    assert rec == {"step": "rds", "resource": "acme-db", "changed": False, "disruptive": True, "deferred": False,
                   "estimated_disruption_seconds": 60, "summary": "not finished at step ; resumes on the next run"}


@pytest.mark.parametrize("plan,expected", [({"disruptive": False}, False), ({}, True), (None, True)])
def test_record_disruptive_from_the_plan(plan, expected):
    assert record_of([answer("acme-db", plan=plan)])["disruptive"] is expected


@pytest.mark.parametrize("measured,target,strategy,expected", [
    ({"downtime_seconds": 5, "switchover_seconds": 7}, None, "blue_green", 5),
    ({"switchover_seconds": 7}, None, "snapshot_restore", 7),
    ({}, GLOBAL_TARGET, "snapshot_restore", 120),
    ({}, None, "blue_green", 60),
    ({}, None, "snapshot_restore", None),
])
def test_record_estimated_disruption(measured, target, strategy, expected):
    identifier = (target or {}).get("identifier", "acme-db")
    assert record_of([answer(identifier, **measured)], target=target, strategy=strategy)["estimated_disruption_seconds"] == expected


def test_records_one_per_target_in_order():
    state = sr.fold_round({}, [answer("acme-reports", complete=True), answer("acme-db")], False)
    assert [r["resource"] for r in sr.records(ACME["rds_clusters"], state, False, False, "blue_green")] == ["acme-db", "acme-reports"]


def test_announcements():
    assert sr.announcement_before(ACME["rds_clusters"], ACME, "blue_green") == (
        "acme-db, acme-reports move to the customer key (blue_green); expect a short interruption of writes")
    assert sr.announcement_before([GLOBAL_TARGET], UMBRELLA, "blue_green") == (
        "umbrella-db move to the customer key (global switchovers); expect a short interruption of writes")
    assert sr.announcement_after(ACME["rds_clusters"]) == "acme-db, acme-reports done"
