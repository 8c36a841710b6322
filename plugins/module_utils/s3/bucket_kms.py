# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""s3_bucket_kms: default encryption, the deny statement, then the objects, batch by batch with a checkpoint."""

from __future__ import annotations

import json
import re
import threading
import time

try:
    from botocore.exceptions import ClientError
except ImportError:
    ClientError = Exception

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

from ansible_collections.mattermost.byok.plugins.module_utils.s3 import batch_job as s3_batch_job
from ansible_collections.mattermost.byok.plugins.module_utils.s3 import reencrypt as s3_reencrypt
from ansible_collections.mattermost.byok.plugins.module_utils.s3.bucket_policy import deny_other_keys_statement
from ansible_collections.mattermost.byok.plugins.module_utils.s3.bucket_policy import encryption_config
from ansible_collections.mattermost.byok.plugins.module_utils.s3.bucket_policy import merge_statement
from ansible_collections.mattermost.byok.plugins.module_utils.s3.bucket_policy import normalize_encryption
from ansible_collections.mattermost.byok.plugins.module_utils.s3.bucket_policy import remove_statement
from ansible_collections.mattermost.byok.plugins.module_utils.s3.checkpoint import HEARTBEAT_EVERY
from ansible_collections.mattermost.byok.plugins.module_utils.s3.checkpoint import TAKEOVER_GRACE
from ansible_collections.mattermost.byok.plugins.module_utils.s3.checkpoint import LocalCheckpoint
from ansible_collections.mattermost.byok.plugins.module_utils.s3.checkpoint import NoCheckpoint
from ansible_collections.mattermost.byok.plugins.module_utils.s3.checkpoint import S3Checkpoint
from ansible_collections.mattermost.byok.plugins.module_utils.s3.checkpoint import checkpoint_name
from ansible_collections.mattermost.byok.plugins.module_utils.s3.checkpoint import describe_lease
from ansible_collections.mattermost.byok.plugins.module_utils.s3.checkpoint import lease_state
from ansible_collections.mattermost.byok.plugins.module_utils.s3.checkpoint import new_lease

