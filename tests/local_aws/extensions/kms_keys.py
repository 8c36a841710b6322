"""Key lookup shared by every extension: which account's key a reference names, and whether it is usable.

AWS rules reproduced here (https://docs.aws.amazon.com/kms/latest/developerguide/find-cmk-id-arn.html and
the "KeyId" parameter docs of each KMS API):
- a key ARN or alias ARN names its own account, so another account's key can be used by full ARN;
- a bare key id, or an alias name, always resolves in the caller's account;
- KMS is regional: an ARN naming another region is refused ("Invalid arn <region>").
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moto.kms.models import Key, KmsBackend, kms_backends

KMS_ARN = re.compile(r"^arn:aws[\w-]*:kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(?P<kind>key|alias)/(?P<name>.+)$")


@dataclass(frozen=True)
class KmsArn:
    region: str
    account: str
    kind: str  # "key" or "alias"
    name: str  # key id, or alias name without the "alias/" prefix


def parse_kms_arn(ref: Any) -> KmsArn | None:
    match = KMS_ARN.match(ref) if isinstance(ref, str) else None
    return KmsArn(**match.groupdict()) if match else None


def backend_for(caller_account: str, region: str, ref: Any) -> KmsBackend:
    """The KMS backend that owns ``ref``: the ARN's account, else the caller's (region is the request's)."""
    arn = parse_kms_arn(ref)
    return kms_backends[arn.account if arn else caller_account][region]


def find_key(caller_account: str, region: str, ref: str | None) -> Key | None:
    """Resolve a key id, key ARN, alias name or alias ARN to the Key, or None if AWS would not find it."""
    if not ref:
        return None
    arn = parse_kms_arn(ref)
    if arn and arn.region != region:
        return None
    backend = backend_for(caller_account, region, ref)
    if arn:
        key_id = arn.name if arn.kind == "key" else backend.get_key_id_from_alias(f"alias/{arn.name}")
    elif ref.startswith("alias/"):
        key_id = backend.get_key_id_from_alias(ref)
    else:
        key_id = ref
    return backend.keys.get(key_id) if key_id else None


def not_found_message(caller_account: str, region: str, ref: str) -> str:
    """KMS's wording: "Invalid arn <region>" for another region's ARN, else the key or alias as an ARN."""
    arn = parse_kms_arn(ref)
    if arn and arn.region != region:
        return f"Invalid arn {arn.region}"
    if arn is None:
        kind = "" if ref.startswith("alias/") else "key/"
        ref = f"arn:aws:kms:{region}:{caller_account}:{kind}{ref}"
    if ":alias/" in ref:
        return f"Alias {ref} is not found."
    return f"Key '{ref}' does not exist"


def expire_imported_material(key: Key) -> None:
    """Imported key material past its ValidTo is deleted by KMS and the key goes back to PendingImport.

    https://docs.aws.amazon.com/kms/latest/developerguide/importing-keys-set-expiration.html
    """
    valid_to = getattr(key, "byok_material_valid_to", None)
    if valid_to is not None and datetime.now(UTC) >= valid_to:
        key.key_material = None
        key.byok_material_valid_to = None
        key.byok_expiration_model = None
        key.key_state = "PendingImport"
        key.enabled = False


def unusable_reason(key: Key) -> tuple[str, str] | None:
    """(error code, message) that KMS returns for a cryptographic operation on this key, or None if usable.

    Messages as worded in the key-state table, https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html
    (footnotes [1], [3], [5]).
    """
    expire_imported_material(key)
    state = key.key_state
    if state == "Enabled":
        return None
    if state == "Disabled":
        return "DisabledException", f"{key.arn} is disabled."
    if state == "PendingDeletion":
        return "KMSInvalidStateException", f"{key.arn} is pending deletion."
    if state == "PendingImport":
        return "KMSInvalidStateException", f"{key.arn} is pending import."
    return "KMSInvalidStateException", f"{key.arn} is {state}."


def key_problem(caller_account: str, region: str, ref: str) -> tuple[str, str] | None:
    """Why ``ref`` cannot be used to encrypt in ``region`` (code, message), or None when it can.

    Codes are KMS's own (NotFoundException, DisabledException, KMSInvalidStateException); each service
    maps them to what it reports.
    """
    key = find_key(caller_account, region, ref)
    if key is None:
        return "NotFoundException", not_found_message(caller_account, region, ref)
    return unusable_reason(key)


def iter_region_backends(region: str) -> list[KmsBackend]:
    """Every account's KMS backend that already exists in ``region`` (never creates one)."""
    return [backend for account in list(kms_backends.values()) if (backend := dict.get(account, region)) is not None]
