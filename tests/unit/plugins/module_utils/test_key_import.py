# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import base64
import datetime
import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa

from ansible_collections.mattermost.byok.plugins.module_utils.kms import key_import as ki

NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
MATERIAL = bytes(range(32))
MATERIAL_B64 = base64.b64encode(MATERIAL).decode()
ARN = "arn:aws:kms:us-east-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def days(n):
    return datetime.timedelta(days=n)


def metadata(state="Enabled", model=ki.EXPIRES, valid_to=NOW + days(200), **extra):
    m = {"Arn": ARN, "KeyId": ARN.rsplit("/", 1)[1], "KeyState": state, "Enabled": state == "Enabled", "Origin": "EXTERNAL",
         "KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT", "KeyManager": "CUSTOMER", "MultiRegion": False}
    if state != "PendingImport":
        m["ExpirationModel"] = model
        if model == ki.EXPIRES:
            m["ValidTo"] = valid_to
    m.update(extra)
    return m


def public_der(private_key):
    return private_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


# --- wrapping -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_2048():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize("spec", ["RSA_2048", "RSA_4096"])
def test_wrap_unwraps_to_the_material_with_the_private_key(spec):
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=ki.WRAPPING_KEY_BITS[spec])
    material = os.urandom(32)
    wrapped = ki.wrap_key_material(material, public_der(private_key), spec)
    assert material not in wrapped and len(wrapped) == ki.WRAPPING_KEY_BITS[spec] // 8
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    assert private_key.decrypt(wrapped, oaep) == material


def test_wrap_is_oaep_sha256_not_sha1(rsa_2048):
    wrapped = ki.wrap_key_material(MATERIAL, public_der(rsa_2048))
    with pytest.raises(ValueError):
        rsa_2048.decrypt(wrapped, padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None))


def test_wrap_is_randomized(rsa_2048):
    assert ki.wrap_key_material(MATERIAL, public_der(rsa_2048)) != ki.wrap_key_material(MATERIAL, public_der(rsa_2048))


def test_wrap_checks_the_key_size_asked_for(rsa_2048):
    with pytest.raises(ki.KeyImportError, match="has 2048 bits, not the RSA_4096"):
        ki.wrap_key_material(MATERIAL, public_der(rsa_2048), "RSA_4096")


def test_wrap_refuses_a_non_rsa_key():
    ec_key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ki.KeyImportError, match="not an RSA key"):
        ki.wrap_key_material(MATERIAL, public_der(ec_key))


def test_wrap_refuses_wrong_length(rsa_2048):
    with pytest.raises(ki.KeyImportError, match="exactly 32 bytes"):
        ki.wrap_key_material(MATERIAL[:16], public_der(rsa_2048))


# --- input validation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("alias", ["alias/mattermost-byok-acme", "alias/byok/acme_1", "alias/a:b"])
def test_alias_accepted(alias):
    assert ki.validate_alias(alias) == alias


@pytest.mark.parametrize("alias, fragment", [
    ("mattermost-byok-acme", "must start with alias/"),
    ("arn:aws:kms:us-east-1:222222222222:alias/x", "must start with alias/"),
    ("alias/aws/ebs", "alias/aws/ namespace"),
    ("alias/", "not a valid alias name"),
    ("alias/has space", "not a valid alias name"),
    ("", "alias: missing"),
    (None, "alias: missing"),
])
def test_alias_refused_naming_the_field(alias, fragment):
    with pytest.raises(ki.KeyImportError, match=fragment) as excinfo:
        ki.validate_alias(alias)
    assert str(excinfo.value).startswith("alias:")


def test_material_from_base64():
    assert ki.material_from_base64(MATERIAL_B64) == MATERIAL
    assert ki.material_from_base64(f"  {MATERIAL_B64[:20]}\n{MATERIAL_B64[20:]}\n") == MATERIAL


@pytest.mark.parametrize("value, fragment", [
    (base64.b64encode(bytes(range(16))).decode(), "decodes to 16 bytes"),
    (base64.b64encode(bytes(range(33))).decode(), "decodes to 33 bytes"),
    ("not base64 at all!", "not valid base64"),
    ("", "empty"),
])
def test_material_from_base64_refused(value, fragment):
    with pytest.raises(ki.KeyImportError, match=fragment) as excinfo:
        ki.material_from_base64(value)
    assert str(excinfo.value).startswith("key_material:")


