# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The S3 Batch Operations engine's pure parts: which engine a bucket gets, which objects a job takes and which the
controller keeps (with the reason), the CreateJob request, finding a run's own job again, and its completion report.

A job copies every object of its manifest with ONE set of job-wide parameters (S3PutObjectCopy: storage class, ACL,
object lock, redirect), so it can only take objects for which those are the object's own:
- one job per storage class (MatchAnyStorageClass), archived classes never (a copy of a GLACIER/DEEP_ARCHIVE object
  that is not restored fails; a restored one is copied by the controller as before);
- objects up to the single-copy limit (5 GiB; above it the controller copies part by part);
- objects last modified before the cutoff (CreatedBefore): older than the key, exactly those the controller copies
  without reading them; later ones are the controller's (a HEAD where the time can't tell);
- buckets whose objects carry nothing per object a job would lose: ACLs disabled (BucketOwnerEnforced), no website
  hosting (a copy does not carry the redirect location). Other buckets stay on the controller engine, with the reason.
- object-lock buckets: retention and legal hold are per object, so each object's lock is read (HeadObject) and only
  objects whose job copy ends exactly as the controller's (s3_reencrypt.lock_fits: no legal hold, no retention still
  running; both copies then get the bucket default retention, if any) go to a job, through a CSV manifest the engine
  writes from its listing (one per storage class); the others are copied by the controller, each with the reason.
SSE-C objects can't be told from the listing: the job's copy of one fails, and the completion report's failed tasks are
retried by the controller engine, which reports them skipped exactly as it does on its own.

AWS reference: https://docs.aws.amazon.com/AmazonS3/latest/API/API_control_CreateJob.html,
https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-copy-object.html,
https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-job-status.html (statuses),
https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-job-status.html#batch-ops-completion-report (report).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import urllib.parse
from datetime import datetime, timezone

from ansible_collections.mattermost.byok.plugins.module_utils.s3.cutoff import time_says

ENGINES = ("controller", "batch_job", "auto")
SINGLE_COPY_LIMIT = 5 * 1024 ** 3
ARCHIVED = ("GLACIER", "DEEP_ARCHIVE")
# The storage classes S3PutObjectCopy can write (its StorageClass enum), archived ones excepted.
JOB_CLASSES = ("STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR")
TERMINAL = ("Complete", "Failed", "Cancelled")
# A job in these states needs someone to act; the controller reports it and never cancels it.
STALLED = ("Suspended", "Paused")
REPORT_FORMAT = "Report_CSV_20180820"
DESCRIPTION_PREFIX = "byok s3"


def choose_engine(engine: str, threshold: int, objects: int | None, traits, all_versions: bool) -> tuple[str, str]:
    """(controller | batch_job, why) for a bucket of `objects` objects (None: not counted yet)."""
    if engine == "controller":
        return "controller", "engine=controller"
    if engine == "auto" and objects is not None and objects < threshold:
        return "controller", f"{objects} objects, below batch_job_threshold ({threshold})"
    asked = "engine=batch_job" if engine == "batch_job" else f"{objects} objects, at or above batch_job_threshold ({threshold})"
    if all_versions:
        return "controller", f"{asked}, but all_versions: a job copies current versions only (its copy order per key is not kept)"
    if traits.acls_enabled:
        return "controller", f"{asked}, but the bucket uses ACLs: a job gives every copy one ACL, per-object grants would be lost"
    if traits.website:
        return "controller", f"{asked}, but website hosting is on: a job's copy does not carry each object's redirect location"
    if traits.object_lock:
        return "batch_job", (f"{asked}; object lock is enabled: each object's lock is read, those with a legal hold or a "
                             "retention of their own are copied by the controller (a job gives every copy one lock setting)")
    return "batch_job", asked


def object_count_from_metric(datapoints: list[dict]) -> int | None:
    """The newest daily NumberOfObjects datapoint (CloudWatch AWS/S3, StorageType AllStorageTypes), or None."""
    points = [d for d in datapoints if d.get("Average") is not None and d.get("Timestamp") is not None]
    return int(max(points, key=lambda d: d["Timestamp"])["Average"]) if points else None


