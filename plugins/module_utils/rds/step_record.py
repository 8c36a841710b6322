# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the RDS step of a customer decides, keeps and records, for the mattermost.byok.rds_step action. Pure.

The step moves the customer's databases in rounds of one time-boxed rds_reencrypt call each (all pending databases
in one call). Between rounds it keeps per database the seconds of every call so far, whether anything changed, the
measured disruption and the latest answer; after each round it prints one progress line per database; at the end it
appends one record per database to byok_step_results. The texts are those the byok_rds role printed and recorded
before it was one task (docs/rds.md).
"""

from __future__ import annotations

import copy

DEFERRED_NOTE = " (deferred: the switchover waits for the maintenance window)"
PLAN_NOTE = " (plan only)"
# What a database's latest answer keeps, and the measured disruption kept over the rounds.
LAST_FIELDS = ("step", "status", "complete", "deferred", "plan", "strategy", "retained_old", "dr_exposure", "prerequisites")
MEASURED_FIELDS = ("downtime_seconds", "switchover_seconds")
_MISSING = object()


def _get(value, *path, default=None):
    """value[path[0]][path[1]]...; `default` when a key is missing or a level is not a mapping (None kept as None)."""
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return default
        value = value[key]
    return value


def _number(value) -> float:
    """A number of seconds, 0.0 when there is none."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _text(value) -> str:
    return "" if value is _MISSING else str(value)


def targets(customer: dict) -> list[dict]:
    """What this run moves: a global database as one unit through its primary (the member in the customer's home
    region, else the first), else every database on its own with its own region and key."""
    clusters = list(customer.get("rds_clusters") or [])
    global_cluster = customer.get("rds_global_cluster")
    if not global_cluster:
        return clusters
    if not clusters:
        return []
    primary = next((c for c in clusters if c.get("region") == customer.get("region")), clusters[0])
    return [{"identifier": primary["identifier"], "region": primary.get("region"), "kind": "cluster",
             "key_arn": primary.get("key_arn"), "global_cluster": global_cluster}]


def plan_only(allowed: bool, strategy: str, customer: dict) -> bool:
    """snapshot_restore is all disruptive: outside the window only its plan is shown (a global database moves by
    switchovers, which rds_reencrypt gates itself)."""
    return not allowed and strategy == "snapshot_restore" and not customer.get("rds_global_cluster")


def databases_argument(pending: list[dict], customer: dict) -> list[dict]:
    """rds_reencrypt's `databases` for the databases still pending: each member of a global database on its own
    region's key, any other database on its own key."""
    region_keys = {c.get("region"): c.get("key_arn") for c in customer.get("rds_clusters") or []}
    out = []
    for target in pending:
        database = {"identifier": target["identifier"], "kind": target.get("kind", "cluster"), "region": target.get("region")}
        if "global_cluster" in target:
            database.update(global_cluster=target["global_cluster"], region_keys=dict(region_keys))
        else:
            database["key_arn"] = target.get("key_arn")
        out.append(database)
    return out


def fold_round(state: dict, results: list[dict], deferred_plan: bool) -> dict:
    """The databases' totals after one round: `state` (identifier -> seconds, changed, measured, last) with this
    call's `results` added. A plan outside the window (deferred_plan) changes nothing, whatever it predicts."""
    state = copy.deepcopy(state)
    for r in results:
        prev = state.get(r["identifier"]) or {"seconds": 0, "changed": False, "measured": {}}
        measured = dict(prev.get("measured") or {})
        measured.update({k: r[k] for k in MEASURED_FIELDS if r.get(k) is not None})
        state[r["identifier"]] = {
            "seconds": _number(prev.get("seconds")) + _number(r.get("elapsed_seconds", 0)),
            "changed": bool(prev.get("changed")) or (bool(r.get("changed")) and not deferred_plan),
            "measured": measured,
            "last": {k: r[k] for k in LAST_FIELDS if k in r},
        }
    return state


def still_pending(pending: list[dict], results: list[dict]) -> list[dict]:
    """The databases to call again: neither complete nor deferred in this round's answer."""
    open_ids = {r["identifier"] for r in results if not r.get("complete") and not r.get("deferred")}
    return [t for t in pending if t["identifier"] in open_ids]