def test_error_messages_never_contain_the_material():
    bad = base64.b64encode(MATERIAL + b"x").decode()
    with pytest.raises(ki.KeyImportError) as excinfo:
        ki.material_from_base64(bad)
    assert bad not in str(excinfo.value) and bad[:20] not in str(excinfo.value)


@pytest.mark.parametrize("content", [MATERIAL, MATERIAL_B64.encode(), MATERIAL_B64.encode() + b"\n", b"\r\n" + MATERIAL_B64.encode() + b"\r\n"])
def test_material_file_raw_or_base64(tmp_path, content):
    path = tmp_path / "material"
    path.write_bytes(content)
    material, text = ki.read_material_file(str(path))
    assert material == MATERIAL
    assert text == (None if content == MATERIAL else MATERIAL_B64)


@pytest.mark.parametrize("content, fragment", [
    (MATERIAL + b"\n", "neither the 32 raw bytes"),  # raw bytes with a newline: ambiguous, refused
    (bytes(range(16)), "bytes"),
    (b"", "empty"),
    (base64.b64encode(bytes(range(24))), "32 characters of text, not raw key material"),
    (bytes(range(16)).hex().encode(), "32 characters of text"),
    (base64.b64encode(bytes(range(30))), "neither the 32 raw bytes"),
])
def test_material_file_refused(tmp_path, content, fragment):
    path = tmp_path / "material"
    path.write_bytes(content)
    with pytest.raises(ki.KeyImportError, match=fragment) as excinfo:
        ki.read_material_file(str(path))
    assert str(excinfo.value).startswith("key_material_path:")


def test_material_file_missing(tmp_path):
    with pytest.raises(ki.KeyImportError, match="key_material_path: cannot read"):
        ki.read_material_file(str(tmp_path / "nope"))


def test_select_material_exactly_one():
    with pytest.raises(ki.KeyImportError, match="key_material, key_material_path: give one of them, not both"):
        ki.select_material(MATERIAL_B64, "/some/file")
    with pytest.raises(ki.KeyImportError, match="key_material: missing"):
        ki.select_material(None, None)
    material, secrets = ki.select_material(MATERIAL_B64, None)
    assert material == MATERIAL
    assert {MATERIAL_B64, MATERIAL.hex()} <= secrets


def test_select_material_from_file_masks_the_file_text():
    material, secrets = ki.select_material(None, "/f", read_file=lambda path: (MATERIAL, " weird spelling "))
    assert material == MATERIAL and " weird spelling " in secrets and MATERIAL_B64 in secrets


# --- expiry planning ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    ("2026-06-01", datetime.datetime(2026, 6, 1, tzinfo=datetime.timezone.utc)),
    ("2026-06-01T10:30:00Z", datetime.datetime(2026, 6, 1, 10, 30, tzinfo=datetime.timezone.utc)),
    ("2026-06-01T10:30:00", datetime.datetime(2026, 6, 1, 10, 30, tzinfo=datetime.timezone.utc)),
    ("2026-06-01T12:30:00+02:00", datetime.datetime(2026, 6, 1, 10, 30, tzinfo=datetime.timezone.utc)),
    (datetime.date(2026, 6, 1), datetime.datetime(2026, 6, 1, tzinfo=datetime.timezone.utc)),
])
def test_parse_valid_to(value, expected):
    assert ki.parse_valid_to(value) == expected


@pytest.mark.parametrize("value", ["next year", "2026-13-01", "", "01/06/2026"])
def test_parse_valid_to_refused(value):
    with pytest.raises(ki.KeyImportError, match="^valid_to: .* is not an ISO 8601 date"):
        ki.parse_valid_to(value)


def test_plan_valid_days_counts_from_each_import():
    plan = ki.plan_expiry(ki.EXPIRES, valid_days=90, now=NOW)
    assert plan == ki.ExpiryPlan(ki.EXPIRES, valid_days=90)
    assert plan.valid_to_at(NOW) == NOW + days(90)
    assert plan.valid_to_at(NOW + days(10)) == NOW + days(100)


def test_plan_365_days_keeps_a_clock_skew_margin():
    plan = ki.plan_expiry(ki.EXPIRES, valid_days=365, now=NOW)
    assert plan.valid_to_at(NOW) == NOW + days(365) - ki.CLOCK_SKEW_MARGIN


