# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWS side of rds_reencrypt: observe, ask the planner (rds_plan) for the next step, run it, repeat.

Works with plain boto3 clients (`clients(service, region)`), so tests can drive it step by step. Everything it
needs to resume is in AWS: resources under the names of rds_plan.Names and byok:* tags.
"""

from __future__ import annotations

import datetime
import time

try:
    from botocore.exceptions import ClientError
except ImportError:
    ClientError = Exception  # the module reports the missing SDK

from ansible_collections.amazon.aws.plugins.module_utils.arn import parse_aws_arn

from ansible_collections.mattermost.byok.plugins.module_utils.rds import plan as rds_plan
from ansible_collections.mattermost.byok.plugins.module_utils.rds import settings as rds_settings
from ansible_collections.mattermost.byok.plugins.module_utils.aws.errors import error_code

TAG_SOURCE = "byok:reencrypt-source"
TAG_KEY = "byok:reencrypt-key"
TAG_STEP = "byok:reencrypt-step"
TAG_PROTECTION = "byok:original-deletion-protection"
# Set on the retained old side when the cut-over is verified: the record that the re-key is complete. The live
# database keeps none of the byok:* tags (they are removed at that moment), so it ends with the customer's tags only.
TAG_CUTOVER = "byok:reencrypt-cutover-verified"
# Set on a global database member before it is removed (and on its re-created secondary), so an interrupted run
# still finds it once it is no longer in the global database's member list.
TAG_GLOBAL = "byok:reencrypt-global-cluster"
# The first wait re-reads after this many seconds, doubling up to poll_seconds: a rename or a switchover is usually
# over in well under a minute, and a short first poll finds it without a full poll interval.
FIRST_POLL_SECONDS = 1.0

CLUSTER_NOT_FOUND = ("DBClusterNotFoundFault",)
INSTANCE_NOT_FOUND = ("DBInstanceNotFound", "DBInstanceNotFoundFault")
SNAPSHOT_NOT_FOUND = ("DBClusterSnapshotNotFoundFault", "DBSnapshotNotFound", "DBSnapshotNotFoundFault")
# Engines whose Blue/Green deployments need logical replication / binary logging (the parameter that says so).
REPLICATION_PARAMETER = {
    "aurora-postgresql": ("cluster", "rds.logical_replication", ("1",)),
    "postgres": ("instance", "rds.logical_replication", ("1",)),
    "aurora-mysql": ("cluster", "binlog_format", ("ROW", "MIXED", "STATEMENT")),
    "mysql": ("instance", "binlog_format", ("ROW", "MIXED", "STATEMENT")),
    "mariadb": ("instance", "binlog_format", ("ROW", "MIXED", "STATEMENT")),
}
# Oldest engine versions with Blue/Green support (RDS user guide, "Limitations for blue/green deployments").
BLUE_GREEN_MIN_VERSION = {"aurora-postgresql": (11, 21), "postgres": (11, 21), "aurora-mysql": (3, 1),
                          "mysql": (5, 7), "mariadb": (10, 2)}


class ReencryptError(Exception):
    """A refusal or failure with a message naming the fix; `changed` says whether anything was done before it."""

    def __init__(self, message, changed=False):
        super().__init__(message)
        self.changed = changed


def find_cluster(rds, name):
    """The DB cluster named `name`, or None."""
    try:
        return rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]
    except ClientError as e:
        if error_code(e) in CLUSTER_NOT_FOUND:
            return None
        raise


def _now():
    return time.monotonic()


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def _version_tuple(version):
    parts = []
    for part in str(version or "").split("."):
        digits = "".join(c for c in part if c.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


class Reencrypt:
    """One database (cluster or instance) moved onto `key_arn` by `strategy`."""

    def __init__(self, clients, identifier, kind, region, key_arn, strategy, allow_switchover=True,
                 wait_timeout=3600, switchover_timeout=300, poll_seconds=15.0, max_seconds=None, log=None):
        self.clients = clients
        self.rds = clients("rds", region)
        self.kind = kind
        self.region = region
        self.key_arn = key_arn
        self.strategy = strategy
        self.allow_switchover = allow_switchover
        self.wait_timeout = wait_timeout
        self.switchover_timeout = switchover_timeout
        self.poll_seconds = poll_seconds
        self.max_seconds = max_seconds
        self.names = rds_plan.Names(identifier, strategy)
        self.started = _now()
        self.events = []  # steps run, in order: {step, seconds}
        self.changed = False
        self.measures = {}
        self.log = log or (lambda message: None)
        self.resumed = None  # set when this run found an earlier run's work in AWS and continues it

    # -- reading AWS ---------------------------------------------------------------------------------------------

    def describe_cluster(self, name, rds=None):
        return find_cluster(rds or self.rds, name)

    def describe_instance(self, name, rds=None):
        try:
            return (rds or self.rds).describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
        except ClientError as e:
            if error_code(e) in INSTANCE_NOT_FOUND:
                return None
            raise

    def describe(self, name, rds=None):
        return self.describe_cluster(name, rds) if self.kind == "cluster" else self.describe_instance(name, rds)

    def tags(self, resource, rds=None):
        arn = resource.get("DBClusterArn") or resource.get("DBInstanceArn")
        if "TagList" in resource:
            return {t["Key"]: t["Value"] for t in resource["TagList"]}
        return {t["Key"]: t["Value"] for t in (rds or self.rds).list_tags_for_resource(ResourceName=arn)["TagList"]}

    def member_names(self, cluster):
        # The writer first: created first on the copy, it becomes the copy's writer.
        members = sorted(cluster.get("DBClusterMembers", []), key=lambda m: (not m.get("IsClusterWriter"), m["DBInstanceIdentifier"]))
        return [m["DBInstanceIdentifier"] for m in members]

    def resource_facts(self, resource, rds=None):
        if resource is None:
            return None
        tags = self.tags(resource, rds)
        facts = {"key": resource.get("KmsKeyId") if resource.get("StorageEncrypted") else None,
                 "status": resource.get("Status") or resource.get("DBInstanceStatus"),
                 "step": tags.get(TAG_STEP), "rolled_back": tags.get(TAG_STEP) == "rolled-back",
                 "protected": bool(resource.get("DeletionProtection")), "members": [], "members_available": True,
                 "in_global": bool(resource.get("GlobalClusterIdentifier")), "cutover_verified": TAG_CUTOVER in tags,
                 "bookkeeping": sorted(k for k in tags if k.startswith(rds_settings.BYOK_TAG_PREFIX))}
        if self.kind == "cluster":
            facts["members"] = self.member_names(resource)
            described = [self.describe_instance(m, rds) or {} for m in facts["members"]]
            facts["members_available"] = all(d.get("DBInstanceStatus") == "available" for d in described)
            facts["bookkeeping"] += sorted({t["Key"] for d in described for t in d.get("TagList", [])
                                            if t["Key"].startswith(rds_settings.BYOK_TAG_PREFIX)})
        else:
            if facts["key"] == self.key_arn:
                # An instance is on the key only when each of its read replicas is too (each is encrypted on its own).
                facts["replicas_off_key"] = sorted(name for name, key in self.replica_keys(resource, rds).items() if key != self.key_arn)
            for name in self.replica_names(resource):
                facts["bookkeeping"] += [t["Key"] for t in (self.describe_instance(name, rds) or {}).get("TagList", [])
                                         if t["Key"].startswith(rds_settings.BYOK_TAG_PREFIX)]
        return facts

    def replica_names(self, instance):
        """The read replicas of a DB instance in its region (a cross-Region replica is listed by its ARN)."""
        return sorted(r for r in (instance or {}).get("ReadReplicaDBInstanceIdentifiers") or [] if not r.startswith("arn:"))

    def replica_keys(self, instance, rds=None):
        """{replica identifier: its key (None when unencrypted or gone)} for a DB instance's read replicas."""
        keys = {}
        for name in self.replica_names(instance):
            replica = self.describe_instance(name, rds) or {}
            keys[name] = replica.get("KmsKeyId") if replica.get("StorageEncrypted") else None
        return keys

    def snapshot_status(self, name):
        try:
            if self.kind == "cluster":
                return self.rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=name)["DBClusterSnapshots"][0]["Status"]
            return self.rds.describe_db_snapshots(DBSnapshotIdentifier=name)["DBSnapshots"][0]["Status"]
        except ClientError as e:
            if error_code(e) in SNAPSHOT_NOT_FOUND:
                return None
            raise

    def deployment(self):
        found = self.rds.describe_blue_green_deployments(
            Filters=[{"Name": "blue-green-deployment-name", "Values": [self.names.deployment]}])["BlueGreenDeployments"]
        return found[0] if found else None

    def deployment_facts(self, deployment):
        if deployment is None:
            return None
        facts = {"status": deployment["Status"], "details": deployment.get("StatusDetails"), "target_key": None,
                 "green_verified": False, "identifier": deployment["BlueGreenDeploymentIdentifier"]}
        target = deployment.get("Target", "")
        if deployment["Status"] in ("AVAILABLE", "PROVISIONING") and target:
            green = self.describe(target.rsplit(":", 1)[-1])
            if green is not None:
                facts["target_key"] = green.get("KmsKeyId") if green.get("StorageEncrypted") else None
                facts["green_verified"] = self.tags(green).get(TAG_STEP) == "verified"
            if self.kind == "instance":
                facts["green_keys"] = {}
                for blue_name, green_name in self.green_replica_pairs(deployment):
                    replica = self.describe_instance(green_name) or {}
                    facts["green_keys"][green_name] = replica.get("KmsKeyId") if replica.get("StorageEncrypted") else None
        return facts

    @staticmethod
    def green_replica_pairs(deployment):
        """[(blue read replica, its green counterpart)] of an instance's deployment, from its SwitchoverDetails."""
        source, target = deployment.get("Source"), deployment.get("Target")
        return sorted((d["SourceMember"].rsplit(":", 1)[-1], d["TargetMember"].rsplit(":", 1)[-1])
                      for d in deployment.get("SwitchoverDetails") or []
                      if d.get("SourceMember") and d.get("TargetMember") and (d["SourceMember"], d["TargetMember"]) != (source, target))

    def observe(self):
        names = self.names
        facts = {"target_key": self.key_arn, "allow_switchover": self.allow_switchover,
                 "current": self.resource_facts(self.describe(names.identifier)),
                 "old": self.resource_facts(self.describe(names.old)),
                 "new": self.resource_facts(self.describe(names.new))}
        if self.strategy == rds_plan.BLUE_GREEN:
            facts["deployment"] = self.deployment_facts(self.deployment())
        else:
            facts["snapshot"] = self.snapshot_status(names.snapshot)
            facts["copy"] = self.snapshot_status(names.copy) if self.kind == "instance" else None
        return facts

    # -- the loop ------------------------------------------------------------------------------------------------

    def elapsed(self):
        return round(_now() - self.started, 1)

    def out_of_time(self):
        return self.max_seconds is not None and self.elapsed() >= self.max_seconds

    def run(self, state="present", check_mode=False):
        """Converge to `state` (present, rolled_back); returns the result dict of the module."""
        planner = {"present": lambda f: rds_plan.next_step(self.strategy, self.kind, f, self.names),
                   "rolled_back": lambda f: rds_plan.next_rollback_step(f, self.names)}[state]
        steps_run = 0
        while True:
            facts = self.observe()
            try:
                step = planner(facts)
            except rds_plan.PlanError as e:
                raise ReencryptError(str(e), self.changed) from None
            if not steps_run and step != rds_plan.DONE:
                self.note_resumed(step, facts)
            if step == rds_plan.DONE:
                return self.result(True, step, facts)
            if check_mode:
                return self.result(False, step, facts)
            if step == rds_plan.DEFERRED:
                return self.result(False, step, facts, deferred=True)
            if self.out_of_time():
                return self.result(False, step, facts)
            if step == "rename_old" or step == "switchover" or step == "final_snapshot":
                self.check_before_disruption(step, facts)
            began = _now()
            self.log(f"{self.names.identifier}: {step}")
            getattr(self, "step_" + step)(facts)
            self.events.append({"step": step, "seconds": round(_now() - began, 1)})
            if not step.startswith("wait_"):
                self.changed = True
            steps_run += 1

    def note_resumed(self, step, facts):
        """Say so when the first step is not the first of the plan: what an earlier (stopped) run left is in AWS."""
        names = self.names
        found = [name for name, there in ((names.old, facts.get("old")), (names.new, facts.get("new")),
                                          (names.deployment, facts.get("deployment")), (names.snapshot, facts.get("snapshot")),
                                          (names.copy, facts.get("copy"))) if there]
        if found:
            self.resumed = {"at_step": step, "found": found}
            self.log(f"{names.identifier}: resuming at {step} (an earlier run left {', '.join(found)})")

    def check_before_disruption(self, step, facts):
        """The last look before the old database is touched: the key is still usable (it may have been disabled)."""
        if step == "final_snapshot" and facts.get("current") is None:
            raise ReencryptError(f"{self.names.identifier}: no such database")
        if step == "final_snapshot" and self.kind == "instance":
            replicas = sorted((self.describe_instance(self.names.identifier) or {}).get("ReadReplicaDBInstanceIdentifiers") or [])
            if replicas:
                raise ReencryptError(f"{self.names.identifier} has read replicas ({', '.join(replicas)}): snapshot_restore "
                                     f"re-creates the instance only, and the replicas would go on replicating from the old "
                                     f"instance on the old key; fix: use strategy=blue_green, which re-keys each replica")

    def result(self, complete, step, facts, deferred=False):
        current = facts.get("current") or {}
        extra = {}
        if self.kind == "instance":
            described = self.describe_instance(self.names.identifier)
            extra["read_replicas"] = [{"identifier": name, "current_key": key, "on_key": key == self.key_arn}
                                      for name, key in sorted(self.replica_keys(described).items())] if described else []
        return {"changed": self.changed, "complete": complete, "step": step, "deferred": deferred, **extra,
                "identifier": self.names.identifier, "strategy": self.strategy, "kind": self.kind,
                "key_arn": self.key_arn, "current_key": current.get("key"), "status": current.get("status"),
                "retained_old": self.names.old if facts.get("old") else None,
                "elapsed_seconds": self.elapsed(), "steps_run": self.events, "resumed": self.resumed, **self.measures}

    # -- waits ---------------------------------------------------------------------------------------------------

    def wait(self, what, ready, timeout=None):
        """Poll `ready()` (returns (done, status)) until done, the time box or the timeout; progress to the log."""
        deadline = _now() + (timeout or self.wait_timeout)
        polls = 0
        while True:
            done, status = ready()
            if done:
                return
            if _now() >= deadline:
                raise ReencryptError(f"{self.names.identifier}: timed out waiting for {what} (last status {status}); "
                                     f"run again to resume", self.changed)
            if self.out_of_time():
                return  # the loop returns complete=false at the same step
            self.log(f"{self.names.identifier}: waiting for {what}: {status} ({self.elapsed()} s)")
            time.sleep(min(self.poll_seconds, FIRST_POLL_SECONDS * 2 ** polls))
            polls += 1

    def step_wait_snapshot(self, facts):
        self.wait("the final snapshot", lambda: (self.snapshot_status(self.names.snapshot) == "available",
                                                 self.snapshot_status(self.names.snapshot)))

    def step_wait_copy(self, facts):
        self.wait("the re-keyed snapshot copy", lambda: (self.snapshot_status(self.names.copy) == "available",
                                                         self.snapshot_status(self.names.copy)))

    def step_wait_new(self, facts):
        def ready():
            new = self.resource_facts(self.describe(self.names.new)) or self.resource_facts(self.describe(self.names.identifier))
            return bool(new) and new["status"] == "available" and new["members_available"], (new or {}).get("status")
        self.wait("the re-keyed copy", ready)

    def step_wait_green(self, facts):
        def ready():
            deployment = self.deployment()
            return deployment is not None and deployment["Status"] != "PROVISIONING", (deployment or {}).get("Status")
        self.wait("the green environment", ready)

    def step_wait_switchover(self, facts):
        def ready():
            deployment = self.deployment()
            status = (deployment or {}).get("Status")
            return status != "SWITCHOVER_IN_PROGRESS", status
        self.wait("the switchover", ready, timeout=self.switchover_timeout + 60)

    # -- snapshot_restore ----------------------------------------------------------------------------------------

    def bookkeeping_tags(self, step=None):
        tags = {TAG_SOURCE: self.names.identifier, TAG_KEY: self.key_arn}
        if step:
            tags[TAG_STEP] = step
        return tags

    def accepted(self, operation):
        return set(self.rds.meta.service_model.operation_model(operation).input_shape.members)

    def step_final_snapshot(self, facts):
        tags = rds_settings.tag_list({**self.bookkeeping_tags(), "byok:reencrypt-started": _utcnow().isoformat()})
        if self.kind == "cluster":
            self.rds.create_db_cluster_snapshot(DBClusterIdentifier=self.names.identifier,
                                                DBClusterSnapshotIdentifier=self.names.snapshot, Tags=tags)
        else:
            self.rds.create_db_snapshot(DBInstanceIdentifier=self.names.identifier,
                                        DBSnapshotIdentifier=self.names.snapshot, Tags=tags)

    def step_copy_snapshot(self, facts):
        # RestoreDBInstanceFromDBSnapshot has no KmsKeyId: an instance snapshot is copied onto the new key first.
        self.rds.copy_db_snapshot(SourceDBSnapshotIdentifier=self.names.snapshot, TargetDBSnapshotIdentifier=self.names.copy,
                                  KmsKeyId=self.key_arn, CopyTags=False,
                                  Tags=rds_settings.tag_list(self.bookkeeping_tags()))

    def step_restore(self, facts):
        original = self.describe(self.names.identifier)
        extra = self.bookkeeping_tags("restored")
        if self.kind == "cluster":
            settings = rds_settings.cluster_settings(original)
            kwargs = rds_settings.create_kwargs(settings, self.accepted("RestoreDBClusterFromSnapshot"), extra)
            kwargs.update(DBClusterIdentifier=self.names.new, SnapshotIdentifier=self.names.snapshot, KmsKeyId=self.key_arn)
            self.rds.restore_db_cluster_from_snapshot(**kwargs)
        else:
            settings = rds_settings.instance_settings(original)
            kwargs = rds_settings.create_kwargs(settings, self.accepted("RestoreDBInstanceFromDBSnapshot"), extra)
            kwargs.update(DBInstanceIdentifier=self.names.new, DBSnapshotIdentifier=self.names.copy)
            self.rds.restore_db_instance_from_db_snapshot(**kwargs)

    def step_create_instances(self, facts):
        original = self.describe(self.names.identifier)
        have = set(facts["new"]["members"])
        accepted = self.accepted("CreateDBInstance")
        for member in self.member_names(original):
            name = rds_plan.base_members([member], self.names.old_suffix)[0] + self.names.new_suffix
            if name in have:
                continue
            settings = rds_settings.member_settings(self.describe_instance(member))
            kwargs = rds_settings.create_kwargs(settings, accepted, self.bookkeeping_tags())
            kwargs.update(DBInstanceIdentifier=name, DBClusterIdentifier=self.names.new)
            self.rds.create_db_instance(**kwargs)

    def settings_of(self, name, suffix=""):
        """(settings of the database, {member base name: settings}) for comparisons."""
        resource = self.describe(name)
        if self.kind == "instance":
            settings = rds_settings.instance_settings(resource)
            settings.pop("DeletionProtection", None)
            return settings, {}
        settings = rds_settings.cluster_settings(resource)
        settings.pop("DeletionProtection", None)  # the retained old side gets deletion protection on purpose
        members = {}
        for member in resource.get("DBClusterMembers", []):
            described = dict(self.describe_instance(member["DBInstanceIdentifier"]), _is_writer=member.get("IsClusterWriter"))
            base = rds_settings.member_base(member["DBInstanceIdentifier"], (self.names.old_suffix, self.names.new_suffix, suffix))
            members[base] = rds_settings.member_settings(described)
        return settings, members

    def converge_settings(self, reference, target):
        """Bring `target` to `reference`'s settings for what the create call could not set (modify calls)."""
        ref = self.describe(reference)
        tgt = self.describe(target)
        if self.kind == "cluster":
            wanted = rds_settings.cluster_settings(ref)
            # The retained old side was protected on purpose: the re-keyed one gets what the original had.
            recorded = self.tags(ref).get(TAG_PROTECTION)
            if recorded is not None:
                wanted["DeletionProtection"] = recorded == "True"
            kwargs = rds_settings.modify_kwargs(wanted, rds_settings.cluster_settings(tgt), self.accepted("ModifyDBCluster"))
            if kwargs:
                self.rds.modify_db_cluster(DBClusterIdentifier=target, ApplyImmediately=True, **kwargs)
            accepted = self.accepted("ModifyDBInstance")
            ref_members = {rds_settings.base_name(m, self.names.old_suffix): m for m in self.member_names(ref)}
            for member in self.member_names(tgt):
                base = rds_settings.member_base(member, (self.names.new_suffix,))
                if base in ref_members:
                    want = rds_settings.member_settings(self.describe_instance(ref_members[base]))
                    have = rds_settings.member_settings(self.describe_instance(member))
                    kwargs = rds_settings.modify_kwargs(want, have, accepted)
                    if kwargs:
                        self.rds.modify_db_instance(DBInstanceIdentifier=member, ApplyImmediately=True, **kwargs)
        else:
            wanted = rds_settings.instance_settings(ref)
            recorded = self.tags(ref).get(TAG_PROTECTION)
            if recorded is not None:
                wanted["DeletionProtection"] = recorded == "True"
            kwargs = rds_settings.modify_kwargs(wanted, rds_settings.instance_settings(tgt), self.accepted("ModifyDBInstance"))
            if kwargs:
                self.rds.modify_db_instance(DBInstanceIdentifier=target, ApplyImmediately=True, **kwargs)

    def compare(self, reference, target, what):
        """Field-by-field differences between two databases' settings and instances (empty: identical)."""
        ref, ref_members = self.settings_of(reference)
        tgt, tgt_members = self.settings_of(target)
        lines = rds_settings.differences(ref, tgt, f"{what}.")
        if sorted(ref_members) != sorted(tgt_members):
            lines.append(f"{what}.instances: {sorted(ref_members)} -> {sorted(tgt_members)}")
        for base in sorted(set(ref_members) & set(tgt_members)):
            lines += rds_settings.differences(ref_members[base], tgt_members[base], f"{what}.{base}.")
        return lines

    def verify(self, reference, target, what):
        resource = self.describe(target)
        key = resource.get("KmsKeyId") if resource.get("StorageEncrypted") else None
        if key != self.key_arn:
            raise ReencryptError(f"{target} is on {key}, not {self.key_arn}; the original {reference} is untouched", self.changed)
        self.converge_settings(reference, target)
        lines = self.compare(reference, target, what)
        if lines:
            raise ReencryptError(f"{target} does not match {reference} after the re-key; the original is untouched. "
                                 f"Differences: " + "; ".join(lines), self.changed)
        arn = resource.get("DBClusterArn") or resource.get("DBInstanceArn")
        self.rds.add_tags_to_resource(ResourceName=arn, Tags=rds_settings.tag_list({TAG_STEP: "verified"}))

    def step_verify_new(self, facts):
        self.verify(self.names.identifier, self.names.new, "new")

    def rename_instance(self, old, new, **extra):
        self.rds.modify_db_instance(DBInstanceIdentifier=old, NewDBInstanceIdentifier=new, ApplyImmediately=True, **extra)
        self.wait_instance_available(new, f"the rename of {old} to {new}")

    def wait_instance_available(self, name, what):
        """A renamed instance reboots (renaming, then rebooting): the next change to it waits until it is available."""
        def ready():
            status = (self.describe_instance(name) or {}).get("DBInstanceStatus")
            return status == "available", status or "renaming"
        self.wait(what, ready)

    def rename_cluster(self, old, new, **extra):
        self.rds.modify_db_cluster(DBClusterIdentifier=old, NewDBClusterIdentifier=new, ApplyImmediately=True, **extra)
        self.wait(f"the rename of {old} to {new}", lambda: (self.describe_cluster(new) is not None, "renaming"))

    def rename_group(self, cluster, to, from_suffix, to_suffix, **extra):
        """Rename a database and its instances (a cluster's members, an instance's read replicas, from `from_suffix` to
        `to_suffix`): the instances first, so that every partial state is recognisable."""
        if self.kind == "cluster":
            resource = self.describe_cluster(cluster)
            for member in self.member_names(resource):
                if to_suffix and member.endswith(to_suffix):
                    continue
                if not to_suffix and from_suffix and not member.endswith(from_suffix):
                    continue
                base = rds_settings.base_name(member, from_suffix)
                self.rename_instance(member, base + to_suffix)
            self.rename_cluster(cluster, to, **extra)
        else:
            for replica in self.replica_names(self.describe_instance(cluster)):
                if (to_suffix and replica.endswith(to_suffix)) or (not to_suffix and from_suffix and not replica.endswith(from_suffix)):
                    continue
                self.rename_instance(replica, rds_settings.base_name(replica, from_suffix) + to_suffix)
            self.rename_instance(cluster, to, **extra)

    def record_protection(self, resource):
        if TAG_PROTECTION not in self.tags(resource):
            arn = resource.get("DBClusterArn") or resource.get("DBInstanceArn")
            self.rds.add_tags_to_resource(ResourceName=arn, Tags=rds_settings.tag_list(
                {TAG_PROTECTION: str(bool(resource.get("DeletionProtection")))}))

    def remember_protection(self):
        """The original's deletion protection, kept on it before the old side is protected, for the new one."""
        resource = self.describe(self.names.identifier)
        arn = resource.get("DBClusterArn") or resource.get("DBInstanceArn")
        if TAG_PROTECTION not in self.tags(resource):
            self.rds.add_tags_to_resource(ResourceName=arn, Tags=rds_settings.tag_list(
                {TAG_PROTECTION: str(bool(resource.get("DeletionProtection")))}))

    def step_rename_old(self, facts):
        self.remember_protection()
        self.rename_group(self.names.identifier, self.names.old, "", self.names.old_suffix, DeletionProtection=True)

    def step_rename_new(self, facts):
        self.rename_group(self.names.new, self.names.identifier, self.names.new_suffix, "")

    def step_protect_old(self, facts):
        resource = self.describe(self.names.old)
        # What each one had, recorded before it is protected: a rollback puts it back exactly.
        self.record_protection(resource)
        if self.kind == "instance":
            for replica in self.replica_names(resource):
                self.record_protection(self.describe_instance(replica))
        if self.kind == "cluster":
            self.rds.modify_db_cluster(DBClusterIdentifier=self.names.old, DeletionProtection=True, ApplyImmediately=True)
            arn = resource["DBClusterArn"]
        else:
            for replica in self.replica_names(resource):
                self.rds.modify_db_instance(DBInstanceIdentifier=replica, DeletionProtection=True, ApplyImmediately=True)
            self.rds.modify_db_instance(DBInstanceIdentifier=self.names.old, DeletionProtection=True, ApplyImmediately=True)
            arn = resource["DBInstanceArn"]
        self.rds.add_tags_to_resource(ResourceName=arn, Tags=rds_settings.tag_list(
            {TAG_SOURCE: self.names.identifier, TAG_STEP: "retained-old"}))

    def step_verify_cutover(self, facts):
        current = self.describe(self.names.identifier)
        old = self.describe(self.names.old)
        if old is not None:
            lines = self.compare(self.names.old, self.names.identifier, "cutover")
            if lines:
                raise ReencryptError(f"{self.names.identifier} (re-keyed) differs from the retained {self.names.old}: "
                                     + "; ".join(lines), self.changed)
            if self.kind == "cluster" and (old.get("Endpoint") or "").replace(self.names.old, self.names.identifier, 1) != current.get("Endpoint"):
                raise ReencryptError(f"{self.names.identifier}: endpoint {current.get('Endpoint')} is not the original "
                                     f"name pattern", self.changed)
            if self.kind == "instance":
                self.verify_instances_cutover(current, old)
        if self.strategy == rds_plan.SNAPSHOT_RESTORE:
            started = self.snapshot_started()
            if started:
                self.measures["downtime_seconds"] = round((_utcnow() - started).total_seconds(), 1)
        if old is not None:
            arn = old.get("DBClusterArn") or old.get("DBInstanceArn")
            self.rds.add_tags_to_resource(ResourceName=arn, Tags=rds_settings.tag_list({TAG_CUTOVER: _utcnow().isoformat()}))
        self.remove_bookkeeping(current)

    def remove_bookkeeping(self, resource):
        """Take this collection's byok:* tags off a live database and its instances (members or read replicas)."""
        described = [resource]
        if self.kind == "cluster":
            described += [self.describe_instance(m) or {} for m in self.member_names(resource)]
        else:
            described += [self.describe_instance(r) or {} for r in self.replica_names(resource)]
        for item in described:
            arn = item.get("DBClusterArn") or item.get("DBInstanceArn")
            keys = [k for k in self.tags(item) if k.startswith(rds_settings.BYOK_TAG_PREFIX)] if arn else []
            if keys:
                self.rds.remove_tags_from_resource(ResourceName=arn, TagKeys=keys)

    def verify_instances_cutover(self, current, old):
        """Every instance of the database - the instance and each read replica - is on the key under its original
        identifier and endpoint, and matches the retained old copy of it (<name>-old1)."""
        pairs = [(self.names.old, self.names.identifier)]
        old_replicas = {rds_settings.base_name(r, self.names.old_suffix): r for r in self.replica_names(old)}
        live_replicas = self.replica_names(current)
        if sorted(old_replicas) != live_replicas:
            raise ReencryptError(f"{self.names.identifier}: read replicas {live_replicas} after the re-key, "
                                 f"{sorted(old_replicas)} before (kept as {self.names.old}'s replicas)", self.changed)
        pairs += [(old_replicas[name], name) for name in live_replicas]
        for before, after in pairs:
            reference, described = self.describe_instance(before), self.describe_instance(after)
            key = described.get("KmsKeyId") if described.get("StorageEncrypted") else None
            if key != self.key_arn:
                raise ReencryptError(f"{after} is on {key}, not {self.key_arn}: a read replica is encrypted on its own and "
                                     f"this one was not re-keyed; fix: re-create it from {self.names.identifier} (a replica "
                                     f"in the same Region is always on its source's key)", self.changed)
            address = (reference.get("Endpoint") or {}).get("Address", "")
            if address.replace(before, after, 1) != (described.get("Endpoint") or {}).get("Address"):
                raise ReencryptError(f"{after}: endpoint {(described.get('Endpoint') or {}).get('Address')} is not its "
                                     f"original name pattern", self.changed)
            if before != self.names.old:
                lines = self.compare_instances(before, after)
                if lines:
                    raise ReencryptError(f"{after} (re-keyed) differs from the retained {before}: " + "; ".join(lines), self.changed)

    def compare_instances(self, reference, target):
        ref = rds_settings.instance_settings(self.describe_instance(reference))
        tgt = rds_settings.instance_settings(self.describe_instance(target))
        for settings in (ref, tgt):
            settings.pop("DeletionProtection", None)  # the retained old side gets deletion protection on purpose
        return rds_settings.differences(ref, tgt, f"{target}.")

    def snapshot_started(self):
        try:
            if self.kind == "cluster":
                snap = self.rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=self.names.snapshot)["DBClusterSnapshots"][0]
                arn = snap["DBClusterSnapshotArn"]
            else:
                snap = self.rds.describe_db_snapshots(DBSnapshotIdentifier=self.names.snapshot)["DBSnapshots"][0]
                arn = snap["DBSnapshotArn"]
        except ClientError:
            return None
        tags = {t["Key"]: t["Value"] for t in self.rds.list_tags_for_resource(ResourceName=arn)["TagList"]}
        if "byok:reencrypt-started" in tags:
            return datetime.datetime.fromisoformat(tags["byok:reencrypt-started"])
        return snap.get("SnapshotCreateTime")

    # -- blue_green ----------------------------------------------------------------------------------------------

    def prerequisites(self, resource=None):
        """Problems that would make the Blue/Green deployment fail, each with its fix (empty: ready)."""
        resource = resource or self.describe(self.names.identifier)
        problems = []
        if "TargetResourceConfigurations" not in self.accepted("CreateBlueGreenDeployment"):
            problems.append("botocore is too old for CreateBlueGreenDeployment TargetResourceConfigurations "
                            "(TargetKmsKeyId); fix: upgrade boto3/botocore to 1.44 or later")
        engine = resource.get("Engine", "")
        version = _version_tuple(resource.get("EngineVersion"))
        minimum = BLUE_GREEN_MIN_VERSION.get(engine)
        if minimum is None:
            problems.append(f"engine {engine} does not support Blue/Green deployments; fix: use strategy=snapshot_restore")
        elif version and version < minimum:
            problems.append(f"{engine} {resource.get('EngineVersion')} is older than Blue/Green supports "
                            f"({'.'.join(map(str, minimum))}); fix: upgrade the engine or use strategy=snapshot_restore")
        cross_region = [r for r in resource.get("ReadReplicaDBInstanceIdentifiers") or [] if r.startswith("arn:")]
        if cross_region:
            problems.append(f"cross-Region read replicas ({', '.join(cross_region)}) are not supported by Blue/Green "
                            f"deployments; fix: delete them before the re-key and re-create them afterwards from the "
                            f"re-keyed instance, with a key of their Region")
        if resource.get("MasterUserSecret"):
            problems.append("the master password is managed in Secrets Manager, which Blue/Green does not support; "
                            "fix: use strategy=snapshot_restore")
        requirement = REPLICATION_PARAMETER.get(engine)
        if requirement:
            level, parameter, good = requirement
            group, value = self.parameter_value(resource, level, parameter)
            if value not in good:
                what = "cluster parameter group" if level == "cluster" else "DB parameter group"
                problems.append(f"{parameter} is {value or 'not set'} in the {what} {group}; fix: set {parameter}="
                                f"{good[0]} in a custom {what} attached to {self.names.identifier} and reboot the writer")
        return problems

    def parameter_value(self, resource, level, parameter):
        if level == "cluster":
            group = resource.get("DBClusterParameterGroup")
            pages = self.rds.get_paginator("describe_db_cluster_parameters").paginate(DBClusterParameterGroupName=group)
        else:
            group = (resource.get("DBParameterGroups") or [{}])[0].get("DBParameterGroupName")
            pages = self.rds.get_paginator("describe_db_parameters").paginate(DBParameterGroupName=group)
        if not group or group.startswith("default."):
            return group or "default", None
        for page in pages:
            for p in page.get("Parameters", []):
                if p.get("ParameterName") == parameter:
                    return group, p.get("ParameterValue")
        return group, None

    def step_create_green(self, facts):
        resource = self.describe(self.names.identifier)
        problems = self.prerequisites(resource)
        if problems:
            raise ReencryptError(f"{self.names.identifier}: Blue/Green prerequisites not met: " + "; ".join(problems), self.changed)
        arn = resource.get("DBClusterArn") or resource.get("DBInstanceArn")
        # RDS encrypts each DB instance on its own: the source and every read replica need an entry, or the green
        # replica keeps the old key (an Aurora cluster's entry covers its instances).
        sources = [arn] + [self.describe_instance(r)["DBInstanceArn"] for r in self.replica_names(resource)] \
            if self.kind == "instance" else [arn]
        self.rds.create_blue_green_deployment(
            BlueGreenDeploymentName=self.names.deployment, Source=arn,
            TargetResourceConfigurations=[{"SourceArn": source, "TargetKmsKeyId": self.key_arn} for source in sources],
            Tags=rds_settings.tag_list(self.bookkeeping_tags()))

    def step_verify_green(self, facts):
        deployment = self.deployment()
        green = deployment["Target"].rsplit(":", 1)[-1]
        if self.kind == "instance":
            # Every read replica first: the green instance's "verified" tag is what says the whole green side is.
            pairs = dict(self.green_replica_pairs(deployment))
            missing = sorted(set(self.replica_names(self.describe_instance(self.names.identifier))) - set(pairs))
            if missing:
                raise ReencryptError(f"{self.names.identifier}: the green environment has no copy of the read replicas "
                                     f"{', '.join(missing)}; delete the deployment {self.names.deployment} (the blue side is "
                                     f"untouched) and run again", self.changed)
            for blue, green_replica in sorted(pairs.items()):
                self.verify(blue, green_replica, f"green.{blue}")
        self.verify(self.names.identifier, green, "green")

    def step_switchover(self, facts):
        deployment = self.deployment()
        began = _utcnow()
        self.rds.switchover_blue_green_deployment(BlueGreenDeploymentIdentifier=deployment["BlueGreenDeploymentIdentifier"],
                                                  SwitchoverTimeout=self.switchover_timeout)
        self.step_wait_switchover(facts)
        status = (self.deployment() or {}).get("Status")
        if status != "SWITCHOVER_COMPLETED":
            raise ReencryptError(f"{self.names.identifier}: switchover ended {status}; AWS rolls a failed switchover "
                                 f"back, the blue database is still live; see the deployment's status details", True)
        self.measures["switchover_seconds"] = round((_utcnow() - began).total_seconds(), 1)

    def step_delete_deployment(self, facts):
        deployment = self.deployment()
        # After a switchover the green side is the live database and AWS refuses DeleteTarget in any form; before one
        # (never chosen by the plan, kept for safety) DeleteTarget=false keeps the green side.
        keep = {} if deployment["Status"] == "SWITCHOVER_COMPLETED" else {"DeleteTarget": False}
        self.rds.delete_blue_green_deployment(BlueGreenDeploymentIdentifier=deployment["BlueGreenDeploymentIdentifier"], **keep)

    # -- rollback and clean-up -----------------------------------------------------------------------------------

    def step_set_aside_new(self, facts):
        self.rename_group(self.names.identifier, self.names.new, "", self.names.new_suffix)
        resource = self.describe(self.names.new)
        arn = resource.get("DBClusterArn") or resource.get("DBInstanceArn")
        self.rds.add_tags_to_resource(ResourceName=arn, Tags=rds_settings.tag_list({TAG_STEP: "rolled-back"}))

    def step_restore_old_names(self, facts):
        self.rename_group(self.names.old, self.names.identifier, self.names.old_suffix, "")

    def step_restore_settings(self, facts):
        """After a rollback: each instance's deletion protection as it was before the re-key, then the byok:* tags off
        (the recorded value last, so that an interrupted run still finds it)."""
        current = self.describe(self.names.identifier)
        described = [current] + ([self.describe_instance(r) for r in self.replica_names(current)] if self.kind == "instance" else [])
        for item in described:
            recorded = self.tags(item).get(TAG_PROTECTION)
            if recorded is None or bool(item.get("DeletionProtection")) == (recorded == "True"):
                continue
            if "DBClusterArn" in item:
                self.rds.modify_db_cluster(DBClusterIdentifier=item["DBClusterIdentifier"], DeletionProtection=recorded == "True",
                                           ApplyImmediately=True)
            else:
                self.rds.modify_db_instance(DBInstanceIdentifier=item["DBInstanceIdentifier"], DeletionProtection=recorded == "True",
                                            ApplyImmediately=True)
        self.remove_bookkeeping(current)

    def clean(self, check_mode=False):
        """Delete what was kept aside: the old database after a cut-over, or the re-keyed copy after a rollback."""
        current = self.describe(self.names.identifier)
        on_key = bool(current) and current.get("StorageEncrypted") and current.get("KmsKeyId") == self.key_arn
        targets = []
        if on_key and self.describe(self.names.old) is not None:
            targets.append((self.names.old, self.names.old_suffix, True))
        new = self.describe(self.names.new)
        if new is not None and self.tags(new).get(TAG_STEP) == "rolled-back":
            targets.append((self.names.new, self.names.new_suffix, False))
        if current is None:
            raise ReencryptError(f"{self.names.identifier}: no such database; nothing is deleted while the original is missing")
        deleted = []
        for target in targets:
            if self.kind == "instance":
                deleted += self.replica_names(self.describe_instance(target[0]))
            deleted.append(target[0])
        if check_mode or not targets:
            return {"changed": bool(targets), "complete": True, "deleted": deleted, "identifier": self.names.identifier}
        for name, dummy_suffix, final_snapshot in targets:
            self.delete(name, final_snapshot)
        return {"changed": True, "complete": True, "deleted": deleted, "identifier": self.names.identifier}

    def delete(self, name, final_snapshot):
        # The old database leaves a final snapshot (under its old key) as the last way back.
        snapshot = {"FinalDBSnapshotIdentifier": f"{name}-final"} if final_snapshot and self.kind == "instance" else {}
        if self.kind == "cluster":
            self.rds.modify_db_cluster(DBClusterIdentifier=name, DeletionProtection=False, ApplyImmediately=True)
            resource = self.describe_cluster(name)
            for member in self.member_names(resource):
                self.rds.delete_db_instance(DBInstanceIdentifier=member, SkipFinalSnapshot=True)
            self.wait(f"the deletion of {name}'s instances", lambda: (not self.describe_cluster(name).get("DBClusterMembers"), "deleting"))
            if final_snapshot:
                self.rds.delete_db_cluster(DBClusterIdentifier=name, FinalDBSnapshotIdentifier=f"{name}-final")
            else:
                self.rds.delete_db_cluster(DBClusterIdentifier=name, SkipFinalSnapshot=True)
        else:
            # Its read replicas first: deleting a source instance would promote them to standalone databases.
            for replica in self.replica_names(self.describe_instance(name)):
                self.rds.modify_db_instance(DBInstanceIdentifier=replica, DeletionProtection=False, ApplyImmediately=True)
                self.rds.delete_db_instance(DBInstanceIdentifier=replica, SkipFinalSnapshot=True)
            self.rds.modify_db_instance(DBInstanceIdentifier=name, DeletionProtection=False, ApplyImmediately=True)
            self.rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=not snapshot, **snapshot)


