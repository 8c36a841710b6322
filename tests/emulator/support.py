"""Shared constants and helpers for the emulator tests.

Every behaviour test runs against the extended local AWS and against plain moto, where it must fail:
``@against_both("what plain moto gets wrong", raises=...)`` parametrizes the ``aws`` fixture over both servers and marks
the plain-moto run ``xfail(strict=True, raises=...)``: it must fail with that exception, and with nothing else. If
plain moto ever passes, the extension is no longer needed (or the test no longer tests it). ``@on_both`` runs on both
servers expecting success (harness behaviour).
"""
from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

CUSTOMER = "111111111101"  # owns the BYOK key
PROVIDER = "222222222222"  # Mattermost's account, uses the customer's key by ARN
REGION = "us-east-1"
OTHER_REGION = "us-west-2"


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    """(code, HTTP status, message) of a botocore ClientError."""
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"].get("Message", "")


def new_key(kms: Any, **kwargs: Any) -> dict[str, Any]:
    """Create a key and return its KeyMetadata."""
    return kms.create_key(Description="emulator test key", **kwargs)["KeyMetadata"]


def key_in_state(kms: Any, state: str) -> dict[str, Any]:
    """A new symmetric key put into ``state``: Enabled, Disabled or PendingDeletion."""
    key = new_key(kms)
    if state == "Disabled":
        kms.disable_key(KeyId=key["KeyId"])
    elif state == "PendingDeletion":
        kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    return key


# What AWS answers for a cryptographic use of a key in each unusable state (KMS key-state table).
STATE_ERRORS = {
    "Disabled": ("DisabledException", "is disabled."),
    "PendingDeletion": ("KMSInvalidStateException", "is pending deletion."),
}


# What pytest.raises ends in when the call it expects to be refused is accepted: plain moto's usual gap ("AWS refuses
# this, plain moto takes it").
DID_NOT_RAISE = pytest.fail.Exception


def against_both(plain_moto_gap: str, raises: type[BaseException] | tuple[type[BaseException], ...]) -> pytest.MarkDecorator:
    """``raises``: the exception(s) plain moto's gap ends in (AssertionError, DID_NOT_RAISE, a botocore ClientError...),
    so that no other failure (a server that did not start, a NameError) passes as the expected one."""
    if not raises:
        raise TypeError(f"against_both({plain_moto_gap!r}): name the exception plain moto's gap ends in (raises=...)")
    plain = pytest.param("plain", marks=pytest.mark.xfail(strict=True, raises=raises, reason=f"plain moto: {plain_moto_gap}"))
    return pytest.mark.parametrize("aws", ["extended", plain], indirect=True)


on_both = pytest.mark.parametrize("aws", ["extended", "plain"], indirect=True)