def route(item: dict, cutoff: float | None, margin: float, writers_follow_default: bool, limit: int) -> tuple[str, str]:
    """Where one listed object goes: (job | controller | skipped, why)."""
    storage = item.get("StorageClass", "STANDARD")
    if storage in ARCHIVED:
        restore = item.get("RestoreStatus") or {}
        if restore.get("RestoreExpiryDate") and not restore.get("IsRestoreInProgress"):
            return "controller", f"restored {storage} object: the controller copies it (a job-wide storage class can't)"
        return "skipped", f"archived ({storage}), not restored: restore it first"
    if storage not in JOB_CLASSES:
        return "controller", f"storage class {storage}: not one a job's copy can write"
    if item.get("Size", 0) > limit:
        return "controller", "above the single-copy limit: copied part by part by the controller"
    told = time_says(item["LastModified"].timestamp(), cutoff, margin, writers_follow_default)
    if told != "before":
        return "controller", "modified after the bucket default was put on the key: read by the controller where time can't tell"
    return "job", ""


def created_before(cutoff: float) -> datetime:
    """The manifest's CreatedBefore for a cutoff: the start of its second, as route() counts "before"."""
    return datetime.fromtimestamp(math.floor(cutoff), tz=timezone.utc)


def job_token(bucket: str, key_arn: str, prefix: str, cutoff: float, storage_class: str, attempt: int = 0) -> str:
    """The ClientRequestToken of this bucket's job for one storage class: the same run parameters give the same token,
    so CreateJob sent again after a kill returns the job already made (and ListJobs finds it by its description)."""
    text = json.dumps([bucket, key_arn, prefix, math.floor(cutoff), storage_class, attempt])
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def job_description(bucket: str, storage_class: str, token: str) -> str:
    return f"{DESCRIPTION_PREFIX} {bucket} {storage_class} {token}"


def arn_of_bucket(bucket: str, partition: str = "aws") -> str:
    return f"arn:{partition}:s3:::{bucket}"


def create_job_request(*, account_id: str, bucket: str, key_arn: str, bucket_key: bool, prefix: str, cutoff: float,
                       storage_class: str, role_arn: str, report_bucket: str, report_prefix: str,
                       limit: int = SINGLE_COPY_LIMIT, attempt: int = 0, priority: int = 10,
                       manifest: dict | None = None) -> dict:
    """The s3control CreateJob parameters: copy onto the same keys, under the key, metadata and tags copied (COPY and no
    NewObjectTagging), with a manifest S3 makes from the bucket with the filters route() applies - or, given
    `manifest` ({"arn", "etag"}: a CSV the engine wrote, object-lock buckets), that one."""
    partition = key_arn.split(":")[1] if key_arn.startswith("arn:") else "aws"
    token = job_token(bucket, key_arn, prefix, cutoff, storage_class, attempt)
    where = f"{report_prefix.strip('/')}/{bucket}/{token}"
    filters = {"CreatedBefore": created_before(cutoff), "ObjectSizeLessThanBytes": limit + 1,
               "MatchAnyStorageClass": [storage_class]}
    if prefix:
        filters["KeyNameConstraint"] = {"MatchAnyPrefix": [prefix]}
    if manifest is not None:
        source = {"Manifest": {"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
                               "Location": {"ObjectArn": manifest["arn"], "ETag": manifest["etag"]}}}
    else:
        source = {"ManifestGenerator": {"S3JobManifestGenerator": {
            "ExpectedBucketOwner": account_id,
            "SourceBucket": arn_of_bucket(bucket, partition),
            "EnableManifestOutput": True,
            "ManifestOutputLocation": {"ExpectedManifestBucketOwner": account_id, "Bucket": arn_of_bucket(report_bucket, partition),
                                       "ManifestPrefix": f"{where}/manifest", "ManifestFormat": "S3InventoryReport_CSV_20211130"},
            "Filter": filters,
        }}}
    return {
        "AccountId": account_id,
        "ConfirmationRequired": False,
        **source,
        "Operation": {"S3PutObjectCopy": {
            "TargetResource": arn_of_bucket(bucket, partition),
            "MetadataDirective": "COPY",
            "StorageClass": storage_class,
            "NewObjectMetadata": {"SSEAlgorithm": "KMS"},
            "SSEAwsKmsKeyId": key_arn,
            "BucketKeyEnabled": bucket_key,
        }},
        "Report": {"Bucket": arn_of_bucket(report_bucket, partition), "Format": REPORT_FORMAT, "Enabled": True,
                   "Prefix": f"{where}/report", "ReportScope": "FailedTasksOnly"},
        "ClientRequestToken": token,
        "Description": job_description(bucket, storage_class, token),
        "Priority": priority,
        "RoleArn": role_arn,
    }


