"""KMS: cross-account use by ARN, key-state enforcement, grants on another account's key, fixed key ids.

Plain moto looks every key up in the caller's account and never checks key states, so a provider account
cannot use a customer key and a disabled key still encrypts (docs/local-aws.md lists the details).
"""
from __future__ import annotations

import inspect
import re
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.kms import utils as kms_utils
from moto.kms.exceptions import (
    AccessDeniedException,
    AlreadyExistsException,
    InvalidCiphertextException,
    NotFoundException,
    ValidationException,
)
from moto.kms.models import Key, KmsBackend, kms_backends
from moto.kms.responses import KmsResponse
from moto.utilities.id_generator import TAG_KEY_CUSTOM_ID
from moto.utilities.utils import get_partition

from ._patching import replace, require, wrap
from .kms_keys import iter_region_backends, parse_kms_arn, unusable_reason

# Operations AWS allows on a key in another account (by key ARN or alias ARN); everything else, e.g.
# EnableKey or PutKeyPolicy, only works in the key's own account.
# https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html
CROSS_ACCOUNT_ACTIONS = frozenset({
    "CreateGrant", "Decrypt", "DeriveSharedSecret", "DescribeKey", "Encrypt", "GenerateDataKey",
    "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "GenerateDataKeyWithoutPlaintext",
    "GenerateMac", "GetKeyRotationStatus", "GetPublicKey", "ListGrants", "ReEncrypt", "RetireGrant",
    "RevokeGrant", "Sign", "Verify", "VerifyMac",
})
# The parameter naming the key that decides which account serves the call.
KEY_PARAMETER = {"ReEncrypt": "DestinationKeyId"}

KEY_ID_FORMAT = re.compile(r"^(mrk-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
CIPHERTEXT_KEY_ID_LEN = require(kms_utils, "KEY_ID_LEN")
UNKNOWN_CIPHERTEXT_KEY = ("The ciphertext refers to a customer master key that does not exist, does not exist in this region, "
                          "or you are not allowed to access.")  # moto's (and KMS's) wording


class KmsError(JsonRESTError):
    """A KMS error response: HTTP 400, ``{"__type": code, "message": ...}``."""

    code = 400

    def __init__(self, error_type: str, message: str):
        super().__init__(error_type, message)


def raise_if_unusable(key: Key | None) -> None:
    if key is not None and (reason := unusable_reason(key)):
        raise KmsError(*reason)


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str) -> Any:
    return kwargs[name] if name in kwargs else (args[index] if len(args) > index else None)


def _own_key(backend: KmsBackend, ref: Any) -> Key | None:
    """The key ``ref`` names in this backend, or None (moto's own lookups then raise its NotFound)."""
    if not isinstance(ref, str):
        return None
    arn = parse_kms_arn(ref)
    if arn and arn.kind == "key":
        return backend.keys.get(arn.name)
    if arn or ref.startswith("alias/"):
        key_id = backend.get_key_id_from_alias("alias/" + arn.name if arn else ref)
        return backend.keys.get(key_id) if key_id else None
    return backend.keys.get(ref)


# --- cross-account routing -------------------------------------------------------------------------------

def _routed_kms_backend(self: KmsResponse) -> KmsBackend:
    """Serve a call naming another account's key ARN from that account's backend, as AWS does."""
    caller = kms_backends[self.current_account][self.region]
    action = self._get_action()  # pylint: disable=protected-access
    if action not in CROSS_ACCOUNT_ACTIONS:
        return caller
    arn = parse_kms_arn(self._get_param(KEY_PARAMETER.get(action, "KeyId")))  # pylint: disable=protected-access
    if arn is None:
        return caller
    if arn.region != self.region:
        raise NotFoundException(f"Invalid arn {arn.region}")
    return kms_backends[arn.account][self.region]


def _ciphertext_key(backend: KmsBackend, ciphertext_blob: bytes) -> tuple[str, Key]:
    """The key a ciphertext names: in the caller's account first, then any account in the region.

    AWS ciphertexts carry the full key ARN, so Decrypt without KeyId works cross-account; moto's carry only
    the key id. Key ids are UUIDs, unique across accounts. Moto also cuts multi-Region key ids ("mrk-" + 36)
    to 36 characters in the blob, so a prefix match finds those.
    """
    try:
        blob_key_id = kms_utils._deserialize_ciphertext_blob(ciphertext_blob).key_id  # pylint: disable=protected-access
    except Exception as exc:  # any malformed blob is InvalidCiphertextException, as in moto
        raise InvalidCiphertextException() from exc
    for candidate in [backend] + [b for b in iter_region_backends(backend.region_name) if b is not backend]:
        key = candidate.keys.get(blob_key_id)
        if key is None and len(blob_key_id) == CIPHERTEXT_KEY_ID_LEN:
            key = next((k for k_id, k in candidate.keys.items() if len(k_id) > CIPHERTEXT_KEY_ID_LEN and k_id.startswith(blob_key_id)), None)
        if key is not None:
            return blob_key_id, key
    raise AccessDeniedException(UNKNOWN_CIPHERTEXT_KEY)


def _decrypt(self: KmsBackend, ciphertext_blob: bytes, encryption_context: dict[str, str], key_id: str | None = None) -> tuple[bytes, str]:
    blob_key_id, key = _ciphertext_key(self, ciphertext_blob)
    raise_if_unusable(key)
    if key_id is not None and self.any_id_to_key_id(key_id) != key.id:
        raise AccessDeniedException(UNKNOWN_CIPHERTEXT_KEY)
    plaintext = kms_utils.decrypt(master_keys={blob_key_id: key}, ciphertext_blob=ciphertext_blob, encryption_context=encryption_context)[0]
    return plaintext, key.arn


