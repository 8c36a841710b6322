# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""mattermost.byok.kms_key_import through ansible-playbook against the local AWS, checked with boto3 directly.

The local AWS unwraps imported material for real and encrypts with it, so a ciphertext made before the material
was deleted decrypts again only if the very same material was imported back.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
import sys

import pytest
from botocore.exceptions import ClientError

from tests.integration import runner

PROVIDER = "222222222222"
PLAYBOOK = os.path.join(runner.ROOT, "tests", "integration", "playbooks", "kms_key_import.yml")
UTC = datetime.timezone.utc


class Run:
    """One ansible-playbook run of the module: the process and the registered result."""

    def __init__(self, proc: subprocess.CompletedProcess, result: dict):
        self.proc = proc
        self.result = result

    @property
    def output(self) -> str:
        return self.proc.stdout + self.proc.stderr


@pytest.fixture
def play(local_aws, tmp_path):
    """play(alias, material_b64=None, *flags, **extra_vars) -> Run; the material travels in the environment only."""
    counter = iter(range(1000))

    def run(alias: str, material: str | None = None, *flags: str, **extra_vars) -> Run:
        n = next(counter)
        result_path = tmp_path / f"result-{n}.json"
        vars_path = tmp_path / f"vars-{n}.json"
        vars_path.write_text(json.dumps({"alias": alias, "result_path": str(result_path), **extra_vars}))
        env = runner.ansible_env(local_aws.endpoint_url, str(tmp_path))
        env.update(local_aws.env(account=PROVIDER))
        env.pop("BYOK_TEST_KEY_MATERIAL", None)
        if material is not None:
            env["BYOK_TEST_KEY_MATERIAL"] = material
        cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", PLAYBOOK,
               "-e", f"@{vars_path}", *flags]
        proc = subprocess.run(cmd, cwd=runner.ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        return Run(proc, json.loads(result_path.read_text()))

    return run


@pytest.fixture
def kms(local_aws):
    return local_aws.client("kms", account=PROVIDER)


def new_material() -> tuple[bytes, str]:
    material = os.urandom(32)
    return material, base64.b64encode(material).decode()


def describe(kms, alias):
    return kms.describe_key(KeyId=alias)["KeyMetadata"]


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def keys_tagged(kms, value):
    found = []
    for page in kms.get_paginator("list_keys").paginate():
        for key in page["Keys"]:
            tags = kms.list_resource_tags(KeyId=key["KeyId"]).get("Tags", [])
            if {"TagKey": "test", "TagValue": value} in tags:
                found.append(key["KeyArn"])
    return found


def assert_ok(run: Run):
    assert not run.result.get("failed"), run.result.get("msg")


def test_create_import_then_nothing_to_do(play, kms, unique_name):
    alias = f"alias/{unique_name('byok')}"
    tag = unique_name("tag")
    b64 = new_material()[1]
    first = play(alias, b64, valid_days=200, key_tags={"test": tag, "customer": "acme"})
    assert_ok(first)
    assert first.result["changed"] and first.result["created"] and first.result["imported"]
    assert first.result["reimport_due"] is False and first.result["expires_in_days"] in (199, 200)

    metadata = describe(kms, alias)
    assert first.result["key"] == {
        "arn": metadata["Arn"], "key_id": metadata["KeyId"], "alias": alias, "key_state": "Enabled", "origin": "EXTERNAL",
        "expiration_model": "KEY_MATERIAL_EXPIRES", "valid_to": metadata["ValidTo"].astimezone(UTC).isoformat(),
    }
    assert (metadata["Origin"], metadata["KeyState"], metadata["KeySpec"], metadata["KeyUsage"], metadata["MultiRegion"]) == (
        "EXTERNAL", "Enabled", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", False)
    assert metadata["Description"].startswith("Mattermost Cloud Dedicated BYOK")
    until = metadata["ValidTo"] - datetime.datetime.now(UTC)
    assert datetime.timedelta(days=199, hours=23) < until <= datetime.timedelta(days=200)
    assert {"TagKey": "customer", "TagValue": "acme"} in kms.list_resource_tags(KeyId=metadata["KeyId"])["Tags"]
    blob = kms.encrypt(KeyId=alias, Plaintext=b"hello")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"hello"

    second = play(alias, b64, valid_days=200, key_tags={"test": tag, "customer": "acme"})
    assert_ok(second)
    assert (second.result["changed"], second.result["created"], second.result["imported"]) == (False, False, False)
    assert second.result["key"]["arn"] == metadata["Arn"]
    assert "beyond reimport_within_days=30" in second.result["reason"]
    assert describe(kms, alias)["ValidTo"] == metadata["ValidTo"]  # nothing was re-imported
    assert keys_tagged(kms, tag) == [metadata["Arn"]]  # never a second key

    checked = play(alias, b64, "--check", valid_days=200)
    assert_ok(checked)
    assert checked.result["changed"] is False


def test_check_mode_on_a_fresh_alias_changes_nothing(play, kms, unique_name):
    alias = f"alias/{unique_name('byok')}"
    tag = unique_name("tag")
    run = play(alias, new_material()[1], "--check", "--diff", valid_days=90, key_tags={"test": tag})
    assert_ok(run)
    assert (run.result["changed"], run.result["created"], run.result["imported"]) == (True, True, True)
    assert run.result["key"]["arn"] is None and run.result["key"]["key_state"] == "Enabled"
    assert run.result["diff"]["before"] == {"key_state": "absent", "expiration_model": None, "valid_to": None}
    assert run.result["diff"]["after"]["expiration_model"] == "KEY_MATERIAL_EXPIRES"
    with pytest.raises(ClientError) as excinfo:
        describe(kms, alias)
    assert error_code(excinfo) == "NotFoundException"
    assert keys_tagged(kms, tag) == []


def test_material_from_a_file_on_the_host(play, kms, unique_name, tmp_path):
    alias = f"alias/{unique_name('byok')}"
    material, b64 = new_material()
    raw = tmp_path / "customer.key"
    raw.write_bytes(material)
    run = play(alias, None, key_material_path=str(raw), expiration_model="KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert_ok(run)
    assert run.result["imported"] and run.result["expires_in_days"] is None and run.result["key"]["valid_to"] is None
    metadata = describe(kms, alias)
    assert (metadata["KeyState"], metadata["ExpirationModel"]) == ("Enabled", "KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert "ValidTo" not in metadata
    # The same material as base64 in a file proves itself: AWS takes it again.
    text = tmp_path / "customer.b64"
    text.write_text(b64 + "\n")
    again = play(alias, None, key_material_path=str(text), expiration_model="KEY_MATERIAL_DOES_NOT_EXPIRE", force_reimport=True)
    assert_ok(again)
    assert again.result["imported"] is True


def test_round_trip_delete_and_reimport_the_same_material(play, kms, unique_name):
    alias = f"alias/{unique_name('byok')}"
    b64 = new_material()[1]
    assert_ok(play(alias, b64, expiration_model="KEY_MATERIAL_DOES_NOT_EXPIRE"))
    blob = kms.encrypt(KeyId=alias, Plaintext=b"customer data")["CiphertextBlob"]

    refused = play(alias, None, import_state="absent_material")
    assert refused.result["failed"] and refused.result["msg"].startswith("allow_delete_material: must be true")
    assert describe(kms, alias)["KeyState"] == "Enabled"

    preview = play(alias, None, "--check", import_state="absent_material", allow_delete_material=True)
    assert (preview.result["changed"], preview.result["material_deleted"]) == (True, True)
    assert describe(kms, alias)["KeyState"] == "Enabled"

    deleted = play(alias, None, "--diff", import_state="absent_material", allow_delete_material=True)
    assert_ok(deleted)
    assert (deleted.result["changed"], deleted.result["material_deleted"], deleted.result["reimport_due"]) == (True, True, True)
    assert deleted.result["diff"] == {
        "before": {"key_state": "Enabled", "expiration_model": "KEY_MATERIAL_DOES_NOT_EXPIRE", "valid_to": None},
        "after": {"key_state": "PendingImport", "expiration_model": None, "valid_to": None},
    }
    metadata = describe(kms, alias)
    assert (metadata["KeyState"], metadata["Enabled"]) == ("PendingImport", False)
    with pytest.raises(ClientError) as excinfo:
        kms.encrypt(KeyId=alias, Plaintext=b"x")
    assert error_code(excinfo) == "KMSInvalidStateException"
    with pytest.raises(ClientError) as excinfo:
        kms.decrypt(CiphertextBlob=blob)
    assert error_code(excinfo) == "KMSInvalidStateException"

    again = play(alias, None, import_state="absent_material", allow_delete_material=True)
    assert again.result["changed"] is False

    restored = play(alias, b64, expiration_model="KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert_ok(restored)
    assert (restored.result["changed"], restored.result["created"], restored.result["imported"]) == (True, False, True)
    assert "pending import" in restored.result["reason"]
    assert describe(kms, alias)["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"customer data"


def test_reimport_when_due_moves_valid_to(play, kms, unique_name):
    alias = f"alias/{unique_name('byok')}"
    b64 = new_material()[1]
    assert_ok(play(alias, b64, valid_days=10, reimport_within_days=5))
    before = describe(kms, alias)
    assert datetime.timedelta(days=9) < before["ValidTo"] - datetime.datetime.now(UTC) <= datetime.timedelta(days=10)
    blob = kms.encrypt(KeyId=alias, Plaintext=b"old")["CiphertextBlob"]

    not_yet = play(alias, b64, valid_days=10, reimport_within_days=5)
    assert not_yet.result["changed"] is False and not_yet.result["reimport_due"] is False

    preview = play(alias, b64, "--check", "--diff", valid_days=365, reimport_within_days=30)
    assert_ok(preview)
    assert (preview.result["changed"], preview.result["imported"]) == (True, True)
    assert "within reimport_within_days=30" in preview.result["reason"]
    assert preview.result["diff"]["before"]["valid_to"] == before["ValidTo"].astimezone(UTC).isoformat()
    assert preview.result["diff"]["after"]["valid_to"] > preview.result["diff"]["before"]["valid_to"]
    assert describe(kms, alias)["ValidTo"] == before["ValidTo"]  # check mode changed nothing

    due = play(alias, b64, valid_days=365, reimport_within_days=30)
    assert_ok(due)
    assert (due.result["changed"], due.result["created"], due.result["imported"], due.result["reimport_due"]) == (True, False, True, False)
    after = describe(kms, alias)
    assert after["Arn"] == before["Arn"]
    assert datetime.timedelta(days=364) < after["ValidTo"] - datetime.datetime.now(UTC) <= datetime.timedelta(days=365)
    assert due.result["key"]["valid_to"] == after["ValidTo"].astimezone(UTC).isoformat()
    assert due.result["expires_in_days"] == 364
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"old"

    settled = play(alias, b64, valid_days=365, reimport_within_days=30)
    assert settled.result["changed"] is False


def test_other_material_is_refused_clearly(play, kms, unique_name):
    alias = f"alias/{unique_name('byok')}"
    first = new_material()[1]
    other = new_material()[1]
    assert_ok(play(alias, first, valid_days=100))
    blob = kms.encrypt(KeyId=alias, Plaintext=b"kept")["CiphertextBlob"]

    # Not due: AWS does not reveal the material, so there is nothing to compare and nothing is done.
    quiet = play(alias, other, valid_days=100)
    assert quiet.result["changed"] is False

    refused = play(alias, other, valid_days=100, force_reimport=True)
    assert refused.result["failed"] is True
    assert "this key was imported with other material" in refused.result["msg"]
    assert refused.result["error"]["code"] == "IncorrectKeyMaterialException"
    metadata = describe(kms, alias)
    assert metadata["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"


def test_the_material_never_appears_in_output_or_result(play, kms, unique_name, tmp_path):
    alias = f"alias/{unique_name('byok')}"
    material, b64 = new_material()
    other = new_material()[1]
    spellings = {b64, material.hex(), base64.urlsafe_b64encode(material).decode(), b64[:24]}
    file_path = tmp_path / "material.b64"
    file_path.write_text(b64 + "\n")
    runs = [
        play(alias, b64, "-vvv", "--diff", valid_days=100),
        play(alias, b64, "-vvv", "--diff", valid_days=100, force_reimport=True),
        play(alias, None, "-vvv", "--diff", key_material_path=str(file_path), valid_days=100, force_reimport=True),
        play(alias, other, "-vvv", valid_days=100, force_reimport=True),  # fails: other material
        play(f"alias/{unique_name('byok')}", base64.b64encode(material[:31]).decode(), "-vvv", valid_days=100),  # fails: 31 bytes
    ]
    assert [bool(r.result.get("failed")) for r in runs] == [False, False, False, True, True]
    for run in runs:
        text = run.output + json.dumps(run.result)
        for secret in spellings:
            assert secret not in text
    assert describe(kms, alias)["KeyState"] == "Enabled"


@pytest.mark.parametrize("case, variables, message", [
    ("short", dict(material=base64.b64encode(bytes(range(16))).decode(), valid_days=90), "key_material: decodes to 16 bytes"),
    ("not-base64", dict(material="this is not base64!", valid_days=90), "key_material: not valid base64"),
    ("past", dict(valid_to="2020-01-01"), "valid_to: 2020-01-01T00:00:00+00:00 is in the past"),
    ("no-end", dict(), "valid_days: expiration_model=KEY_MATERIAL_EXPIRES needs an end date"),
    ("both", dict(key_material_path="/etc/hostname", valid_days=90), "key_material, key_material_path: give one of them, not both"),
    ("neither", dict(material=None, valid_days=90), "key_material: missing"),
    ("window", dict(valid_days=30), "valid_days: 30 is not more than reimport_within_days=30"),
    ("multi-region", dict(valid_days=90, multi_region=True), "multi_region: only false"),
])
def test_bad_input_fails_before_any_change(play, kms, unique_name, case, variables, message):
    alias = f"alias/{unique_name(case)}"
    variables = dict(variables)
    material = variables.pop("material", new_material()[1])
    run = play(alias, material, **variables)
    assert run.result["failed"] is True
    assert run.result["msg"].startswith(message), run.result["msg"]
    with pytest.raises(ClientError) as excinfo:
        describe(kms, alias)
    assert error_code(excinfo) == "NotFoundException"


@pytest.mark.parametrize("alias, message", [
    ("mattermost-byok-acme", "alias: 'mattermost-byok-acme' must start with alias/"),
    ("alias/aws/ebs", "alias: 'alias/aws/ebs' is in the alias/aws/ namespace"),
])
def test_bad_alias_fails_naming_it(play, alias, message):
    run = play(alias, new_material()[1], valid_days=90)
    assert run.result["failed"] is True and run.result["msg"].startswith(message)


def test_an_alias_of_a_key_of_another_origin_is_refused(play, kms, unique_name):
    alias = f"alias/{unique_name('byok')}"
    key = kms.create_key(Description="not for import")["KeyMetadata"]
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    run = play(alias, new_material()[1], valid_days=90)
    assert run.result["failed"] is True
    assert f"alias: {alias} points at {key['Arn']}, whose origin is AWS_KMS, not EXTERNAL" in run.result["msg"]


def test_absent_material_without_a_key_is_a_no_op(play, unique_name):
    run = play(f"alias/{unique_name('byok')}", None, import_state="absent_material", allow_delete_material=True)
    assert_ok(run)
    assert (run.result["changed"], run.result["key"], run.result["reimport_due"]) == (False, None, False)


def test_a_fixed_valid_to_is_compared_with_the_key(play, kms, unique_name):
    alias = f"alias/{unique_name('byok')}"
    b64 = new_material()[1]
    today = datetime.datetime.now(UTC).date()
    first_end, later_end = (today + datetime.timedelta(days=120)).isoformat(), (today + datetime.timedelta(days=200)).isoformat()
    assert_ok(play(alias, b64, valid_to=first_end))
    assert describe(kms, alias)["ValidTo"] == datetime.datetime.fromisoformat(first_end).replace(tzinfo=UTC)

    same = play(alias, b64, valid_to=first_end)
    assert same.result["changed"] is False and "as valid_to asks" in same.result["reason"]

    moved = play(alias, b64, valid_to=later_end)
    assert (moved.result["changed"], moved.result["imported"]) == (True, True)
    assert describe(kms, alias)["ValidTo"] == datetime.datetime.fromisoformat(later_end).replace(tzinfo=UTC)
