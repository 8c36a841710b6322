"""RDS/Aurora: every KmsKeyId is checked (exists, Enabled, this Region) and stored as the key ARN.

Plain moto checks keys only for CopyDBSnapshot/CopyDBClusterSnapshot (existence only) and accepts any string
for CreateDBCluster, CreateDBInstance and the restores. AWS answers KMSKeyNotAccessibleFault (HTTP 400) for a key
that is missing or not enabled, and stores the ARN whatever form was sent:
https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBCluster.html (Errors: KMSKeyNotAccessibleFault;
"To use a KMS key in a different Amazon Web Services account, specify the key ARN or alias ARN").
Encrypted resources without KmsKeyId get the account's aws/rds key, as in AWS.
"""
from __future__ import annotations

import copy
import hashlib
import os
import threading
from typing import Any

from moto.core.responses import ActionResult
from moto.rds.exceptions import DBClusterNotFoundError, InvalidBlueGreenDeploymentStateFault, KMSKeyNotAccessibleFault, RDSClientError
from moto.rds.models import BlueGreenDeployment, DBCluster, DBInstanceClustered, GlobalCluster, RDSBackend, rds_backends
from moto.rds.responses import RDSResponse

from ._patching import add, replace, wrap
from .kms_keys import find_key, key_problem

MOTO_PLACEHOLDER_KEY = "default_kms_key_id"  # what moto stores for "encrypted, no key given"
AWS_MANAGED_RDS_KEY = "alias/aws/rds"


def _validate_kms_key(self: RDSBackend, kms_key_id: str) -> str:
    """The key ARN for ``kms_key_id``, or KMSKeyNotAccessibleFault (replaces moto's existence-only check)."""
    if key_problem(self.account_id, self.region_name, kms_key_id):
        raise KMSKeyNotAccessibleFault(kms_key_id)
    return find_key(self.account_id, self.region_name, kms_key_id).arn


def _resolve_storage_key(backend: RDSBackend, kwargs: dict[str, Any]) -> None:
    """Check and normalize kwargs["kms_key_id"] in place for a resource being created."""
    kms_key_id = kwargs.get("kms_key_id")
    if kms_key_id and kms_key_id != MOTO_PLACEHOLDER_KEY:
        kwargs["kms_key_id"] = backend._validate_kms_key(kms_key_id)  # pylint: disable=protected-access
    elif kwargs.get("storage_encrypted"):
        kwargs["kms_key_id"] = backend._validate_kms_key(AWS_MANAGED_RDS_KEY)  # pylint: disable=protected-access


def _target_key_overrides(bg_kwargs: dict[str, Any]) -> dict[str, str]:
    """{blue resource ARN: TargetKmsKeyId} from CreateBlueGreenDeployment's TargetResourceConfigurations."""
    configurations = bg_kwargs.get("target_resource_configurations") or []
    return {c["source_arn"]: c["target_kms_key_id"] for c in configurations if c.get("target_kms_key_id")}


def _resource_by_arn(backend: RDSBackend, arn: str) -> Any:
    """The DB cluster or DB instance a blue/green Source/Target ARN names (same account and Region)."""
    name = arn.rsplit(":", 1)[-1]
    return backend.clusters[name] if ":cluster:" in arn else backend.databases[name]


def apply() -> None:
    replace(RDSBackend, "_validate_kms_key", _validate_kms_key)

    # All cluster creations (create, both restores, blue/green green cluster) go through create_db_cluster.
    @wrap(RDSBackend, "create_db_cluster")
    def create_db_cluster(original, self, kwargs):
        _resolve_storage_key(self, kwargs)
        return original(self, kwargs)

    # Instance creations (create, restores, read replicas); an Aurora instance's key is its cluster's.
    @wrap(RDSBackend, "create_db_instance")
    def create_db_instance(original, self, db_kwargs):
        if not db_kwargs.get("db_cluster_identifier"):
            _resolve_storage_key(self, db_kwargs)
        return original(self, db_kwargs)

    @wrap(RDSBackend, "create_blue_green_deployment")
    def create_blue_green_deployment(original, self, bg_kwargs):
        # TargetResourceConfigurations[].TargetKmsKeyId encrypts the green resource with another key
        # (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_TargetResourceConfiguration.html).
        overrides = {source: self._validate_kms_key(key) for source, key in _target_key_overrides(bg_kwargs).items()}  # pylint: disable=protected-access
        deployment = original(self, bg_kwargs)
        if overrides:
            green = _resource_by_arn(self, deployment.target)
            if deployment.source in overrides:
                green.kms_key_id = overrides[deployment.source]
                green.storage_encrypted = True
        return deployment

    apply_lifecycle()
    apply_replicas_and_transitions()


