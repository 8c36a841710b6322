"""What a revoked (disabled, pending deletion) KMS key does to the RDS databases and EC2 instances it protects.

AWS KMS developer guide, "How unusable KMS keys affect data keys"
(https://docs.aws.amazon.com/kms/latest/developerguide/unusable-kms-keys.html): "When a KMS key becomes unusable, the
effect is almost immediate [...] all requests to use the KMS key in cryptographic operations fail. However, the effect
on data keys encrypted by the KMS key, and on data encrypted by the data key, is delayed until the KMS key is used
again". Its EBS example: the data key stays in the Nitro hardware while the volume is attached; "when the encrypted
EBS volume is detached from the EC2 instance, Amazon EBS removes the data key [...] The next time the encrypted EBS
volume is attached to an EC2 instance, the attachment fails".

- **EC2 StartInstances**: a stopped instance has no attached data keys; starting it needs the key of each encrypted
  volume, so with an unusable key it does not start: it stays ``stopped`` with the state reason
  ``Client.InternalError: Client error on launch`` (EC2 reports this reason for a launch whose volume key is
  unusable, re:Post knowledge-center/kms-launch-ec2-instance). AWS passes through ``pending`` first; here the end
  state is there at once. Plain moto starts it.
- **RDS / Aurora**: "An Amazon RDS instance or Amazon Aurora cluster enters an inaccessible-encryption-credentials-
  recoverable state when it can't access the AWS KMS encryption key [...] If [it] isn't recovered in seven days, then
  [it] transitions to the terminal state inaccessible-encryption-credentials" and is recovered by enabling the key and
  starting it (StartDBCluster / StartDBInstance) (re:Post knowledge-center/rds-aurora-inaccessible-state; Aurora user
  guide, Overview.Encryption.Keys: "When Aurora encounters a DB cluster encrypted by a key that Aurora doesn't have
  access to, Aurora puts the DB cluster into a terminal state"). RDS notices within minutes in AWS; here a describe
  after the key became unusable already shows ``inaccessible-encryption-credentials-recoverable`` (stricter: sooner,
  never later). Starting it with the key still unusable fails (KMSKeyNotAccessibleFault); with the key usable again
  it becomes ``available``. The seven-day terminal state is not reached (no time passes here). Plain moto keeps the
  database ``available``.

S3 reads (KMS.DisabledException) are in extensions/s3.py, a volume from a snapshot under an unusable key in ec2.py.
"""
from __future__ import annotations

from typing import Any

from moto.ec2.models.instances import Instance, StateReason
from moto.rds.exceptions import KMSKeyNotAccessibleFault
from moto.rds.models import DBCluster, RDSBackend

from ._patching import wrap
from .kms_keys import key_problem

RECOVERABLE = "inaccessible-encryption-credentials-recoverable"
LAUNCH_ERROR_CODE = "Client.InternalError"
LAUNCH_ERROR_MESSAGE = f"{LAUNCH_ERROR_CODE}: Client error on launch"


def _unusable(account_id: str, region: str, key_ref: str | None) -> bool:
    return bool(key_ref) and key_problem(account_id, region, key_ref) is not None


def _storage_key(resource: Any) -> str | None:
    return resource.kms_key_id if getattr(resource, "storage_encrypted", False) else None


def _mark_inaccessible(backend: RDSBackend, resources: list) -> None:
    for resource in resources:
        cluster = backend.clusters.get(getattr(resource, "db_cluster_identifier", None) or "") if not isinstance(resource, DBCluster) else resource
        key = _storage_key(cluster) if cluster is not None else _storage_key(resource)
        if resource.status == "available" and _unusable(backend.account_id, backend.region_name, key):
            resource.status = RECOVERABLE


def apply() -> None:
    @wrap(Instance, "start")
    def start(original, self):
        previous = original(self)
        backend = self.ec2_backend
        for _device, mapping in self.get_block_device_mapping:
            volume = backend.volumes.get(mapping.volume_id)
            if volume is not None and volume.encrypted and _unusable(backend.account_id, backend.region_name, volume.kms_key_id):
                self._state.name, self._state.code = "stopped", 80  # pylint: disable=protected-access
                self._reason = LAUNCH_ERROR_MESSAGE  # pylint: disable=protected-access
                self.state_reason = StateReason(LAUNCH_ERROR_MESSAGE, LAUNCH_ERROR_CODE)
                break
        return previous

    @wrap(RDSBackend, "describe_db_clusters")
    def describe_db_clusters(original, self, *args, **kwargs):
        clusters = original(self, *args, **kwargs)
        _mark_inaccessible(self, clusters)
        return clusters

    @wrap(RDSBackend, "describe_db_instances")
    def describe_db_instances(original, self, *args, **kwargs):
        databases = original(self, *args, **kwargs)
        _mark_inaccessible(self, databases)
        return databases

    @wrap(RDSBackend, "start_db_cluster")
    def start_db_cluster(original, self, cluster_identifier, *args, **kwargs):
        # By identifier: a cluster renamed by a Blue/Green switchover stays under its first key in moto's dict.
        cluster = next((c for c in self.clusters.values() if c.db_cluster_identifier == cluster_identifier), None)
        if cluster is not None and cluster.status == RECOVERABLE:
            if _unusable(self.account_id, self.region_name, _storage_key(cluster)):
                raise KMSKeyNotAccessibleFault(cluster.kms_key_id)
            cluster.status = "available"
            for member in self.databases.values():
                if getattr(member, "db_cluster_identifier", None) == cluster.db_cluster_identifier and member.status == RECOVERABLE:
                    member.status = "available"
            return cluster
        return original(self, cluster_identifier, *args, **kwargs)

    @wrap(RDSBackend, "start_db_instance")
    def start_db_instance(original, self, db_instance_identifier, *args, **kwargs):
        database = next((d for d in self.databases.values() if d.db_instance_identifier == db_instance_identifier), None)
        if database is not None and database.status == RECOVERABLE:
            if _unusable(self.account_id, self.region_name, _storage_key(database)):
                raise KMSKeyNotAccessibleFault(database.kms_key_id)
            database.status = "available"
            return database
        return original(self, db_instance_identifier, *args, **kwargs)
