# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""s3_bucket_kms: default encryption, the deny statement, then the objects, batch by batch with a checkpoint."""

from __future__ import annotations

import json
import re

try:
    from botocore.exceptions import ClientError
except ImportError:
    ClientError = Exception

from ansible_collections.mattermost.byok.plugins.module_utils import s3_reencrypt
from ansible_collections.mattermost.byok.plugins.module_utils.aws_errors import error_code
from ansible_collections.mattermost.byok.plugins.module_utils.s3_bucket_policy import deny_other_keys_statement
from ansible_collections.mattermost.byok.plugins.module_utils.s3_bucket_policy import encryption_config
from ansible_collections.mattermost.byok.plugins.module_utils.s3_bucket_policy import merge_statement
from ansible_collections.mattermost.byok.plugins.module_utils.s3_bucket_policy import normalize_encryption
from ansible_collections.mattermost.byok.plugins.module_utils.s3_bucket_policy import remove_statement
from ansible_collections.mattermost.byok.plugins.module_utils.s3_checkpoint import LocalCheckpoint
from ansible_collections.mattermost.byok.plugins.module_utils.s3_checkpoint import NoCheckpoint
from ansible_collections.mattermost.byok.plugins.module_utils.s3_checkpoint import S3Checkpoint
from ansible_collections.mattermost.byok.plugins.module_utils.s3_checkpoint import checkpoint_name

MIB = 1024 ** 2
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
COUNTS = ("scanned", "re_encrypted", "already_on_key", "skipped", "failed", "bytes")


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
    def __init__(self, s3, params: dict, check_mode: bool):
        self.s3 = s3
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
        except ClientError as e:
            if error_code(e) != "ServerSideEncryptionConfigurationNotFoundError":
                raise
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
        except ClientError as e:
            if error_code(e) != "NoSuchBucketPolicy":
                raise
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
        name = checkpoint_name(self.bucket, self.key_arn, self.p["prefix"])
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

    # --- everything -------------------------------------------------------------------------------------------
    def apply(self) -> dict:
        enc_before, enc_after, enc_changed, now, was_on_key = self.ensure_encryption()
        pol_before, pol_after, pol_changed = self.ensure_policy()
        store = self.checkpoint_store()
        record = self.load_record(store)
        if not was_on_key:
            # Objects written from now on land on the key; everything older is copied (in check mode: counted as the
            # real run would copy them). A toggle of the Bucket Key alone keeps the record.
            record["cutoff"] = now
            record.pop("marker", None)
            record.pop("pass", None)
            record["complete"] = False
        result = {"changed": enc_changed or pol_changed, "encryption": {"before": enc_before, "after": enc_after},
                  "encryption_changed": enc_changed, "policy_changed": pol_changed, "checkpoint": store.location,
                  "diff_parts": {"before": {"encryption": enc_before, "policy": pol_before},
                                 "after": {"encryption": enc_after, "policy": pol_after}}}
        if not self.p["reencrypt_objects"]:
            result.update(s3_reencrypt.new_result())
            result.update({"complete": True, "pass_failed": 0, "progress": {},
                           "progress_line": f"{self.bucket}: objects not re-encrypted (reencrypt_objects=false)",
                           "seconds": 0.0, "objects_per_second": 0.0, "requests": 0, "requests_per_object": 0.0, "retries": 0, "extra_reads": []})
            return result

        traits = s3_reencrypt.bucket_traits(self.s3, self.bucket)
        retry = s3_reencrypt.Retrying(8)
        if record.get("complete") or "pass" not in record:
            # A new pass over the whole bucket (first run, or re-run of a finished bucket: cheap, nothing copied).
            record["pass"] = {"started_at": now}
            record.pop("marker", None)
            record["complete"] = False
        run_pass = record["pass"]
        if self.p["max_seconds"] and run_pass.get("total") is None:
            run_pass["total"] = s3_reencrypt.count_objects(self.s3, retry, self.bucket, self.p["prefix"])
        options = s3_reencrypt.Options(
            bucket=self.bucket, key_arn=self.key_arn, bucket_key=self.p["bucket_key"], prefix=self.p["prefix"],
            concurrency=self.p["concurrency"], multipart_threshold=self.p["multipart_threshold"],
            part_size=self.p["multipart_part_size"], max_seconds=self.p["max_seconds"], verify=self.p["verify"],
            check_mode=self.check_mode)

        def save_marker(marker, partial):
            if not self.check_mode:
                store.save({**record, "marker": marker, "in_batch": {k: partial[k] for k in COUNTS}})

        if not self.check_mode:
            store.save(record)  # the cutoff is safe before the first copy
        cutoff = record.get("cutoff")
        if cutoff is not None and record.get("settled"):
            # A clean full pass has read or copied every object of the cutoff's own second: no need to HEAD them again.
            cutoff -= 1
        batch = s3_reencrypt.run(self.s3, options, traits, cutoff, record.get("marker"), save_marker)
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
        if not self.check_mode:
            store.save(record)
        seconds_total = run_pass.get("seconds", 0.0) + batch["seconds"]
        run_pass["seconds"] = seconds_total
        rate = batch["objects_per_second"]
        info, line = progress(self.bucket, run_pass["scanned"], run_pass.get("total"), rate, batch["complete"])
        result.update(batch)
        result.pop("marker", None)
        result.update({"changed": result["changed"] or batch["re_encrypted"] > 0, "progress": info, "progress_line": line,
                       "pass_failed": run_pass["failed"], "pass_totals": {k: run_pass[k] for k in COUNTS}})
        return result