# --- key ids chosen by the seeder -------------------------------------------------------------------------

def _split_custom_id(tags: list[dict[str, str]] | None) -> tuple[str | None, list[dict[str, str]] | None]:
    custom = [t for t in tags or [] if t.get("TagKey") == TAG_KEY_CUSTOM_ID]
    if not custom:
        return None, tags
    return custom[0].get("TagValue"), [t for t in tags or [] if t.get("TagKey") != TAG_KEY_CUSTOM_ID]


def _give_key_id(backend: KmsBackend, key: Key, key_id: str) -> None:
    backend.keys.pop(key.id)
    old_arn, key.id = key.arn, key_id
    key.arn = f"arn:{get_partition(backend.region_name)}:kms:{backend.region_name}:{backend.account_id}:key/{key_id}"
    if key.multi_region and key.multi_region_configuration["PrimaryKey"]["Arn"] == old_arn:
        key.multi_region_configuration["PrimaryKey"]["Arn"] = key.arn
    backend.keys[key_id] = key


def _check_key_state_first(method: str, key_position: int) -> None:
    """Make KmsBackend.<method> refuse an unusable key (its key argument is ``key_id``)."""
    @wrap(KmsBackend, method)
    def checked(original, self, *args, **kwargs):
        raise_if_unusable(_own_key(self, _arg(args, kwargs, key_position, "key_id")))
        return original(self, *args, **kwargs)


def _refuse_state_change_when_pending(method: str) -> None:
    @wrap(KmsBackend, method)
    def state_change(original, self, key_id):
        key = _own_key(self, key_id)
        if key is not None and key.key_state in ("PendingImport", "PendingDeletion"):
            raise KmsError(*unusable_reason(key))
        return original(self, key.id if key is not None else key_id)


def apply() -> None:
    require(kms_utils, "_deserialize_ciphertext_blob")
    require(kms_utils, "decrypt")
    replace(KmsResponse, "kms_backend", property(_routed_kms_backend))
    replace(KmsBackend, "decrypt", _decrypt)

    create_key_signature = inspect.signature(KmsBackend.create_key)

    @wrap(KmsBackend, "create_key")
    def create_key(original, self, *args, **kwargs):
        # A "_custom_id_" tag picks the key id (moto's convention for other resources) so seeders can name fixed
        # key ARNs; the tag itself is not kept on the key.
        call = create_key_signature.bind(self, *args, **kwargs)
        custom_id, tags = _split_custom_id(call.arguments.get("tags"))
        if custom_id is None:
            return original(*call.args, **call.kwargs)
        multi_region = bool(call.arguments.get("multi_region"))
        if not KEY_ID_FORMAT.match(custom_id) or multi_region != custom_id.startswith("mrk-"):
            raise ValidationException(f"{TAG_KEY_CUSTOM_ID} '{custom_id}' is not a valid key id for this key (UUID; 'mrk-' prefix only for multi-Region keys)")
        if custom_id in self.keys:
            raise AlreadyExistsException(f"A key with the id {custom_id} already exists in {self.account_id}/{self.region_name}")
        call.arguments["tags"] = None
        key = original(*call.args, **call.kwargs)
        _give_key_id(self, key, custom_id)
        if tags:
            self.tagger.tag_resource(key.id, tags)
        return key

    # Key states gate every cryptographic operation ([1], [3], [5] in the key-state table). Decrypt is checked
    # in _decrypt; ReEncrypt and GenerateDataKey* go through encrypt/decrypt.
    @wrap(KmsBackend, "encrypt")
    def encrypt(original, self, *args, **kwargs):
        raise_if_unusable(_own_key(self, _arg(args, kwargs, 0, "key_id")))
        return original(self, *args, **kwargs)

    for name, key_position in (("sign", 0), ("verify", 0), ("generate_mac", 1), ("create_grant", 0)):
        _check_key_state_first(name, key_position)

    # EnableKey/DisableKey are refused on keys pending import ([5]) or deletion ([3]); moto flips them anyway.
    _refuse_state_change_when_pending("enable_key")
    _refuse_state_change_when_pending("disable_key")

    @wrap(KmsBackend, "cancel_key_deletion")
    def cancel_key_deletion(original, self, key_id):
        # A key without key material returns to PendingImport, not Disabled.
        key = _own_key(self, key_id)
        original(self, key.id if key is not None else key_id)
        if key is not None and key.origin == "EXTERNAL" and key.key_material is None:
            key.key_state = "PendingImport"

    @wrap(Key, "add_grant")
    def add_grant(original, self, *args, **kwargs):
        # ListGrants reports the key ARN, not the bare id.
        grant = original(self, *args, **kwargs)
        grant.key_id = self.arn
        return grant

    @wrap(KmsBackend, "retire_grant")
    def retire_grant(original, self, key_id, grant_id, grant_token):
        # A grant token identifies the grant whatever account owns the key (the grantee often does not).
        if not grant_token:
            return original(self, key_id, grant_id, grant_token)
        for backend in iter_region_backends(self.region_name):
            for key in backend.keys.values():
                key.retire_grant_by_token(grant_token)
        return None
