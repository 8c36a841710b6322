# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""s3_bucket_kms: default encryption, the deny statement, then the objects, batch by batch with a checkpoint."""

from __future__ import annotations

import json
import re
import time

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

from ansible_collections.mattermost.byok.plugins.module_utils import s3_reencrypt
from ansible_collections.mattermost.byok.plugins.module_utils.s3_bucket_policy import deny_other_keys_statement
from ansible_collections.mattermost.byok.plugins.module_utils.s3_bucket_policy import encryption_config
from ansible_collections.mattermost.byok.plugins.module_utils.s3_bucket_policy import merge_statement
from ansible_collections.mattermost.byok.plugins.module_utils.s3_bucket_policy import normalize_encryption
from ansible_collections.mattermost.byok.plugins.module_utils.s3_bucket_policy import remove_statement
from ansible_collections.mattermost.byok.plugins.module_utils.s3_checkpoint import HEARTBEAT_EVERY
from ansible_collections.mattermost.byok.plugins.module_utils.s3_checkpoint import TAKEOVER_GRACE
from ansible_collections.mattermost.byok.plugins.module_utils.s3_checkpoint import LocalCheckpoint
from ansible_collections.mattermost.byok.plugins.module_utils.s3_checkpoint import NoCheckpoint
from ansible_collections.mattermost.byok.plugins.module_utils.s3_checkpoint import S3Checkpoint
from ansible_collections.mattermost.byok.plugins.module_utils.s3_checkpoint import checkpoint_name
from ansible_collections.mattermost.byok.plugins.module_utils.s3_checkpoint import describe_lease
from ansible_collections.mattermost.byok.plugins.module_utils.s3_checkpoint import lease_state
from ansible_collections.mattermost.byok.plugins.module_utils.s3_checkpoint import new_lease

MIB = 1024 ** 2
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
COUNTS = ("scanned", "re_encrypted", "already_on_key", "skipped", "failed", "bytes")
LEASE_SETTLE = 0.3  # after writing the lease, read it back this much later: of two runs starting together, one backs off


def validate_params(p: dict) -> str | None:
    """The first problem with the arguments, naming the option and the fix; None when they are fine."""
    if not BUCKET_RE.match(p["bucket"] or ""):
        return f"bucket: {p['bucket']!r} is not an S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)"
    if not 1 <= p["concurrency"] <= 64:
        return f"concurrency: {p['concurrency']} is out of range; give 1-64"
    if p["multipart_threshold"] < 5 * MIB or p["multipart_threshold"] > 5 * 1024 * MIB:
        return "multipart_threshold: give between 5 MiB (5242880) and 5 GiB (5368709120), the limits of S3's copies"
    if p["multipart_part_size"] < 5 * MIB or p["multipart_part_size"] > 5 * 1024 * MIB:
        return "multipart_part_size: give between 5 MiB (5242880) and 5 GiB (5368709120), S3's part size limits"
    if p["max_seconds"] is not None and p["max_seconds"] <= 0:
        return "max_seconds: give a positive number of seconds, or leave it unset to run to the end"
    if p.get("delete_replaced_versions") and not p.get("all_versions"):
        return "delete_replaced_versions: only with all_versions=true (it deletes the originals of re-encrypted versions)"
    if p.get("cutoff_margin", 0) < 0:
        return "cutoff_margin: give 0 or more seconds"
    if p["checkpoint_bucket"] is not None and not BUCKET_RE.match(p["checkpoint_bucket"]):
        return f"checkpoint_bucket: {p['checkpoint_bucket']!r} is not an S3 bucket name"
    return None


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "time left unknown"
    if seconds < 90:
        return f"~{int(round(seconds))} s left"
    if seconds < 5400:
        return f"~{int(round(seconds / 60))} min left"
    return f"~{seconds / 3600:.1f} h left"


def progress(bucket: str, done: int, total: int | None, rate: float, complete: bool) -> tuple[dict, str]:
    if complete:
        total = done
    percent = round(100.0 * done / total, 1) if total else (100.0 if complete else None)
    eta = 0.0 if complete else ((max(total - done, 0) / rate) if total is not None and rate > 0 else None)
    info = {"done": done, "total": total, "percent": percent, "rate": rate,
            "eta_seconds": None if eta is None else round(eta, 1)}
    shown_total = total if total is not None else "?"
    shown_percent = f"{percent:.1f}%" if percent is not None else "?%"
    line = (f"{bucket}: {done}/{shown_total} objects ({shown_percent}), {rate:.0f} obj/s, "
            f"{'done' if complete else format_duration(eta)}")
    return info, line


