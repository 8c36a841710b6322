# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the S3 step decides and records, apart from the module runs (the mattermost.byok.s3_step action).

- what each Mattermost server sends with its uploads, for its canary (server_sends_sse);
- the installation/bucket pairs the canaries run for (canary_pairs);
- the buckets of a batch round, each with whether time may stand in for reading its objects (round_buckets);
- the state kept between rounds (Rounds: each bucket's latest result, the changed ones, the pending ones);
- one record per bucket for byok_step_results (bucket_records), with the summary the fleet summary shows.

Pure Python, importable without ansible-core (tests/unit/test_module_utils_layout.py).
"""

from __future__ import annotations

import re

# What a bucket's latest result keeps between rounds (the pass totals span every batch); not the per-object lists.
KEPT = ("complete", "pass_totals", "skipped_objects", "cutoff", "jobs_awaiting_confirmation")


def server_sends_sse(installation: dict, server: dict | None, server_sse: dict) -> object:
    """Whether the installation's server sends x-amz-server-side-encryption: AES256 with its uploads.

    byok_s3_server_sse when it names the installation, else the setting read from its custom resource (a setting read
    as off is False, never replaced by the rule), else the installation's sse_enabled, else the provisioner's rule
    (forced on; off for bifrost)."""
    inst_id = installation.get("id")
    if inst_id in (server_sse or {}):
        return server_sse[inst_id]
    read = [i.get("sends_sse_s3") for i in (server or {}).get("installations") or [] if i.get("id") == inst_id]
    read = [value for value in read if value is not None]
    if read:
        return read[0]
    if "sse_enabled" in installation:
        return installation["sse_enabled"]
    return (installation["filestore"] if "filestore" in installation else "aws-s3") != "bifrost"


def canary_pairs(installations: list, buckets: list) -> list:
    """(index in installations, installation, bucket) for each bucket of each installation that is one of the customer's
    buckets, in the installations' order then their buckets' (an installation without buckets has none)."""
    pairs = []
    for installation in installations or []:
        for bucket in installation.get("buckets") or []:
            if bucket in buckets:
                pairs.append((installations.index(installation), installation, bucket))
    return pairs


def canary_label(installation: dict, bucket: str) -> str:
    return f"{installation.get('id') or 'installation'}: {bucket}"


def round_buckets(pending: list, server: dict | None, stopgap: bool) -> list:
    """The buckets option of a round of mattermost.byok.s3_bucket_kms.

    Time alone says "on the key" only when every writer of the bucket sends no encryption header of its own. A
    setting off only by the stopgap can be turned back on by the provisioner at any time: time is not trusted then."""
    known = (server or {}).get("buckets") or {}
    return [{"name": bucket, "writers_follow_default": bool((known.get(bucket) or {}).get("writers_follow_default"))
             and not stopgap} for bucket in pending]


def _unique(values) -> list:
    seen = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


class Rounds:
    """The state kept between the batch rounds of one run of the step."""

    def __init__(self, buckets: list):
        self.number = 0
        self.latest = {}  # bucket -> its latest result's KEPT keys
        self.last = {}  # bucket -> its latest whole result
        self.changed = []
        self.encryption_changed = []
        self.pending = list(buckets)
        self.awaiting_confirmation = []

    def add(self, results: list) -> None:
        """One round's results (one per bucket of the round), folded in."""
        self.number += 1
        awaiting = [job for r in results for job in (r.get("jobs_awaiting_confirmation") or [])]
        for r in results:
            self.latest[r["bucket"]] = {k: r[k] for k in KEPT if k in r}
            self.last[r["bucket"]] = r
        self.changed = _unique(self.changed + [r["bucket"] for r in results if r.get("changed")])
        self.encryption_changed = _unique(self.encryption_changed + [r["bucket"] for r in results if r.get("encryption_changed")])
        # A bucket whose job waits Suspended for confirmation is not run again in this play: it waits for the digest.
        waiting = [job.get("bucket") for job in awaiting]
        self.pending = [r["bucket"] for r in results if not r.get("complete") and r["bucket"] not in waiting]
        self.awaiting_confirmation = self.awaiting_confirmation + awaiting

    def another(self, max_rounds: int, check_mode: bool) -> bool:
        """Whether to run one more round: something is pending, below the most rounds of a run; check mode counts
        everything in one round."""
        if check_mode and self.number >= 1:
            return False
        return bool(self.pending) and self.number < max_rounds


def progress_lines(results: list) -> list:
    return [r["progress_line"] for r in results if r.get("progress_line") is not None]


def _skip_reasons(skipped_objects) -> str:
    # The kind of reason only (what comes before the first colon), each once.
    reasons = _unique(re.sub(r":.*$", "", str(o.get("reason", ""))) for o in skipped_objects or [])
    return f" ({', '.join(reasons)})" if reasons else ""


def bucket_summary(bucket: str, latest: dict, findings: list, stopgap_installations: list, canaries: list,
                   encryption_changed: bool, check_mode: bool) -> str:
    """What the fleet summary says of the bucket (the words of the role's record before the step was one task)."""
    r = latest or {}
    totals = r.get("pass_totals") or {}
    enc = f"default encryption {'to be set' if check_mode else 'set'} on the key; " if encryption_changed else ""
    verb = "to re-encrypt" if check_mode else "re-encrypted"
    summary = (f"{enc}{totals.get('scanned', 0)} objects: {totals.get('re_encrypted', 0)} {verb}, "
               f"{totals.get('already_on_key', 0)} already on the key, {totals.get('skipped', 0)} skipped"
               f"{_skip_reasons(r.get('skipped_objects'))}, {totals.get('failed', 0)} failed"
               + ("" if r.get("complete") else "; not finished, resumes on the next run"))
    waiting = r.get("jobs_awaiting_confirmation") or []
    if waiting:
        summary += ("; S3 Batch Operations jobs wait Suspended for confirmation: "
                    + ", ".join(str(job.get("digest")) for job in waiting)
                    + " (run again with them in byok_s3_batch_job_confirm)")
    if findings:
        summary = ("NOT on the customer key for new files: " + "; ".join(f["message"] for f in findings)
                   + ". Fix: " + "; ".join(f["fix"] for f in findings) + ". Existing objects: " + summary)
    if stopgap_installations:
        summary += ("; MM_FILESETTINGS_AMAZONS3SSE set off by the stopgap for " + ", ".join(stopgap_installations)
                    + ": the provisioner turns it back on at its next update of the installation"
                    " (the lasting fix is a provisioner change)")
    if canaries:
        summary += ". Server canary: " + "; ".join(canaries)
    return summary


def bucket_records(buckets: list, rounds: Rounds, server: dict | None, stopgap_changed: list, canaries: list,
                   check_mode: bool) -> list:
    """One record per bucket for byok_step_results.

    canaries: (bucket, result) of every canary run, before then after; a result without a summary is left out."""
    server = server or {}
    records = []
    for bucket in buckets:
        r = rounds.latest.get(bucket) or {}
        findings = [f for f in server.get("findings") or [] if bucket in (f.get("buckets") or [])]
        stopgap = [i["id"] for i in server.get("installations") or []
                   if bucket in (i.get("buckets") or []) and i.get("id") in (stopgap_changed or [])]
        said = [result["summary"] for where, result in canaries if where == bucket and "summary" in result]
        summary = bucket_summary(bucket, r, findings, stopgap, said, bucket in rounds.encryption_changed, check_mode)
        records.append({
            "step": "s3", "resource": bucket, "changed": bucket in rounds.changed, "disruptive": False, "deferred": False,
            "estimated_disruption_seconds": None, "summary": summary,
            "status": "server_sends_sse_s3" if findings else ("done" if r.get("complete") else "in_progress"),
            "findings": findings, "canary": said,
        })
    return records