def test_plan_fixed_valid_to():
    plan = ki.plan_expiry(ki.EXPIRES, valid_to="2026-09-01", now=NOW)
    assert plan.valid_to_at(NOW) == plan.valid_to_at(NOW + days(30)) == datetime.datetime(2026, 9, 1, tzinfo=datetime.timezone.utc)


def test_plan_does_not_expire():
    plan = ki.plan_expiry(ki.DOES_NOT_EXPIRE, now=NOW)
    assert plan.model == ki.DOES_NOT_EXPIRE and plan.valid_to_at(NOW) is None


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(expiration_model=ki.EXPIRES), "^valid_days: expiration_model=KEY_MATERIAL_EXPIRES needs an end date"),
    (dict(expiration_model=ki.EXPIRES, valid_to="2026-06-01", valid_days=30), "^valid_to, valid_days: give one of them"),
    (dict(expiration_model=ki.EXPIRES, valid_to="2026-02-01"), "^valid_to: 2026-02-01T00:00:00\\+00:00 is in the past"),
    (dict(expiration_model=ki.EXPIRES, valid_to="2026-03-01T11:59:59Z"), "^valid_to: .* is in the past"),
    (dict(expiration_model=ki.EXPIRES, valid_to="2027-03-02"), "^valid_to: .* more than 365 days ahead"),
    (dict(expiration_model=ki.EXPIRES, valid_days=0), "^valid_days: 0 must be a whole number of days from 1 to 365"),
    (dict(expiration_model=ki.EXPIRES, valid_days=366), "^valid_days: 366"),
    (dict(expiration_model=ki.DOES_NOT_EXPIRE, valid_days=30), "^valid_days: only with expiration_model=KEY_MATERIAL_EXPIRES"),
    (dict(expiration_model=ki.DOES_NOT_EXPIRE, valid_to="2026-06-01"), "^valid_to: only with"),
    (dict(expiration_model="SOMETIMES"), "^expiration_model: 'SOMETIMES' is not one of"),
])
def test_plan_refused_naming_the_field(kwargs, fragment):
    with pytest.raises(ki.KeyImportError, match=fragment):
        ki.plan_expiry(now=NOW, **kwargs)


@pytest.mark.parametrize("meta, window, expected", [
    (None, 30, (None, False)),
    (metadata("PendingImport"), 30, (None, True)),
    (metadata(valid_to=NOW + days(200)), 30, (200, False)),
    (metadata(valid_to=NOW + days(30)), 30, (30, True)),  # exactly at the window's edge: due
    (metadata(valid_to=NOW + days(30, ) + datetime.timedelta(seconds=1)), 30, (30, False)),
    (metadata(valid_to=NOW + datetime.timedelta(hours=5)), 0, (0, False)),
    (metadata(valid_to=NOW + days(10)), 30, (10, True)),
    (metadata(model=ki.DOES_NOT_EXPIRE), 30, (None, False)),
    (metadata("Disabled", valid_to=NOW + days(5)), 30, (5, True)),
])
def test_material_status(meta, window, expected):
    assert ki.material_status(meta, window, NOW) == expected


def test_material_status_reads_naive_and_epoch_valid_to():
    assert ki.material_status(metadata(valid_to=(NOW + days(40)).replace(tzinfo=None)), 30, NOW) == (40, False)
    assert ki.material_status(metadata(valid_to=(NOW + days(40)).timestamp()), 30, NOW) == (40, False)


YEAR = ki.ExpiryPlan(ki.EXPIRES, valid_days=365)


