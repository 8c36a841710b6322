"""KMS imported key material (BYOK "external key"): GetParametersForImport, ImportKeyMaterial, DeleteImportedKeyMaterial.

Plain moto answers these with HTTP 500 and creates ``Origin=EXTERNAL`` keys Enabled and usable with no material.
Here an EXTERNAL key starts in PendingImport, the wrapped material is really unwrapped with the RSA private key
behind the import token, and the key encrypts with exactly that material, so re-importing the same material
restores access to old ciphertexts (as in AWS).
https://docs.aws.amazon.com/kms/latest/developerguide/importing-keys.html
https://docs.aws.amazon.com/kms/latest/APIReference/API_ImportKeyMaterial.html
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from moto.kms.exceptions import ValidationException
from moto.kms.models import Key, KmsBackend
from moto.kms.responses import KmsResponse

from ._patching import add, wrap
from .kms import KmsError
from .kms_keys import expire_imported_material

IMPORT_PARAMETERS_LIFETIME = timedelta(hours=24)
MAX_VALID_TO = timedelta(days=365)
SYMMETRIC_MATERIAL_BYTES = 32
WRAPPING_KEY_BITS = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
OAEP_HASHES = {"RSAES_OAEP_SHA_1": hashes.SHA1, "RSAES_OAEP_SHA_256": hashes.SHA256}
ALL_WRAPPING_ALGORITHMS = ("RSAES_PKCS1_V1_5", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256", "SM2PKE")
ALL_WRAPPING_KEY_SPECS = ("RSA_2048", "RSA_3072", "RSA_4096", "SM2")


@dataclass
class ImportParameters:
    private_key: rsa.RSAPrivateKey
    wrapping_algorithm: str
    valid_until: datetime


def _now() -> datetime:
    return datetime.now(UTC)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _timestamp(value: Any) -> datetime:
    """A JSON-protocol timestamp: epoch seconds (what botocore sends) or ISO 8601."""
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _enum_error(value: Any, field: str, allowed: tuple[str, ...]) -> ValidationException:
    return ValidationException(
        f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: "
        f"Member must satisfy enum value set: [{', '.join(allowed)}]"
    )


def _importable_key(response: KmsResponse) -> Key:
    """The caller's own EXTERNAL key named by KeyId, in a state that accepts import operations."""
    key_id = response._get_param("KeyId")  # pylint: disable=protected-access
    response._validate_cmk_id(key_id)  # moto's NotFoundException  pylint: disable=protected-access
    key = response.kms_backend.keys[response.kms_backend.get_key_id(key_id)]
    expire_imported_material(key)
    if key.origin != "EXTERNAL":
        # Key-state table footnote [9] / [6]
        raise KmsError("UnsupportedOperationException", f"{key.arn} origin is {key.origin} which is not valid for this operation.")
    if key.key_state == "PendingDeletion":
        raise KmsError("KMSInvalidStateException", f"{key.arn} is pending deletion.")
    if key.key_spec != "SYMMETRIC_DEFAULT":
        raise KmsError("UnsupportedOperationException", f"{key.arn}: the local AWS only emulates imported material for SYMMETRIC_DEFAULT keys.")
    return key


def _material_id(material: bytes) -> str:
    # A stable id per material, so re-importing the same material reports the same KeyMaterialId.
    return hashlib.sha256(material).hexdigest()


def get_parameters_for_import(self: KmsResponse) -> str:
    key = _importable_key(self)
    algorithm = self._get_param("WrappingAlgorithm")  # pylint: disable=protected-access
    key_spec = self._get_param("WrappingKeySpec")  # pylint: disable=protected-access
    if algorithm not in ALL_WRAPPING_ALGORITHMS:
        raise _enum_error(algorithm, "wrappingAlgorithm", ALL_WRAPPING_ALGORITHMS)
    if key_spec not in ALL_WRAPPING_KEY_SPECS:
        raise _enum_error(key_spec, "wrappingKeySpec", ALL_WRAPPING_KEY_SPECS)
    if algorithm not in OAEP_HASHES or key_spec not in WRAPPING_KEY_BITS:
        raise KmsError("UnsupportedOperationException", f"the local AWS emulates only RSAES_OAEP_SHA_1/256 with RSA wrapping keys, not {algorithm}/{key_spec}")
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=WRAPPING_KEY_BITS[key_spec])
    token = os.urandom(64)
    params = ImportParameters(private_key, algorithm, _now() + IMPORT_PARAMETERS_LIFETIME)
    key.byok_import_parameters = {**getattr(key, "byok_import_parameters", {}), token: params}
    public_der = private_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return json.dumps({
        "KeyId": key.arn,
        "ImportToken": _b64(token),
        "PublicKey": _b64(public_der),
        "ParametersValidTo": params.valid_until.timestamp(),
    })


