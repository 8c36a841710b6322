# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Imported key material (the external key path): input checks, wrapping, expiry planning and the import decision.

Pure functions: no AWS calls, importable without Ansible. The module kms_key_import wires them to KMS.

AWS facts this relies on (https://docs.aws.amazon.com/kms/latest/developerguide/importing-keys.html):
- material for a SYMMETRIC_DEFAULT key is exactly 32 bytes (256 bits);
- it travels wrapped with the RSA public key of GetParametersForImport (valid 24 h, tied to its import token);
- ImportKeyMaterial takes ExpirationModel KEY_MATERIAL_EXPIRES with a ValidTo at most 365 days ahead, or
  KEY_MATERIAL_DOES_NOT_EXPIRE; changing either needs a re-import;
- only the material first imported can be imported again (IncorrectKeyMaterialException otherwise), and
  KMS never reveals the material, so "is this the same material?" can only be answered by an import.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
from dataclasses import dataclass

try:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.asymmetric import rsa
    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False

from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import ALIAS_NAME_RE

MATERIAL_BYTES = 32
WRAPPING_ALGORITHM = "RSAES_OAEP_SHA_256"
WRAPPING_KEY_BITS = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
EXPIRES = "KEY_MATERIAL_EXPIRES"
DOES_NOT_EXPIRE = "KEY_MATERIAL_DOES_NOT_EXPIRE"
EXPIRATION_MODELS = (EXPIRES, DOES_NOT_EXPIRE)
MAX_VALID_DAYS = 365
# AWS refuses a ValidTo more than 365 days after it receives the request. A ValidTo computed from this host's
# clock stays this far inside that limit, so a host clock running a little ahead does not fail the import.
CLOCK_SKEW_MARGIN = datetime.timedelta(minutes=15)
# Two ValidTo values this close are the same (AWS keeps whole seconds).
VALID_TO_TOLERANCE = datetime.timedelta(seconds=1)
UTC = datetime.timezone.utc

CREATE_AND_IMPORT = "create_and_import"
IMPORT = "import"
DELETE_MATERIAL = "delete_material"
NOTHING = "none"

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class KeyImportError(ValueError):
    """Bad input or a key that cannot take the import; the message names the field (or the key) and the fix."""


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(UTC)


# --- input ----------------------------------------------------------------------------------------------------


def validate_alias(value, field: str = "alias") -> str:
    """The alias name the key is found by: alias/<name>, not one of the AWS managed alias/aws/... names."""
    if not isinstance(value, str) or not value:
        raise KeyImportError(f"{field}: missing; give the alias the key is found by, like alias/mattermost-byok-<customer>")
    if not value.startswith("alias/"):
        raise KeyImportError(f"{field}: {value!r} must start with alias/ (like alias/mattermost-byok-<customer>)")
    if value.startswith("alias/aws/"):
        raise KeyImportError(f"{field}: {value!r} is in the alias/aws/ namespace, which AWS reserves for AWS managed keys; choose another name")
    if not ALIAS_NAME_RE.match(value):
        raise KeyImportError(f"{field}: {value!r} is not a valid alias name (alias/ then 1-250 of letters, digits, / _ - :)")
    return value


def _wrong_length(field: str, got: int, what: str) -> KeyImportError:
    # The message says how long the input was, never what it was.
    return KeyImportError(
        f"{field}: {what} {got} bytes; a symmetric KMS key takes exactly {MATERIAL_BYTES} bytes (256 bits) of key material, "
        f"given as base64 ({(MATERIAL_BYTES + 2) // 3 * 4} characters) or, in a file, as the raw bytes"
    )


def material_from_base64(value, field: str = "key_material") -> bytes:
    """The 32 raw bytes from their base64 text (whitespace and line breaks allowed)."""
    if not isinstance(value, str) or not value.strip():
        raise KeyImportError(f"{field}: empty; give the base64 of the {MATERIAL_BYTES} bytes of key material")
    text = "".join(value.split())
    try:
        material = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyImportError(f"{field}: not valid base64; give the base64 of the {MATERIAL_BYTES} bytes of key material "
                             "(for example the output of: openssl rand -base64 32)") from None
    if len(material) != MATERIAL_BYTES:
        raise _wrong_length(field, len(material), "decodes to")
    return material


def material_from_file_bytes(data: bytes, field: str = "key_material_path") -> bytes:
    """A file's content: exactly 32 raw bytes, or the base64 of 32 bytes (a trailing newline is fine)."""
    if len(data) == MATERIAL_BYTES:
        if all(32 <= b < 127 for b in data):
            # Random bytes are all printable with a chance of about 1e-14: this is text (a passphrase, hex, or the
            # base64 of 24 bytes), and importing it would make a key from the wrong bytes.
            raise KeyImportError(
                f"{field}: the file holds {MATERIAL_BYTES} characters of text, not raw key material; give the "
                f"{MATERIAL_BYTES} raw bytes or their base64 (44 characters)"
            )
        return data
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise _wrong_length(field, len(data), "the file holds") from None
    if not text.strip():
        raise KeyImportError(f"{field}: the file is empty")
    try:
        return material_from_base64(text, field)
    except KeyImportError:
        raise KeyImportError(
            f"{field}: the file holds {len(data)} bytes that are neither the {MATERIAL_BYTES} raw bytes of the key material "
            f"nor their base64"
        ) from None


def read_material_file(path: str, field: str = "key_material_path") -> tuple[bytes, str | None]:
    """The material from a file on this host, and the file's text when it held base64 (so it can be masked too)."""
    try:
        with open(path, "rb") as f:
            data = f.read(4096)
    except OSError as e:
        raise KeyImportError(f"{field}: cannot read {path}: {e.strerror}") from None
    material = material_from_file_bytes(data, field)
    text = None if len(data) == MATERIAL_BYTES else data.decode("ascii").strip()
    return material, text


def secret_strings(material: bytes, *extra: str | None) -> set[str]:
    """Every spelling of the material that must be masked in anything Ansible prints or logs."""
    values = {
        base64.b64encode(material).decode("ascii"),
        base64.urlsafe_b64encode(material).decode("ascii"),
        base64.b64encode(material).decode("ascii").rstrip("="),
        material.hex(),
        material.hex().upper(),
    }
    values.update(e for e in extra if e)
    return values


def select_material(key_material, key_material_path, read_file=read_material_file) -> tuple[bytes, set[str]]:
    """Exactly one of key_material / key_material_path; returns the 32 bytes and the strings to mask."""
    if key_material is not None and key_material_path is not None:
        raise KeyImportError("key_material, key_material_path: give one of them, not both")
    if key_material is None and key_material_path is None:
        raise KeyImportError("key_material: missing; importing needs the customer's key material, "
                             "as key_material (base64) or key_material_path (a file on the managed host)")
    if key_material is not None:
        material = material_from_base64(key_material)
        return material, secret_strings(material, key_material, "".join(key_material.split()))
    material, text = read_file(key_material_path)
    return material, secret_strings(material, text)


# --- wrapping -------------------------------------------------------------------------------------------------


def wrap_key_material(material: bytes, public_key_der: bytes, wrapping_key_spec: str | None = None) -> bytes:
    """RSAES_OAEP_SHA_256 encryption of the material with the wrapping public key from GetParametersForImport.

    `public_key_der` is the DER SubjectPublicKeyInfo KMS returns. With `wrapping_key_spec` the key size is checked
    against the spec that was asked for.
    """
    if not HAS_CRYPTOGRAPHY:
        raise KeyImportError("the Python library cryptography is needed to wrap key material; pip install cryptography")
    if len(material) != MATERIAL_BYTES:
        raise _wrong_length("key_material", len(material), "is")
    public_key = serialization.load_der_public_key(public_key_der)
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise KeyImportError("the wrapping key from GetParametersForImport is not an RSA key")
    if wrapping_key_spec is not None and public_key.key_size != WRAPPING_KEY_BITS[wrapping_key_spec]:
        raise KeyImportError(
            f"the wrapping key from GetParametersForImport has {public_key.key_size} bits, not the {wrapping_key_spec} asked for"
        )
    return public_key.encrypt(material, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))