MIB = 1024 ** 2
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
COUNTS = ("scanned", "re_encrypted", "already_on_key", "skipped", "failed", "bytes", "to_job")
ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
JOB_POLL = 2.0  # seconds between DescribeJob calls while a run follows its jobs
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
    if p.get("engine", "controller") != "controller":
        if not ROLE_ARN_RE.match(p.get("batch_job_role_arn") or ""):
            return (f"batch_job_role_arn: engine={p['engine']} needs the ARN of the IAM role S3 Batch Operations assumes "
                    f"(arn:aws:iam::<account>:role/<name>), got {p.get('batch_job_role_arn')!r}")
        if not p["checkpoint_bucket"]:
            return (f"checkpoint_bucket: engine={p['engine']} keeps its job in the checkpoint and the job's manifest and "
                    "report next to it; give checkpoint_bucket")
        if (p.get("batch_job_threshold") or 0) < 1:
            return "batch_job_threshold: give 1 or more objects"
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
    def __init__(self, s3, params: dict, check_mode: bool, sleep=time.sleep, clock=time.time, s3control=None,
                 account_id=None, cloudwatch=None):
        self.s3 = s3
        self.cloudwatch = cloudwatch  # engine=auto: the bucket's daily NumberOfObjects storage metric, where S3 publishes it
        self.s3control = s3control  # S3 Batch Operations (engine batch_job or auto); `account_id` owns the bucket
        self.account_id = account_id
        self.control_requests = 0
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

    def in_place(self) -> bool:
        """UpdateObjectEncryption instead of copies: asked for, and the key is of the bucket owner's account (S3 accepts
        no other key for it)."""
        return bool(self.p.get("update_in_place")) and self.account_id is not None and self.key_arn.split(":")[4] == self.account_id

    # --- checkpoint -------------------------------------------------------------------------------------------
    def checkpoint_store(self):
        name = checkpoint_name(self.bucket, self.key_arn, self.p["prefix"], self.p.get("all_versions", False), self.in_place())
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
        engine = self.p.get("engine", "controller")
        if engine == "auto" and run_pass.get("total") is None and "engine" not in run_pass and not self.in_place():
            run_pass["metric_total"] = self.metric_object_count()
        if (self.p["max_seconds"] or (engine == "auto" and run_pass.get("metric_total") is None)) and run_pass.get("total") is None:
            count = s3_reencrypt.count_versions if all_versions or self.in_place() else s3_reencrypt.count_objects
            run_pass["total"] = count(self.s3, retry, self.bucket, self.p["prefix"])
        if self.in_place() and "engine" not in run_pass:
            why = "update_in_place and the key is of the bucket owner's account: every version re-keyed where it is, copies only for what S3 refuses"
            chosen, reason = s3_batch_job.choose_engine(engine, self.p.get("batch_job_threshold") or 0, run_pass.get("total"),
                                                        s3_reencrypt.BucketTraits(), False)  # in place, every attribute stays
            if chosen == "batch_job" and record.get("in_place_jobs_key") == self.key_arn:
                chosen, reason = "controller", f"{reason}, but an UpdateObjectEncryption job has run for this key; each version is read"
            run_pass["engine"] = "update_in_place_job" if chosen == "batch_job" else "update_in_place"
            run_pass["engine_reason"] = (f"{why}; {reason}: an S3 Batch Operations S3UpdateObjectEncryption job re-keys the current "
                                         "versions, then the noncurrent ones here" if chosen == "batch_job" else f"{why}; {reason}")
        if "engine" not in run_pass:
            # Chosen once per pass (a pass that started with jobs follows them to the end); a job that failed hands the
            # rest of the bucket to the controller for good (the record's engine_fallback).
            size = run_pass.get("metric_total") if run_pass.get("metric_total") is not None else run_pass.get("total")
            chosen, why = s3_batch_job.choose_engine(engine, self.p.get("batch_job_threshold") or 0, size, traits, all_versions)
            if run_pass.get("metric_total") is not None:
                why = f"{why} (CloudWatch NumberOfObjects)"
            if self.p.get("update_in_place"):
                why = f"{why}; update_in_place, but the key is not of the bucket owner's account ({self.account_id}): copies"
            if chosen == "batch_job" and record.get("engine_fallback"):
                chosen, why = "controller", f"{why}, but {record['engine_fallback']}"
            if chosen == "batch_job" and record.get("cutoff") is not None and record.get("jobs_cutoff") == record["cutoff"]:
                # Every object older than this cutoff was handed to a job in an earlier pass: what is still older is what
                # the jobs could not do and the controller then skipped or failed - the controller's again (no new job).
                chosen, why = "controller", f"{why}, but this cutoff's jobs have run; the objects they left are the controller's"
            if chosen == "batch_job" and record.get("cutoff") is None:
                chosen, why = "controller", f"{why}, but no cutoff is known yet (the bucket default was on the key before any checkpoint)"
            run_pass["engine"], run_pass["engine_reason"] = chosen, why
        use_jobs = run_pass["engine"] == "batch_job"
        options = s3_reencrypt.Options(
            bucket=self.bucket, key_arn=self.key_arn, bucket_key=self.p["bucket_key"], prefix=self.p["prefix"],
            concurrency=self.p["concurrency"], multipart_threshold=self.p["multipart_threshold"],
            part_size=self.p["multipart_part_size"], max_seconds=self.p["max_seconds"], verify=self.p["verify"],
            check_mode=self.check_mode, trust_after_cutoff=self.p.get("writers_follow_default", False),
            cutoff_margin=self.p.get("cutoff_margin", 0))
        classes = set(run_pass.get("classes", []))
        lock_keys: dict = {}  # object-lock bucket: the keys handed to jobs since the last saved part, per class
        taking = threading.Lock()
        routed, routed_more = [], [0]

        class_objects = dict(run_pass.get("class_objects", {}))  # per class, for the plan digest

        def take(item) -> None:
            with taking:
                cls = item.get("StorageClass", "STANDARD")
                classes.add(cls)
                class_objects[cls] = class_objects.get(cls, 0) + 1
                lock_keys.setdefault(cls, set()).add(item["Key"])

        def route(item):
            """The job takes what route() gives it (objects older than the cutoff, ...); the listing order marker
            moves past them without a request. Storage classes seen are kept for the jobs (one per class). On an
            object-lock bucket each such object's lock is read first: ("lock", take)."""
            where, why = s3_batch_job.route(item, record.get("cutoff"), options.cutoff_margin, options.trust_after_cutoff,
                                            min(options.multipart_threshold, s3_batch_job.SINGLE_COPY_LIMIT))
            if where == "controller" and not why.startswith("modified after"):
                # what a job can't carry (multipart-sized, restored archived, a class a job can't write), listed as such
                if len(routed) < s3_reencrypt.MAX_REPORTED:
                    routed.append({"key": item["Key"], "reason": why})
                else:
                    routed_more[0] += 1
            if where == "job" and traits.object_lock:
                return ("lock", take)
            if where == "job":
                cls = item.get("StorageClass", "STANDARD")
                classes.add(cls)
                class_objects[cls] = class_objects.get(cls, 0) + 1
            return where

        def save_lock_keys() -> None:
            """The keys taken since the last part, written as the next part before the marker that covers them is
            saved (a kill in between writes the same part again, from the same marker: the manifest takes each once)."""
            with taking:
                if not lock_keys:
                    return
                text = s3_batch_job.lock_keys_part(lock_keys)
                lock_keys.clear()
            parts = run_pass.setdefault("lock_parts", [])
            bucket, key = self._report_location(f"lock-keys/{int(run_pass['started_at'])}/{len(parts):06d}.csv")
            self.s3.put_object(Bucket=bucket, Key=key, Body=text.encode())
            parts.append(key)

        def save_marker(marker, partial) -> bool:
            """Saves progress and renews the lease; False (stop copying) when another run has taken the bucket."""
            if self.check_mode:
                return True
            if self.lease is not None:
                if not self.still_ours(store):
                    self.lease, self.lease_lost = None, True  # the other run now owns the record: leave it alone
                    return False
                self.lease["heartbeat"] = self.clock()
            if traits.object_lock and use_jobs:
                save_lock_keys()
            run_pass["classes"] = sorted(classes)  # a superset of those before the marker: a kill loses no class
            run_pass["class_objects"] = dict(class_objects)  # (a kill may count some twice: the digest then differs, the job waits)
            store.save({**record, "marker": marker, "in_batch": {k: partial[k] for k in COUNTS}})
            return True

        if not self.check_mode:
            store.save(record)  # the cutoff (and the lease) is safe before the first copy
        cutoff = record.get("cutoff")
        if cutoff is not None and record.get("settled"):
            # A clean full pass has read or copied every object of the cutoff's own second: no need to HEAD them again.
            cutoff -= 1
        job_part, pre_jobs_line = None, None
        if run_pass["engine"] == "update_in_place_job" and not run_pass.get("jobs_done"):
            # The job first (current versions), then the listing pass re-keys the noncurrent versions (and finds the
            # current ones of a version overwritten meanwhile on the key by the default).
            job_part = self._empty_batch(record, traits)
            request = s3_batch_job.update_encryption_job_request(
                account_id=self.account_id or "000000000000", bucket=self.bucket, key_arn=self.key_arn,
                bucket_key=self.p["bucket_key"], prefix=self.p["prefix"], started=run_pass["started_at"],
                role_arn=self.p["batch_job_role_arn"], report_bucket=self.p.get("batch_job_report_bucket") or self.p["checkpoint_bucket"],
                report_prefix=self.p.get("batch_job_report_prefix") or "byok/s3-batch-jobs")
            done, pre_jobs_line = self.run_jobs(store, record, run_pass, options, traits, job_part, requests=[request], in_place=True)
            if done and not self.check_mode:
                run_pass["jobs_done"] = True
                record["in_place_jobs_key"] = self.key_arn
        if run_pass["engine"] == "update_in_place_job" and not run_pass.get("jobs_done") and not self.check_mode:
            batch = self._empty_batch(record, traits)
            batch["complete"] = False  # the job runs; the next call follows it
            job_part = None
        elif run_pass["engine"] in ("update_in_place", "update_in_place_job"):
            batch = s3_reencrypt.run_in_place(self.s3, options, traits, record.get("marker"), save_marker, save_every=HEARTBEAT_EVERY,
                                              current_done_by_job=run_pass["engine"] == "update_in_place_job")
        elif use_jobs and run_pass.get("listed"):
            batch = self._empty_batch(record, traits)  # the listing was done by an earlier run: only the jobs are left
        elif all_versions:
            batch = s3_reencrypt.run_versions(self.s3, options, traits, cutoff, record.get("marker"),
                                              self.p.get("delete_replaced_versions", False), save_marker, save_every=HEARTBEAT_EVERY)
        else:
            batch = s3_reencrypt.run(self.s3, options, traits, cutoff, record.get("marker"), save_marker,
                                     save_every=HEARTBEAT_EVERY, route=route if use_jobs else None)
        if self.lease_lost:
            batch["complete"] = False
            result["waiting"] = "another run took this bucket over (this run had stalled); it continues from the checkpoint"
        if traits.object_lock and use_jobs and not self.check_mode and not self.lease_lost:
            save_lock_keys()
        if routed or routed_more[0]:
            listed = routed + batch["by_controller_objects"]
            batch["by_controller_objects"] = listed[:s3_reencrypt.MAX_REPORTED]
            batch["by_controller_objects_truncated"] += routed_more[0] + max(0, len(listed) - s3_reencrypt.MAX_REPORTED)
        for name in COUNTS:
            run_pass[name] = run_pass.get(name, 0) + batch[name]
        run_pass["classes"] = sorted(classes)
        run_pass["class_objects"] = dict(class_objects)
        if job_part is not None:
            # The in-place job's outcome (its own counts are in the pass already): this call's result shows it too.
            for name in ("re_encrypted", "skipped", "failed", "already_on_key", "bytes", "jobs_created"):
                batch[name] = batch.get(name, 0) + job_part.get(name, 0)
            for name in ("skipped_objects", "failed_objects"):
                batch[name] = job_part[name] + batch[name]
            batch["jobs_confirmed"] = batch.get("jobs_confirmed", 0) + job_part.get("jobs_confirmed", 0)
            batch["jobs_awaiting_confirmation"] = job_part.get("jobs_awaiting_confirmation", []) + batch.get("jobs_awaiting_confirmation", [])
        jobs_line = pre_jobs_line
        record["marker"] = batch["marker"]
        record.pop("in_batch", None)
        if use_jobs and batch["complete"]:
            run_pass["listed"] = True
            jobs_done, jobs_line = self.run_jobs(store, record, run_pass, options, traits, batch)
            batch["complete"] = jobs_done and not self.lease_lost
        result["engine"] = {"name": run_pass["engine"], "reason": run_pass["engine_reason"],
                            "jobs": list(run_pass.get("jobs", {}).values()) or run_pass.get("planned_jobs", [])}
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
        if jobs_line and not batch["complete"] and run_pass["engine"] == "update_in_place_job":
            line = f"{jobs_line}; the noncurrent versions next"
        elif jobs_line and not batch["complete"]:
            line = f"{jobs_line}; the listing is done ({run_pass['scanned']} objects, {run_pass.get('to_job', 0)} to the jobs)"
        elif jobs_line:
            line = f"{line}; {jobs_line}"
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
        result["requests"] += self.control_requests
        result.setdefault("jobs_awaiting_confirmation", [])
        result.setdefault("jobs_confirmed", 0)
        if result["scanned"]:
            result["requests_per_object"] = round(result["requests"] / result["scanned"], 3)
        result["resumed"] = resumed
        result["waited_for_lease"] = {"seconds": self.waited_seconds, "holder": self.waited_for} if self.waited_for else None
        result.update({"cutoff": record.get("cutoff"), "writers_follow_default": options.trust_after_cutoff})
        result.update({"changed": (result["changed"] or batch["re_encrypted"] > 0 or batch["versions_deleted"] > 0
                                   or batch.get("jobs_created", 0) > 0 or batch.get("jobs_confirmed", 0) > 0
                                   or (self.check_mode and batch["to_job"] > 0)),
                       "progress": info, "progress_line": line,
                       "pass_failed": run_pass["failed"], "pass_totals": {k: run_pass[k] for k in COUNTS}})
        return result

    # --- S3 Batch Operations ----------------------------------------------------------------------------------
    def metric_object_count(self) -> int | None:
        """The bucket's object count from S3's daily storage metric (free, one request), or None where S3 publishes
        none (a new bucket, a region or endpoint without it): the listing counts then."""
        if self.cloudwatch is None or self.p["prefix"]:
            return None
        now = self.clock()
        try:
            answer = self.cloudwatch.get_metric_statistics(
                Namespace="AWS/S3", MetricName="NumberOfObjects", Statistics=["Average"], Period=86400,
                Dimensions=[{"Name": "BucketName", "Value": self.bucket}, {"Name": "StorageType", "Value": "AllStorageTypes"}],
                StartTime=now - 3 * 86400, EndTime=now)
        except ClientError:
            return None  # no permission or no metric: the listing is the fallback, never a failure
        return s3_batch_job.object_count_from_metric(answer.get("Datapoints", []))

    def _control(self, method: str, **kwargs):
        self.control_requests += 1
        return getattr(self.s3control, method)(AccountId=self.account_id, **kwargs)

    def _find_job(self, description: str) -> dict | None:
        """This run's job if an earlier run made it (CreateJob answered but the id was not saved: killed)."""
        kwargs = {}
        descriptors = []
        while True:
            page = self._control("list_jobs", **kwargs)
            descriptors += page.get("Jobs", [])
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        return s3_batch_job.find_job(descriptors, description)

    def _empty_batch(self, record, traits) -> dict:
        batch = s3_reencrypt.new_result()
        batch.update({"marker": record.get("marker"), "complete": True, "seconds": 0.0, "objects_per_second": 0.0,
                      "requests": 0, "retries": 0, "requests_per_object": 0.0, "extra_reads": traits.extra_reads()})
        return batch

    def run_jobs(self, store, record, run_pass, options, traits, batch, requests=None, in_place=False) -> tuple[bool, str | None]:
        """One job per storage class (or the given `requests`), found again or created, followed until every one has
        ended (or the time box runs out: the next run follows the same jobs); then each job's failed tasks retried by the
        controller engine (`in_place`: as the in-place engine does a version). Counts go into `batch` (and the pass).
        Returns (finished, progress line)."""
        jobs = run_pass.setdefault("jobs", {})
        batch.setdefault("jobs_created", 0)
        requests = [r for r in requests if s3_batch_job.plan_entry(r)["storage_class"] not in jobs] if requests is not None else None
        if requests is None:
            requests = self._copy_requests(record, run_pass, options, jobs, traits)
            if traits.object_lock and not self.check_mode:
                store.save(record)  # the manifests' ETags are safe before a job is made with them
        return self._run_jobs(store, record, run_pass, options, traits, batch, requests, jobs, in_place)

    def _report_location(self, name: str) -> tuple[str, str]:
        prefix = (self.p.get("batch_job_report_prefix") or "byok/s3-batch-jobs").strip("/")
        return self.p.get("batch_job_report_bucket") or self.p["checkpoint_bucket"], f"{prefix}/{self.bucket}/{name}"

    def _lock_manifests(self, run_pass, traits, wanted) -> dict:
        """Object-lock bucket: per storage class in `wanted`, the CSV manifest of the keys the listing handed to jobs
        (written once per pass and kept in the record with its ETag, so a job found again is never asked with another)."""
        if not traits.object_lock:
            return {}
        made = run_pass.setdefault("lock_manifests", {})
        missing = [c for c in wanted if c not in made]
        if not missing:
            return made
        if self.check_mode:
            return {c: {"arn": "(written by the run)", "etag": ""} for c in wanted}
        keys: dict = {}
        report_bucket = self._report_location("")[0]
        for part in run_pass.get("lock_parts", []):
            text = self.s3.get_object(Bucket=report_bucket, Key=part)["Body"].read().decode()
            for cls, found in s3_batch_job.read_lock_keys_part(text).items():
                keys.setdefault(cls, set()).update(found)
        partition = self.key_arn.split(":")[1] if self.key_arn.startswith("arn:") else "aws"
        for cls in missing:
            bucket, key = self._report_location(f"lock-manifests/{int(run_pass['started_at'])}/{cls}.csv")
            body = s3_batch_job.manifest_csv(self.bucket, keys.get(cls, ()))
            etag = self.s3.put_object(Bucket=bucket, Key=key, Body=body.encode())["ETag"].strip('"')
            made[cls] = {"arn": f"arn:{partition}:s3:::{bucket}/{key}", "etag": etag}
        return made

    def _copy_requests(self, record, run_pass, options, jobs, traits=None) -> list[dict]:
        requests = []
        wanted = [c for c in run_pass.get("classes", []) if c not in jobs]
        manifests = self._lock_manifests(run_pass, traits, wanted) if traits is not None else {}
        for storage_class in wanted:
            requests.append(s3_batch_job.create_job_request(
                account_id=self.account_id or "000000000000", bucket=self.bucket, key_arn=self.key_arn,
                bucket_key=self.p["bucket_key"], prefix=self.p["prefix"], cutoff=record["cutoff"],
                storage_class=storage_class, role_arn=self.p["batch_job_role_arn"],
                report_bucket=self.p.get("batch_job_report_bucket") or self.p["checkpoint_bucket"],
                report_prefix=self.p.get("batch_job_report_prefix") or "byok/s3-batch-jobs",
                limit=min(options.multipart_threshold, s3_batch_job.SINGLE_COPY_LIMIT), manifest=manifests.get(storage_class)))
        return requests

    def _run_jobs(self, store, record, run_pass, options, traits, batch, requests, jobs, in_place) -> tuple[bool, str | None]:
        confirm = set(self.p.get("batch_job_confirm") or [])
        counts = run_pass.get("class_objects", {})

        def planned(request) -> dict:
            entry = s3_batch_job.plan_entry(request)
            entry["objects"] = run_pass.get("total") if in_place else counts.get(entry["storage_class"])
            entry["digest"] = s3_batch_job.plan_digest(self.bucket, entry, entry["objects"])
            return entry

        batch.setdefault("jobs_confirmed", 0)
        batch.setdefault("jobs_awaiting_confirmation", [])
        if self.check_mode:
            # The plan, each job with its digest: a run given the digest (batch_job_confirm) creates the job ready to run.
            run_pass["planned_jobs"] = [dict(planned(r), status="planned (check mode)") for r in requests]
            shown = ", ".join(f"{e['storage_class']} ({e['objects']} objects, digest {e['digest']})" for e in run_pass["planned_jobs"])
            waiting = [e for e in jobs.values() if s3_batch_job.awaiting_confirmation(e)]
            batch["jobs_awaiting_confirmation"] = [self._awaiting(e) for e in waiting]
            if requests:
                return True, (f"{run_pass.get('to_job', 0)} objects for S3 Batch Operations: would create a job per storage class "
                              f"({shown}); pass the digests as batch_job_confirm to let them run, else they wait Suspended")
            return True, None
        for request in requests:
            entry = planned(request)
            found = self._find_job(entry["description"])
            if found:
                entry["id"], entry["found_again"] = found["JobId"], True
            else:
                # Runs at once only when this very plan was shown (its digest given back); else it waits Suspended,
                # costing nothing, until a run with the digest (or the AWS CLI) lets it run.
                entry["confirmation_required"] = entry["digest"] not in confirm
                request = {**request, "ConfirmationRequired": entry["confirmation_required"]}
                entry["id"] = self._control("create_job", **{k: v for k, v in request.items() if k != "AccountId"})["JobId"]
                batch["jobs_created"] += 1
            entry["status"] = "New"
            jobs[entry["storage_class"]] = entry
            store.save(record)  # the job id is safe before anything else: a kill from here on follows this job
        if not jobs:
            return True, None
        if not in_place:
            record["jobs_cutoff"] = record["cutoff"]
        started = self.clock()
        while True:
            for entry in jobs.values():
                if entry.get("status") in s3_batch_job.TERMINAL:
                    continue
                entry.update({k: v for k, v in s3_batch_job.job_progress(self._control("describe_job", JobId=entry["id"])["Job"]).items()
                              if k != "id"})
            if all(e.get("status") in s3_batch_job.TERMINAL for e in jobs.values()):
                break
            for entry in jobs.values():
                if s3_batch_job.awaiting_confirmation(entry) and entry.get("digest") in confirm:
                    # only a job of this bucket's own run (its id in the checkpoint), never another's
                    self._control("update_job_status", JobId=entry["id"], RequestedJobStatus="Ready",
                                  StatusUpdateReason=f"plan {entry['digest']} confirmed")
                    entry["status"], entry["confirmed"] = "Ready", True
                    batch["jobs_confirmed"] += 1
            waiting = [e for e in jobs.values() if s3_batch_job.awaiting_confirmation(e)]
            if waiting:
                batch["jobs_awaiting_confirmation"] = [self._awaiting(e) for e in waiting]
                store.save(record)
                hints = "; ".join(f"{e['storage_class']} job {e['id']}: {e.get('objects')} objects, digest {e.get('digest')}"
                                  for e in waiting)
                return False, (f"{s3_batch_job.job_line(self.bucket, [dict(e) for e in jobs.values()])}; waiting for confirmation "
                               f"({hints}): run again with the digests in batch_job_confirm, or aws s3control update-job-status "
                               "--requested-job-status Ready")
            if self.lease is not None and not self.still_ours(store):
                self.lease, self.lease_lost = None, True
                return False, s3_batch_job.job_line(self.bucket, [dict(e) for e in jobs.values()])
            if self.p["max_seconds"] and self.clock() - started >= self.p["max_seconds"]:
                if self.lease is not None:
                    self.lease["heartbeat"] = self.clock()
                store.save(record)
                return False, s3_batch_job.job_line(self.bucket, [dict(e) for e in jobs.values()])
            if self.lease is not None:
                self.lease["heartbeat"] = self.clock()
            store.save(record)
            self.sleep(JOB_POLL)
        result = s3_reencrypt.new_result()
        engine = s3_reencrypt.Engine(self.s3, options, traits, record.get("cutoff"))
        counter = s3_reencrypt.RequestCounter(self.s3)  # the reports read and the tasks retried are the controller's requests
        for entry in jobs.values():
            if entry.get("reported"):
                continue
            if entry["status"] != "Complete":
                # A job that failed as a whole (its manifest, its role, too many failed tasks): the controller engine
                # takes the bucket from the next pass on. It is never cancelled or re-made here.
                reasons = "; ".join(entry.get("failure_reasons") or []) or "no reason given"
                record["engine_fallback"] = f"job {entry['id']} ended {entry['status']} ({reasons})"
                s3_reencrypt._record(result, s3_reencrypt.Outcome(
                    f"(S3 Batch Operations job {entry['id']}, {entry['storage_class']})", "failed",
                    f"{record['engine_fallback']}; run again: the controller engine copies what it left"))
            else:
                for task in self.failed_tasks(entry):
                    s3_reencrypt._record(result, self.retry_in_place(options, traits, task) if in_place else self.retry_task(engine, task))
            batch["re_encrypted"] += entry.get("succeeded", 0)
            entry["reported"] = True
        # the retried tasks were already counted in `scanned` (as `to_job`) when the listing handed them over
        for name in ("re_encrypted", "skipped", "failed", "already_on_key", "bytes"):
            batch[name] += result[name]
            run_pass[name] = run_pass.get(name, 0) + result[name]
        run_pass["re_encrypted"] += sum(e.get("succeeded", 0) for e in jobs.values() if e.get("counted") is None)
        for entry in jobs.values():
            entry["counted"] = True
        for name in ("skipped_objects", "failed_objects"):
            batch[name] = batch[name] + result[name]
        self.control_requests += counter.count
        store.save(record)
        return True, s3_batch_job.job_line(self.bucket, [dict(e) for e in jobs.values()])

    def _awaiting(self, entry: dict) -> dict:
        return {"bucket": self.bucket, "storage_class": entry["storage_class"], "id": entry["id"], "digest": entry.get("digest"),
                "objects": entry.get("objects"),
                "command": s3_batch_job.confirm_command(self.account_id or "000000000000", entry["id"], self.s3.meta.region_name)}

    def failed_tasks(self, entry: dict) -> list[dict]:
        """The job's failed tasks, from its completion report (manifest.json, then its result files)."""
        if not entry.get("failed"):
            return []
        bucket, prefix = entry["report"][len("s3://"):].split("/", 1)
        manifest = json.loads(self.s3.get_object(Bucket=bucket, Key=f"{prefix}/job-{entry['id']}/manifest.json")["Body"].read())
        tasks = []
        for file_bucket, key, _status in s3_batch_job.report_result_files(manifest):
            text = self.s3.get_object(Bucket=file_bucket or bucket, Key=key)["Body"].read().decode()
            tasks += s3_batch_job.report_failed_tasks(text)
        return tasks

    def retry_in_place(self, options, traits, task: dict):
        """A version the UpdateObjectEncryption job could not re-key, done by the in-place engine (a copy where S3
        refuses and it is the current version)."""
        engine = s3_reencrypt.InPlaceEngine(self.s3, options, traits, None)
        page = self.s3.list_object_versions(Bucket=self.bucket, Prefix=task["key"], MaxKeys=1000)
        versions = [v for v in page.get("Versions", []) if v["Key"] == task["key"]]
        wanted = task.get("version_id")
        version = next((v for v in versions if v["VersionId"] == wanted), None) if wanted and wanted != "null" else \
            next((v for v in versions if v.get("IsLatest")), None)
        if version is None:
            return s3_reencrypt.Outcome(task["key"], "on_key")  # deleted since: nothing left to re-key
        deleted = any(m["Key"] == task["key"] and m.get("IsLatest") for m in page.get("DeleteMarkers", []))
        return engine._version(task["key"], version, bool(version.get("IsLatest")) and not deleted)

    def retry_task(self, engine, task: dict):
        """A task the job could not do, done by the controller engine as it does any object (listed again so it
        gets exactly the controller's treatment: an SSE-C object is reported skipped, a vanished one is done)."""
        page = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=task["key"], MaxKeys=1,
                                       OptionalObjectAttributes=["RestoreStatus"])
        items = [i for i in page.get("Contents", []) if i["Key"] == task["key"]]
        if not items:
            return s3_reencrypt.Outcome(task["key"], "on_key")  # deleted since: nothing left to re-encrypt
        return engine.process(items[0], engine.plan(items[0]))
