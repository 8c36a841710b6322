# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The re-key state machine of rds_reencrypt: from what AWS shows now, the next step. Pure, no AWS calls.

Every decision is taken from the observed state (resources under well-known names and the byok:* tags the driver
sets), never from a local file, so an interrupted run is resumed by running again. The old database is touched
(renamed) only after the new one has been verified, and nothing is ever created twice: a step that creates
something is chosen only when that thing is absent.

Facts (dicts built by the driver from Describe* calls):
  target_key        the key ARN the database must end on
  current           the resource under the original identifier: {key, status, step, members, protected} or None;
                    an instance on the target key also has replicas_off_key (its read replicas on another key)
  old               the retained old resource (Names.old): same shape, or None
  new               the re-keyed copy before cut-over / after a rollback (Names.new): same shape plus
                    rolled_back, or None
  snapshot, copy    status of the final snapshot and (instances) of its re-keyed copy, or None
  deployment        Blue/Green deployment {status, target_key, green_verified, details} or None; an instance's
                    also has green_keys {green read replica: key}
  allow_switchover  whether the disruptive step may run now (else the plan stops there, deferred)
`members` are instance identifiers (clusters only; [] for an instance).
"""

from __future__ import annotations

import re

SNAPSHOT_RESTORE = "snapshot_restore"
BLUE_GREEN = "blue_green"
DONE = "done"
DEFERRED = "deferred"
WAITS = ("wait_snapshot", "wait_copy", "wait_new", "wait_green", "wait_switchover")

STEPS = {
    (SNAPSHOT_RESTORE, "cluster"): ("final_snapshot", "restore", "create_instances", "verify_new", "rename_old",
                                    "rename_new", "protect_old", "verify_cutover"),
    (SNAPSHOT_RESTORE, "instance"): ("final_snapshot", "copy_snapshot", "restore", "verify_new", "rename_old",
                                     "rename_new", "protect_old", "verify_cutover"),
    (BLUE_GREEN, "cluster"): ("create_green", "verify_green", "switchover", "delete_deployment", "protect_old",
                              "verify_cutover"),
    (BLUE_GREEN, "instance"): ("create_green", "verify_green", "switchover", "delete_deployment", "protect_old",
                               "verify_cutover"),
}
ROLLBACK_STEPS = ("set_aside_new", "restore_old_names", "restore_settings")
SECONDARY_STEPS = ("remove_from_global", "rename_old", "create_secondary", "create_instances", "protect_old",
                   "verify_cutover")

# Steps during which the application cannot write (snapshot_restore: from the final snapshot until the renamed
# new database answers) or is briefly cut off (a switchover).
DOWNTIME_STEPS = frozenset(("final_snapshot", "copy_snapshot", "restore", "create_instances", "verify_new",
                            "rename_old", "rename_new"))
SWITCHOVER_STEPS = frozenset(("switchover", "switchover_to", "switchover_back"))

DEPLOYMENT_FAILED = ("INVALID_CONFIGURATION", "SWITCHOVER_FAILED", "PROVISIONING_FAILED", "DELETING")


class PlanError(Exception):
    """The observed state is one the module must not act on by itself; the message says what to do."""


class Names:
    """Identifiers the re-key uses, derived from the original one, so that a re-run finds every piece."""

    def __init__(self, identifier: str, strategy: str):
        self.identifier = identifier
        # Blue/Green names the old side itself (-old1); the snapshot cut-over uses names of its own.
        self.old_suffix = "-old1" if strategy == BLUE_GREEN else "-byok-old"
        self.new_suffix = "-byok-new"
        self.old = identifier + self.old_suffix
        self.new = identifier + self.new_suffix
        self.snapshot = identifier + "-byok-final"
        self.copy = identifier + "-byok-rekeyed"
        self.deployment = identifier + "-byok"

    def renames(self, members=()) -> list:
        """What the cut-over renames, old name -> new name (for the plan shown in check mode)."""
        pairs = [(self.identifier, self.old)] + [(m, m + self.old_suffix) for m in members]
        pairs += [(self.new, self.identifier)] + [(m + self.new_suffix, m) for m in members]
        return [{"from": a, "to": b} for a, b in pairs]


def base_members(members, suffix: str) -> list:
    return sorted(m[: -len(suffix)] if m.endswith(suffix) else m for m in members)


def _with_suffix(members, suffix):
    return [m for m in members if m.endswith(suffix)]


def _without_suffix(members, suffix):
    return [m for m in members if not m.endswith(suffix)]


def _unknown(names: Names) -> PlanError:
    return PlanError(f"{names.identifier}: no such database (and no re-key in progress under {names.old} or "
                     f"{names.new}); check the identifier and the region")


def next_step(strategy: str, kind: str, facts: dict, names: Names) -> str:
    """The next step of re-keying onto facts['target_key'], DONE, DEFERRED or a wait_* step."""
    if strategy == BLUE_GREEN:
        return _next_blue_green(kind, facts, names)
    return _next_snapshot_restore(kind, facts, names)


def _on_target(resource, facts) -> bool:
    return bool(resource) and resource.get("key") == facts["target_key"]


def _finished_cutover(current, old, facts, names) -> str:
    if _with_suffix(current["members"], names.new_suffix):
        raise PlanError(f"{names.identifier}: a rollback was interrupted (instances named *{names.new_suffix} under "
                        f"{names.identifier}); finish it with state=rolled_back")
    if old and not old.get("protected"):
        return "protect_old"
    if current.get("replicas_off_key"):
        raise PlanError(f"{names.identifier} is on the key but its read replicas {', '.join(current['replicas_off_key'])} "
                        f"are not (each replica is encrypted on its own); fix: re-create each from {names.identifier} "
                        f"(a read replica in the same Region is always on its source's key), then run again")
    return _verified_or_verify(current, old)


def _verified_or_verify(current, old) -> str:
    """Done once the cut-over is verified: recorded on the retained old side, no byok:* tag left on the live one."""
    if current.get("bookkeeping") or (old is not None and not old.get("cutover_verified")):
        return "verify_cutover"
    return DONE


def _next_snapshot_restore(kind, facts, names) -> str:
    current, old, new = facts.get("current"), facts.get("old"), facts.get("new")
    if _on_target(current, facts):
        if new:
            raise PlanError(f"{names.new} exists beside {names.identifier}, which is already on the key; "
                            f"delete it or roll back (state=rolled_back) before running again")
        return _finished_cutover(current, old, facts, names)
    if current is None:
        if old and new:
            return "rename_new"
        raise _unknown(names)
    if old:
        raise PlanError(f"{names.identifier} is not on the key and {names.old} also exists; a cut-over or rollback "
                        f"was interrupted by hand: rename or delete {names.old} before running again")
    if new and new.get("rolled_back"):
        raise PlanError(f"{names.new} is a re-keyed copy set aside by a rollback; delete it (state=cleaned) "
                        f"before re-keying again, so that a fresh snapshot is taken")
    if _with_suffix(current["members"], names.old_suffix):
        return "rename_old"  # interrupted while renaming the old instances (only ever after verify_new)
    if new is None:
        if kind == "instance":
            if facts.get("copy") is None:
                if facts.get("snapshot") is None:
                    return "final_snapshot"
                if facts["snapshot"] != "available":
                    return "wait_snapshot"
                return "copy_snapshot"
            if facts["copy"] != "available":
                return "wait_copy"
        else:
            if facts.get("snapshot") is None:
                return "final_snapshot"
            if facts["snapshot"] != "available":
                return "wait_snapshot"
        return "restore"
    if new.get("key") != facts["target_key"]:
        raise PlanError(f"{names.new} exists on key {new.get('key')}, not {facts['target_key']}; delete it "
                        f"(it is a copy, the original {names.identifier} is untouched) and run again")
    if new.get("status") != "available":
        return "wait_new"
    if kind == "cluster":
        wanted = {m + names.new_suffix for m in base_members(current["members"], names.old_suffix)}
        if wanted - set(new["members"]):
            return "create_instances"
        if not new.get("members_available", True):
            return "wait_new"
    if new.get("step") != "verified":
        return "verify_new"
    return "rename_old"


def _next_blue_green(kind, facts, names) -> str:
    current, old, new = facts.get("current"), facts.get("old"), facts.get("new")
    deployment = facts.get("deployment")
    if _on_target(current, facts):
        if deployment:
            if deployment["status"] == "SWITCHOVER_IN_PROGRESS":
                return "wait_switchover"
            return "delete_deployment"
        return _finished_cutover(current, old, facts, names)
    if current is None:
        if deployment and deployment["status"] == "SWITCHOVER_IN_PROGRESS":
            return "wait_switchover"
        raise _unknown(names)
    if new and new.get("rolled_back"):
        raise PlanError(f"{names.new} is a re-keyed copy set aside by a rollback; delete it (state=cleaned) "
                        f"before re-keying again")
    if old and not deployment:
        raise PlanError(f"{names.old} already exists (an earlier switchover's old side?); delete it "
                        f"(state=cleaned) or rename it before a new Blue/Green deployment can switch over")
    if deployment is None:
        return "create_green"
    status = deployment["status"]
    if status == "PROVISIONING":
        return "wait_green"
    if status == "SWITCHOVER_IN_PROGRESS":
        return "wait_switchover"
    if status == "AVAILABLE":
        if deployment.get("target_key") != facts["target_key"]:
            raise PlanError(f"Blue/Green deployment {names.deployment}: the green side is on "
                            f"{deployment.get('target_key')}, not {facts['target_key']}; delete the deployment "
                            f"(with its green resources) and run again")
        off_key = sorted(n for n, k in (deployment.get("green_keys") or {}).items() if k != facts["target_key"])
        if off_key:
            raise PlanError(f"Blue/Green deployment {names.deployment}: the green read replicas {', '.join(off_key)} are "
                            f"not on {facts['target_key']} (a deployment created without an entry for each replica); "
                            f"delete the deployment (with its green resources) and run again")
        if not deployment.get("green_verified"):
            return "verify_green"
        return "switchover" if facts.get("allow_switchover", True) else DEFERRED
    raise PlanError(f"Blue/Green deployment {names.deployment} is {status}"
                    f"{': ' + deployment['details'] if deployment.get('details') else ''}; delete it (the blue "
                    f"database is untouched) and run again")


def next_rollback_step(facts: dict, names: Names) -> str:
    """Put the old database back under the original identifiers, the re-keyed one set aside under Names.new."""
    current, old, new = facts.get("current"), facts.get("old"), facts.get("new")
    if _on_target(current, facts):
        if new:
            raise PlanError(f"cannot set {names.identifier} aside: {names.new} already exists")
        if old is None:
            raise PlanError(f"{names.identifier} is on the key but {names.old} (the retained old database) does not "
                            f"exist: nothing to roll back to")
        return "set_aside_new"
    if current is None:
        if old and new:
            return "restore_old_names"
        raise _unknown(names)
    if old:
        raise PlanError(f"{names.identifier} is not on the key and {names.old} exists too; resolve by hand")
    if _with_suffix(current["members"], names.old_suffix):
        return "restore_old_names"  # interrupted while renaming the old instances back
    if current.get("bookkeeping"):
        return "restore_settings"  # the original's deletion protection back, this collection's tags off
    return DONE


def next_secondary_step(facts: dict, names: Names) -> str:
    """Re-key one secondary cluster of a global database: removed, set aside, re-added on its region's key.

    facts: target_key, current {key, in_global, members, status, members_available, step, protected},
    old {members, protected}.
    """
    current, old = facts.get("current"), facts.get("old")
    if current is not None and _on_target(current, facts):
        if not current.get("in_global"):
            raise PlanError(f"{names.identifier} is on the key but not in the global database; add it back by hand "
                            f"or delete it so it is re-created as a secondary")
        if current.get("status") != "available":
            return "wait_new"
        if old is not None:
            wanted = set(base_members(old["members"], names.old_suffix))
            if wanted - set(current["members"]):
                return "create_instances"
        if not current.get("members_available", True):
            return "wait_new"
        if old is not None and not old.get("protected"):
            return "protect_old"
        return _verified_or_verify(current, old)
    if current is not None:
        if current.get("in_global"):
            return "remove_from_global"
        if old is not None:
            raise PlanError(f"{names.identifier} (not on the key, detached) and {names.old} both exist; resolve by hand")
        return "rename_old"
    if old is not None:
        if _without_suffix(old["members"], names.old_suffix):
            return "rename_old"
        return "create_secondary"
    raise _unknown(names)


def next_global_step(facts: dict) -> tuple:
    """(step, cluster identifier) for a global database, or (DONE, None) / (DEFERRED, identifier).

    facts: primary (identifier of the customer's home-region cluster), writer (identifier of the current writer),
    clusters {identifier: {on_key: bool, in_global: bool, complete: bool}}, allow_switchover.
    Secondaries first (the primary keeps serving), then the primary through a switchover to a re-keyed secondary,
    its own removal and re-add, and a switchover back.
    """
    primary, writer, clusters = facts["primary"], facts["writer"], facts["clusters"]
    allow = facts.get("allow_switchover", True)
    secondaries = sorted(c for c in clusters if c != primary)
    for name in secondaries:
        if name == writer:
            continue
        if not clusters[name]["complete"]:
            return "rekey_secondary", name
    if not secondaries and not clusters[primary]["on_key"]:
        raise PlanError(f"{primary}: the global database has no secondary to switch over to; re-key it as a "
                        f"regional cluster (remove it from the global database first)")
    if writer == primary:
        if clusters[primary]["complete"]:
            return DONE, None
        target = secondaries[0]
        return ("switchover_to" if allow else DEFERRED), target
    if not clusters[primary]["complete"]:
        return "rekey_secondary", primary
    return ("switchover_back" if allow else DEFERRED), primary


def describe_plan(strategy: str, kind: str, names: Names, members=(), global_members=None) -> dict:
    """What check mode shows: the steps, the renames, and the disruption to expect."""
    if global_members:
        return {
            "strategy": "global_remove_and_readd",
            "steps": ["rekey_secondary " + s for s in global_members["secondaries"]]
            + ["switchover_to " + global_members["secondaries"][0], "rekey_secondary " + global_members["primary"],
               "switchover_back " + global_members["primary"]] if global_members["secondaries"] else [],
            "renames": [{"from": c, "to": c + "-byok-old"} for c in global_members["secondaries"] + [global_members["primary"]]],
            "expected_disruption": "two global switchovers (writes pause for typically under a minute each); each "
                                   "secondary region has no up-to-date replica while it is re-created (DR exposure)",
            "disruptive": True,
        }
    steps = list(STEPS[(strategy, kind)])
    if strategy == BLUE_GREEN:
        disruption = ("switchover: writes stop for typically under a minute while AWS renames green to "
                      f"{names.identifier}; the old side is kept as {names.old}")
        renames = [{"from": names.identifier, "to": names.old}] + [{"from": m, "to": m + names.old_suffix} for m in members]
        renames.append({"from": "<green>", "to": names.identifier})
    else:
        disruption = ("downtime from the final snapshot until the restored copy answers under the original name: "
                      "stop the application's writes first (restore time grows with the data size)")
        renames = names.renames(members)
    return {"strategy": strategy, "steps": steps, "renames": renames, "expected_disruption": disruption,
            "disruptive": True}


IDENTIFIER_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


def check_identifier(identifier: str, field: str = "identifier") -> str:
    """RDS identifiers: a letter, then letters, digits and hyphens; room left for the suffixes used here."""
    value = (identifier or "").lower()
    if not IDENTIFIER_RE.match(value) or "--" in value or value.endswith("-"):
        raise PlanError(f"{field}: {identifier!r} is not an RDS identifier (a letter, then letters, digits, single hyphens)")
    if len(value) > 63 - len("-byok-rekeyed"):
        raise PlanError(f"{field}: {identifier!r} is too long to add the re-key suffixes (at most 50 characters)")
    return value