# -- key checks ----------------------------------------------------------------------------------------------------

def check_key(kms, key_arn, region, field="key_arn"):
    """Refuse a key RDS cannot use for a database in `region`: another region, missing, not Enabled."""
    parts = parse_aws_arn(key_arn) if isinstance(key_arn, str) and key_arn.startswith("arn:") else None
    if not parts or parts["service"] != "kms" or parts["resource_type"] != "key":
        raise ReencryptError(f"{field}: {key_arn!r} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)")
    if parts["region"] != region:
        raise ReencryptError(f"{field}: the key is in {parts['region']} but the database is in {region}; RDS needs a key in "
                             f"the database's own region (a global database has one key per region)")
    try:
        metadata = kms.describe_key(KeyId=key_arn)["KeyMetadata"]
    except ClientError as e:
        if error_code(e) in ("NotFoundException",):
            raise ReencryptError(f"{field}: key {key_arn} not found (or not shared with this account); check the ARN "
                                 f"and the customer's key policy") from None
        raise
    if metadata.get("KeyState") != "Enabled":
        raise ReencryptError(f"{field}: key {key_arn} is {metadata.get('KeyState')}; the customer must enable it before "
                             f"anything is encrypted with it")
    if metadata.get("KeyUsage") not in (None, "ENCRYPT_DECRYPT") or metadata.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT":
        raise ReencryptError(f"{field}: key {key_arn} is not a symmetric encryption key")
    return metadata


