# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The S3 step's decisions and records: what each server sends, the canary pairs, the rounds' state, the summaries."""

from __future__ import annotations

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.s3 import step_record
from ansible_collections.mattermost.byok.plugins.module_utils.s3.step_record import Rounds

TOTALS = {"scanned": 10, "re_encrypted": 7, "already_on_key": 2, "skipped": 1, "failed": 0}


def result(bucket, complete=True, changed=True, **extra):
    return dict({"bucket": bucket, "complete": complete, "changed": changed, "pass_totals": TOTALS,
                 "progress_line": f"{bucket}: 10/10 objects (100.0%), 5 obj/s, done", "objects": ["a", "b"],
                 "requests": 3}, **extra)


# --- what each server sends

@pytest.mark.parametrize("installation, server, server_sse, expected", [
    ({"id": "a"}, None, {}, True),                                               # the provisioner's rule: aws-s3 forced on
    ({"id": "a", "filestore": "bifrost"}, None, {}, False),                      # off for bifrost
    ({"id": "a", "filestore": "aws-s3"}, None, {}, True),
    ({"id": "a", "sse_enabled": False}, None, {}, False),                        # the installation says
    ({"id": "a", "sse_enabled": False}, {"installations": [{"id": "a", "sends_sse_s3": True}]}, {}, True),  # read wins
    ({"id": "a"}, {"installations": [{"id": "a", "sends_sse_s3": False}]}, {}, False),  # read off stays off
    ({"id": "a"}, {"installations": [{"id": "a", "sends_sse_s3": None}]}, {}, True),    # unread: the rule
    ({"id": "a", "filestore": "bifrost"}, {"installations": [{"id": "b", "sends_sse_s3": True}]}, {}, False),  # another one's
    ({"id": "a"}, {"installations": [{"id": "a", "sends_sse_s3": True}]}, {"a": False}, False),  # byok_s3_server_sse first
    ({"id": "a"}, {"installations": []}, {"b": False}, True),
])
def test_what_the_server_sends(installation, server, server_sse, expected):
    assert step_record.server_sends_sse(installation, server, server_sse) is expected


# --- canary pairs

def test_canary_pairs_keep_the_customers_buckets_in_order_with_the_index():
    one = {"id": "one", "buckets": ["b1", "other", "b2"]}
    none = {"id": "none"}
    two = {"id": "two", "buckets": ["b3"]}
    pairs = step_record.canary_pairs([one, none, two], ["b1", "b2", "b3"])
    assert [(i, inst["id"], b) for i, inst, b in pairs] == [(0, "one", "b1"), (0, "one", "b2"), (2, "two", "b3")]
    assert step_record.canary_pairs([], ["b1"]) == [] and step_record.canary_pairs([one], []) == []


def test_canary_label():
    assert step_record.canary_label({"id": "inst"}, "b") == "inst: b"
    assert step_record.canary_label({}, "b") == "installation: b"


# --- a round's buckets

@pytest.mark.parametrize("known, stopgap, expected", [
    ({"b": {"writers_follow_default": True}}, False, True),
    ({"b": {"writers_follow_default": True}}, True, False),     # the stopgap's off can be undone at any time
    ({"b": {"writers_follow_default": False}}, False, False),
    ({}, False, False),                                          # not read: time not trusted
    ({"b": {}}, False, False),
])
def test_round_buckets(known, stopgap, expected):
    assert step_record.round_buckets(["b"], {"buckets": known}, stopgap) == [{"name": "b", "writers_follow_default": expected}]


def test_round_buckets_without_a_server_reading():
    assert step_record.round_buckets(["a", "b"], None, False) == [
        {"name": "a", "writers_follow_default": False}, {"name": "b", "writers_follow_default": False}]


# --- the rounds' state

def test_first_round_finishes_everything():
    rounds = Rounds(["a", "b"])
    assert rounds.pending == ["a", "b"] and rounds.number == 0
    rounds.add([result("a", encryption_changed=True, cutoff="t"), result("b", changed=False)])
    assert rounds.number == 1 and rounds.pending == []
    assert rounds.latest["a"] == {"complete": True, "pass_totals": TOTALS, "cutoff": "t"}  # no per-object lists
    assert rounds.last["a"]["requests"] == 3
    assert rounds.changed == ["a"] and rounds.encryption_changed == ["a"]
    assert not rounds.another(200, check_mode=False)