def _expiration(model: str | None, valid_to_param: Any) -> tuple[str, datetime | None]:
    model = model or "KEY_MATERIAL_EXPIRES"  # the documented default
    if model not in ("KEY_MATERIAL_EXPIRES", "KEY_MATERIAL_DOES_NOT_EXPIRE"):
        raise _enum_error(model, "expirationModel", ("KEY_MATERIAL_EXPIRES", "KEY_MATERIAL_DOES_NOT_EXPIRE"))
    if model == "KEY_MATERIAL_DOES_NOT_EXPIRE":
        if valid_to_param is not None:
            raise ValidationException("ValidTo must not be set when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE")
        return model, None
    if valid_to_param is None:
        raise ValidationException("A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES")
    valid_to = _timestamp(valid_to_param)
    if not _now() < valid_to <= _now() + MAX_VALID_TO:
        raise ValidationException("ValidTo must be a future date and time no more than 365 days from now")
    return model, valid_to


def _unwrap(key: Key, token: bytes, wrapped: bytes) -> bytes:
    params = getattr(key, "byok_import_parameters", {}).get(token)
    if params is None:
        raise KmsError("InvalidImportTokenException", "The import token is invalid or is associated with a different KMS key.")
    if _now() >= params.valid_until:
        raise KmsError("ExpiredImportTokenException", "The import token is expired. Use GetParametersForImport to get a new import token and public key.")
    algorithm = OAEP_HASHES[params.wrapping_algorithm]
    try:
        return params.private_key.decrypt(wrapped, padding.OAEP(mgf=padding.MGF1(algorithm()), algorithm=algorithm(), label=None))
    except ValueError as exc:
        raise KmsError("InvalidCiphertextException", "KMS could not decrypt the wrapped key material.") from exc


def import_key_material(self: KmsResponse) -> str:
    key = _importable_key(self)
    model, valid_to = _expiration(self._get_param("ExpirationModel"), self._get_param("ValidTo"))  # pylint: disable=protected-access
    token = base64.b64decode(self._get_param("ImportToken") or "")  # pylint: disable=protected-access
    material = _unwrap(key, token, base64.b64decode(self._get_param("EncryptedKeyMaterial") or ""))  # pylint: disable=protected-access
    if len(material) != SYMMETRIC_MATERIAL_BYTES:
        raise KmsError("IncorrectKeyMaterialException", f"SYMMETRIC_DEFAULT key material must be {SYMMETRIC_MATERIAL_BYTES} bytes, not {len(material)}.")
    # Only the material first imported may ever be imported again into this key.
    previous = getattr(key, "byok_material_id", None)
    if previous is not None and previous != _material_id(material):
        raise KmsError("IncorrectKeyMaterialException", "The key material is not the same key material that was previously imported into this KMS key.")
    key.key_material = material
    key.byok_material_id = _material_id(material)
    key.byok_expiration_model = model
    key.byok_material_valid_to = valid_to
    if key.key_state == "PendingImport":
        key.key_state, key.enabled = "Enabled", True
    return json.dumps({"KeyId": key.arn, "KeyMaterialId": key.byok_material_id})


def delete_imported_key_material(self: KmsResponse) -> str:
    key = _importable_key(self)
    # On a key already PendingImport this has no effect (key-state table).
    key.key_material = None
    key.byok_expiration_model = None
    key.byok_material_valid_to = None
    key.key_state, key.enabled = "PendingImport", False
    return json.dumps({"KeyId": key.arn, "KeyMaterialId": getattr(key, "byok_material_id", None)})


def apply() -> None:
    add(KmsResponse, "get_parameters_for_import", get_parameters_for_import)
    add(KmsResponse, "import_key_material", import_key_material)
    add(KmsResponse, "delete_imported_key_material", delete_imported_key_material)

    @wrap(KmsBackend, "create_key")
    def create_key(original, self, *args, **kwargs):
        # Keys for imported material are created without material, in PendingImport, Enabled: false.
        key = original(self, *args, **kwargs)
        if key.origin == "EXTERNAL":
            key.key_material = None
            key.key_state, key.enabled = "PendingImport", False
        return key

    @wrap(Key, "to_dict")
    def to_dict(original, self):
        expire_imported_material(self)
        result = original(self)
        metadata = result["KeyMetadata"]
        if getattr(self, "byok_expiration_model", None):
            metadata["ExpirationModel"] = self.byok_expiration_model
            metadata["CurrentKeyMaterialId"] = self.byok_material_id
        if getattr(self, "byok_material_valid_to", None):
            metadata["ValidTo"] = self.byok_material_valid_to.timestamp()
        return result