# --- expiry ---------------------------------------------------------------------------------------------------


def parse_valid_to(value, field: str = "valid_to") -> datetime.datetime:
    """An ISO 8601 date (midnight UTC of that day) or date and time (UTC unless it has an offset)."""
    if isinstance(value, datetime.datetime):
        parsed = value
    elif isinstance(value, datetime.date):
        parsed = datetime.datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            if _DATE_RE.match(text):
                parsed = datetime.datetime.combine(datetime.date.fromisoformat(text), datetime.time())
            else:
                parsed = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise KeyImportError(f"{field}: {value!r} is not an ISO 8601 date or date and time (like 2027-01-31 or 2027-01-31T12:00:00Z)") from None
    else:
        raise KeyImportError(f"{field}: {value!r} is not an ISO 8601 date or date and time (like 2027-01-31 or 2027-01-31T12:00:00Z)")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).replace(microsecond=0)


def iso(value: datetime.datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


@dataclass(frozen=True)
class ExpiryPlan:
    """The expiration the next import asks for. `valid_to` is fixed; `valid_days` counts from the import."""

    model: str
    valid_to: datetime.datetime | None = None
    valid_days: int | None = None

    def valid_to_at(self, now: datetime.datetime) -> datetime.datetime | None:
        """The ValidTo an import made at `now` sends."""
        if self.model == DOES_NOT_EXPIRE:
            return None
        if self.valid_to is not None:
            return self.valid_to
        latest = now + datetime.timedelta(days=MAX_VALID_DAYS) - CLOCK_SKEW_MARGIN
        return min(now + datetime.timedelta(days=self.valid_days), latest).replace(microsecond=0)


def plan_expiry(expiration_model: str, valid_to=None, valid_days: int | None = None, now: datetime.datetime | None = None) -> ExpiryPlan:
    """Check the expiry options together and return the plan; errors name the field."""
    now = now or utcnow()
    if expiration_model not in EXPIRATION_MODELS:
        raise KeyImportError(f"expiration_model: {expiration_model!r} is not one of {', '.join(EXPIRATION_MODELS)}")
    if expiration_model == DOES_NOT_EXPIRE:
        for name, value in (("valid_to", valid_to), ("valid_days", valid_days)):
            if value is not None:
                raise KeyImportError(f"{name}: only with expiration_model={EXPIRES}; material that does not expire has no end date")
        return ExpiryPlan(DOES_NOT_EXPIRE)
    if valid_to is not None and valid_days is not None:
        raise KeyImportError("valid_to, valid_days: give one of them, not both")
    if valid_to is None and valid_days is None:
        raise KeyImportError(f"valid_days: expiration_model={EXPIRES} needs an end date; give valid_days (1-{MAX_VALID_DAYS}, "
                             f"counted from each import) or valid_to (a date at most {MAX_VALID_DAYS} days ahead)")
    if valid_days is not None:
        if isinstance(valid_days, bool) or not isinstance(valid_days, int) or not 1 <= valid_days <= MAX_VALID_DAYS:
            raise KeyImportError(f"valid_days: {valid_days!r} must be a whole number of days from 1 to {MAX_VALID_DAYS} (the most AWS allows)")
        return ExpiryPlan(EXPIRES, valid_days=valid_days)
    when = parse_valid_to(valid_to)
    if when <= now:
        raise KeyImportError(f"valid_to: {iso(when)} is in the past; give a future date (at most {MAX_VALID_DAYS} days ahead)")
    if when > now + datetime.timedelta(days=MAX_VALID_DAYS) - CLOCK_SKEW_MARGIN:
        raise KeyImportError(f"valid_to: {iso(when)} is more than {MAX_VALID_DAYS} days ahead, which AWS refuses; "
                             f"give an earlier date or valid_days: {MAX_VALID_DAYS}")
    return ExpiryPlan(EXPIRES, valid_to=when)


def _as_utc(value) -> datetime.datetime | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        return parse_valid_to(value, "ValidTo")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def has_material(metadata: dict | None) -> bool:
    """Whether the key holds key material now: Enabled or Disabled (PendingImport means none)."""
    return bool(metadata) and metadata.get("KeyState") in ("Enabled", "Disabled")


def material_status(metadata: dict | None, reimport_within_days: int, now: datetime.datetime) -> tuple[int | None, bool]:
    """(expires_in_days, reimport_due) of a key's material.

    expires_in_days: whole days until ValidTo (0 on its last day), None when the material does not expire or
    there is none. reimport_due: the key has no material, or it expires within `reimport_within_days`.
    """
    if metadata is None:
        return None, False
    if not has_material(metadata):
        return None, True
    if metadata.get("ExpirationModel") != EXPIRES:
        return None, False
    valid_to = _as_utc(metadata.get("ValidTo"))
    if valid_to is None:
        return None, False
    left = valid_to - now
    return max(left.days, 0), left <= datetime.timedelta(days=reimport_within_days)


# --- the decision ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    action: str  # CREATE_AND_IMPORT, IMPORT, DELETE_MATERIAL or NOTHING
    reason: str


def check_key_fits(metadata: dict, alias: str) -> None:
    """Refuse a key the alias points at that is not a provider-managed symmetric key for imported material."""
    arn = metadata.get("Arn", metadata.get("KeyId"))
    if metadata.get("KeyManager", "CUSTOMER") != "CUSTOMER":
        raise KeyImportError(f"alias: {alias} points at {arn}, an AWS managed key; choose another alias")
    if metadata.get("Origin") != "EXTERNAL":
        raise KeyImportError(
            f"alias: {alias} points at {arn}, whose origin is {metadata.get('Origin')}, not EXTERNAL; key material can only be "
            "imported into a key created for it. Choose another alias (a new EXTERNAL key is created under it)"
        )
    if metadata.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT" or metadata.get("KeyUsage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT":
        raise KeyImportError(
            f"alias: {alias} points at {arn}, a {metadata.get('KeySpec')} {metadata.get('KeyUsage')} key; "
            "data stores need a SYMMETRIC_DEFAULT ENCRYPT_DECRYPT key. Choose another alias"
        )
    if metadata.get("MultiRegion"):
        raise KeyImportError(
            f"alias: {alias} points at {arn}, a multi-Region key; this module manages single-Region keys only "
            "(a multi-Region key needs the material imported into the primary and every replica)"
        )
    state = metadata.get("KeyState")
    if state == "PendingDeletion":
        raise KeyImportError(
            f"alias: {alias} points at {arn}, which is pending deletion; cancel it first "
            f"(aws kms cancel-key-deletion --key-id {arn}, then re-run) or choose another alias"
        )
    if state not in ("Enabled", "Disabled", "PendingImport"):
        raise KeyImportError(f"alias: {alias} points at {arn}, which is {state}; it cannot take key material in that state")


def decide_present(metadata: dict | None, plan: ExpiryPlan, reimport_within_days: int, force: bool,
                   now: datetime.datetime) -> Decision:
    """What state=present does to the key the alias names (None: there is none)."""
    if metadata is None:
        return Decision(CREATE_AND_IMPORT, "no key has the alias yet: create an EXTERNAL key and import the material")
    if not has_material(metadata):
        return Decision(IMPORT, "the key is pending import (it holds no key material)")
    if force:
        return Decision(IMPORT, "force_reimport is set")
    current = metadata.get("ExpirationModel")
    if current != plan.model:
        return Decision(IMPORT, f"the material's expiration model is {current}, {plan.model} is wanted (changing it needs a re-import)")
    if plan.model == DOES_NOT_EXPIRE:
        return Decision(NOTHING, "key material is imported and does not expire")
    valid_to = _as_utc(metadata.get("ValidTo"))
    if plan.valid_to is not None:
        if valid_to is None or abs(valid_to - plan.valid_to) > VALID_TO_TOLERANCE:
            return Decision(IMPORT, f"the material is valid to {iso(valid_to)}, valid_to asks for {iso(plan.valid_to)}")
        return Decision(NOTHING, f"key material is imported and valid to {iso(valid_to)}, as valid_to asks")
    days, due = material_status(metadata, reimport_within_days, now)
    if due:
        return Decision(IMPORT, f"the material expires in {days} days ({iso(valid_to)}), within reimport_within_days={reimport_within_days}")
    return Decision(NOTHING, f"key material is imported and valid to {iso(valid_to)} ({days} days, beyond reimport_within_days={reimport_within_days})")


def decide_absent_material(metadata: dict | None) -> Decision:
    """What state=absent_material does."""
    if metadata is None:
        return Decision(NOTHING, "no key has the alias; there is no material to delete")
    if not has_material(metadata):
        return Decision(NOTHING, "the key holds no key material (pending import)")
    return Decision(DELETE_MATERIAL, "delete the imported key material; the key is unusable until the same material is imported again")


def after_import(metadata: dict | None, plan: ExpiryPlan, now: datetime.datetime) -> dict:
    """The key's metadata as an import at `now` leaves it (for check mode and diff)."""
    after = dict(metadata or {"Origin": "EXTERNAL", "KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT"})
    if after.get("KeyState") != "Disabled":  # importing enables a key pending import, and leaves a disabled one disabled
        after["KeyState"] = "Enabled"
    after["ExpirationModel"] = plan.model
    after.pop("ValidTo", None)
    valid_to = plan.valid_to_at(now)
    if valid_to is not None:
        after["ValidTo"] = valid_to
    return after


def after_delete(metadata: dict) -> dict:
    after = dict(metadata)
    after["KeyState"] = "PendingImport"
    after.pop("ExpirationModel", None)
    after.pop("ValidTo", None)
    return after


def key_view(metadata: dict | None, alias: str) -> dict | None:
    """The snake_case `key` return value; never anything about the material itself."""
    if metadata is None:
        return None
    return {
        "arn": metadata.get("Arn"),
        "key_id": metadata.get("KeyId"),
        "alias": alias,
        "key_state": metadata.get("KeyState"),
        "origin": metadata.get("Origin"),
        "expiration_model": metadata.get("ExpirationModel") if has_material(metadata) else None,
        "valid_to": iso(_as_utc(metadata.get("ValidTo"))) if has_material(metadata) else None,
    }


def diff_view(metadata: dict | None) -> dict:
    """What --diff compares: the key state, the expiration model and ValidTo."""
    if metadata is None:
        return {"key_state": "absent", "expiration_model": None, "valid_to": None}
    material = has_material(metadata)
    return {
        "key_state": metadata.get("KeyState"),
        "expiration_model": metadata.get("ExpirationModel") if material else None,
        "valid_to": iso(_as_utc(metadata.get("ValidTo"))) if material else None,
    }
