"""Cryptographic operations and CreateGrant refuse keys that are not Enabled.

AWS key-state table, https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html:
Disabled → ``DisabledException: <key ARN> is disabled.``; PendingDeletion → ``KMSInvalidStateException: <key ARN> is
pending deletion.``; PendingImport → ``KMSInvalidStateException: <key ARN> is pending import.`` (see test_kms_import).
EnableKey/DisableKey on a key pending deletion fail the same way.
"""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from .support import CUSTOMER, DID_NOT_RAISE, PROVIDER, STATE_ERRORS, against_both, error_of, key_in_state, new_key

STATES_NOT_ENFORCED = "disabled and pending-deletion keys still work"


def _encrypt(kms, key, ciphertext):
    kms.encrypt(KeyId=key["Arn"], Plaintext=b"x")


def _decrypt(kms, key, ciphertext):
    kms.decrypt(CiphertextBlob=ciphertext)


def _generate_data_key(kms, key, ciphertext):
    kms.generate_data_key(KeyId=key["Arn"], KeySpec="AES_256")


def _generate_data_key_without_plaintext(kms, key, ciphertext):
    kms.generate_data_key_without_plaintext(KeyId=key["Arn"], NumberOfBytes=32)


def _re_encrypt_from(kms, key, ciphertext):
    kms.re_encrypt(CiphertextBlob=ciphertext, DestinationKeyId=new_key(kms)["KeyId"])


def _re_encrypt_to(kms, key, ciphertext):
    usable = new_key(kms)
    ciphertext = kms.encrypt(KeyId=usable["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    kms.re_encrypt(CiphertextBlob=ciphertext, DestinationKeyId=key["Arn"])


def _create_grant(kms, key, ciphertext):
    kms.create_grant(KeyId=key["Arn"], GranteePrincipal=f"arn:aws:iam::{PROVIDER}:role/nodes.example-kops.k8s.local", Operations=["Decrypt"])


OPERATIONS = [_encrypt, _decrypt, _generate_data_key, _generate_data_key_without_plaintext, _re_encrypt_from, _re_encrypt_to, _create_grant]


@pytest.mark.parametrize("state", sorted(STATE_ERRORS))
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.__name__.strip("_"))
@against_both(STATES_NOT_ENFORCED, raises=DID_NOT_RAISE)
def test_operation_refused_on_unusable_key(aws, operation, state):
    kms = aws.client("kms", account=CUSTOMER)
    key = key_in_state(kms, "Enabled")
    ciphertext = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"made while enabled")["CiphertextBlob"]
    if state == "Disabled":
        kms.disable_key(KeyId=key["KeyId"])
    else:
        kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)

    with pytest.raises(ClientError) as excinfo:
        operation(kms, key, ciphertext)
    code, status, message = error_of(excinfo)
    assert (code, status, message) == (STATE_ERRORS[state][0], 400, f"{key['Arn']} {STATE_ERRORS[state][1]}")


@against_both(STATES_NOT_ENFORCED, raises=AssertionError)
def test_disabled_key_refused_cross_account_too(aws):
    key = key_in_state(aws.client("kms", account=CUSTOMER), "Disabled")
    with pytest.raises(ClientError) as excinfo:
        aws.client("kms", account=PROVIDER).generate_data_key(KeyId=key["Arn"], KeySpec="AES_256")
    assert error_of(excinfo)[0] == "DisabledException"


@against_both(STATES_NOT_ENFORCED, raises=DID_NOT_RAISE)
def test_sign_and_mac_refused_on_disabled_keys(aws):
    kms = aws.client("kms", account=CUSTOMER)
    signing = new_key(kms, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    mac = new_key(kms, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    for key in (signing, mac):
        kms.disable_key(KeyId=key["KeyId"])
    with pytest.raises(ClientError) as signing_error:
        kms.sign(KeyId=signing["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    with pytest.raises(ClientError) as mac_error:
        kms.generate_mac(KeyId=mac["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256")
    assert error_of(signing_error)[0] == error_of(mac_error)[0] == "DisabledException"


@against_both("EnableKey revives a key pending deletion", raises=DID_NOT_RAISE)
def test_enable_key_refused_while_pending_deletion(aws):
    kms = aws.client("kms", account=CUSTOMER)
    key = key_in_state(kms, "PendingDeletion")
    with pytest.raises(ClientError) as excinfo:
        kms.enable_key(KeyId=key["KeyId"])
    assert error_of(excinfo)[0::2] == ("KMSInvalidStateException", f"{key['Arn']} is pending deletion.")
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