def test_later_rounds_take_the_pending_only_and_keep_the_earlier_facts():
    rounds = Rounds(["a", "b"])
    rounds.add([result("a", complete=False, encryption_changed=True), result("b")])
    assert rounds.pending == ["a"] and rounds.another(200, check_mode=False)
    rounds.add([result("a", complete=False, changed=False)])
    assert rounds.pending == ["a"] and rounds.changed == ["a", "b"] and rounds.encryption_changed == ["a"]
    rounds.add([result("a", pass_totals={"scanned": 99})])
    assert rounds.number == 3 and rounds.pending == [] and rounds.latest["a"]["pass_totals"] == {"scanned": 99}
    assert rounds.latest["b"]["complete"] and rounds.changed == ["a", "b"]


def test_a_result_without_complete_stays_pending():
    rounds = Rounds(["a"])
    rounds.add([{"bucket": "a", "changed": False}])
    assert rounds.pending == ["a"] and rounds.latest["a"] == {}


def test_a_bucket_waiting_for_confirmation_is_not_run_again():
    rounds = Rounds(["a", "b"])
    job = {"bucket": "a", "digest": "d1"}
    rounds.add([result("a", complete=False, jobs_awaiting_confirmation=[job]), result("b", complete=False)])
    assert rounds.pending == ["b"] and rounds.awaiting_confirmation == [job]
    assert rounds.latest["a"]["jobs_awaiting_confirmation"] == [job]


@pytest.mark.parametrize("number, max_rounds, check_mode, expected", [
    (1, 200, False, True), (1, 1, False, False), (2, 3, False, True), (3, 3, False, False),
    (1, 200, True, False),  # check mode: one round
    (1, 0, False, False),
])
def test_another_round(number, max_rounds, check_mode, expected):
    rounds = Rounds(["a"])
    for _round in range(number):
        rounds.add([result("a", complete=False)])
    assert rounds.another(max_rounds, check_mode) is expected


def test_nothing_pending_means_no_other_round():
    rounds = Rounds(["a"])
    rounds.add([result("a")])
    assert not rounds.another(200, check_mode=False)


def test_progress_lines_in_the_round_order():
    assert step_record.progress_lines([result("a"), {"bucket": "b"}, result("c")]) == [
        "a: 10/10 objects (100.0%), 5 obj/s, done", "c: 10/10 objects (100.0%), 5 obj/s, done"]


# --- summaries and records

def records(buckets, rounds, server=None, stopgap=(), canaries=(), check_mode=False):
    return step_record.bucket_records(buckets, rounds, server or {"installations": [], "findings": []}, list(stopgap),
                                      list(canaries), check_mode)


def done(*results):
    rounds = Rounds([r["bucket"] for r in results])
    rounds.add(list(results))
    return rounds


def test_a_finished_bucket():
    [record] = records(["a"], done(result("a")))
    assert record == {"step": "s3", "resource": "a", "changed": True, "disruptive": False, "deferred": False,
                      "estimated_disruption_seconds": None,
                      "summary": "10 objects: 7 re-encrypted, 2 already on the key, 1 skipped, 0 failed",
                      "status": "done", "findings": [], "canary": []}
    assert list(record) == ["step", "resource", "changed", "disruptive", "deferred", "estimated_disruption_seconds",
                            "summary", "status", "findings", "canary"]


def test_check_mode_words_and_the_default_encryption():
    [record] = records(["a"], done(result("a", encryption_changed=True)), check_mode=True)
    assert record["summary"] == ("default encryption to be set on the key; 10 objects: 7 to re-encrypt, 2 already on the key, "
                                 "1 skipped, 0 failed")
    [record] = records(["a"], done(result("a", encryption_changed=True)))
    assert record["summary"].startswith("default encryption set on the key; 10 objects: 7 re-encrypted")


def test_not_finished():
    [record] = records(["a"], done(result("a", complete=False, changed=False)))
    assert record["status"] == "in_progress" and not record["changed"]
    assert record["summary"].endswith("0 failed; not finished, resumes on the next run")


def test_a_bucket_no_round_reached_counts_zero():
    [record] = records(["a"], Rounds(["a"]))
    assert record["summary"] == "0 objects: 0 re-encrypted, 0 already on the key, 0 skipped, 0 failed; not finished, resumes on the next run"
    assert record["status"] == "in_progress" and not record["changed"]


def test_skip_reasons_once_each_before_the_colon():
    skipped = [{"key": "k1", "reason": "sse_c: customer-provided key"}, {"key": "k2", "reason": "sse_c: other"},
               {"key": "k3", "reason": "object_lock"}, {"key": "k4", "reason": "glacier: restore first"}]
    [record] = records(["a"], done(result("a", skipped_objects=skipped)))
    assert "1 skipped (sse_c, object_lock, glacier), 0 failed" in record["summary"]


