# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The key step's decisions and records (module_utils/kms/key_step_record.py), case by case."""

from __future__ import annotations

import json

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.kms import key_step_record as r

K1 = "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"
K2 = "arn:aws:kms:us-west-2:111111111101:key/0acbe000-0000-4000-8000-000000000002"
KEY1 = {"arn": K1, "region": "us-east-1", "services": ["s3", "rds"]}
KEY2 = {"arn": K2, "region": "us-west-2", "services": ["rds"]}
CONFIG = {"key_source": "customer", "services": ["s3", "rds"], "service_keys": {"s3": K1, "rds": K1}, "distinct_keys": [KEY1, KEY2]}


@pytest.mark.parametrize("source, material, owner, wanted", [
    ("external", "bWF0ZXJpYWw=", None, True),
    ("external", "bWF0ZXJpYWw=", "acme", True),
    ("external", "bWF0ZXJpYWw=", "globex", False),  # an AWX credential's material belongs to one named customer
    ("external", None, None, False),
    ("customer", "bWF0ZXJpYWw=", None, False),
    (None, "bWF0ZXJpYWw=", "acme", False),
])
def test_material_is_imported_only_for_its_external_customer(source, material, owner, wanted):
    assert r.material_import_wanted({"key_source": source}, material, owner, "acme") is wanted


def test_import_args_give_valid_days_only_for_expiring_material():
    expiring = r.import_args(KEY2, "alias/mattermost-byok-acme", "m", "KEY_MATERIAL_EXPIRES", 365, 30)
    assert expiring == {"alias": "alias/mattermost-byok-acme", "key_material": "m", "expiration_model": "KEY_MATERIAL_EXPIRES",
                        "valid_days": 365, "reimport_within_days": 30, "region": "us-west-2"}
    assert r.import_args(KEY1, "a", "m", "KEY_MATERIAL_DOES_NOT_EXPIRE", 365, 30)["valid_days"] is None


def test_an_alias_leading_elsewhere_is_named_with_both_keys():
    other = K1.replace("0001", "0009")
    messages = r.alias_mismatches("alias/x", [KEY1, KEY2], [{"key": {"arn": other}}, {"key": {"arn": K2}}])
    assert messages == [f"alias/x in us-east-1 is {other}, but byok_keys names {K1}: point the alias at the key in byok_keys, "
                        "or correct byok_keys"]


def test_an_alias_may_lead_to_another_key_of_the_inventory_and_results_without_key_are_skipped():
    # The check is "a key the inventory names", as the role's assert was; a result without `key` is not checked.
    assert r.alias_mismatches("alias/x", [KEY1, KEY2], [{"key": {"arn": K2}}, {"changed": False}]) == []
    assert r.alias_mismatches("alias/x", [], []) == []


def test_policy_file_is_named_by_key_id():
    assert r.policy_file("/inv/key-policies", K1) == "/inv/key-policies/0acbe000-0000-4000-8000-000000000001.json"


def test_check_args_cover_the_union_of_services_and_never_fail_the_module():
    args = r.check_args(KEY1, CONFIG, '{"Statement": []}', False, 14)
    assert args == {"key_arn": K1, "expected_region": "us-east-1", "services": ["s3", "rds"], "config": CONFIG,
                    "policy": '{"Statement": []}', "probe": False, "min_material_validity_days": 14, "fail_on_error": False}


def test_canary_reads_only_installations_with_credentials_and_only_with_s3():
    installations = [
        {"id": "one", "buckets": ["b1", "b1-extra"], "s3_identity_arn": "arn:aws:iam::2:user/one", "canary_credentials": {"secret": "s1"}},
        {"id": "two", "buckets": ["b2"]},
        {"buckets": ["b3"], "canary_credentials": {"role_arn": "arn:aws:iam::2:role/c"}},
        {"id": "four", "buckets": ["b4"], "canary_credentials": {}},
    ]
    reads = r.canary_reads(CONFIG, installations)
    assert [read[0] for read in reads] == ["one", "2"]
    assert reads[0][1] == {"bucket": "b1", "key_arn": K1, "identity": "arn:aws:iam::2:user/one", "credentials_secret": "s1",
                           "credentials_role_arn": None, "variable": "byok_mattermost_installations[0].canary_credentials",
                           "credentials_only": True}
    assert reads[1][1]["variable"] == "byok_mattermost_installations[2].canary_credentials"
    assert reads[1][1]["credentials_role_arn"] == "arn:aws:iam::2:role/c" and reads[1][1]["identity"] is None
    assert r.canary_reads(dict(CONFIG, services=["rds"]), installations) == []
    assert r.canary_reads(CONFIG, []) == [] and r.canary_reads(CONFIG, None) == []


