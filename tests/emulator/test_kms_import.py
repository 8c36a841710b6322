"""Imported key material: EXTERNAL keys start PendingImport; GetParametersForImport / ImportKeyMaterial /
DeleteImportedKeyMaterial; expiry; only the same material can be imported again.

https://docs.aws.amazon.com/kms/latest/developerguide/importing-keys.html
https://docs.aws.amazon.com/kms/latest/APIReference/API_GetParametersForImport.html
https://docs.aws.amazon.com/kms/latest/APIReference/API_ImportKeyMaterial.html
https://docs.aws.amazon.com/kms/latest/APIReference/API_DeleteImportedKeyMaterial.html
"""
from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from .support import CUSTOMER, against_both, error_of, new_key

IMPORT_MISSING = "GetParametersForImport/ImportKeyMaterial/DeleteImportedKeyMaterial answer HTTP 500"
OAEP_HASH = {"RSAES_OAEP_SHA_1": hashes.SHA1, "RSAES_OAEP_SHA_256": hashes.SHA256}


def wrap_for_import(kms, key_id, material, algorithm="RSAES_OAEP_SHA_256", key_spec="RSA_2048"):
    """What a customer does offline: fetch the wrapping key and token, RSA-OAEP-wrap the material."""
    params = kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec=key_spec)
    return params, wrap_with(params, material, algorithm)


def wrap_with(params, material, algorithm="RSAES_OAEP_SHA_256"):
    digest = OAEP_HASH[algorithm]
    public_key = serialization.load_der_public_key(params["PublicKey"])
    return public_key.encrypt(material, padding.OAEP(mgf=padding.MGF1(digest()), algorithm=digest(), label=None))


def import_material(kms, key_id, material, **expiry):
    params, wrapped = wrap_for_import(kms, key_id, material)
    expiry = expiry or {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}
    return kms.import_key_material(KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped, **expiry)


def state_of(kms, key_id):
    metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    return metadata["KeyState"], metadata["Enabled"]


@against_both("EXTERNAL keys are created Enabled and encrypt with no key material", raises=AssertionError)
def test_external_key_starts_pending_import(aws):
    kms = aws.client("kms", account=CUSTOMER)
    key = new_key(kms, Origin="EXTERNAL")
    assert (key["KeyState"], key["Enabled"]) == ("PendingImport", False)
    with pytest.raises(ClientError) as excinfo:
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    assert error_of(excinfo)[0::2] == ("KMSInvalidStateException", f"{key['Arn']} is pending import.")


@pytest.mark.parametrize("algorithm, key_spec, bits", [
    ("RSAES_OAEP_SHA_256", "RSA_2048", 2048),
    ("RSAES_OAEP_SHA_1", "RSA_3072", 3072),
    ("RSAES_OAEP_SHA_256", "RSA_4096", 4096),
])
@against_both(IMPORT_MISSING, raises=ClientError)
def test_import_enables_key(aws, algorithm, key_spec, bits):
    kms = aws.client("kms", account=CUSTOMER)
    key = new_key(kms, Origin="EXTERNAL")
    material = os.urandom(32)
    params, wrapped = wrap_for_import(kms, key["KeyId"], material, algorithm, key_spec)
    assert params["KeyId"] == key["Arn"]
    assert serialization.load_der_public_key(params["PublicKey"]).key_size == bits
    valid_for = params["ParametersValidTo"] - datetime.now(UTC)
    assert timedelta(hours=23, minutes=59) < valid_for <= timedelta(hours=24)

    kms.import_key_material(KeyId=key["KeyId"], ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
                            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    metadata = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert (metadata["KeyState"], metadata["Enabled"], metadata["ExpirationModel"]) == ("Enabled", True, "KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert "ValidTo" not in metadata
    ciphertext = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"secret")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=ciphertext)["Plaintext"] == b"secret"