# -- Renames, Blue/Green switchover, global databases, transitional states (rds_reencrypt needs these) ------------

# Settings moto's CreateBlueGreenDeployment leaves out of the green cluster; AWS copies every one of them.
GREEN_CLUSTER_COPIED = ("db_subnet_group_name", "iam_auth", "serverless_v2_scaling_configuration",
                        "enabled_cloudwatch_logs_exports", "network_type", "enable_http_endpoint")
GREEN_INSTANCE_COPIED = ("promotion_tier", "monitoring_interval", "monitoring_role_arn", "auto_minor_version_upgrade",
                         "ca_certificate_identifier", "db_parameter_group_name", "preferred_maintenance_window", "tags")
# Instance settings moto drops on create: stored so that DescribeDBInstances returns them as AWS does.
PERFORMANCE_INSIGHTS = ("enable_performance_insights", "performance_insights_kms_key_id",
                        "performance_insights_retention_period")


def _store_performance_insights(database: Any, kwargs: dict[str, Any]) -> None:
    for name in PERFORMANCE_INSIGHTS:
        if kwargs.get(name) is not None:
            attribute = "performance_insights_enabled" if name == "enable_performance_insights" else name
            setattr(database, attribute, kwargs[name])


def transition_polls() -> int:
    """How many describes a Blue/Green deployment stays PROVISIONING or SWITCHOVER_IN_PROGRESS (0: instant)."""
    try:
        return max(0, int(os.environ.get("BYOK_LOCAL_AWS_RDS_TRANSITION_POLLS", "2")))
    except ValueError:
        return 2


class DBClusterAlreadyExistsFault(RDSClientError):
    def __init__(self, identifier: str):
        super().__init__("DBClusterAlreadyExistsFault", f"DB cluster already exists: {identifier}")


class GlobalClusterNotFoundFault(RDSClientError):
    def __init__(self, identifier: str):
        super().__init__("GlobalClusterNotFoundFault", f"Global cluster {identifier} not found.")


class InvalidGlobalClusterStateFault(RDSClientError):
    def __init__(self, message: str):
        super().__init__("InvalidGlobalClusterStateFault", message)


def _members_named(backend: RDSBackend, cluster_id: str) -> list:
    return [db for db in backend.databases.values()
            if isinstance(db, DBInstanceClustered) and db.db_cluster_identifier == cluster_id]


def _global_backend(account_id: str) -> RDSBackend:
    return rds_backends[account_id]["us-east-1"]  # moto keeps every global cluster there


def _global_cluster(account_id: str, identifier: str) -> Any:
    backend = _global_backend(account_id)
    name = identifier.rsplit(":", 1)[-1]
    if name not in backend.global_clusters:
        raise GlobalClusterNotFoundFault(identifier)
    return backend.global_clusters[name]


def _cluster_by_ref(backend: RDSBackend, ref: str) -> Any:
    """A cluster by identifier (this region) or ARN (any region of the account)."""
    if ref.startswith("arn:"):
        region = ref.split(":")[3]
        backend = rds_backends[backend.account_id][region]
    name = ref.rsplit(":", 1)[-1].lower()
    if name not in backend.clusters:
        raise DBClusterNotFoundError(name)
    return backend.clusters[name]


def _describe_countdown(deployment: Any) -> None:
    """Serve a transitional status for a few describes, then the final one (AWS takes minutes)."""
    pending = getattr(deployment, "_byok_transition", None)
    if pending and pending[1] > 0:
        pending[1] -= 1
        deployment.status = pending[0]
        if pending[1] == 0:
            deployment.status = pending[2]