IN_PLACE = "in-place"  # the pseudo storage class of the UpdateObjectEncryption job (it keeps every object's class)


def update_encryption_job_request(*, account_id: str, bucket: str, key_arn: str, bucket_key: bool, prefix: str, started: float,
                                  role_arn: str, report_bucket: str, report_prefix: str, attempt: int = 0,
                                  priority: int = 10) -> dict:
    """The CreateJob parameters of the in-place job (external-key path): S3UpdateObjectEncryption of the current
    version of every object (the manifest S3 makes lists current versions), storage class and every attribute kept.
    `started` (the pass's start) names the job: the same pass finds its job again, a later pass is another one."""
    partition = key_arn.split(":")[1] if key_arn.startswith("arn:") else "aws"
    token = job_token(bucket, key_arn, prefix, started, IN_PLACE, attempt)
    where = f"{report_prefix.strip('/')}/{bucket}/{token}"
    generator = {"ExpectedBucketOwner": account_id, "SourceBucket": arn_of_bucket(bucket, partition), "EnableManifestOutput": True,
                 "ManifestOutputLocation": {"ExpectedManifestBucketOwner": account_id, "Bucket": arn_of_bucket(report_bucket, partition),
                                            "ManifestPrefix": f"{where}/manifest", "ManifestFormat": "S3InventoryReport_CSV_20211130"}}
    if prefix:
        generator["Filter"] = {"KeyNameConstraint": {"MatchAnyPrefix": [prefix]}}
    return {
        "AccountId": account_id,
        "ConfirmationRequired": False,
        "Operation": {"S3UpdateObjectEncryption": {"ObjectEncryption": {"SSEKMS": {"KMSKeyArn": key_arn, "BucketKeyEnabled": bucket_key}}}},
        "ManifestGenerator": {"S3JobManifestGenerator": generator},
        "Report": {"Bucket": arn_of_bucket(report_bucket, partition), "Format": REPORT_FORMAT, "Enabled": True,
                   "Prefix": f"{where}/report", "ReportScope": "FailedTasksOnly"},
        "ClientRequestToken": token,
        "Description": job_description(bucket, IN_PLACE, token),
        "Priority": priority,
        "RoleArn": role_arn,
    }


def plan_entry(request: dict) -> dict:
    """What the checkpoint and the result keep of a job's request (its parameters, without the clock type)."""
    filters = (request.get("ManifestGenerator") or {}).get("S3JobManifestGenerator", {}).get("Filter") or {}
    common = {"token": request["ClientRequestToken"], "description": request["Description"], "role_arn": request["RoleArn"],
              "prefix": (filters.get("KeyNameConstraint") or {}).get("MatchAnyPrefix", [""])[0],
              "report": f"s3://{request['Report']['Bucket'].split(':::', 1)[1]}/{request['Report']['Prefix']}"}
    if "S3UpdateObjectEncryption" in request["Operation"]:
        sse = request["Operation"]["S3UpdateObjectEncryption"]["ObjectEncryption"]["SSEKMS"]
        return {"storage_class": IN_PLACE, "operation": "S3UpdateObjectEncryption", "key_arn": sse["KMSKeyArn"],
                "bucket_key": sse["BucketKeyEnabled"], **common}
    operation = request["Operation"]["S3PutObjectCopy"]
    entry = {"storage_class": operation["StorageClass"], "operation": "S3PutObjectCopy", "key_arn": operation["SSEAwsKmsKeyId"],
             "bucket_key": operation["BucketKeyEnabled"], **common}
    if request.get("Manifest"):
        entry["manifest"] = request["Manifest"]["Location"]["ObjectArn"]
    else:
        entry.update(created_before=filters["CreatedBefore"].isoformat(), size_below=filters["ObjectSizeLessThanBytes"])
    return entry