@against_both(IMPORT_MISSING, raises=ClientError)
def test_reimporting_same_material_restores_old_ciphertexts(aws):
    """Only the same material can be imported again, and it decrypts what was encrypted before deletion."""
    kms = aws.client("kms", account=CUSTOMER)
    key = new_key(kms, Origin="EXTERNAL")
    material = os.urandom(32)
    import_material(kms, key["KeyId"], material)
    ciphertext = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"before")["CiphertextBlob"]

    kms.delete_imported_key_material(KeyId=key["KeyId"])
    assert state_of(kms, key["KeyId"]) == ("PendingImport", False)
    with pytest.raises(ClientError) as excinfo:
        kms.decrypt(CiphertextBlob=ciphertext)
    assert error_of(excinfo)[0] == "KMSInvalidStateException"

    with pytest.raises(ClientError) as excinfo:
        import_material(kms, key["KeyId"], os.urandom(32))
    assert error_of(excinfo)[0] == "IncorrectKeyMaterialException"

    import_material(kms, key["KeyId"], material)
    assert state_of(kms, key["KeyId"]) == ("Enabled", True)
    assert kms.decrypt(CiphertextBlob=ciphertext)["Plaintext"] == b"before"


@against_both(IMPORT_MISSING, raises=ClientError)
def test_material_expires_at_valid_to(aws):
    """KEY_MATERIAL_EXPIRES: at ValidTo KMS deletes the material and the key is PendingImport again."""
    kms = aws.client("kms", account=CUSTOMER)
    key = new_key(kms, Origin="EXTERNAL")
    valid_to = datetime.now(UTC) + timedelta(seconds=2)
    import_material(kms, key["KeyId"], os.urandom(32), ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to)
    metadata = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert (metadata["KeyState"], metadata["ExpirationModel"]) == ("Enabled", "KEY_MATERIAL_EXPIRES")
    assert abs((metadata["ValidTo"] - valid_to).total_seconds()) < 1
    kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")

    time.sleep(max(0.0, (valid_to - datetime.now(UTC)).total_seconds()) + 0.2)
    assert state_of(kms, key["KeyId"]) == ("PendingImport", False)
    with pytest.raises(ClientError) as excinfo:
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    assert error_of(excinfo)[0::2] == ("KMSInvalidStateException", f"{key['Arn']} is pending import.")


@against_both(IMPORT_MISSING, raises=ClientError)
def test_import_checks_token_material_and_expiry_parameters(aws):
    kms = aws.client("kms", account=CUSTOMER)
    key, other = new_key(kms, Origin="EXTERNAL"), new_key(kms, Origin="EXTERNAL")
    params, wrapped = wrap_for_import(kms, key["KeyId"], os.urandom(32))
    other_params = kms.get_parameters_for_import(KeyId=other["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048")
    short = wrap_with(params, os.urandom(16))
    never = {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}
    cases = {
        "InvalidImportTokenException": (other_params["ImportToken"], wrapped, never),
        "IncorrectKeyMaterialException": (params["ImportToken"], short, never),
        "InvalidCiphertextException": (params["ImportToken"], os.urandom(256), never),
        "ValidationException": (params["ImportToken"], wrapped, {}),  # the default, KEY_MATERIAL_EXPIRES, needs ValidTo
    }
    for expected, (token, material, expiry) in cases.items():
        with pytest.raises(ClientError) as excinfo:
            kms.import_key_material(KeyId=key["KeyId"], ImportToken=token, EncryptedKeyMaterial=material, **expiry)
        assert error_of(excinfo)[0] == expected
    assert state_of(kms, key["KeyId"]) == ("PendingImport", False)


@against_both(IMPORT_MISSING, raises=AssertionError)
def test_import_refused_for_keys_with_kms_material(aws):
    kms = aws.client("kms", account=CUSTOMER)
    key = new_key(kms)
    with pytest.raises(ClientError) as excinfo:
        kms.get_parameters_for_import(KeyId=key["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048")
    assert error_of(excinfo)[0::2] == ("UnsupportedOperationException", f"{key['Arn']} origin is AWS_KMS which is not valid for this operation.")