@pytest.mark.parametrize("meta, plan, force, action, fragment", [
    (None, YEAR, False, ki.CREATE_AND_IMPORT, "no key has the alias"),
    (metadata("PendingImport"), YEAR, False, ki.IMPORT, "pending import"),
    (metadata(valid_to=NOW + days(200)), YEAR, False, ki.NOTHING, "200 days, beyond reimport_within_days=30"),
    (metadata(valid_to=NOW + days(200)), YEAR, True, ki.IMPORT, "force_reimport"),
    (metadata(valid_to=NOW + days(20)), YEAR, False, ki.IMPORT, "expires in 20 days"),
    (metadata("Disabled", valid_to=NOW + days(20)), YEAR, False, ki.IMPORT, "expires in 20 days"),
    (metadata(model=ki.DOES_NOT_EXPIRE), YEAR, False, ki.IMPORT, "expiration model is KEY_MATERIAL_DOES_NOT_EXPIRE"),
    (metadata(valid_to=NOW + days(5)), ki.ExpiryPlan(ki.DOES_NOT_EXPIRE), False, ki.IMPORT, "KEY_MATERIAL_DOES_NOT_EXPIRE is wanted"),
    (metadata(model=ki.DOES_NOT_EXPIRE), ki.ExpiryPlan(ki.DOES_NOT_EXPIRE), False, ki.NOTHING, "does not expire"),
    # A fixed valid_to: compared, not re-imported when equal even when due (a re-import would not move it).
    (metadata(valid_to=NOW + days(10)), ki.ExpiryPlan(ki.EXPIRES, valid_to=NOW + days(10)), False, ki.NOTHING, "as valid_to asks"),
    (metadata(valid_to=NOW + days(10)), ki.ExpiryPlan(ki.EXPIRES, valid_to=NOW + days(100)), False, ki.IMPORT, "valid_to asks for"),
    (metadata(valid_to=NOW + days(300)), ki.ExpiryPlan(ki.EXPIRES, valid_to=NOW + days(100)), False, ki.IMPORT, "valid_to asks for"),
])
def test_decide_present(meta, plan, force, action, fragment):
    decision = ki.decide_present(meta, plan, 30, force, NOW)
    assert decision.action == action
    assert fragment in decision.reason


@pytest.mark.parametrize("meta, action", [
    (None, ki.NOTHING),
    (metadata("PendingImport"), ki.NOTHING),
    (metadata(), ki.DELETE_MATERIAL),
    (metadata("Disabled"), ki.DELETE_MATERIAL),
])
def test_decide_absent_material(meta, action):
    assert ki.decide_absent_material(meta).action == action


@pytest.mark.parametrize("extra, fragment", [
    (dict(Origin="AWS_KMS"), "origin is AWS_KMS, not EXTERNAL"),
    (dict(KeyManager="AWS"), "AWS managed key"),
    (dict(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY"), "a RSA_2048 SIGN_VERIFY key"),
    (dict(MultiRegion=True), "multi-Region key"),
    (dict(KeyState="PendingDeletion"), "pending deletion; cancel it first"),
    (dict(KeyState="Unavailable"), "which is Unavailable"),
])
def test_check_key_fits_refuses(extra, fragment):
    with pytest.raises(ki.KeyImportError, match=fragment) as excinfo:
        ki.check_key_fits(metadata(**extra), "alias/x")
    assert str(excinfo.value).startswith("alias: alias/x points at " + ARN)


@pytest.mark.parametrize("state", ["Enabled", "Disabled", "PendingImport"])
def test_check_key_fits_accepts(state):
    ki.check_key_fits(metadata(state), "alias/x")


def test_after_import_predicts_the_key():
    created = ki.after_import(None, YEAR, NOW)
    assert ki.diff_view(created) == {"key_state": "Enabled", "expiration_model": ki.EXPIRES, "valid_to": ki.iso(NOW + days(365) - ki.CLOCK_SKEW_MARGIN)}
    assert ki.key_view(created, "alias/x")["arn"] is None
    pending = ki.after_import(metadata("PendingImport"), ki.ExpiryPlan(ki.DOES_NOT_EXPIRE), NOW)
    assert ki.diff_view(pending) == {"key_state": "Enabled", "expiration_model": ki.DOES_NOT_EXPIRE, "valid_to": None}
    disabled = ki.after_import(metadata("Disabled"), YEAR, NOW)
    assert disabled["KeyState"] == "Disabled"


def test_after_delete_and_views():
    before = metadata(valid_to=NOW + days(100))
    after = ki.after_delete(before)
    assert ki.diff_view(before) == {"key_state": "Enabled", "expiration_model": ki.EXPIRES, "valid_to": "2026-06-09T12:00:00+00:00"}
    assert ki.diff_view(after) == {"key_state": "PendingImport", "expiration_model": None, "valid_to": None}
    assert ki.diff_view(None) == {"key_state": "absent", "expiration_model": None, "valid_to": None}
    assert ki.key_view(before, "alias/x") == {
        "arn": ARN, "key_id": ARN.rsplit("/", 1)[1], "alias": "alias/x", "key_state": "Enabled", "origin": "EXTERNAL",
        "expiration_model": ki.EXPIRES, "valid_to": "2026-06-09T12:00:00+00:00",
    }
    assert ki.key_view(None, "alias/x") is None