@pytest.mark.parametrize("fix, passed, fixed", [(True, True, True), (True, False, False), (False, True, False), (False, False, False)])
def test_iam_is_fixed_only_for_a_key_whose_check_passed(fix, passed, fixed):
    args = r.iam_args(KEY1, {"passed": passed, "verdicts": [{"principal": "p"}]}, CONFIG, ["arn:aws:iam::2:user/s"], None, fix)
    assert args["fix"] is fixed
    assert args["key_verdicts"] == [{"principal": "p"}] and args["fail_on_error"] is False


def test_iam_checks_the_servers_only_on_a_key_s3_uses():
    assert r.iam_args(KEY1, {}, CONFIG, ["s"], "arn:role", True)["server_identities"] == ["s"]
    args = r.iam_args(KEY2, {}, CONFIG, ["s"], "arn:role", True)
    assert args["server_identities"] == [] and args["automation_role_arn"] == "arn:role" and args["key_verdicts"] == []


def test_failed_messages_keep_every_failed_item_in_order():
    results = [{"failed": True, "msg": "first"}, {"passed": True}, {"failed": True}, {"failed": False, "msg": "no"}, {"failed": True, "msg": "last"}]
    assert r.failed_messages(results) == ["first", "failed", "last"]
    assert r.failed_messages([]) == []


def iam(passed=True, summary="iam ok", kops=None):
    return {"changed": False, "invocation": {"module_args": {"config": CONFIG}}, "passed": passed, "summary": summary,
            "principals": [], "changes": [], "kops_additional_policies": kops or {}, "delegations": [], "findings": [], "warnings": []}


def check(passed=True, summary="check ok"):
    return {"changed": False, "passed": passed, "summary": summary, "key": {"arn": K1}, "policy_source": "file", "findings": [],
            "verdicts": [], "probe": {"ran": True}, "invocation": {}}


def test_the_report_keeps_what_was_checked_and_found_not_the_invocation():
    records = r.key_check_records([KEY1, KEY2], [check(), check(False, "k2 bad")], [iam(), iam(False, "iam bad")])
    assert [list(rec) for rec in records] == [["key_arn", "services", "passed", "summary", "key", "policy_source", "findings",
                                               "verdicts", "probe", "iam"]] * 2
    assert records[1]["key_arn"] == K2 and records[1]["services"] == ["rds"] and records[1]["passed"] is False
    assert list(records[0]["iam"]) == ["passed", "summary", "principals", "changes", "kops_additional_policies", "delegations", "findings"]
    assert records[1]["iam"]["summary"] == "iam bad"


def test_the_report_of_a_key_without_iam_result_has_an_empty_iam():
    assert r.key_check_records([KEY1], [check()], [])[0]["iam"] == {}


def test_the_report_text_is_to_nice_json_unsorted_with_a_newline():
    records = r.key_check_records([KEY1], [check()], [iam()])
    text = r.key_checks_json(records)
    assert text.endswith("}\n]\n") and json.loads(text) == records
    assert text.index('"key_arn"') < text.index('"services"') < text.index('"iam"')  # the record's order, not sorted
    assert '\n    {\n        "key_arn": ' in text  # indent 4, ": " separators
    assert r.key_checks_json([]) == "[]\n"


def test_kops_policies_merge_over_keys_and_leave_out_roles_without_statements():
    s1, s2, s3 = {"Sid": "a"}, {"Sid": "b"}, {"Sid": "c"}
    merged = r.kops_additional_policies([iam(kops={"node": [s1]}), iam(kops={"node": [s2], "master": [s3]}), iam()])
    assert merged == {"node": [s1, s2], "master": [s3]} and list(merged) == ["node", "master"]
    assert r.kops_additional_policies([iam(kops={"master": [s3], "node": []})]) == {"master": [s3]}
    assert r.kops_additional_policies([iam(), {"passed": True}]) == {}
    assert r.kops_additional_policies([]) == {}


def test_outcome_ready_joins_every_summary():
    assert r.outcome([check(summary="k1"), check(summary="k2")], [iam(summary="i1"), iam(summary="i2")]) == (True, "k1; k2; i1; i2")


def test_outcome_not_ready_lists_what_did_not_pass_one_a_line():
    ready, msg = r.outcome([check(False, "k1 lacks"), check(summary="k2")], [iam(summary="i1"), iam(False, "i2 lacks")])
    assert not ready and msg == "k1 lacks\ni2 lacks"
    assert r.outcome([check()], [iam(False, "iam only")]) == (False, "iam only")


def test_outcome_of_no_keys_is_ready_and_empty():
    assert r.outcome([], []) == (True, "")


@pytest.mark.parametrize("result, verdict", [
    ({"passed": True, "summary": "fine"}, "passed"),
    ({"passed": False, "summary": "bad"}, "NOT passed"),
    ({"failed": True, "msg": "boom", "passed": False}, "failed"),
    ({"changed": True}, "changed"),
    ({"changed": False}, "ok"),
])
def test_progress_lines_name_the_customer_the_module_and_the_key(result, verdict):
    assert r.progress_line("acme", "kms_policy_check", K1, result) == f"acme: kms_policy_check {K1}: {verdict}"