def test_jobs_waiting_for_confirmation_name_their_digests():
    jobs = [{"bucket": "a", "digest": "d1"}, {"bucket": "a", "digest": "d2"}]
    [record] = records(["a"], done(result("a", complete=False, jobs_awaiting_confirmation=jobs)))
    assert record["summary"].endswith("not finished, resumes on the next run; S3 Batch Operations jobs wait Suspended for "
                                      "confirmation: d1, d2 (run again with them in byok_s3_batch_job_confirm)")
    [record] = records(["a"], done(result("a", jobs_awaiting_confirmation=[])))
    assert "Batch Operations" not in record["summary"]


def test_findings_come_first_and_set_the_status():
    finding = {"status": "server_sends_sse_s3", "installation": "oninst", "buckets": ["a"], "message": "installation oninst sends AES256",
               "fix": "turn it off"}
    other = dict(finding, buckets=["b"], message="other", fix="other fix")
    server = {"installations": [], "findings": [finding, other]}
    a, b, c = records(["a", "b", "c"], done(result("a"), result("b"), result("c")), server=server)
    assert a["status"] == "server_sends_sse_s3" and a["findings"] == [finding]
    assert a["summary"] == ("NOT on the customer key for new files: installation oninst sends AES256. Fix: turn it off. "
                            "Existing objects: 10 objects: 7 re-encrypted, 2 already on the key, 1 skipped, 0 failed")
    assert b["findings"] == [other] and c["findings"] == [] and c["status"] == "done"


def test_two_findings_on_one_bucket_are_joined():
    f1 = {"buckets": ["a"], "message": "m1", "fix": "f1"}
    f2 = {"buckets": ["a"], "message": "m2", "fix": "f2"}
    [record] = records(["a"], done(result("a")), server={"installations": [], "findings": [f1, f2]})
    assert record["summary"].startswith("NOT on the customer key for new files: m1; m2. Fix: f1; f2. Existing objects: ")


def test_the_stopgap_is_said_for_the_installations_it_changed_on_the_bucket():
    server = {"installations": [{"id": "i1", "buckets": ["a"]}, {"id": "i2", "buckets": ["a", "b"]}, {"id": "i3", "buckets": ["b"]}],
              "findings": []}
    a, b = records(["a", "b"], done(result("a"), result("b")), server=server, stopgap=["i2", "i3"])
    assert a["summary"].endswith("0 failed; MM_FILESETTINGS_AMAZONS3SSE set off by the stopgap for i2: the provisioner turns it "
                                 "back on at its next update of the installation (the lasting fix is a provisioner change)")
    assert "set off by the stopgap for i2, i3:" in b["summary"]
    [c] = records(["a"], done(result("a")), server=server, stopgap=[])
    assert "stopgap" not in c["summary"]


def test_canaries_before_then_after_of_the_bucket_only():
    canaries = [("a", {"summary": "a (before): passed"}), ("b", {"summary": "b (before): passed"}),
                ("a", {"failed": True, "msg": "no summary"}), ("a", {"summary": "a (after): passed"})]
    a, b = records(["a", "b"], done(result("a"), result("b")), canaries=canaries)
    assert a["canary"] == ["a (before): passed", "a (after): passed"]
    assert a["summary"].endswith("0 failed. Server canary: a (before): passed; a (after): passed")
    assert b["canary"] == ["b (before): passed"]


def test_everything_in_the_summary_in_order():
    server = {"installations": [{"id": "i1", "buckets": ["a"]}],
              "findings": [{"buckets": ["a"], "message": "m", "fix": "f"}]}
    rounds = done(result("a", complete=False, encryption_changed=True, jobs_awaiting_confirmation=[{"bucket": "a", "digest": "d"}],
                         skipped_objects=[{"reason": "sse_c: x"}]))
    [record] = records(["a"], rounds, server=server, stopgap=["i1"], canaries=[("a", {"summary": "c"})], check_mode=True)
    assert record["summary"] == (
        "NOT on the customer key for new files: m. Fix: f. Existing objects: default encryption to be set on the key; "
        "10 objects: 7 to re-encrypt, 2 already on the key, 1 skipped (sse_c), 0 failed; not finished, resumes on the next run; "
        "S3 Batch Operations jobs wait Suspended for confirmation: d (run again with them in byok_s3_batch_job_confirm); "
        "MM_FILESETTINGS_AMAZONS3SSE set off by the stopgap for i1: the provisioner turns it back on at its next update of "
        "the installation (the lasting fix is a provisioner change). Server canary: c")
    assert record["status"] == "server_sends_sse_s3"


def test_missing_totals_count_zero():
    [record] = records(["a"], done({"bucket": "a", "complete": True, "pass_totals": {"scanned": 3}}))
    assert record["summary"] == "3 objects: 0 re-encrypted, 0 already on the key, 0 skipped, 0 failed"
    [record] = records(["a"], done({"bucket": "a", "complete": True, "pass_totals": None}))
    assert record["summary"].startswith("0 objects: 0 re-encrypted")