def find_global_cluster(rds, global_id):
    """The global cluster named `global_id`, or None (checked by name: not every endpoint honours the filter)."""
    try:
        found = rds.describe_global_clusters(GlobalClusterIdentifier=global_id)["GlobalClusters"]
    except ClientError as e:
        if error_code(e) == "GlobalClusterNotFoundFault":
            return None
        raise
    return next((g for g in found if g["GlobalClusterIdentifier"] == global_id), None)


# -- global databases ----------------------------------------------------------------------------------------------

class SecondaryReencrypt(Reencrypt):
    """One member of a global database re-keyed by removing it, setting it aside and re-adding a new secondary."""

    def __init__(self, clients, identifier, region, key_arn, global_id, **kwargs):
        super().__init__(clients, identifier, "cluster", region, key_arn, rds_plan.SNAPSHOT_RESTORE, **kwargs)
        self.global_id = global_id

    def global_members(self):
        found = find_global_cluster(self.rds, self.global_id)
        return {m["DBClusterArn"]: m.get("IsWriter", False) for m in (found["GlobalClusterMembers"] if found else [])}

    def observe(self):
        members = self.global_members()
        current = self.describe(self.names.identifier)
        facts = {"target_key": self.key_arn, "current": self.resource_facts(current),
                 "old": self.resource_facts(self.describe(self.names.old))}
        if current is not None:
            facts["current"]["in_global"] = current["DBClusterArn"] in members
            facts["current"]["arn"] = current["DBClusterArn"]
        return facts

    def run(self, state="present", check_mode=False):
        while True:
            facts = self.observe()
            try:
                step = rds_plan.next_secondary_step(facts, self.names)
            except rds_plan.PlanError as e:
                raise ReencryptError(str(e), self.changed) from None
            if step == rds_plan.DONE:
                return self.result(True, step, facts)
            if check_mode or self.out_of_time():
                return self.result(False, step, facts)
            if step == "remove_from_global":
                self.exposure_started = _now()
            self.log(f"{self.names.identifier}: {step}")
            began = _now()
            getattr(self, "step_" + step)(facts)
            self.events.append({"step": step, "seconds": round(_now() - began, 1)})
            if not step.startswith("wait_"):
                self.changed = True

    def bookkeeping_tags(self, step=None):
        return {**super().bookkeeping_tags(step), TAG_GLOBAL: self.global_id}

    def step_remove_from_global(self, facts):
        arn = facts["current"]["arn"]
        # Tagged first: once removed, only this tag ties it (and its -byok-old name) to the global database.
        self.rds.add_tags_to_resource(ResourceName=arn, Tags=rds_settings.tag_list(
            {TAG_GLOBAL: self.global_id, TAG_SOURCE: self.names.identifier}))
        self.rds.remove_from_global_cluster(GlobalClusterIdentifier=self.global_id, DbClusterIdentifier=arn)
        self.wait(f"{self.names.identifier} to leave {self.global_id}", lambda: (arn not in self.global_members(), "removing"))

    def step_rename_old(self, facts):
        if facts.get("current") is not None:
            self.remember_protection()
            self.rename_group(self.names.identifier, self.names.old, "", self.names.old_suffix, DeletionProtection=True)
        else:
            old = self.describe_cluster(self.names.old)
            for member in self.member_names(old):
                if not member.endswith(self.names.old_suffix):
                    self.rename_instance(member, member + self.names.old_suffix)

    def step_create_secondary(self, facts):
        old = self.describe_cluster(self.names.old)
        settings = rds_settings.cluster_settings(old)
        kwargs = rds_settings.create_kwargs(settings, self.accepted("CreateDBCluster"), self.bookkeeping_tags("restored"),
                                            omit=("MasterUsername", "DatabaseName", "DeletionProtection"))
        kwargs.update(DBClusterIdentifier=self.names.identifier, GlobalClusterIdentifier=self.global_id,
                      StorageEncrypted=True, KmsKeyId=self.key_arn,
                      DeletionProtection=self.tags(old).get(TAG_PROTECTION, "False") == "True")
        self.rds.create_db_cluster(**kwargs)

    def step_create_instances(self, facts):
        old = self.describe_cluster(self.names.old)
        have = set(facts["current"]["members"])
        accepted = self.accepted("CreateDBInstance")
        for member in self.member_names(old):
            name = rds_settings.base_name(member, self.names.old_suffix)
            if name in have:
                continue
            settings = rds_settings.member_settings(self.describe_instance(member))
            kwargs = rds_settings.create_kwargs(settings, accepted, self.bookkeeping_tags())
            kwargs.update(DBInstanceIdentifier=name, DBClusterIdentifier=self.names.identifier)
            self.rds.create_db_instance(**kwargs)

    def step_verify_cutover(self, facts):
        self.converge_settings(self.names.old, self.names.identifier)
        super().step_verify_cutover(facts)