def switchover_global_cluster(self: RDSBackend, global_cluster_identifier: str, target_db_cluster_identifier: str) -> Any:
    """SwitchoverGlobalCluster: the target secondary becomes the writer, the old primary a secondary."""
    global_cluster = _global_cluster(self.account_id, global_cluster_identifier)
    target = _cluster_by_ref(self, target_db_cluster_identifier)
    if target not in global_cluster.members:
        raise InvalidGlobalClusterStateFault(f"{target_db_cluster_identifier} is not a member of {global_cluster_identifier}")
    for member in global_cluster.members:
        member.is_writer = member is target
    return global_cluster


def _switchover_global_cluster_response(self: RDSResponse) -> ActionResult:
    params = self.params
    global_cluster = self.backend.switchover_global_cluster(
        global_cluster_identifier=params["GlobalClusterIdentifier"],
        target_db_cluster_identifier=params["TargetDbClusterIdentifier"])
    return ActionResult({"GlobalCluster": global_cluster})


def apply_lifecycle() -> None:
    # AWS cluster endpoints are <id>.cluster-<hash>.<region>.rds.amazonaws.com with one hash per account and
    # region, so a cluster renamed to an identifier gets that identifier's old endpoint (moto: a random hash
    # per cluster, so a rename swap would change the endpoint names).
    @wrap(DBCluster, "__init__")
    def cluster_init(original, self, backend, *args, **kwargs):
        original(self, backend, *args, **kwargs)
        digest = hashlib.sha256(f"{backend.account_id}:{backend.region_name}".encode()).hexdigest()
        self.url_identifier = "c" + digest[:11]
        # HostedZoneId is the Route 53 zone of the region's RDS endpoints, one per region (moto: random per cluster,
        # so a re-created or renamed cluster seemed to move zones).
        self.hosted_zone_id = "Z" + hashlib.sha256(backend.region_name.encode()).hexdigest()[:13].upper()

    # A cluster or instance created under the name another one had a minute ago (a rename swap) must not collide
    # with that one's automated snapshot: AWS's automated snapshot names never collide.
    @wrap(RDSBackend, "create_auto_cluster_snapshot")
    def create_auto_cluster_snapshot(original, self, db_cluster_identifier, db_snapshot_identifier):
        base, n = db_snapshot_identifier, 1
        while db_snapshot_identifier in self.cluster_snapshots:
            n += 1
            db_snapshot_identifier = f"{base}-{n}"
        return original(self, db_cluster_identifier, db_snapshot_identifier)

    @wrap(RDSBackend, "create_auto_snapshot")
    def create_auto_snapshot(original, self, db_instance_identifier, db_snapshot_identifier):
        base, n = db_snapshot_identifier, 1
        while db_snapshot_identifier in self.database_snapshots:
            n += 1
            db_snapshot_identifier = f"{base}-{n}"
        return original(self, db_instance_identifier, db_snapshot_identifier)

    @wrap(RDSBackend, "create_db_cluster")
    def create_db_cluster(original, self, kwargs):
        # AWS: DBClusterAlreadyExistsFault (moto silently replaces the existing cluster).
        if kwargs["db_cluster_identifier"].lower() in self.clusters:
            raise DBClusterAlreadyExistsFault(kwargs["db_cluster_identifier"])
        # A secondary of a global database replicates the primary's storage: its master user and database name
        # are the primary's (moto leaves them empty).
        global_id = kwargs.get("global_cluster_identifier")
        if global_id and not kwargs.get("master_username"):
            found = _global_backend(self.account_id).global_clusters.get(global_id.rsplit(":", 1)[-1].lower())
            writer = next((m for m in found.members if m.is_writer), None) if found else None
            if writer is not None:
                kwargs.setdefault("database_name", writer.database_name)
                kwargs["master_username"] = writer.master_username
        return original(self, kwargs)

    @wrap(RDSBackend, "create_db_instance")
    def create_db_instance(original, self, db_kwargs):
        database = original(self, db_kwargs)
        _store_performance_insights(database, db_kwargs)
        return database

    @wrap(RDSBackend, "modify_db_instance")
    def modify_db_instance(original, self, db_instance_identifier, db_kwargs):
        pi = {k: db_kwargs.pop(k) for k in PERFORMANCE_INSIGHTS if k in db_kwargs}
        database = original(self, db_instance_identifier, db_kwargs)
        _store_performance_insights(self.databases[database.db_instance_identifier], pi)
        return database

    @wrap(RDSBackend, "modify_db_cluster")
    def modify_db_cluster(original, self, kwargs):
        # AWS refuses a rename onto an existing cluster and moves the instances with the cluster; moto overwrote the
        # other cluster and left the instances behind under the old name.
        old_id = kwargs["db_cluster_identifier"].lower()
        new_id = (kwargs.get("new_db_cluster_identifier") or "").lower()
        if old_id not in self.clusters:
            raise DBClusterNotFoundError(old_id)
        if new_id and new_id != old_id and new_id in self.clusters:
            raise DBClusterAlreadyExistsFault(new_id)
        members = _members_named(self, old_id) if new_id else []
        result = original(self, kwargs)
        for member in members:
            member.db_cluster_identifier = new_id
        return result

    @wrap(RDSBackend, "remove_from_global_cluster")
    def remove_from_global_cluster(original, self, global_cluster_identifier, db_cluster_identifier):
        # moto looked in the caller's region only and ignored errors, so a secondary in another region stayed a member.
        global_cluster = _global_cluster(self.account_id, global_cluster_identifier)
        cluster = _cluster_by_ref(self, db_cluster_identifier)
        if cluster not in global_cluster.members:
            raise InvalidGlobalClusterStateFault(f"{db_cluster_identifier} is not a member of {global_cluster_identifier}")
        if cluster.is_writer and len(global_cluster.members) > 1:
            raise InvalidGlobalClusterStateFault("The primary cluster can be removed only when it is the last member")
        global_cluster.members.remove(cluster)
        cluster.is_writer = False
        cluster.global_cluster_identifier = None
        return global_cluster

    @wrap(RDSResponse, "describe_global_clusters")
    def describe_global_clusters(original, self):
        # moto ignored GlobalClusterIdentifier and listed every global cluster.
        wanted = self.params.get("GlobalClusterIdentifier")
        if not wanted:
            return original(self)
        return ActionResult({"GlobalClusters": [_global_cluster(self.current_account, wanted)]})

    add(RDSBackend, "switchover_global_cluster", switchover_global_cluster)
    add(RDSResponse, "switchover_global_cluster", _switchover_global_cluster_response)

    @wrap(BlueGreenDeployment, "__init__")
    def bg_init(original, self, backend, *args, **kwargs):
        original(self, backend, *args, **kwargs)
        source = self._get_valid_instance_or_raise(self.source)  # pylint: disable=protected-access
        target = self._get_valid_instance_or_raise(self.target)  # pylint: disable=protected-access
        if not isinstance(source, DBCluster):
            for name in GREEN_INSTANCE_COPIED + ("performance_insights_enabled", "performance_insights_kms_key_id",
                                                 "performance_insights_retention_period", "enable_iam_database_authentication"):
                if hasattr(source, name):
                    setattr(target, name, copy.deepcopy(getattr(source, name)))
        if isinstance(source, DBCluster):
            for name in GREEN_CLUSTER_COPIED:
                setattr(target, name, copy.deepcopy(getattr(source, name, None)))
            blue_members = {m.db_instance_identifier: m for m in _members_named(backend, source.db_cluster_identifier)}
            for green in _members_named(backend, target.db_cluster_identifier):
                blue = blue_members.get(green.db_instance_identifier.rsplit("-green-", 1)[0])
                # moto gives each green member the cluster's copy-tags and log-export settings; AWS copies the member's.
                for name in GREEN_INSTANCE_COPIED + ("performance_insights_enabled", "performance_insights_kms_key_id",
                                                     "performance_insights_retention_period", "copy_tags_to_snapshot",
                                                     "enabled_cloudwatch_logs_exports"):
                    if blue is not None and hasattr(blue, name):
                        setattr(green, name, copy.deepcopy(getattr(blue, name)))
        polls = transition_polls()
        if polls:
            self.status = self.SupportedStates.PROVISIONING.name
            self._byok_transition = ["PROVISIONING", polls, self.SupportedStates.AVAILABLE.name]

    @wrap(RDSBackend, "describe_blue_green_deployments")
    def describe_blue_green_deployments(original, self, *args, **kwargs):
        deployments = original(self, *args, **kwargs)
        for deployment in deployments:
            _describe_countdown(deployment)
        return deployments

    @wrap(RDSBackend, "switchover_blue_green_deployment")
    def switchover_blue_green_deployment(original, self, blue_green_deployment_identifier, *args, **kwargs):
        deployment = self.blue_green_deployments.get(blue_green_deployment_identifier)
        if deployment is not None and getattr(deployment, "_byok_transition", [None, 0])[1] > 0:
            raise InvalidBlueGreenDeploymentStateFault(blue_green_deployment_identifier)
        result = original(self, blue_green_deployment_identifier, *args, **kwargs)
        polls = transition_polls()
        if polls:
            deployment._byok_transition = ["SWITCHOVER_IN_PROGRESS", polls, deployment.status]  # pylint: disable=protected-access
            deployment.status = "SWITCHOVER_IN_PROGRESS"
        return result

    @wrap(BlueGreenDeployment, "switchover")
    def switchover(original, self):
        # AWS renames the instances too: blue ones get -old1, green ones take the blue names.
        source = self._get_valid_instance_or_raise(self.source)  # pylint: disable=protected-access
        target = self._get_valid_instance_or_raise(self.target)  # pylint: disable=protected-access
        renames = []
        if isinstance(source, DBCluster):
            blue_names = [m.db_instance_identifier for m in _members_named(self.backend, source.db_cluster_identifier)]
            renames += [(name, f"{name}-old1") for name in blue_names]
            renames += [(g.db_instance_identifier, g.db_instance_identifier.rsplit("-green-", 1)[0])
                        for g in _members_named(self.backend, target.db_cluster_identifier)]
        original(self)
        for old, new in renames:
            if old != new:
                self.backend.modify_db_instance(db_instance_identifier=old, db_kwargs={"new_db_instance_identifier": new})


