# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Key metadata verdicts of kms_policy_check: each unfit key gives its own stable code and a fix."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.kms import key_check

ARN = "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"
NOW = datetime.datetime(2026, 11, 28, tzinfo=datetime.timezone.utc)
GOOD = {"Arn": ARN, "KeyId": ARN.rsplit("/", 1)[1], "KeyState": "Enabled", "Enabled": True, "KeySpec": "SYMMETRIC_DEFAULT",
        "KeyUsage": "ENCRYPT_DECRYPT", "Origin": "AWS_KMS", "KeyManager": "CUSTOMER", "MultiRegion": False}


def codes(meta, region="us-east-1", days=30):
    return [f["code"] for f in key_check.metadata_findings({**GOOD, **meta}, ARN, region, NOW, days)]


def test_a_good_key_has_no_findings():
    assert codes({}) == []


@pytest.mark.parametrize("meta, code", [
    ({"KeyState": "Disabled", "Enabled": False}, "KEY_DISABLED"),
    ({"KeyState": "PendingDeletion", "DeletionDate": NOW + datetime.timedelta(days=7)}, "KEY_PENDING_DELETION"),
    ({"KeyState": "PendingImport", "Origin": "EXTERNAL"}, "KEY_PENDING_IMPORT"),
    ({"KeyState": "Unavailable"}, "KEY_UNAVAILABLE"),
    ({"KeyState": "Creating"}, "KEY_NOT_READY"),
    ({"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"}, "KEY_NOT_SYMMETRIC"),
    ({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}, "KEY_WRONG_USAGE"),
    ({"KeyManager": "AWS"}, "KEY_AWS_MANAGED"),
])
def test_unfit_keys(meta, code):
    assert code in codes(meta)


def test_each_unfit_state_has_its_own_code_and_a_fix():
    states = ["Disabled", "PendingDeletion", "PendingImport"]
    found = [key_check.metadata_findings({**GOOD, "KeyState": s}, ARN, "us-east-1", NOW, 30)[0] for s in states]
    assert len({f["code"] for f in found}) == 3
    assert all(f["severity"] == "error" and f["fix"] for f in found)
    assert "enable-key" in found[0]["fix"] and "cancel-key-deletion" in found[1]["fix"] and "kms_key_import" in found[2]["fix"]


def test_key_in_another_region():
    [f] = key_check.metadata_findings(GOOD, ARN, "eu-west-1", NOW, 30)
    assert f["code"] == "KEY_WRONG_REGION" and "us-east-1" in f["message"] and "eu-west-1" in f["message"]


def test_multi_region_key_names_its_replica():
    meta = {**GOOD, "MultiRegion": True, "MultiRegionConfiguration": {"ReplicaKeys": [
        {"Arn": "arn:aws:kms:eu-west-1:111111111101:key/mrk-1", "Region": "eu-west-1"}]}}
    [f] = key_check.metadata_findings(meta, ARN, "eu-west-1", NOW, 30)
    assert f["code"] == "KEY_WRONG_REGION" and "arn:aws:kms:eu-west-1:111111111101:key/mrk-1" in f["fix"]


@pytest.mark.parametrize("valid_days, code, severity", [
    (-1, "KEY_MATERIAL_EXPIRED", "error"),
    (5, "KEY_MATERIAL_EXPIRES_SOON", "warning"),
    (90, None, None),
])
def test_imported_material_expiry(valid_days, code, severity):
    meta = {**GOOD, "Origin": "EXTERNAL", "ExpirationModel": "KEY_MATERIAL_EXPIRES", "ValidTo": NOW + datetime.timedelta(days=valid_days)}
    found = key_check.metadata_findings(meta, ARN, "us-east-1", NOW, 30)
    assert [(f["code"], f["severity"]) for f in found] == ([(code, severity)] if code else [])


def test_material_that_does_not_expire_is_fine():
    assert codes({"Origin": "EXTERNAL", "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}) == []


def test_key_summary():
    s = key_check.key_summary({**GOOD, "ValidTo": "2027-01-01T00:00:00Z"}, ARN, "us-west-2", True)
    assert (s["state"], s["region"], s["region_matches"], s["rotation_enabled"]) == ("Enabled", "us-east-1", False, True)
    assert s["valid_to"].startswith("2027-01-01")


USER = "arn:aws:iam::222222222222:user/mattermost-cloud-prod-provisioning-vpc-0123abcd"


@pytest.mark.parametrize("caller, principal", [
    ("arn:aws:sts::222222222222:assumed-role/mattermost-byok-automation/byok-acme", "arn:aws:iam::222222222222:role/mattermost-byok-automation"),
    (USER, USER),
])
def test_caller_principal(caller, principal):
    assert key_check.caller_principal(caller) == principal


def test_summary_lists_errors_only():
    findings = [key_check.finding("error", "KEY_DISABLED", "disabled"), key_check.finding("info", "POLICY_DELEGATED_TO_IAM", "iam")]
    text = key_check.summarize(ARN, findings)
    assert text.splitlines() == [f"{ARN}: 1 problem(s) to fix before the key is used:", "- [KEY_DISABLED] disabled"]
    assert key_check.summarize(ARN, findings[1:]) == f"{ARN}: ok (1 note(s))"