def tagged_global_members(tagging, global_id):
    """{member identifier: names of the tagged clusters} for the clusters tagged as members of `global_id` in the
    tagging client's region. A server-side tag lookup (Resource Groups Tagging API): one call whatever the number of
    clusters in the account, where listing every cluster would grow with the fleet."""
    found = {}
    pages = tagging.get_paginator("get_resources").paginate(
        TagFilters=[{"Key": TAG_GLOBAL, "Values": [global_id]}], ResourceTypeFilters=["rds:cluster"])
    for page in pages:
        for resource in page["ResourceTagMappingList"]:
            tags = {t["Key"]: t["Value"] for t in resource.get("Tags", [])}
            if tags.get(TAG_GLOBAL) == global_id and tags.get(TAG_SOURCE):
                found.setdefault(tags[TAG_SOURCE], set()).add(resource["ResourceARN"].rsplit(":", 1)[-1])
    return found


def find_global_members(clients, global_id, primary, primary_region, regions):
    """{cluster identifier: region} of a global database: its member list, plus the clusters tagged as belonging to
    it in `regions` (a member removed by an interrupted run, under its own name or set aside as <name>-byok-old)."""
    found = find_global_cluster(clients("rds", primary_region), global_id)
    if not found:
        raise ReencryptError(f"global_cluster: {global_id} not found")
    clusters = {}
    for member in found["GlobalClusterMembers"]:
        arn = member["DBClusterArn"]
        clusters[arn.rsplit(":", 1)[-1]] = parse_aws_arn(arn)["region"]
    for region in sorted(regions):
        tagged = tagged_global_members(clients("resourcegroupstaggingapi", region), global_id)
        for identifier, names in sorted(tagged.items()):
            # The tag index lags deletions: a cluster deleted since it was tagged is not a member.
            if identifier not in clusters and any(find_cluster(clients("rds", region), n) for n in sorted(names)):
                clusters[identifier] = region
    # An interrupted re-key can leave the primary outside the global database for a moment; it is still a member.
    clusters.setdefault(primary, primary_region)
    return clusters