# -- Read replicas in Blue/Green, DeleteTarget after a switchover, rename and global switchover states -------------
#
# Blue/Green of an RDS DB instance copies its read replicas into the green environment, each one encrypted as its own
# TargetResourceConfigurations entry says, or as its blue counterpart when no entry names it:
# https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_TargetResourceConfiguration.html ("For RDS,
# encryption applies at the DB instance level. Specify a DB instance ARN in SourceArn. To encrypt read replicas,
# include a separate entry for each one"; CreateBlueGreenDeployment: "Any resource that you don't include in this
# parameter retains the same configuration as its counterpart in the blue environment. ... You can't specify the
# same SourceArn in more than one entry"). The switchover renames every instance of the blue environment with -old1
# and gives each green instance its blue counterpart's name:
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html. Plain moto copies
# only the source instance and renames only it.
#
# DeleteBlueGreenDeployment refuses DeleteTarget once the switchover completed:
# https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteBlueGreenDeployment.html ("DeleteTarget ...
# You can't specify this option if the blue/green deployment status is SWITCHOVER_COMPLETED"). Plain moto accepts it.
#
# Renaming a DB instance reboots it: https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBInstance.html
# ("NewDBInstanceIdentifier ... When you change the DB instance identifier, an instance reboot occurs immediately if
# you enable ApplyImmediately"); the instance is "renaming", then "rebooting" (DB instance status table,
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/accessing-monitoring.html), and ModifyDBInstance on an
# instance in such a state is refused with InvalidDBInstanceState. Plain moto renames instantly and stays available.
#
# A global database switchover is in progress while the global cluster shows a FailoverState:
# https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_FailoverState.html ("empty unless a switchover or
# failover operation is scheduled or is in progress"; pending, then switching-over: "demoting the primary Aurora DB
# cluster, promoting the secondary Aurora DB cluster, and synchronizing replicas"). The promoted cluster already shows
# IsWriter while the state is switching-over; RemoveFromGlobalCluster and another switchover are refused
# (InvalidGlobalClusterStateFault) until it clears. Plain moto has no SwitchoverGlobalCluster at all.
#
# Every intermediate state lasts a number of describes of the resource, not seconds (BYOK_LOCAL_AWS_RDS_TRANSITION_POLLS).