def progress_lines(results: list[dict], state: dict, planning: bool) -> list[str]:
    """One line per database of the round: step, status, elapsed seconds over all calls, and why it stopped or
    where it resumed, e.g. `acme-db: step wait_green, status available, elapsed 241.0 s`."""
    lines = []
    for r in results:
        seconds = _number(_get(state, r["identifier"], "seconds", default=0))
        note = (DEFERRED_NOTE if r.get("deferred") else "") + (PLAN_NOTE if planning else "")
        resumed = r.get("resumed")
        resumed_note = ""
        if resumed:
            found = resumed["found"] if "found" in resumed else resumed.get("members_done", [])
            resumed_note = (f"; resumed at {_text(resumed.get('at_step', _MISSING))} what an earlier run left "
                            f"({', '.join(str(f) for f in found or [])})")
        lines.append(f"{r['identifier']}: step {_text(r.get('step', _MISSING))}, status {r.get('status') or '-'}, "
                     f"elapsed {round(seconds, 1)} s{note}{resumed_note}")
    return lines


def _summary(last: dict, measured: dict, is_global: bool, deferred: bool, check_mode: bool, strategy: str) -> str:
    if last.get("complete"):
        how = (f"each region on its own key; {len(last.get('dr_exposure') or [])} DR exposure note(s)" if is_global
               else _text(last.get("strategy", strategy)))
        if "downtime_seconds" in measured:
            how += f", downtime {measured['downtime_seconds']} s"
        if "switchover_seconds" in measured:
            how += f", switchover {measured['switchover_seconds']} s"
        summary = f"on the customer key ({how}); old kept as {last.get('retained_old') or '<id>-byok-old'}"
    elif deferred:
        summary = (f"deferred to the maintenance window at step {_text(last.get('step', ''))} "
                   f"({_text(_get(last, 'plan', 'expected_disruption', default=''))})")
    elif check_mode:
        summary = "plan: " + ", ".join(str(s) for s in _get(last, "plan", "steps", default=[]) or [])
    else:
        summary = f"not finished at step {_text(last.get('step', ''))}; resumes on the next run"
    if last.get("prerequisites"):
        summary += "; Blue/Green prerequisites not met: " + "; ".join(str(p) for p in last["prerequisites"])
    return summary


def records(targets_: list[dict], state: dict, plan_only_: bool, check_mode: bool, strategy: str) -> list[dict]:
    """One byok_step_results record per database this run worked on (a global database as one): whether it changed,
    whether its disruption waits for the window, the disruption measured (or estimated), and what happened in words."""
    out = []
    for target in targets_:
        s = state.get(target["identifier"]) or {"changed": False, "measured": {}, "last": {}}
        last, measured = s.get("last") or {}, s.get("measured") or {}
        is_global = "global_cluster" in target
        deferred = bool(plan_only_) or bool(last.get("deferred", False))
        if "downtime_seconds" in measured:
            estimate = measured["downtime_seconds"]
        elif "switchover_seconds" in measured:
            estimate = measured["switchover_seconds"]
        elif is_global:
            estimate = 120
        else:
            estimate = 60 if strategy == "blue_green" else None
        out.append({
            "step": "rds",
            "resource": target["global_cluster"] if is_global else target["identifier"],
            "changed": s.get("changed", False),
            "disruptive": _get(last, "plan", "disruptive", default=True),
            "deferred": deferred,
            "estimated_disruption_seconds": estimate,
            "summary": _summary(last, measured, is_global, deferred, check_mode, strategy),
        })
    return out


def announcement_before(targets_: list[dict], customer: dict, strategy: str) -> str:
    how = "global switchovers" if customer.get("rds_global_cluster") else strategy
    return f"{_ids(targets_)} move to the customer key ({how}); expect a short interruption of writes"


def announcement_after(targets_: list[dict]) -> str:
    return f"{_ids(targets_)} done"


def _ids(targets_: list[dict]) -> str:
    return ", ".join(t["identifier"] for t in targets_)