class BucketKms:
    def __init__(self, s3, params: dict, check_mode: bool, sleep=time.sleep, clock=time.time):
        self.s3 = s3
        self.sleep = sleep
        self.clock = clock
        self.lease = None
        self.lease_lost = False
        self.waited_for, self.waited_seconds = None, 0.0  # another run's lease this run waited for, and how long
        self.p = params
        self.check_mode = check_mode
        self.bucket = params["bucket"]
        self.key_arn = params["key_arn"]

    # --- default encryption -----------------------------------------------------------------------------------
    def ensure_encryption(self) -> tuple[dict | None, dict, bool, float, bool]:
        """(before, after, changed, server time, default already on the key before this call)"""
        try:
            response = self.s3.get_bucket_encryption(Bucket=self.bucket)
            before = normalize_encryption(response.get("ServerSideEncryptionConfiguration"))
        except is_boto3_error_code("ServerSideEncryptionConfigurationNotFoundError") as e:
            response, before = e.response, None
        now = s3_reencrypt.server_time(response)
        wanted = encryption_config(self.key_arn, self.p["bucket_key"])
        was_on_key = bool(before) and all(
            r["ApplyServerSideEncryptionByDefault"].get("KMSMasterKeyID") == self.key_arn for r in before["Rules"])
        if before == wanted:
            return before, wanted, False, now, was_on_key
        if not self.check_mode:
            now = s3_reencrypt.server_time(self.s3.put_bucket_encryption(Bucket=self.bucket, ServerSideEncryptionConfiguration=wanted))
        return before, wanted, True, now, was_on_key

    # --- bucket policy ----------------------------------------------------------------------------------------
    def ensure_policy(self) -> tuple[dict | None, dict | None, bool]:
        try:
            before = json.loads(self.s3.get_bucket_policy(Bucket=self.bucket)["Policy"])
        except is_boto3_error_code("NoSuchBucketPolicy"):
            before = None
        if self.p["deny_other_keys"]:
            after, changed = merge_statement(before, deny_other_keys_statement(self.bucket, self.key_arn, self.p["policy_sid"]))
        elif self.p["remove_deny_statement"]:
            after, changed = remove_statement(before, self.p["policy_sid"])
        else:
            return before, before, False
        if changed and not self.check_mode:
            if after is None:
                self.s3.delete_bucket_policy(Bucket=self.bucket)
            else:
                self.s3.put_bucket_policy(Bucket=self.bucket, Policy=json.dumps(after))
        return before, after, changed

    # --- checkpoint -------------------------------------------------------------------------------------------
    def checkpoint_store(self):
        name = checkpoint_name(self.bucket, self.key_arn, self.p["prefix"], self.p.get("all_versions", False))
        if self.p["checkpoint_bucket"]:
            return S3Checkpoint(self.s3, self.p["checkpoint_bucket"], self.p["checkpoint_prefix"], name)
        if self.p["checkpoint_path"]:
            return LocalCheckpoint(self.p["checkpoint_path"], name)
        return NoCheckpoint()

    def load_record(self, store) -> dict:
        record = store.load() or {}
        if record.get("key_arn") != self.key_arn or record.get("bucket") != self.bucket or record.get("prefix", "") != self.p["prefix"]:
            record = {}
        record.update({"version": 1, "bucket": self.bucket, "key_arn": self.key_arn, "prefix": self.p["prefix"]})
        return record

    # --- one run at a time per bucket ---------------------------------------------------------------------------
    def acquire(self, store, wait_seconds: float | None) -> tuple[dict | None, str | None]:
        """(record with our lease saved in it, None), or (None, why) when another live run holds the bucket for longer
        than `wait_seconds` (None: wait as long as it lives). Without a checkpoint there is nothing to hold."""
        started = self.clock()
        if isinstance(store, NoCheckpoint) or self.check_mode:
            return self.load_record(store), None
        grace_done = False
        while True:
            record = self.load_record(store)
            holder = record.get("lease")
            state = lease_state(holder, self.clock())
            if state == "alive":
                why = f"another run re-encrypts this bucket ({describe_lease(holder, self.clock())}); waiting for it"
                self.waited_for = describe_lease(holder, self.clock())
                if wait_seconds is not None and self.clock() - started >= wait_seconds:
                    return None, why
                self.sleep(1.0)
                continue
            if state == "just_died" and not grace_done:
                self.waited_for = self.waited_for or f"a run that just stopped ({describe_lease(holder, self.clock())})"
                self.sleep(TAKEOVER_GRACE)  # copies the dead run had sent finish first, so our listing sees them
                grace_done = True
                continue
            self.lease = new_lease()
            record["lease"] = self.lease
            store.save(record)
            self.sleep(LEASE_SETTLE)
            if ((store.load() or {}).get("lease") or {}).get("owner") == self.lease["owner"]:
                if self.waited_for:
                    self.waited_seconds = round(self.clock() - started, 1)
                return record, None
            self.lease = None

    def still_ours(self, store) -> bool:
        return ((store.load() or {}).get("lease") or {}).get("owner") == (self.lease or {}).get("owner")

    def waiting_result(self, result: dict, why: str) -> dict:
        result.update(s3_reencrypt.new_result())
        result.update({"complete": False, "waiting": why, "pass_failed": 0, "progress": {},
                       "progress_line": f"{self.bucket}: {why}", "seconds": 0.0, "objects_per_second": 0.0,
                       "requests": 0, "requests_per_object": 0.0, "retries": 0, "extra_reads": [], "cutoff": None,
                       "writers_follow_default": self.p.get("writers_follow_default", False)})
        return result

    # --- everything -------------------------------------------------------------------------------------------
    def apply(self) -> dict:
        enc_before, enc_after, enc_changed, now, was_on_key = self.ensure_encryption()
        pol_before, pol_after, pol_changed = self.ensure_policy()
        store = self.checkpoint_store()
        result = {"changed": enc_changed or pol_changed, "encryption": {"before": enc_before, "after": enc_after},
                  "encryption_changed": enc_changed, "policy_changed": pol_changed, "checkpoint": store.location,
                  "waiting": None,
                  "diff_parts": {"before": {"encryption": enc_before, "policy": pol_before},
                                 "after": {"encryption": enc_after, "policy": pol_after}}}
        if self.p["reencrypt_objects"]:
            record, why = self.acquire(store, self.p["max_seconds"])
            if record is None:
                return self.waiting_result(result, why)
        else:
            record = self.load_record(store)
        try:
            return self._apply(store, record, result, now, was_on_key)
        finally:
            if self.lease is not None:
                record.pop("lease", None)
                store.save(record)  # the lease given back, with everything the run saved

    def _apply(self, store, record: dict, result: dict, now: float, was_on_key: bool) -> dict:
        if not was_on_key:
            # Objects written from now on land on the key; everything older is copied (in check mode: counted as the
            # real run would copy them). A toggle of the Bucket Key alone keeps the record.
            record["cutoff"] = now
            record.pop("marker", None)
            record.pop("pass", None)
            record.pop("in_batch", None)
            record["complete"] = False
        if not self.p["reencrypt_objects"]:
            result.update(s3_reencrypt.new_result())
            result.update({"complete": True, "pass_failed": 0, "progress": {},
                           "progress_line": f"{self.bucket}: objects not re-encrypted (reencrypt_objects=false)",
                           "seconds": 0.0, "objects_per_second": 0.0, "requests": 0, "requests_per_object": 0.0, "retries": 0, "extra_reads": [],
                           "cutoff": record.get("cutoff"), "writers_follow_default": self.p.get("writers_follow_default", False)})
            return result

        traits = s3_reencrypt.bucket_traits(self.s3, self.bucket)
        retry = s3_reencrypt.Retrying(8)
        # An unfinished pass: this run continues one that stopped (killed, or ended by max_seconds), and says from where.
        unfinished = not (record.get("complete") or "pass" not in record)
        if record.get("complete") or "pass" not in record:
            # A new pass over the whole bucket (first run, or re-run of a finished bucket: cheap, nothing copied).
            record["pass"] = {"started_at": now}
            record.pop("marker", None)
            record.pop("in_batch", None)
            record["complete"] = False
        run_pass = record["pass"]
        resumed_after = record.get("marker")
        if record.get("in_batch"):
            # A batch that ended without finishing (killed) saved its counts up to its marker: they are part of the pass.
            for name in COUNTS:
                run_pass[name] = run_pass.get(name, 0) + record["in_batch"].get(name, 0)
            record.pop("in_batch")
        all_versions = self.p.get("all_versions", False)
        if self.p["max_seconds"] and run_pass.get("total") is None:
            count = s3_reencrypt.count_versions if all_versions else s3_reencrypt.count_objects
            run_pass["total"] = count(self.s3, retry, self.bucket, self.p["prefix"])
        options = s3_reencrypt.Options(
            bucket=self.bucket, key_arn=self.key_arn, bucket_key=self.p["bucket_key"], prefix=self.p["prefix"],
            concurrency=self.p["concurrency"], multipart_threshold=self.p["multipart_threshold"],
            part_size=self.p["multipart_part_size"], max_seconds=self.p["max_seconds"], verify=self.p["verify"],
            check_mode=self.check_mode, trust_after_cutoff=self.p.get("writers_follow_default", False),
            cutoff_margin=self.p.get("cutoff_margin", 0))

        def save_marker(marker, partial) -> bool:
            """Saves progress and renews the lease; False (stop copying) when another run has taken the bucket."""
            if self.check_mode:
                return True
            if self.lease is not None:
                if not self.still_ours(store):
                    self.lease, self.lease_lost = None, True  # the other run now owns the record: leave it alone
                    return False
                self.lease["heartbeat"] = self.clock()
            store.save({**record, "marker": marker, "in_batch": {k: partial[k] for k in COUNTS}})
            return True

        if not self.check_mode:
            store.save(record)  # the cutoff (and the lease) is safe before the first copy
        cutoff = record.get("cutoff")
        if cutoff is not None and record.get("settled"):
            # A clean full pass has read or copied every object of the cutoff's own second: no need to HEAD them again.
            cutoff -= 1
        if all_versions:
            batch = s3_reencrypt.run_versions(self.s3, options, traits, cutoff, record.get("marker"),
                                              self.p.get("delete_replaced_versions", False), save_marker, save_every=HEARTBEAT_EVERY)
        else:
            batch = s3_reencrypt.run(self.s3, options, traits, cutoff, record.get("marker"), save_marker,
                                     save_every=HEARTBEAT_EVERY)
        if self.lease_lost:
            batch["complete"] = False
            result["waiting"] = "another run took this bucket over (this run had stalled); it continues from the checkpoint"
        for name in COUNTS:
            run_pass[name] = run_pass.get(name, 0) + batch[name]
        record["marker"] = batch["marker"]
        record.pop("in_batch", None)
        if batch["complete"]:
            record["complete"] = True
            record["settled"] = record.get("cutoff") is not None and run_pass["failed"] == 0 and run_pass["skipped"] == 0
            if record.get("cutoff") is None and not options.prefix:
                # Every object older than this pass was read or copied: from now on the time rule holds.
                record["cutoff"] = run_pass["started_at"]
        if not self.check_mode and self.lease is None and not self.lease_lost:
            store.save(record)  # (with a lease, the release saves it)
        seconds_total = run_pass.get("seconds", 0.0) + batch["seconds"]
        run_pass["seconds"] = seconds_total
        rate = batch["objects_per_second"]
        info, line = progress(self.bucket, run_pass["scanned"], run_pass.get("total"), rate, batch["complete"])
        resumed = None
        if unfinished:
            resumed = {"after": resumed_after, "done_before": run_pass["scanned"] - batch["scanned"]}
            where = f"after {json.dumps(resumed_after)}" if resumed_after is not None else "from the start (no marker had been saved yet)"
            line = (f"{line}; resumed an unfinished pass {where} with {resumed['done_before']} objects done before, "
                    f"{batch['already_on_key']} found already on the key")
        if self.waited_for:
            line = f"{line}; waited {self.waited_seconds:.1f} s for another run's lease ({self.waited_for})"
        result.update(batch)
        result.pop("marker", None)
        result["resumed"] = resumed
        result["waited_for_lease"] = {"seconds": self.waited_seconds, "holder": self.waited_for} if self.waited_for else None
        result.update({"cutoff": record.get("cutoff"), "writers_follow_default": options.trust_after_cutoff})
        result.update({"changed": result["changed"] or batch["re_encrypted"] > 0 or batch["versions_deleted"] > 0,
                       "progress": info, "progress_line": line,
                       "pass_failed": run_pass["failed"], "pass_totals": {k: run_pass[k] for k in COUNTS}})
        return result