RENAME_STATES = ("renaming", "rebooting")
_COUNTDOWN_LOCK = threading.Lock()  # the server answers requests in threads; two describes may tick the same resource


class InvalidParameterValue(RDSClientError):
    def __init__(self, message: str):
        super().__init__("InvalidParameterValue", message)


class InvalidDBInstanceState(RDSClientError):
    def __init__(self, identifier: str, status: str):
        super().__init__("InvalidDBInstanceState", f"Database instance {identifier} is not in available state ({status}).")


def _same_region_replicas(database: Any) -> list:
    """The blue instance's read replicas in its own region (cross-Region ones are listed by ARN)."""
    backend = database.backend
    return [backend.databases[r] for r in getattr(database, "replicas", []) if not r.startswith("arn:") and r in backend.databases]


def _check_target_configurations(backend: RDSBackend, bg_kwargs: dict[str, Any]) -> None:
    """Each SourceArn once, and each one a resource of the blue environment."""
    configurations = bg_kwargs.get("target_resource_configurations") or []
    arns = [c.get("source_arn") for c in configurations]
    duplicates = sorted({a for a in arns if arns.count(a) > 1})
    if duplicates:
        raise InvalidParameterValue(f"You can't specify the same SourceArn in more than one entry: {duplicates[0]}")
    source_arn = bg_kwargs.get("source", "")
    blue = {source_arn}
    if ":cluster:" not in source_arn:
        source = backend.databases.get(source_arn.rsplit(":", 1)[-1])
        if source is not None:
            blue |= {r.db_instance_arn for r in _same_region_replicas(source)}
    else:
        cluster = backend.clusters.get(source_arn.rsplit(":", 1)[-1])
        if cluster is not None:
            blue |= {m.db_instance_arn for m in _members_named(backend, cluster.db_cluster_identifier)}
    outside = [a for a in arns if a not in blue]
    if outside:
        raise InvalidParameterValue(f"SourceArn {outside[0]} is not a resource of the blue environment of {source_arn}")


