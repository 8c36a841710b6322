#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rds_reencrypt
short_description: Move an Aurora cluster or RDS instance onto another KMS key, with a way back
version_added: 0.1.0
description:
  - RDS cannot change the key of an encrypted database in place. This module moves one database (an Aurora
    PostgreSQL/MySQL cluster, or a non-Aurora DB instance) onto O(key_arn), keeping its identifier, endpoint names,
    instances and settings, and keeps the old database for rollback until it is removed explicitly.
  - B(blue_green) - an RDS Blue/Green deployment whose green side is encrypted with the key
    (C(TargetResourceConfigurations[].TargetKmsKeyId)). Prerequisites are checked first and each problem names its fix
    (C(rds.logical_replication=1) in the cluster parameter group for PostgreSQL, C(binlog_format) for MySQL, engine
    version, a botocore that knows the field). The green side is verified (key and every setting) before the
    switchover; the switchover time is measured and returned; the deployment is deleted afterwards and the old side
    (renamed C(<identifier>-old1) by AWS, instances C(<name>-old1)) is kept with deletion protection.
  - B(snapshot_restore) - only with O(allow_downtime=true). Final snapshot, restore onto the key (an instance
    snapshot is copied onto the key first), every setting carried over (engine and version, parameter groups, subnet
    and security groups, port, IAM auth, backups and windows, deletion protection, log exports, Performance Insights,
    monitoring, Serverless v2 scaling, tags, each instance's class, promotion tier and settings), verified field by
    field, then identifiers swapped so the endpoints keep their names; the old one is renamed C(<identifier>-byok-old)
    and protected. The downtime (from the final snapshot to the renamed copy being available) is returned.
  - B(Global database) (O(global_cluster)) - each member onto its own region's key (O(region_keys)); secondaries are
    removed, set aside (C(-byok-old)) and re-added as new secondaries on their region's key; then the primary through
    a global switchover to a re-keyed secondary, its own removal and re-add, and a switchover back. The result states
    the DR exposure (a region without an up-to-date replica while its secondary fills).
  - B(Resumable) - every decision is taken from AWS (resources under the names above and C(byok:reencrypt-*) tags);
    an interrupted run is finished by running again, never creating a second copy, and the old database is only
    renamed after the new one has been verified. O(max_seconds) time-boxes a call (C(complete=false) and the current
    step are returned) so a playbook can loop and print progress.
  - O(state=rolled_back) puts the old database back under the original identifiers and sets the re-keyed one aside
    as C(<identifier>-byok-new); O(state=cleaned) deletes what was kept aside (the old database after a cut-over,
    with a final snapshot; or the re-keyed copy after a rollback).
  - B(Read replicas) of a DB instance (O(kind=instance)) - RDS encrypts each instance on its own, so the Blue/Green
    deployment gets one C(TargetResourceConfigurations) entry per read replica besides the instance's; every green
    replica is verified before the switchover and every live one after it (key, identifier, endpoint, settings).
    Rollback and clean-up take the replicas along. C(snapshot_restore) refuses an instance with read replicas, and
    C(blue_green) one with cross-Region read replicas (not supported by Blue/Green deployments).
  - B(Settings carried exactly) - deletion protection is the original's, and the C(byok:*) tags leave the live
    database when the cut-over is verified (the completion record goes on the retained old side).
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  identifier:
    description:
      - The DB cluster identifier (O(kind=cluster)) or DB instance identifier. For a global database, the primary cluster.
      - One of O(identifier) and O(databases) is required.
    type: str
  databases:
    description:
      - Several databases (a customer's) in one call, instead of O(identifier), each moved as O(identifier) would be,
        at most O(concurrency) at a time. The other options apply to every database.
      - The parameters of every database are checked before any of them changes. One database's failure does not stop
        the others; the call fails with every failed database's message, and RV(results) has each one's outcome.
    type: list
    elements: dict
    suboptions:
      identifier:
        description: As O(identifier).
        type: str
        required: true
      kind:
        description: As O(kind).
        type: str
        choices: [cluster, instance]
        default: cluster
      key_arn:
        description: As O(key_arn).
        type: str
      region:
        description: The database's region (default the module's O(region)).
        type: str
      global_cluster:
        description: As O(global_cluster).
        type: str
      region_keys:
        description: As O(region_keys).
        type: dict
  concurrency:
    description: With O(databases), how many databases are worked on at once.
    type: int
    default: 4
  kind:
    description: C(cluster) for Aurora, C(instance) for a non-Aurora DB instance.
    type: str
    choices: [cluster, instance]
    default: cluster
  key_arn:
    description:
      - Full ARN of the KMS key to move onto, in the database's region. Aliases and bare ids are refused (they resolve
        in the caller's account, the wrong key across accounts). Not used with O(global_cluster) (see O(region_keys)).
    type: str
  strategy:
    description: How to move. C(snapshot_restore) needs O(allow_downtime).
    type: str
    choices: [blue_green, snapshot_restore]
    default: blue_green
  allow_downtime:
    description: Required (true) for O(strategy=snapshot_restore) - the application must not write from the final snapshot until the cut-over.
    type: bool
    default: false
  allow_switchover:
    description:
      - Whether the short disruptive step may run now (the Blue/Green switchover, the global switchovers). When false,
        everything before it is done (the green side created and verified) and the result says C(deferred=true).
    type: bool
    default: true
  state:
    description:
      - C(present) moves the database onto the key; C(rolled_back) undoes a completed cut-over (old database back
        under the original identifiers); C(cleaned) deletes what was kept aside.
    type: str
    choices: [present, rolled_back, cleaned]
    default: present
  switchover_timeout:
    description: Seconds AWS may take for a switchover before rolling it back.
    type: int
    default: 300
  wait_timeout:
    description: Seconds to wait for one long step (snapshot, restore, green environment) before failing (a re-run resumes).
    type: int
    default: 3600
  max_seconds:
    description: Return after about this many seconds with C(complete=false) and the current step (the work goes on in AWS; call again).
    type: int
  poll_seconds:
    description: Seconds between two status reads while waiting.
    type: float
    default: 15
  global_cluster:
    description:
      - The global database O(identifier) is the primary of; every member is moved onto its region's key.
      - Members are read from the global database, and a member a stopped run took out of it is found by its
        C(byok:reencrypt-global-cluster) tag with the Resource Groups Tagging API (C(tag:GetResources)) in each region
        of O(region_keys).
    type: str
  region_keys:
    description: For O(global_cluster), the key ARN per region (C({us-east-1 -> arn, us-west-2 -> arn})).
    type: dict
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: Returns the plan (strategy, steps, renames, expected disruption) and the next step; changes nothing.
  diff_mode:
    support: full
    description: The database's key before and after.
  idempotent:
    support: full
    description: A database already on the key (old side retained, nothing pending) reports C(changed=false).
notes:
  - Old automated backups and snapshots stay encrypted with the old key; keep it enabled while they exist.
  - The way back after a Blue/Green switchover is O(state=rolled_back) (it renames C(<identifier>) aside to
    C(<identifier>-byok-new) and C(<identifier>-old1) back); data written after the switchover is only in the re-keyed one.
"""

EXAMPLES = r"""
- name: Plan the move of the customer's Aurora cluster (check mode shows steps, renames and disruption)
  mattermost.byok.rds_reencrypt:
    identifier: acme-db
    key_arn: "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"
  check_mode: true
  register: plan

- name: Create and verify the green side now, switch over in the maintenance window
  mattermost.byok.rds_reencrypt:
    identifier: acme-db
    key_arn: "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"
    allow_switchover: "{{ byok_disruption.allowed | default(false) }}"
    max_seconds: 300

- name: Snapshot cut-over with downtime allowed
  mattermost.byok.rds_reencrypt:
    identifier: globex-db
    key_arn: "arn:aws:kms:us-east-1:111111111102:key/910be000-0000-4000-8000-000000000001"
    strategy: snapshot_restore
    allow_downtime: true

- name: Roll back the cut-over
  mattermost.byok.rds_reencrypt:
    identifier: globex-db
    key_arn: "arn:aws:kms:us-east-1:111111111102:key/910be000-0000-4000-8000-000000000001"
    strategy: snapshot_restore
    state: rolled_back

- name: A global database, one key per region
  mattermost.byok.rds_reencrypt:
    identifier: umbrella-db
    global_cluster: umbrella-global
    region_keys:
      us-east-1: "arn:aws:kms:us-east-1:111111111104:key/0bbe11a0-0000-4000-8000-000000000001"
      us-west-2: "arn:aws:kms:us-west-2:111111111104:key/0bbe11a0-0000-4000-8000-000000000002"

- name: Every database of a customer in one call, each on its own key
  mattermost.byok.rds_reencrypt:
    databases:
      - identifier: acme-db
        key_arn: "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"
      - identifier: acme-reports
        kind: instance
        key_arn: "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"
    max_seconds: 300
  register: moved
"""

RETURN = r"""
complete:
  description: The database is on the key and nothing is pending (false when time-boxed, deferred or only planned).
  returned: always
  type: bool
step:
  description: C(done), C(deferred), or the step that is next (check mode, time box) - e.g. C(wait_green), C(switchover).
  returned: always
  type: str
deferred:
  description: The disruptive step was not allowed now (O(allow_switchover=false)); everything before it is done.
  returned: always
  type: bool
plan:
  description: strategy, steps, renames (from/to), expected_disruption, disruptive.
  returned: always
  type: dict
current_key:
  description: The key the database under O(identifier) is encrypted with now.
  returned: when the database exists
  type: str
retained_old:
  description: Name of the old database kept for rollback, if any.
  returned: success
  type: str
downtime_seconds:
  description: snapshot_restore - seconds from the final snapshot until the renamed copy was available.
  returned: when a snapshot cut-over finished in this call
  type: float
switchover_seconds:
  description: Seconds the switchover(s) took.
  returned: when a switchover ran in this call
  type: float
prerequisites:
  description: blue_green - problems that block the deployment, each naming its fix (empty when ready).
  returned: when strategy is blue_green
  type: list
  elements: str
read_replicas:
  description: O(kind=instance) - each read replica of the instance with its key (RV(read_replicas[].current_key)) and
    whether it is on O(key_arn) (RV(read_replicas[].on_key)).
  returned: with kind=instance
  type: list
  elements: dict
  contains:
    identifier:
      description: The read replica's identifier.
      type: str
    current_key:
      description: The key the read replica is encrypted with.
      type: str
    on_key:
      description: Whether that is O(key_arn).
      type: bool
dr_exposure:
  description: Global database - what was (or will be) without an up-to-date replica, and where writes were served from.
  returned: with global_cluster
  type: list
  elements: str
clusters:
  description: Global database - per member identifier, region, key_arn, current_key, retained_old, writer.
  returned: with global_cluster
  type: list
  elements: dict
steps_run:
  description: The steps run in this call with their duration in seconds.
  returned: always
  type: list
  elements: dict
resumed:
  description:
    - Set when this call continued what an earlier, stopped run left in AWS (null otherwise). For one database,
      C(at_step) (the step this call started with) and C(found) (the earlier run's resources it found). For a global
      database, C(at_step), C(target), C(members_done), C(members_out_of_global) and C(writer).
  returned: always
  type: dict
elapsed_seconds:
  description: Seconds this call took.
  returned: always
  type: float
deleted:
  description: state=cleaned - what was deleted (or would be, in check mode).
  returned: with state=cleaned
  type: list
  elements: str
way_back:
  description: How to undo what was done, in words.
  returned: always
  type: str
results:
  description:
    - With O(databases), one result per database in the list's order, each with the fields above (those of one
      database, without C(diff)) and C(identifier), C(kind), C(region), C(global_cluster) (a global database),
      C(progress); a failed database has C(failed=true) and C(msg). The diffs are in C(diff), a list.
  returned: with databases
  type: list
  elements: dict
"""

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # handled by ByokModule

from ansible_collections.mattermost.byok.plugins.module_utils.rds import plan as rds_plan
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import InvalidIdentifier
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import parse_kms_key_arn
from ansible_collections.mattermost.byok.plugins.module_utils.aws.module import ByokModule
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.fan_out import fan_out
from ansible_collections.mattermost.byok.plugins.module_utils.rds.reencrypt import GlobalReencrypt
from ansible_collections.mattermost.byok.plugins.module_utils.rds.reencrypt import Reencrypt
from ansible_collections.mattermost.byok.plugins.module_utils.rds.reencrypt import ReencryptError
from ansible_collections.mattermost.byok.plugins.module_utils.rds.reencrypt import check_key
from ansible_collections.mattermost.byok.plugins.module_utils.rds.reencrypt import find_global_members


def way_back(params, names):
    if params["global_cluster"]:
        return ("each re-keyed member's old cluster is kept detached as <identifier>-byok-old (a copy as of its "
                "removal); to go back, promote it or restore from it; old snapshots stay under the old keys")
    if params["strategy"] == rds_plan.BLUE_GREEN:
        return (f"the old side is kept as {names.old} (instances *-old1) with deletion protection; state=rolled_back "
                f"renames {names.identifier} aside to {names.new} and {names.old} back to {names.identifier}; data written "
                f"after the switchover is only in the re-keyed database")
    return (f"the old database is kept as {names.old} (instances *{names.old_suffix}) with deletion protection; "
            f"state=rolled_back renames it back and sets the re-keyed one aside as {names.new}; the final snapshot "
            f"{names.snapshot} stays under the old key")


def problem(params, check_mode):
    """What is wrong with one database's parameters (None when nothing), and a warning to give when it runs anyway."""
    try:
        params["identifier"] = rds_plan.check_identifier(params["identifier"])
        if params["global_cluster"]:
            if not params["region_keys"]:
                return "region_keys: give the key ARN of every region of the global database", None
            for region, arn in params["region_keys"].items():
                parse_kms_key_arn(arn, f"region_keys.{region}")
            if params["kind"] != "cluster":
                return "kind: a global database is made of Aurora clusters (kind=cluster)", None
            if params["state"] != "present":
                return "state: rolled_back and cleaned apply to one database; run them per member cluster", None
        else:
            if not params["key_arn"]:
                return "key_arn: required (the full ARN of the key in the database's region)", None
            parse_kms_key_arn(params["key_arn"], "key_arn")
    except (InvalidIdentifier, rds_plan.PlanError) as e:
        return str(e), None
    if params["strategy"] == rds_plan.SNAPSHOT_RESTORE and params["state"] == "present" and not params["allow_downtime"] \
            and not params["global_cluster"]:
        if check_mode:  # the plan is still shown, e.g. to prepare the maintenance window
            return None, "strategy=snapshot_restore needs allow_downtime=true to run; showing the plan only"
        return ("strategy=snapshot_restore stops the database's writes from the final snapshot until the cut-over; set "
                "allow_downtime=true (inside the customer's maintenance window) or use strategy=blue_green"), None
    return None, None


def run_global(module, clients, params, log):
    primary_region = params["region"]
    clusters = find_global_members(clients, params["global_cluster"], params["identifier"], primary_region,
                                   params["region_keys"])
    for identifier, region in clusters.items():
        if region not in params["region_keys"]:
            raise ReencryptError(f"region_keys: no key for {region}, where {identifier} of {params['global_cluster']} runs")
        check_key(clients("kms", region), params["region_keys"][region], region, f"region_keys.{region}")
    driver = GlobalReencrypt(clients, params["global_cluster"], params["identifier"], clusters, params["region_keys"],
                             allow_switchover=params["allow_switchover"], switchover_timeout=params["switchover_timeout"],
                             wait_timeout=params["wait_timeout"], poll_seconds=params["poll_seconds"], log=log)
    result = driver.run(check_mode=module.check_mode, max_seconds=params["max_seconds"])
    secondaries = sorted(c for c in clusters if c != params["identifier"])
    result["plan"] = rds_plan.describe_plan("global", "cluster", rds_plan.Names(params["identifier"], "global"),
                                            global_members={"primary": params["identifier"], "secondaries": secondaries})
    if module.check_mode:
        result["changed"] = not result["complete"]
    result["diff"] = {"before": {c["identifier"]: c["current_key"] for c in result["clusters"]},
                      "after": {c["identifier"]: c["key_arn"] for c in result["clusters"]}}
    return result


def run_one(module, clients, params, log):
    region = params["region"]
    check_key(clients("kms", region), params["key_arn"], region)
    driver = Reencrypt(clients, params["identifier"], params["kind"], region, params["key_arn"], params["strategy"],
                       allow_switchover=params["allow_switchover"], wait_timeout=params["wait_timeout"],
                       switchover_timeout=params["switchover_timeout"], poll_seconds=params["poll_seconds"],
                       max_seconds=params["max_seconds"], log=log)
    names = driver.names
    current = driver.describe(names.identifier)
    if params["state"] == "cleaned":
        result = driver.clean(check_mode=module.check_mode)
        result.update(step="done", deferred=False, steps_run=[], elapsed_seconds=driver.elapsed())
    else:
        result = driver.run(state=params["state"], check_mode=module.check_mode)
        if module.check_mode:
            result["changed"] = not result["complete"]
    members = driver.member_names(current) if current and params["kind"] == "cluster" else []
    result["plan"] = rds_plan.describe_plan(params["strategy"], params["kind"], names, members)
    if params["strategy"] == rds_plan.BLUE_GREEN and current and params["state"] == "present" and not result.get("complete"):
        result["prerequisites"] = driver.prerequisites(current) if current.get("KmsKeyId") != params["key_arn"] else []
    before = current.get("KmsKeyId") if current else None
    result["diff"] = {"before": {"identifier": names.identifier, "key_arn": before},
                      "after": {"identifier": names.identifier,
                                "key_arn": params["key_arn"] if params["state"] == "present" else result.get("current_key")}}
    return result


# Per database in O(databases); the other options are common to every database of the call.
DATABASE_OPTIONS = ("identifier", "kind", "key_arn", "region", "global_cluster", "region_keys")


def reencrypt(module, params, errors_as_result=True):
    """One database moved (or planned) with `params`: its result, or its failure as a result (failed, msg)."""
    progress = []

    def clients(service, region):
        return module.byok_client(service, region=region)

    try:
        if params["global_cluster"]:
            result = run_global(module, clients, params, progress.append)
        else:
            result = run_one(module, clients, params, progress.append)
    except ReencryptError as e:
        return {"failed": True, "msg": str(e), "changed": e.changed, "progress": progress[-50:]}
    except (BotoCoreError, ClientError) as e:
        if not errors_as_result:
            module.fail_json_aws(e, msg=f"{params['identifier']}: AWS call failed; run again to resume from where it stopped")
        code = e.response.get("Error", {}).get("Code") if isinstance(e, ClientError) else None
        return {"failed": True, "changed": False, "progress": progress[-50:], "error_code": code,
                "msg": f"{params['identifier']}: AWS call failed; run again to resume from where it stopped: {e}"}
    result["way_back"] = way_back(params, rds_plan.Names(params["identifier"], params["strategy"]))
    result["progress"] = progress[-50:]
    return result


def main():
    module = ByokModule(
        argument_spec=dict(
            identifier=dict(type="str"),
            kind=dict(type="str", choices=["cluster", "instance"], default="cluster"),
            key_arn=dict(type="str", no_log=False),
            databases=dict(type="list", elements="dict", options=dict(
                identifier=dict(type="str", required=True),
                kind=dict(type="str", choices=["cluster", "instance"], default="cluster"),
                key_arn=dict(type="str", no_log=False),
                region=dict(type="str"),
                global_cluster=dict(type="str"),
                region_keys=dict(type="dict", no_log=False),
            )),
            concurrency=dict(type="int", default=4),
            strategy=dict(type="str", choices=["blue_green", "snapshot_restore"], default="blue_green"),
            allow_downtime=dict(type="bool", default=False),
            allow_switchover=dict(type="bool", default=True),
            state=dict(type="str", choices=["present", "rolled_back", "cleaned"], default="present"),
            switchover_timeout=dict(type="int", default=300),
            wait_timeout=dict(type="int", default=3600),
            max_seconds=dict(type="int"),
            poll_seconds=dict(type="float", default=15),
            global_cluster=dict(type="str"),
            region_keys=dict(type="dict", no_log=False),
        ),
        supports_check_mode=True,
        required_one_of=[("identifier", "databases")],
        mutually_exclusive=[("identifier", "databases"), ("databases", "key_arn"), ("databases", "global_cluster"),
                            ("databases", "region_keys")],
    )
    params = module.params
    if params["databases"] is None:
        params["region"] = module.region
        error, warning = problem(params, module.check_mode)
        if error:
            module.fail_json(msg=error)
        if warning:
            module.warn(warning)
        result = reencrypt(module, params, errors_as_result=False)
        if result.get("failed"):
            module.fail_json(**result)
        module.exit_json(**result)

    # Every database of the customer in one call, each on its own thread (at most `concurrency`): every one's
    # parameters checked before any of them changes.
    if params["concurrency"] < 1:
        module.fail_json(msg="concurrency: at least 1")
    common = {k: v for k, v in params.items() if k not in DATABASE_OPTIONS + ("databases",)}
    each, errors = [], []
    for database in params["databases"]:
        one = {**common, **database, "region": database["region"] or module.region}
        error, warning = problem(one, module.check_mode)
        if error:
            errors.append(f"databases[{len(each)}] ({database['identifier']}): {error}")
        if warning:
            module.warn(f"{one['identifier']}: {warning}")
        each.append(one)
    if errors:
        module.fail_json(msg="; ".join(errors))

    def one_database(one):
        result = reencrypt(module, one)
        result.update(identifier=one["identifier"], kind=one["kind"], region=one["region"])
        if one["global_cluster"]:
            result["global_cluster"] = one["global_cluster"]
        return result

    results = fan_out(one_database, each, params["concurrency"])
    diff = [r.pop("diff") for r in results if "diff" in r]
    outcome = {"changed": any(r.get("changed") for r in results), "results": results, "diff": diff}
    failed = [r for r in results if r.get("failed")]
    if failed:
        module.fail_json(msg="; ".join(r["msg"] for r in failed), **outcome)
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
