"""Fidelity extensions to moto for BYOK tests; ``apply()`` installs them all (idempotent).

One module per area; each patch is small and its comment names the AWS behaviour it reproduces.
"""
from __future__ import annotations

import threading

from . import (autoscaling, ec2, fleet_scale, iam_auth, iam_simulate, kms, kms_import, rds, rds_backups, revocation,
               s3, s3_kms_access, s3_object_writes, s3_update_encryption, s3_versions,
               s3control_jobs)
from ._patching import MotoInternalsChanged

__all__ = ["MotoInternalsChanged", "apply"]

_APPLIED = threading.Event()
_LOCK = threading.Lock()


def apply() -> None:
    """Patch moto in this process. Raises MotoInternalsChanged if moto no longer has what we patch."""
    with _LOCK:
        if _APPLIED.is_set():
            return
        # Order matters: kms_import wraps KmsBackend.create_key on top of kms's wrapper.
        # s3_kms_access wraps S3's object calls outside s3's and s3_object_writes' own wrappers (its check comes first).
        for module in (kms, kms_import, s3, s3_versions, s3_object_writes, s3_kms_access, s3_update_encryption, s3control_jobs,
                       ec2, rds, rds_backups, revocation, iam_auth, iam_simulate, autoscaling, fleet_scale):
            module.apply()
        _APPLIED.set()