def _create_green_replicas(backend: RDSBackend, deployment: Any, overrides: dict[str, str]) -> None:
    """A green read replica of the green instance for each blue read replica, keyed by its entry or as its blue."""
    blue = backend.databases[deployment.source.rsplit(":", 1)[-1]]
    green = backend.databases[deployment.target.rsplit(":", 1)[-1]]
    pairs = []
    for replica in _same_region_replicas(blue):
        name = deployment._generate_green_id(replica.db_instance_identifier)  # pylint: disable=protected-access
        created = backend.create_db_instance_read_replica({"db_instance_identifier": name,
                                                           "source_db_instance_identifier": green.db_instance_identifier})
        for attribute in ("db_instance_class", "availability_zone", "publicly_accessible", "multi_az", "storage_type",
                          "allocated_storage", "max_allocated_storage", "enabled_cloudwatch_logs_exports",
                          "vpc_security_group_ids", "deletion_protection") + GREEN_INSTANCE_COPIED + PERFORMANCE_INSIGHTS[1:] + (
                              "performance_insights_enabled", "enable_iam_database_authentication"):
            if getattr(replica, attribute, None) is not None:
                setattr(created, attribute, copy.deepcopy(getattr(replica, attribute)))
        created.kms_key_id = overrides.get(replica.db_instance_arn, replica.kms_key_id)
        created.storage_encrypted = bool(created.kms_key_id) or replica.storage_encrypted
        pairs.append([replica.db_instance_arn, created.db_instance_arn])
    deployment._byok_replica_pairs = pairs  # pylint: disable=protected-access


def _tick(resource: Any, attribute: str) -> Any:
    """Advance a resource's countdown of intermediate states by one describe; returns the state now shown or None."""
    with _COUNTDOWN_LOCK:
        steps = getattr(resource, attribute, None)
        while steps and steps[0][1] <= 0:
            steps.pop(0)
        if not steps:
            return None
        steps[0][1] -= 1
        return steps[0][0]


def _instance_describe_tick(database: Any) -> None:
    if getattr(database, "_byok_rename_states", None) is None:
        return
    state = _tick(database, "_byok_rename_states")
    database.status = state or "available"
    if state is None:
        database._byok_rename_states = None  # pylint: disable=protected-access


