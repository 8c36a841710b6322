"""RDS/Aurora: every KmsKeyId is checked (exists, Enabled, this Region) and stored as the key ARN.

Plain moto checks keys only for CopyDBSnapshot/CopyDBClusterSnapshot (existence only) and accepts any string
for CreateDBCluster, CreateDBInstance and the restores. AWS answers KMSKeyNotAccessibleFault (HTTP 400) for a key
that is missing or not enabled, and stores the ARN whatever form was sent:
https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBCluster.html (Errors: KMSKeyNotAccessibleFault;
"To use a KMS key in a different Amazon Web Services account, specify the key ARN or alias ARN").
Encrypted resources without KmsKeyId get the account's aws/rds key, as in AWS.
"""
from __future__ import annotations

from typing import Any

from moto.rds.exceptions import KMSKeyNotAccessibleFault
from moto.rds.models import RDSBackend

from ._patching import replace, wrap
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
