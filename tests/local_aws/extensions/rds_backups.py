"""RDS automated backups of a deleted Aurora cluster: removed with it by default, or retained on request.

- DeleteDBCluster ``DeleteAutomatedBackups``: "Specifies whether to remove automated backups immediately after the
  DB cluster is deleted. [...] The default is to remove automated backups immediately after the DB cluster is
  deleted." https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBCluster.html
  Plain moto ignores the parameter and keeps the deleted cluster's automated snapshots forever.
- DescribeDBClusterAutomatedBackups: "Displays backups for both current and deleted DB clusters. [...] All
  parameters are optional." A deleted cluster's retained backup has ``Status: retained`` and the cluster's
  ``DbClusterResourceId``, ``KmsKeyId``, ``BackupRetentionPeriod`` and ``RestoreWindow``.
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBClusterAutomatedBackups.html,
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBClusterAutomatedBackup.html
  Plain moto does not implement it (HTTP 500).
- DeleteDBClusterAutomatedBackup ``DbClusterResourceId``: "Deletes automated backups using the DbClusterResourceId
  value of the source DB cluster"; an unknown id is ``DBClusterAutomatedBackupNotFoundFault`` (HTTP 404).
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBClusterAutomatedBackup.html
- A cluster snapshot names the resource id of the cluster it was taken of (``DbClusterResourceId``, "the resource
  ID of the DB cluster that this DB cluster snapshot was created from", API_DBClusterSnapshot.html): it stays
  tied to that cluster through renames. Plain moto leaves it out.
"""
from __future__ import annotations

import datetime
from typing import Any

from moto.core.responses import ActionResult
from moto.rds.exceptions import RDSClientError
from moto.rds.models import DBClusterSnapshot, RDSBackend
from moto.rds.responses import RDSResponse

from ._patching import add, wrap


class DBClusterAutomatedBackupNotFoundFault(RDSClientError):
    code = 404

    def __init__(self, identifier: str):
        super().__init__("DBClusterAutomatedBackupNotFoundFault", f"No automated backup found for {identifier}.")


def _retained(backend: RDSBackend) -> dict[str, dict[str, Any]]:
    if not hasattr(backend, "_byok_retained_cluster_backups"):
        backend._byok_retained_cluster_backups = {}  # pylint: disable=protected-access
    return backend._byok_retained_cluster_backups  # pylint: disable=protected-access


def _automated_snapshots_of(backend: RDSBackend, resource_id: str) -> list:
    return [s for s in backend.cluster_snapshots.values()
            if s.snapshot_type == "automated" and getattr(s.cluster, "db_cluster_resource_id", None) == resource_id]


def _backup_of(cluster: Any, snapshots: list, status: str, region: str, account: str) -> dict[str, Any]:
    times = sorted(s.created for s in snapshots if getattr(s, "created", None)) or [cluster.created]
    return {
        "DBClusterIdentifier": cluster.db_cluster_identifier,
        "DbClusterResourceId": cluster.db_cluster_resource_id,
        "DBClusterAutomatedBackupsArn": f"arn:aws:rds:{region}:{account}:cluster-auto-backup:{cluster.db_cluster_resource_id}",
        "Engine": cluster.engine, "EngineVersion": cluster.engine_version, "Region": region,
        "Status": status, "StorageEncrypted": bool(cluster.storage_encrypted), "KmsKeyId": cluster.kms_key_id,
        "BackupRetentionPeriod": cluster.backup_retention_period, "AllocatedStorage": cluster.allocated_storage,
        "ClusterCreateTime": cluster.created,
        "RestoreWindow": {"EarliestTime": times[0], "LatestTime": datetime.datetime.now(datetime.timezone.utc)
                          if status == "retained" else times[-1]},
    }


def _describe_response(self: RDSResponse) -> ActionResult:
    backend = self.backend
    wanted_id = self.params.get("DBClusterIdentifier")
    wanted_rid = self.params.get("DbClusterResourceId")
    backups = list(_retained(backend).values())
    for cluster in backend.clusters.values():
        snaps = _automated_snapshots_of(backend, cluster.db_cluster_resource_id)
        if snaps:
            backups.append(_backup_of(cluster, snaps, "active", backend.region_name, backend.account_id))
    backups = [b for b in backups if (not wanted_id or b["DBClusterIdentifier"] == wanted_id)
               and (not wanted_rid or b["DbClusterResourceId"] == wanted_rid)]
    return ActionResult({"DBClusterAutomatedBackups": backups})


def _delete_response(self: RDSResponse) -> ActionResult:
    rid = self.params.get("DbClusterResourceId")
    backup = _retained(self.backend).pop(rid, None)
    if backup is None:
        raise DBClusterAutomatedBackupNotFoundFault(rid)
    for snap in _automated_snapshots_of(self.backend, rid):
        self.backend.cluster_snapshots.pop(snap.db_cluster_snapshot_identifier, None)
    backup["Status"] = "deleting"
    return ActionResult({"DBClusterAutomatedBackup": backup})


def apply() -> None:
    @wrap(DBClusterSnapshot, "__init__")
    def snapshot_init(original, self, backend, cluster, *args, **kwargs):
        original(self, backend, cluster, *args, **kwargs)
        self.db_cluster_resource_id = getattr(cluster, "db_cluster_resource_id", None)

    @wrap(RDSResponse, "delete_db_cluster")
    def delete_db_cluster(original, self):
        backend = self.backend
        cluster = backend.clusters.get((self.params.get("DBClusterIdentifier") or "").lower())
        keep = str(self.params.get("DeleteAutomatedBackups", "true")).lower() == "false"
        result = original(self)
        if cluster is not None:
            snaps = _automated_snapshots_of(backend, cluster.db_cluster_resource_id)
            if keep:
                _retained(backend)[cluster.db_cluster_resource_id] = _backup_of(
                    cluster, snaps, "retained", backend.region_name, backend.account_id)
            else:
                for snap in snaps:
                    backend.cluster_snapshots.pop(snap.db_cluster_snapshot_identifier, None)
        return result

    add(RDSResponse, "describe_db_cluster_automated_backups", _describe_response)
    add(RDSResponse, "delete_db_cluster_automated_backup", _delete_response)