def _rename_keeps_replication(backend: RDSBackend, database: Any, old_id: str, new_id: str) -> None:
    """A renamed source keeps its replicas and a renamed replica its source (the links name the new identifier)."""
    for replica_id in getattr(database, "replicas", None) or []:
        replica = backend.databases.get(replica_id)
        if replica is not None and getattr(replica, "source_db_instance_identifier", None) == old_id:
            replica.source_db_instance_identifier = new_id
    source = backend.databases.get(getattr(database, "source_db_instance_identifier", None) or "")
    if source is not None and old_id in source.replicas:
        source.replicas[source.replicas.index(old_id)] = new_id


def _global_describe_tick(global_cluster: Any) -> None:
    if getattr(global_cluster, "_byok_failover_states", None) is None:
        return
    state = _tick(global_cluster, "_byok_failover_states")
    target = global_cluster._byok_failover_target  # pylint: disable=protected-access
    if state in (None, "switching-over"):
        for member in global_cluster.members:
            member.is_writer = member is target
    if state is None:
        global_cluster._byok_failover_states = None  # pylint: disable=protected-access
        global_cluster._byok_failover = None  # pylint: disable=protected-access
    else:
        global_cluster._byok_failover["Status"] = state  # pylint: disable=protected-access


def _failover_state(self: Any) -> Any:
    return getattr(self, "_byok_failover", None) or None


def _refuse_during_failover(global_cluster: Any, action: str) -> None:
    if getattr(global_cluster, "_byok_failover", None):
        raise InvalidGlobalClusterStateFault(
            f"{action}: global cluster {global_cluster.global_cluster_identifier} is "
            f"{global_cluster._byok_failover['Status']} (FailoverState); wait until the operation completes")  # pylint: disable=protected-access