def plan_digest(bucket: str, entry: dict, objects: int | None) -> str:
    """The short digest of one planned job, shown with the plan (check mode, or the run whose job waits Suspended):
    the bucket, the operation, storage class, key, Bucket Key, prefix, size limit, role and the number of objects the
    listing gave it. The cutoff is left out, so the digest check mode shows before a bucket's first run is the one that
    run computes; anything else that differs (an object more or less) gives another digest, and the job then waits."""
    text = json.dumps([bucket, entry.get("operation"), entry.get("storage_class"), entry.get("key_arn"), entry.get("bucket_key"),
                       entry.get("prefix", ""), entry.get("size_below"), entry.get("role_arn"), objects])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def confirm_command(account_id: str, job_id: str, region: str | None = None) -> str:
    """The AWS CLI command that lets a Suspended job run (what the digest does through the module)."""
    where = f" --region {region}" if region else ""
    return (f"aws s3control update-job-status --account-id {account_id} --job-id {job_id} "
            f"--requested-job-status Ready{where}")


def awaiting_confirmation(entry: dict) -> bool:
    return entry.get("status") == "Suspended"


def manifest_csv(bucket: str, keys) -> str:
    """A CSV manifest (S3BatchOperations_CSV_20180820, Bucket,Key): keys URL-encoded, no version id - a task copies the
    current version, as a job from a generated manifest does."""
    return "".join(f"{bucket},{urllib.parse.quote(key, safe='/')}\n" for key in sorted(set(keys)))


def lock_keys_part(keys: dict) -> str:
    """One part of the keys the listing handed to jobs on an object-lock bucket: `storage class,URL-encoded key`."""
    return "".join(f"{cls},{urllib.parse.quote(key, safe='/')}\n" for cls in sorted(keys) for key in sorted(keys[cls]))


def read_lock_keys_part(text: str) -> dict:
    keys: dict = {}
    for line in text.splitlines():
        if line:
            cls, key = line.split(",", 1)
            keys.setdefault(cls, set()).add(urllib.parse.unquote(key))
    return keys


def find_job(descriptors, description: str) -> dict | None:
    """Among ListJobs' JobListDescriptors, this run's job (by its description, which carries the token), the newest."""
    mine = [d for d in descriptors if d.get("Description") == description]
    return max(mine, key=lambda d: d.get("CreationTime") or datetime.min.replace(tzinfo=timezone.utc)) if mine else None


def job_progress(job: dict) -> dict:
    """DescribeJob's Job as status and task counts."""
    summary = job.get("ProgressSummary") or {}
    return {"id": job.get("JobId"), "status": job.get("Status"), "total": summary.get("TotalNumberOfTasks"),
            "succeeded": summary.get("NumberOfTasksSucceeded", 0), "failed": summary.get("NumberOfTasksFailed", 0),
            "failure_reasons": [r.get("FailureReason") for r in job.get("FailureReasons") or [] if r.get("FailureReason")]}


def report_result_files(manifest: dict) -> list[tuple[str, str, str]]:
    """(bucket, key, status) of each result file a completion report's manifest.json names."""
    files = []
    for entry in manifest.get("Results", []):
        files.append((entry.get("Bucket", ""), entry["Key"], entry.get("TaskExecutionStatus", "")))
    return files


def report_failed_tasks(text: str) -> list[dict]:
    """The failed tasks of a completion report CSV (Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode,
    ResultMessage): each key (URL-decoded), version id and the error."""
    failed = []
    for row in csv.reader(io.StringIO(text)):
        if len(row) < 4 or row[3].strip().lower() != "failed":
            continue
        failed.append({"key": urllib.parse.unquote_plus(row[1]), "version_id": row[2] or None,
                       "error": " ".join(x for x in row[4:] if x).strip() or "failed"})
    return failed


def job_line(bucket: str, jobs: list[dict]) -> str:
    """The progress line of a bucket handed to jobs, in the controller engine's words (done/total, percent)."""
    done = sum(j.get("succeeded", 0) + j.get("failed", 0) for j in jobs)
    total = sum(j.get("total") or 0 for j in jobs)
    known = all(j.get("total") is not None for j in jobs)
    states = ", ".join(f"{j.get('storage_class')} job {j.get('id')} {j.get('status')}" for j in jobs)
    shown = f"{done}/{total} objects ({100.0 * done / total:.1f}%)" if known and total else f"{done}/? objects (?%)"
    return f"{bucket}: {shown} in S3 Batch Operations ({states})"