class GlobalReencrypt:
    """Each member of a global database onto its own region's key; secondaries first, then the primary through a
    switchover to a re-keyed secondary and back. `clusters`: {identifier: region}; `region_keys`: {region: key ARN}."""

    def __init__(self, clients, global_id, primary, clusters, region_keys, allow_switchover=True,
                 switchover_timeout=300, log=None, **kwargs):
        self.clients = clients
        self.global_id = global_id
        self.primary = primary
        self.clusters = clusters
        self.region_keys = region_keys
        self.allow_switchover = allow_switchover
        self.switchover_timeout = switchover_timeout
        self.kwargs = kwargs
        self.log = log or (lambda message: None)
        self.started = _now()
        self.changed = False
        self.events = []
        self.exposure = []
        self.switchovers = []
        self.resumed = None

    def member(self, identifier):
        region = self.clusters[identifier]
        return SecondaryReencrypt(self.clients, identifier, region, self.region_keys[region], self.global_id,
                                  log=self.log, **self.kwargs)

    def global_state(self):
        found = self.global_cluster()
        return {m["DBClusterArn"].rsplit(":", 1)[-1]: m.get("IsWriter", False) for m in found["GlobalClusterMembers"]}, \
            {m["DBClusterArn"].rsplit(":", 1)[-1]: m["DBClusterArn"] for m in found["GlobalClusterMembers"]}

    def global_cluster(self):
        found = find_global_cluster(self.clients("rds", self.clusters[self.primary]), self.global_id)
        if not found:
            raise ReencryptError(f"global_cluster: {self.global_id} not found")
        return found

    def wait_failover_state(self, what, done=lambda found: True):
        """Poll until the global cluster shows no FailoverState (a switchover or failover is over only then, even
        when the promoted cluster already shows as the writer) and `done(found)`."""
        deadline = _now() + self.switchover_timeout
        polls = 0
        while True:
            found = self.global_cluster()
            state = found.get("FailoverState") or {}
            if not state.get("Status") and done(found):
                return
            if _now() >= deadline:
                raise ReencryptError(f"{self.global_id}: {what} did not finish in {self.switchover_timeout} s (FailoverState "
                                     f"{state.get('Status') or 'none'}); run again to resume", self.changed)
            self.log(f"{self.global_id}: waiting for {what}: {state.get('Status') or 'members'} ({self.elapsed()} s)")
            time.sleep(min(self.kwargs.get("poll_seconds", 15), FIRST_POLL_SECONDS * 2 ** polls))
            polls += 1

    def observe(self):
        writers = self.global_state()[0]
        writer = next((c for c, w in writers.items() if w), None)
        facts = {"primary": self.primary, "writer": writer, "allow_switchover": self.allow_switchover, "clusters": {}}
        for identifier in self.clusters:
            member = self.member(identifier)
            try:
                complete = rds_plan.next_secondary_step(member.observe(), member.names) == rds_plan.DONE
            except rds_plan.PlanError:
                complete = False
            current = member.describe(identifier)
            facts["clusters"][identifier] = {"complete": complete, "in_global": identifier in writers,
                                             "on_key": bool(current) and current.get("KmsKeyId") == member.key_arn}
        return facts

    def elapsed(self):
        return round(_now() - self.started, 1)

    def run(self, check_mode=False, max_seconds=None):
        steps_run = 0
        while True:
            if not check_mode and (self.global_cluster().get("FailoverState") or {}).get("Status"):
                # A switchover in progress (an earlier run stopped during one, or someone else's): nothing is changed
                # until it is over.
                self.wait_failover_state("the switchover in progress")
            facts = self.observe()
            try:
                step, target = rds_plan.next_global_step(facts)
            except rds_plan.PlanError as e:
                raise ReencryptError(str(e), self.changed) from None
            if not steps_run and step != rds_plan.DONE:
                done = sorted(c for c, f in facts["clusters"].items() if f["complete"])
                removed = sorted(c for c, f in facts["clusters"].items() if not f["in_global"])
                if done or removed or facts["writer"] != facts["primary"]:
                    self.resumed = {"at_step": step, "target": target, "members_done": done, "members_out_of_global": removed,
                                    "writer": facts["writer"]}
                    self.log(f"{self.global_id}: resuming at {step} {target} ({len(done)} of {len(self.clusters)} members done)")
            if step == rds_plan.DONE:
                return self.result(True, step, None, facts)
            if check_mode or step == rds_plan.DEFERRED:
                return self.result(False, step, target, facts, deferred=step == rds_plan.DEFERRED)
            if max_seconds is not None and self.elapsed() >= max_seconds:
                return self.result(False, step, target, facts)
            began = _now()
            self.log(f"{self.global_id}: {step} {target}")
            if step == "rekey_secondary":
                member = self.member(target)
                if max_seconds is not None:
                    member.max_seconds = max(1, max_seconds - self.elapsed())
                outcome = member.run()
                self.changed = self.changed or member.changed
                self.events += [dict(e, cluster=target) for e in member.events]
                if member.changed:
                    self.exposure.append(f"{self.clusters[target]}: {target} had no up-to-date replica from its removal "
                                         f"from {self.global_id} until its re-created secondary was available "
                                         f"({round(_now() - began, 1)} s here; in AWS as long as the new secondary "
                                         f"takes to fill); {target}-byok-old is a detached copy as of the removal")
                if not outcome["complete"]:
                    return self.result(False, outcome["step"], target, self.observe())
            else:
                self.switchover(target)
                self.events.append({"step": step, "cluster": target, "seconds": round(_now() - began, 1)})
                self.changed = True
            steps_run += 1

    def switchover(self, target):
        rds = self.clients("rds", self.clusters[target])
        arns = self.global_state()[1]
        began = _utcnow()
        rds.switchover_global_cluster(GlobalClusterIdentifier=self.global_id, TargetDbClusterIdentifier=arns[target])
        self.changed = True
        self.wait_failover_state(f"the switchover to {target}", lambda found: any(
            m.get("IsWriter") and m["DBClusterArn"] == arns[target] for m in found["GlobalClusterMembers"]))
        seconds = round((_utcnow() - began).total_seconds(), 1)
        self.switchovers.append({"to": target, "region": self.clusters[target], "seconds": seconds})
        if target != self.primary:
            self.exposure.append(f"writes are served from {self.clusters[target]} ({target}) until the switchover back "
                                 f"to {self.primary}")

    def result(self, complete, step, target, facts, deferred=False):
        clusters = []
        for identifier, region in sorted(self.clusters.items()):
            current = self.member(identifier).describe(identifier) or {}
            clusters.append({"identifier": identifier, "region": region, "key_arn": self.region_keys[region],
                             "current_key": current.get("KmsKeyId"), "retained_old": f"{identifier}-byok-old"
                             if self.member(identifier).describe(f"{identifier}-byok-old") else None,
                             "writer": facts["writer"] == identifier if facts else None})
        return {"changed": self.changed, "complete": complete, "step": step, "step_target": target, "deferred": deferred,
                "identifier": self.primary, "global_cluster": self.global_id, "strategy": "global_remove_and_readd",
                "clusters": clusters, "dr_exposure": self.exposure, "switchovers": self.switchovers,
                "switchover_seconds": sum(s["seconds"] for s in self.switchovers) if self.switchovers else None,
                "elapsed_seconds": self.elapsed(), "steps_run": self.events, "resumed": self.resumed}