def apply_replicas_and_transitions() -> None:
    @wrap(RDSBackend, "create_blue_green_deployment")
    def create_blue_green_deployment(original, self, bg_kwargs):
        _check_target_configurations(self, bg_kwargs)
        overrides = {source: self._validate_kms_key(key) for source, key in _target_key_overrides(bg_kwargs).items()}  # pylint: disable=protected-access
        result = original(self, bg_kwargs)
        deployment = self.blue_green_deployments[result.blue_green_deployment_identifier]
        deployment._byok_replica_pairs = []  # pylint: disable=protected-access
        if ":cluster:" not in deployment.source:
            _create_green_replicas(self, deployment, overrides)
            deployment.set_status(deployment.SupportedStates[deployment.status])
        result._byok_replica_pairs = deployment._byok_replica_pairs  # pylint: disable=protected-access
        result.set_status(result.SupportedStates[result.status])
        return result

    @wrap(BlueGreenDeployment, "set_status")
    def set_status(original, self, value):
        original(self, value)
        for blue, green in getattr(self, "_byok_replica_pairs", None) or []:
            self.switchover_details.append(type(self.switchover_details[0])(blue, green, self.status))

    @wrap(BlueGreenDeployment, "switchover")
    def switchover(original, self):
        pairs = getattr(self, "_byok_replica_pairs", None) or []
        original(self)
        backend = self.backend
        renames = [(b.rsplit(":", 1)[-1], b.rsplit(":", 1)[-1] + "-old1") for b, g in pairs]
        renames += [(g.rsplit(":", 1)[-1], b.rsplit(":", 1)[-1]) for b, g in pairs]
        for old, new in renames:
            backend.modify_db_instance(db_instance_identifier=old, db_kwargs={"new_db_instance_identifier": new})
        for pair in pairs:
            name = pair[0].rsplit(":", 1)[-1]
            pair[:] = [backend.databases[name + "-old1"].db_instance_arn, backend.databases[name].db_instance_arn]
        self.set_status(self.SupportedStates.SWITCHOVER_COMPLETED)

    @wrap(RDSBackend, "modify_db_instance")
    def modify_db_instance(original, self, db_instance_identifier, db_kwargs):
        new_id = db_kwargs.get("new_db_instance_identifier")
        database = original(self, db_instance_identifier, db_kwargs)
        if new_id and new_id != db_instance_identifier:
            _rename_keeps_replication(self, database, db_instance_identifier, database.db_instance_identifier)
        return database

    @wrap(RDSResponse, "modify_db_instance")
    def modify_db_instance_response(original, self):
        identifier = self.params.get("DBInstanceIdentifier")
        database = self.backend.databases.get((identifier or "").lower()) or self.backend.databases.get(identifier)
        if database is not None and database.status in RENAME_STATES:
            raise InvalidDBInstanceState(identifier, database.status)
        renamed = self.params.get("NewDBInstanceIdentifier")
        result = original(self)
        polls = transition_polls()
        if renamed and self.params.get("ApplyImmediately") and polls and database is not None:
            # Counted in describes of the instance: the first half renaming, the rest rebooting.
            first = max(1, polls // 2)
            database._byok_rename_states = [["renaming", first], ["rebooting", max(1, polls - first)]]  # pylint: disable=protected-access
            database.status = "renaming"
        return result

    @wrap(RDSBackend, "describe_db_instances")
    def describe_db_instances(original, self, *args, **kwargs):
        databases = original(self, *args, **kwargs)
        for database in databases:
            _instance_describe_tick(database)
        return databases

    @wrap(RDSResponse, "delete_blue_green_deployment")
    def delete_blue_green_deployment(original, self):
        identifier = self.params.get("BlueGreenDeploymentIdentifier")
        deployment = self.backend.blue_green_deployments.get(identifier)
        if deployment is not None:
            pending = getattr(deployment, "_byok_transition", None)
            final = pending[2] if pending and pending[1] > 0 else deployment.status
            if "DeleteTarget" in self.params and final == "SWITCHOVER_COMPLETED":
                raise RDSClientError("InvalidBlueGreenDeploymentStateFault",
                                     f"You can't specify DeleteTarget for blue/green deployment {identifier}: its status "
                                     "is SWITCHOVER_COMPLETED.")
            if self.params.get("DeleteTarget") and final != "SWITCHOVER_COMPLETED":
                # The green replicas go with the green instance (moto deleted the target instance only).
                for dummy_blue, green in getattr(deployment, "_byok_replica_pairs", None) or []:
                    self.backend.delete_db_instance(db_instance_identifier=green.rsplit(":", 1)[-1])
        return original(self)

    add(GlobalCluster, "failover_state", property(_failover_state))

    def switchover_with_state(self, global_cluster_identifier, target_db_cluster_identifier):
        global_cluster = _global_cluster(self.account_id, global_cluster_identifier)
        _refuse_during_failover(global_cluster, "SwitchoverGlobalCluster")
        target = _cluster_by_ref(self, target_db_cluster_identifier)
        if target not in global_cluster.members:
            raise InvalidGlobalClusterStateFault(f"{target_db_cluster_identifier} is not a member of {global_cluster_identifier}")
        current = next((m for m in global_cluster.members if m.is_writer), None)
        polls = transition_polls()
        if not polls:
            return switchover_global_cluster(self, global_cluster_identifier, target_db_cluster_identifier)
        first = max(1, polls // 2)
        global_cluster._byok_failover = {"Status": "pending", "IsDataLossAllowed": False,  # pylint: disable=protected-access
                                         "FromDbClusterArn": current.db_cluster_arn if current else None,
                                         "ToDbClusterArn": target.db_cluster_arn}
        global_cluster._byok_failover_states = [["pending", first], ["switching-over", max(1, polls - first)]]  # pylint: disable=protected-access
        global_cluster._byok_failover_target = target  # pylint: disable=protected-access
        return global_cluster

    replace(RDSBackend, "switchover_global_cluster", switchover_with_state)

    @wrap(RDSBackend, "remove_from_global_cluster")
    def remove_from_global_cluster(original, self, global_cluster_identifier, db_cluster_identifier):
        _refuse_during_failover(_global_cluster(self.account_id, global_cluster_identifier), "RemoveFromGlobalCluster")
        return original(self, global_cluster_identifier, db_cluster_identifier)

    @wrap(RDSResponse, "describe_global_clusters")
    def describe_global_clusters(original, self):
        wanted = self.params.get("GlobalClusterIdentifier")
        if wanted:
            _global_describe_tick(_global_cluster(self.current_account, wanted))
        else:
            for global_cluster in list(_global_backend(self.current_account).global_clusters.values()):
                _global_describe_tick(global_cluster)
        return original(self)
