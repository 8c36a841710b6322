"""S3 Batch Operations: s3control CreateJob, DescribeJob, ListJobs, UpdateJobStatus, UpdateJobPriority and job
tagging, with jobs that run in the background, task by task, through the local S3's own CopyObject and
UpdateObjectEncryption. Plain moto has s3control access points and public access blocks, no jobs (its server answers
404 for /v20180820/jobs).

AWS references followed:
- API: https://docs.aws.amazon.com/AmazonS3/latest/API/API_control_CreateJob.html and its siblings (botocore's
  s3control model carries the same text; requests and answers are parsed and serialized with it).
- Statuses: https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-job-status.html (job status table,
  updating job status, tracking job failures, completion reports).
- Copy: https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-copy-object.html (objects up to 5 GB; every
  CopyObject option except ETag conditions and SSE-C; one storage class per job).
- Completion report: https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-examples-reports.html.
- Manifests: https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-create-job.html#specify-batchjob-manifest
  (CSV rows ``bucket,key[,versionId]``, keys URL-encoded; the manifest object's ETag is part of the job; without a
  version id a task acts on the current version) and
  https://docs.aws.amazon.com/AmazonS3/latest/API/API_control_S3JobManifestGenerator.html.
- Role: https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-iam-role-policies.html (the role trusts
  ``batchoperations.s3.amazonaws.com``; the job reads the manifest, acts on every object and writes the report with
  the role's permissions).
- Regions: https://docs.aws.amazon.com/AmazonS3/latest/userguide/troubleshooting-batch-operations.html (a job asked
  for in another Region than its own is not found).

CONTRACT (what a client of the local AWS can rely on)

Requests. botocore sends s3control requests to ``<account id>.<endpoint host>`` even with a custom endpoint (its
endpoint rules add the label; inject_host_prefix does not remove it), so a client of the local AWS drops the label
before signing: ``client.meta.events.register("before-sign.s3-control", drop_account_label)`` with
``tests.local_aws.harness.drop_account_label`` (the harness's own s3control clients do it).
- ``AccountId`` (header x-amz-account-id) is the account whose jobs these are; jobs are per account and per Region
  (another Region's job is NotFoundException). ``/moto-api/reset`` forgets every job.
- CreateJob needs exactly one of Manifest / ManifestGenerator (else BadRequestException) and one operation. The
  operations run here are ``S3PutObjectCopy`` and ``S3UpdateObjectEncryption``; any other is refused with
  BadRequestException naming it (a limit of the local AWS, not of AWS). A manifest is ``Spec.Format``
  ``S3BatchOperations_CSV_20180820`` with Fields ``Bucket,Key`` or ``Bucket,Key,VersionId`` (an S3 Inventory
  manifest is not read here) at ``Location.ObjectArn`` with ``Location.ETag``; keys are decoded as URL-encoded
  (``%XX``, ``+`` a space). ``Report.Enabled`` true needs Bucket and Format ``Report_CSV_20180820``.
- ``ClientRequestToken``: the same token with the same request answers the same JobId (no second job); with a
  different request it is IdempotencyException. ``JobId`` is a UUID; ``JobArn`` is
  ``arn:aws:s3:<region>:<account>:job/<id>``.
- Errors are 400 with the model's codes (BadRequestException, NotFoundException, JobStatusException,
  IdempotencyException, InvalidNextTokenException); AWS's model gives them no HTTP status of their own.

Statuses (``Job.Status``), never out of this order:
  New → Preparing → [Suspended, only with ConfirmationRequired, until UpdateJobStatus Ready] → Ready → Active →
  Completing → Complete.
- Failed (from Preparing): the role does not exist or does not trust batchoperations.s3.amazonaws.com, the manifest
  can't be read as the role (missing, not allowed, ETag mismatch, bad format), or the generator's source bucket can't
  be listed as the role. ``FailureReasons`` [{FailureCode, FailureReason}]; the codes are the local AWS's own.
- Failed (from Active, through Failing): more than 1,000 tasks ran and over 50 % of them failed (the threshold of
  "Tracking job failures"; counted here from the 1,001st task).
- Cancelled: UpdateJobStatus Cancelled answers Cancelling; the job ends Cancelled (at once when it was not Active; an
  Active job stops before its next task, the tasks done stay done). Accepted in every status but Complete,
  Completing, Failed, Failing, Cancelled and Cancelling (else JobStatusException). UpdateJobStatus Ready is accepted
  from Suspended only (else JobStatusException).
- A Suspended job has ``SuspendedCause`` "AwaitingConfirmation" and ``SuspendedDate``. ``TerminationDate`` is set in
  Complete, Failed and Cancelled. ``ProgressSummary``: TotalNumberOfTasks (from Ready on), NumberOfTasksSucceeded,
  NumberOfTasksFailed, Timers.ElapsedTimeInActiveSeconds. Jobs run concurrently: Priority is kept, reported and
  changed by UpdateJobPriority, but does not order jobs.

Timings (a job reads them when it is created, the bucket tag at Preparing):
- env ``BYOK_LOCAL_AWS_BATCH_TASK_SECONDS`` (default 0.02): the time each task takes (a sleep before it); e.g. 1 keeps
  a job Active long enough to kill a client and run it again.
- env ``BYOK_LOCAL_AWS_BATCH_STATUS_SECONDS`` (default 0.2): time spent in each of New, Preparing, Ready, Completing.
- bucket tag ``local-aws:batch-task-seconds`` = ``<float>`` on the job's source bucket (the generator's SourceBucket,
  else the manifest object's bucket): the task time of the jobs that code under test creates.
- job tag ``local-aws:task-seconds`` = ``<float>`` (wins over the others) and ``local-aws:copy-limit-bytes`` =
  ``<int>`` (the copy size limit below), for tests that create their own jobs.

Tasks. Each task is one real request to this same server, signed with the credentials of a session of the job's role
(STS AssumeRole, as Batch Operations does), so everything the local S3 does for a CopyObject applies: bucket default
encryption and Bucket Key, KMS key checks, KMS access enforcement (key policy + the role's IAM policies) and S3 IAM
enforcement when enforcement is on, SSE-C refusal, archived sources refused, object lock headers, checksums,
throttling tags. The manifest is read, and the report and the generated manifest are written, the same way.
- S3PutObjectCopy: CopyObject from ``Bucket/Key[?versionId]`` to ``TargetResource``'s bucket (default: the same), key
  ``TargetKeyPrefix + Key``. MetadataDirective (COPY by default; REPLACE takes NewObjectMetadata), NewObjectTagging
  (non-empty: TaggingDirective REPLACE; else the tags are copied), SSEAwsKmsKeyId (aws:kms with that key; else
  NewObjectMetadata.SSEAlgorithm KMS/AES256; else the bucket default), BucketKeyEnabled, StorageClass (else
  STANDARD, as CopyObject), ChecksumAlgorithm, ObjectLockMode / ObjectLockRetainUntilDate /
  ObjectLockLegalHoldStatus, CannedAccessControlList, AccessControlGrants (else the copy has the default private ACL:
  per-object grants are not copied), Modified/UnModifiedSinceConstraint, RequesterPays, RedirectLocation. A source
  over 5 GB (5,368,709,120 bytes; env ``BYOK_LOCAL_AWS_BATCH_COPY_LIMIT_BYTES`` or the job tag lower the limit for
  tests) fails its task with 400 InvalidRequest "The specified copy source is larger than the maximum allowable
  size for a copy source: 5368709120", with no request made.
- S3UpdateObjectEncryption: UpdateObjectEncryption of ``Bucket/Key[?versionId]`` with the job's
  ObjectEncryption.SSEKMS (s3_update_encryption.py).
A task's result is its request's answer: succeeded on 2xx, else failed with the S3 error code, HTTP status, message.

Generated manifest (ManifestGenerator.S3JobManifestGenerator), made at Preparing: the current version of each key of
``SourceBucket`` (delete markers left out; VersionId given when the bucket is versioned). AWS's documents do not say
whether noncurrent versions are listed: a job that must reach every version gets a CSV manifest with version ids.
Filter: CreatedAfter / CreatedBefore (on LastModified), KeyNameConstraint (MatchAnyPrefix, MatchAnySuffix,
MatchAnySubstring: each list given must match), ObjectSizeGreaterThanBytes / ObjectSizeLessThanBytes (strict),
MatchAnyStorageClass, MatchAnyObjectEncryption (SSES3, SSEKMS [KmsKeyArn, BucketKeyEnabled], DSSEKMS, SSEC, NOTSSE).
EnableManifestOutput writes ``<ManifestPrefix>/job-<id>/manifest.json`` (inventory-style: sourceBucket,
destinationBucket, version, creationTimestamp, fileFormat CSV, fileSchema "Bucket, Key, VersionId", files [{key,
size, MD5checksum}]) and its data file ``<ManifestPrefix>/job-<id>/data/<uuid>.csv`` (rows ``bucket,key,version``,
keys URL-encoded) to ManifestOutputLocation (ManifestEncryption honoured); DescribeJob then has
``GeneratedManifestDescriptor`` {Format S3InventoryReport_CSV_20211130, Location {ObjectArn, ETag}} of manifest.json.

Completion report (Report.Enabled), written when the tasks end (Completing; also for a Failed or Cancelled job in
which tasks ran), as the role, SSE-S3: ``<Prefix>/job-<id>/manifest.json`` = {"Format": "Report_CSV_20180820",
"ReportCreationDate": ..., "Results": [{"TaskExecutionStatus": "succeeded"|"failed", "Bucket": <report bucket>,
"MD5Checksum": ..., "Key": ...}], "ReportSchema": "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode,
ResultMessage"}, and one CSV per outcome with rows, ``<Prefix>/job-<id>/results/<sha1>.csv`` (ReportScope
FailedTasksOnly: the failed one only). Without a Prefix the keys start at ``job-<id>/``. Rows follow AWS's example
rows, which put the HTTP status before the error code (unlike the schema's names):
``bucket,key,versionId,succeeded,200,,Successful`` and ``bucket,key,versionId,failed,<http status>,<code>,<message>``,
the key as the manifest gave it (URL-encoded).
"""
from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
import os
import threading
import time
import uuid
from typing import Any
from urllib.parse import quote, unquote_plus

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.iam import policy_validation
from moto.iam.models import iam_backends
from moto.s3.models import s3_backends
from moto.s3control import urls as s3control_urls
from moto.s3control.models import s3control_backends
from moto.s3control.responses import S3ControlResponse
from moto.sts.models import sts_backends

from ._patching import add

BATCH_SERVICE = "batchoperations.s3.amazonaws.com"
COPY_LIMIT = 5 * 1024 ** 3
TERMINAL = ("Complete", "Failed", "Cancelled")
NOT_CANCELLABLE = ("Complete", "Completing", "Failed", "Failing", "Cancelled", "Cancelling")
SUPPORTED_OPERATIONS = ("S3PutObjectCopy", "S3UpdateObjectEncryption")
REPORT_SCHEMA = "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"
TASK_SECONDS_TAG = "local-aws:task-seconds"
COPY_LIMIT_TAG = "local-aws:copy-limit-bytes"
TASK_SECONDS_BUCKET_TAG = "local-aws:batch-task-seconds"
FAILURE_MIN_TASKS = 1000
COPY_TOO_LARGE = "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120"

_LOCK = threading.Lock()


class BadRequestException(ServiceException):
    code = "BadRequestException"


class NotFoundException(ServiceException):
    code = "NotFoundException"


class JobStatusException(ServiceException):
    code = "JobStatusException"


class IdempotencyException(ServiceException):
    code = "IdempotencyException"


class InvalidNextTokenException(ServiceException):
    code = "InvalidNextTokenException"


class JobFailure(Exception):
    """The job as a whole fails (FailureReasons)."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _float_env(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def _bucket_of(arn_or_name: str) -> str:
    return arn_or_name.split(":::", 1)[1] if arn_or_name.startswith("arn:") else arn_or_name


def _fingerprint(params: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in params.items() if k != "ClientRequestToken"}, sort_keys=True, default=str)


class Job:
    def __init__(self, account: str, region: str, params: dict[str, Any], endpoint: str):
        self.id = str(uuid.uuid4())
        self.account, self.region, self.params, self.endpoint = account, region, params, endpoint
        self.arn = f"arn:aws:s3:{region}:{account}:job/{self.id}"
        self.status = "New"
        self.priority = int(params.get("Priority") or 0)
        self.created = _now()
        self.terminated: datetime.datetime | None = None
        self.suspended_date: datetime.datetime | None = None
        self.suspended_cause: str | None = None
        self.status_update_reason: str | None = None
        self.failure_reasons: list[dict[str, str]] = []
        self.total: int | None = None
        self.succeeded = self.failed = 0
        self.active_seconds = 0.0
        self.generated_manifest: dict[str, Any] | None = None
        self.confirmed = threading.Event()
        self.cancel_requested = threading.Event()
        tags = {t.get("Key"): t.get("Value") for t in params.get("Tags") or []}
        self.task_seconds = _float_env("BYOK_LOCAL_AWS_BATCH_TASK_SECONDS", 0.02)
        if tags.get(TASK_SECONDS_TAG):
            self.task_seconds = float(tags[TASK_SECONDS_TAG])
        self.status_seconds = _float_env("BYOK_LOCAL_AWS_BATCH_STATUS_SECONDS", 0.2)
        self.copy_limit = int(_float_env("BYOK_LOCAL_AWS_BATCH_COPY_LIMIT_BYTES", COPY_LIMIT))
        if tags.get(COPY_LIMIT_TAG):
            self.copy_limit = int(tags[COPY_LIMIT_TAG])
        self.lock = threading.Lock()

    # --- what the API shows ---------------------------------------------------------------------------------
    def operation_name(self) -> str:
        return next(iter(self.params["Operation"]))

    def progress(self) -> dict[str, Any]:
        summary: dict[str, Any] = {"NumberOfTasksSucceeded": self.succeeded, "NumberOfTasksFailed": self.failed,
                                   "Timers": {"ElapsedTimeInActiveSeconds": int(self.active_seconds)}}
        if self.total is not None:
            summary["TotalNumberOfTasks"] = self.total
        return summary

    def descriptor(self) -> dict[str, Any]:
        params = self.params
        job: dict[str, Any] = {
            "JobId": self.id, "JobArn": self.arn, "Status": self.status, "Priority": self.priority,
            "ConfirmationRequired": bool(params.get("ConfirmationRequired")), "Operation": params["Operation"],
            "Report": params.get("Report") or {"Enabled": False}, "RoleArn": params["RoleArn"],
            "CreationTime": self.created, "ProgressSummary": self.progress(),
        }
        for name in ("Description", "Manifest", "ManifestGenerator"):
            if params.get(name):
                job[name] = params[name]
        if self.failure_reasons:
            job["FailureReasons"] = self.failure_reasons
        if self.status_update_reason:
            job["StatusUpdateReason"] = self.status_update_reason
        if self.terminated:
            job["TerminationDate"] = self.terminated
        if self.suspended_date:
            job["SuspendedDate"] = self.suspended_date
            job["SuspendedCause"] = self.suspended_cause
        if self.generated_manifest:
            job["GeneratedManifestDescriptor"] = self.generated_manifest
        return job

    def list_descriptor(self) -> dict[str, Any]:
        entry = {"JobId": self.id, "Operation": self.operation_name(), "Priority": self.priority, "Status": self.status,
                 "CreationTime": self.created, "ProgressSummary": self.progress()}
        if self.params.get("Description"):
            entry["Description"] = self.params["Description"]
        if self.terminated:
            entry["TerminationDate"] = self.terminated
        return entry

    def set_status(self, status: str) -> None:
        with self.lock:
            self._set_status(status)

    def _set_status(self, status: str) -> None:
        """Move on (the lock held); a job being cancelled only moves to a final status."""
        if self.status == "Cancelling" and status not in TERMINAL:
            return
        self.status = status
        if status in TERMINAL:
            self.terminated = _now()

    # --- running ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        threading.Thread(target=self.run, name=f"s3-batch-job-{self.id}", daemon=True).start()

    def _dwell(self) -> None:
        self.cancel_requested.wait(self.status_seconds)

    def run(self) -> None:  # pylint: disable=too-many-branches
        results: list[tuple[list[str], bool]] = []
        s3 = None
        try:
            self._dwell()
            if self._cancelled_before_active():
                return
            self.set_status("Preparing")
            self._dwell()
            s3 = self._role_client()
            self._task_seconds_from_bucket_tag()
            tasks = self._tasks(s3)
            if self._cancelled_before_active():
                return
            if self.params.get("ConfirmationRequired"):
                with self.lock:
                    self._set_status("Suspended")
                    self.suspended_date, self.suspended_cause = _now(), "AwaitingConfirmation"
                while not self.confirmed.wait(0.05):
                    if self.cancel_requested.is_set():
                        self.set_status("Cancelled")
                        return
            with self.lock:
                self.total = len(tasks)
                self._set_status("Ready")
            self._dwell()
            if self._cancelled_before_active():
                return
            self.set_status("Active")
            failed_job = self._run_tasks(s3, tasks, results)
            if self.cancel_requested.is_set():
                self._write_report(s3, results)
                self.set_status("Cancelled")
                return
            if failed_job:
                self._write_report(s3, results)
                with self.lock:
                    self.failure_reasons.append({"FailureCode": "TaskFailureThresholdExceeded", "FailureReason":
                                                 (f"{self.failed} of {self.succeeded + self.failed} tasks failed"
                                                  f" (over 50 % after at least {FAILURE_MIN_TASKS} tasks)")})
                self.set_status("Failed")
                return
            self.set_status("Completing")
            self._dwell()
            self._write_report(s3, results)
            self.set_status("Complete")
        except JobFailure as failure:
            with self.lock:
                self.failure_reasons.append({"FailureCode": failure.code, "FailureReason": failure.reason})
            self.set_status("Failed")
        except Exception as exc:  # pylint: disable=broad-except  # a bug here must not leave the job Active forever
            with self.lock:
                self.failure_reasons.append({"FailureCode": "InternalError", "FailureReason": f"local AWS: {exc!r}"})
            self.set_status("Failed")

    def _cancelled_before_active(self) -> bool:
        if self.cancel_requested.is_set():
            self.set_status("Cancelled")
            return True
        return False

    def _run_tasks(self, s3: Any, tasks: list[tuple[str, str, str | None]], results: list) -> bool:
        """Run tasks until done or cancelled; True when the failure threshold ended the job."""
        started = time.monotonic()
        try:
            for bucket, key, version in tasks:
                if self.cancel_requested.is_set():
                    return False
                if self.task_seconds:
                    time.sleep(self.task_seconds)
                outcome = self._task(s3, bucket, unquote_plus(key), version)
                ok = outcome[0] == "succeeded"
                results.append(([bucket, key, version or "", *outcome], ok))
                with self.lock:
                    if ok:
                        self.succeeded += 1
                    else:
                        self.failed += 1
                    self.active_seconds = time.monotonic() - started
                    done = self.succeeded + self.failed
                    if done > FAILURE_MIN_TASKS and self.failed * 2 > done:
                        self._set_status("Failing")
                        return True
            return False
        finally:
            self.active_seconds = time.monotonic() - started

    def _role_client(self) -> Any:
        role_arn = self.params["RoleArn"]
        role_account = role_arn.split(":")[4]
        try:
            role = iam_backends[role_account]["aws"].get_role_by_arn(role_arn)
        except Exception as exc:  # pylint: disable=broad-except
            raise JobFailure("AccessDenied", f"Unable to assume role {role_arn}: the role does not exist") from exc
        if not _trusts_batch_operations(role.assume_role_policy_document):
            raise JobFailure("AccessDenied", f"Unable to assume role {role_arn}: its trust policy does not allow {BATCH_SERVICE}")
        session = sts_backends[role_account]["aws"].assume_role(
            region_name=self.region, role_session_name=f"s3-batch-operations-{self.id[:8]}", role_arn=role_arn,
            policy=None, duration=3600, external_id=None)
        return boto3.client("s3", region_name=self.region, endpoint_url=self.endpoint,
                            aws_access_key_id=session.access_key_id, aws_secret_access_key=session.secret_access_key,
                            aws_session_token=session.session_token,
                            config=Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"},
                                          connect_timeout=10, read_timeout=120))

    def _task_seconds_from_bucket_tag(self) -> None:
        """A tag on the job's source bucket (the generator's, else the manifest object's) sets the task time: a test
        can slow down a job that the code under test creates."""
        if self.params.get("ManifestGenerator"):
            bucket = _bucket_of(self.params["ManifestGenerator"]["S3JobManifestGenerator"]["SourceBucket"])
        else:
            bucket = _bucket_of(self.params["Manifest"]["Location"]["ObjectArn"]).split("/", 1)[0]
        try:
            tags = s3_backends[self.account]["aws"].get_bucket_tagging(bucket).get("Tags", [])
        except Exception:  # pylint: disable=broad-except  # no bucket or no tags: nothing set
            return
        value = next((t["Value"] for t in tags if t["Key"] == TASK_SECONDS_BUCKET_TAG), None)
        if value and not any(t.get("Key") == TASK_SECONDS_TAG for t in self.params.get("Tags") or []):
            self.task_seconds = float(value)

    # --- manifest ----------------------------------------------------------------------------------------------
    def _tasks(self, s3: Any) -> list[tuple[str, str, str | None]]:
        if self.params.get("Manifest"):
            return self._read_manifest(s3, self.params["Manifest"])
        return self._generate_manifest(s3, self.params["ManifestGenerator"]["S3JobManifestGenerator"])

    def _read_manifest(self, s3: Any, manifest: dict[str, Any]) -> list[tuple[str, str, str | None]]:
        location, spec = manifest["Location"], manifest["Spec"]
        arn = location["ObjectArn"]
        bucket, key = _bucket_of(arn).split("/", 1)
        extra = {"VersionId": location["ObjectVersionId"]} if location.get("ObjectVersionId") else {}
        try:
            answer = s3.get_object(Bucket=bucket, Key=key, **extra)
        except ClientError as exc:
            error = exc.response["Error"]
            message = f"Reading the manifest failed: {error.get('Code')} {error.get('Message', '')}".strip()
            raise JobFailure(error.get("Code", "ManifestReadError"), message) from exc
        if answer["ETag"].strip('"') != (location.get("ETag") or "").strip('"'):
            raise JobFailure("ManifestETagMismatch", f"Reading the manifest failed: the ETag of {arn} is {answer['ETag']}, not {location.get('ETag')}")
        fields = spec.get("Fields") or []
        if spec.get("Format") != "S3BatchOperations_CSV_20180820" or fields not in (["Bucket", "Key"], ["Bucket", "Key", "VersionId"]):
            raise JobFailure("InvalidManifest", "The manifest must be S3BatchOperations_CSV_20180820 with Fields Bucket,Key[,VersionId] in the local AWS")
        tasks = []
        for row in csv.reader(io.StringIO(answer["Body"].read().decode("utf-8"))):
            if not row:
                continue
            if len(row) != len(fields):
                raise JobFailure("InvalidManifest", f"Reading the manifest failed: row {row!r} does not have the fields {fields}")
            tasks.append((row[0], row[1], row[2] if len(row) > 2 and row[2] else None))
        return tasks

    def _generate_manifest(self, s3: Any, generator: dict[str, Any]) -> list[tuple[str, str, str | None]]:
        source = _bucket_of(generator["SourceBucket"])
        try:
            s3.list_objects_v2(Bucket=source, MaxKeys=1)  # the role must be allowed to list the source bucket
        except ClientError as exc:
            error = exc.response["Error"]
            message = f"Listing the source bucket {source} failed: {error.get('Code')} {error.get('Message', '')}".strip()
            raise JobFailure(error.get("Code", "AccessDenied"), message) from exc
        backend = s3_backends[self.account]["aws"]
        bucket = backend.get_bucket(source)
        versioned = bucket.is_versioned or any(k.version_id not in (None, "null") for k in bucket.keys.values())
        filters = generator.get("Filter") or {}
        tasks = []
        for name in sorted(bucket.keys.keys()):
            key = bucket.keys.get(name)
            if key is None or getattr(key, "is_delete_marker", False) or not _matches(key, filters):
                continue
            version = key.version_id if versioned and key.version_id not in (None, "null") else None
            tasks.append((source, quote(name, safe="/"), version))
        if generator.get("EnableManifestOutput"):
            self._write_generated_manifest(s3, source, generator.get("ManifestOutputLocation") or {}, tasks)
        return tasks

    def _write_generated_manifest(self, s3: Any, source: str, output: dict[str, Any], tasks: list) -> None:
        bucket = _bucket_of(output.get("Bucket", ""))
        prefix = (output.get("ManifestPrefix") or "").rstrip("/")
        base = f"{prefix}/job-{self.id}" if prefix else f"job-{self.id}"
        body = "".join(f"{b},{k},{v or ''}\n" for b, k, v in tasks).encode()
        data_key = f"{base}/data/{uuid.uuid4()}.csv"
        extra = _manifest_encryption(output.get("ManifestEncryption"))
        s3.put_object(Bucket=bucket, Key=data_key, Body=body, **extra)
        manifest = {"sourceBucket": source, "destinationBucket": f"arn:aws:s3:::{bucket}", "version": "2021-11-30",
                    "creationTimestamp": str(int(time.time() * 1000)), "fileFormat": "CSV",
                    "fileSchema": "Bucket, Key, VersionId",
                    "files": [{"key": data_key, "size": len(body), "MD5checksum": hashlib.md5(body).hexdigest()}]}  # noqa: S324
        answer = s3.put_object(Bucket=bucket, Key=f"{base}/manifest.json", Body=json.dumps(manifest).encode(), **extra)
        self.generated_manifest = {"Format": "S3InventoryReport_CSV_20211130",
                                   "Location": {"ObjectArn": f"arn:aws:s3:::{bucket}/{base}/manifest.json", "ETag": answer["ETag"].strip('"')}}

    # --- tasks -------------------------------------------------------------------------------------------------
    def _task(self, s3: Any, bucket: str, key: str, version: str | None) -> list[str]:
        """[TaskStatus, HTTP status, error code, message] (the order of AWS's example report rows)."""
        operation = self.params["Operation"]
        try:
            if "S3PutObjectCopy" in operation:
                try:
                    source = s3_backends[self.account]["aws"].get_object(bucket, key, version_id=version)
                except Exception:  # pylint: disable=broad-except  # no such bucket: the CopyObject answers for it
                    source = None
                if source is not None and source.size > self.copy_limit:
                    return ["failed", "400", "InvalidRequest", COPY_TOO_LARGE]
                s3.copy_object(**_copy_request(operation["S3PutObjectCopy"], bucket, key, version))
            else:
                sse = (operation["S3UpdateObjectEncryption"].get("ObjectEncryption") or {}).get("SSEKMS") or {}
                request: dict[str, Any] = {"Bucket": bucket, "Key": key, "ObjectEncryption": {"SSEKMS": sse}}
                if version:
                    request["VersionId"] = version
                s3.update_object_encryption(**request)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
            return ["failed", str(status), error.get("Code", str(status)), error.get("Message", "")]
        return ["succeeded", "200", "", "Successful"]

    # --- report ------------------------------------------------------------------------------------------------
    def _write_report(self, s3: Any, results: list[tuple[list[str], bool]]) -> None:
        report = self.params.get("Report") or {}
        if not report.get("Enabled") or s3 is None or not results:
            return
        bucket = _bucket_of(report["Bucket"])
        prefix = (report.get("Prefix") or "").rstrip("/")
        base = f"{prefix}/job-{self.id}" if prefix else f"job-{self.id}"
        files = []
        for outcome, ok in (("succeeded", True), ("failed", False)):
            if ok and report.get("ReportScope") == "FailedTasksOnly":
                continue
            rows = [row for row, row_ok in results if row_ok is ok]
            if not rows:
                continue
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerows(rows)
            body = buffer.getvalue().encode()
            key = f"{base}/results/{hashlib.sha1(f'{self.id}/{outcome}'.encode()).hexdigest()}.csv"  # noqa: S324
            s3.put_object(Bucket=bucket, Key=key, Body=body, ServerSideEncryption="AES256")
            files.append({"TaskExecutionStatus": outcome, "Bucket": bucket, "MD5Checksum": hashlib.md5(body).hexdigest(), "Key": key})  # noqa: S324
        manifest = {"Format": "Report_CSV_20180820", "ReportCreationDate": _now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                    "Results": files, "ReportSchema": REPORT_SCHEMA}
        s3.put_object(Bucket=bucket, Key=f"{base}/manifest.json", Body=json.dumps(manifest, indent=4).encode(), ServerSideEncryption="AES256")


def _manifest_encryption(encryption: dict[str, Any] | None) -> dict[str, Any]:
    if encryption and encryption.get("SSEKMS"):
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": encryption["SSEKMS"]["KeyId"]}
    if encryption and "SSES3" in encryption:
        return {"ServerSideEncryption": "AES256"}
    return {}


def _trusts_batch_operations(document: Any) -> bool:
    try:
        policy = json.loads(document) if isinstance(document, str) else document
    except ValueError:
        return False
    statements = policy.get("Statement", [])
    for st in statements if isinstance(statements, list) else [statements]:
        if st.get("Effect") != "Allow":
            continue
        actions = st.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        services = (st.get("Principal") or {}).get("Service", []) if isinstance(st.get("Principal"), dict) else []
        services = [services] if isinstance(services, str) else services
        if BATCH_SERVICE in services and any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            return True
    return False


def _encryption_kind(key: Any) -> str:
    if getattr(key, "byok_sse_c", None):
        return "SSEC"
    return {"AES256": "SSES3", "aws:kms": "SSEKMS", "aws:kms:dsse": "DSSEKMS"}.get(key.encryption or "", "NOTSSE")


def _aware(value: Any) -> datetime.datetime:
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


def _matches(key: Any, filters: dict[str, Any]) -> bool:  # pylint: disable=too-many-return-statements
    """The S3JobManifestGenerator Filter (JobManifestGeneratorFilter) applied to one object."""
    modified = _aware(key.last_modified)
    if filters.get("CreatedAfter") and modified <= _aware(filters["CreatedAfter"]):
        return False
    if filters.get("CreatedBefore") and modified >= _aware(filters["CreatedBefore"]):
        return False
    names = filters.get("KeyNameConstraint") or {}
    if names.get("MatchAnyPrefix") and not any(key.name.startswith(p) for p in names["MatchAnyPrefix"]):
        return False
    if names.get("MatchAnySuffix") and not any(key.name.endswith(s) for s in names["MatchAnySuffix"]):
        return False
    if names.get("MatchAnySubstring") and not any(s in key.name for s in names["MatchAnySubstring"]):
        return False
    if filters.get("ObjectSizeGreaterThanBytes") is not None and not key.size > int(filters["ObjectSizeGreaterThanBytes"]):
        return False
    if filters.get("ObjectSizeLessThanBytes") is not None and not key.size < int(filters["ObjectSizeLessThanBytes"]):
        return False
    if filters.get("MatchAnyStorageClass") and (key.storage_class or "STANDARD") not in filters["MatchAnyStorageClass"]:
        return False
    wanted = filters.get("MatchAnyObjectEncryption")
    if wanted:
        kind = _encryption_kind(key)
        for entry in wanted:
            if kind not in entry:
                continue
            detail = entry[kind] or {}
            if detail.get("KmsKeyArn") and detail["KmsKeyArn"] != key.kms_key_id:
                continue
            if detail.get("BucketKeyEnabled") is not None and bool(detail["BucketKeyEnabled"]) != bool(key.bucket_key_enabled):
                continue
            break
        else:
            return False
    return True


def _grant_header(grants: list[dict[str, Any]], permission: str) -> str | None:
    kinds = {"id": "id", "emailAddress": "emailAddress", "uri": "uri"}
    values = [f'{kinds[g["Grantee"]["TypeIdentifier"]]}="{g["Grantee"]["Identifier"]}"'
              for g in grants if g.get("Permission") == permission and g.get("Grantee")]
    return ", ".join(values) or None


def _copy_request(copy: dict[str, Any], bucket: str, key: str, version: str | None) -> dict[str, Any]:  # pylint: disable=too-many-branches
    """The CopyObject one task makes, from the job's S3PutObjectCopy (S3CopyObjectOperation)."""
    source = {"Bucket": bucket, "Key": key, **({"VersionId": version} if version else {})}
    target = _bucket_of(copy["TargetResource"]) if copy.get("TargetResource") else bucket
    request: dict[str, Any] = {"Bucket": target, "Key": (copy.get("TargetKeyPrefix") or "") + key, "CopySource": source}
    metadata = copy.get("NewObjectMetadata") or {}
    if copy.get("MetadataDirective") == "REPLACE":
        request["MetadataDirective"] = "REPLACE"
        for field, name in (("CacheControl", "CacheControl"), ("ContentDisposition", "ContentDisposition"),
                            ("ContentEncoding", "ContentEncoding"), ("ContentLanguage", "ContentLanguage"),
                            ("ContentType", "ContentType"), ("HttpExpiresDate", "Expires"), ("UserMetadata", "Metadata")):
            if metadata.get(field):
                request[name] = metadata[field]
    algorithm = {"KMS": "aws:kms", "AES256": "AES256"}.get(metadata.get("SSEAlgorithm") or "")
    if copy.get("SSEAwsKmsKeyId"):
        request["ServerSideEncryption"], request["SSEKMSKeyId"] = "aws:kms", copy["SSEAwsKmsKeyId"]
    elif algorithm:
        request["ServerSideEncryption"] = algorithm
    if copy.get("BucketKeyEnabled") is not None:
        request["BucketKeyEnabled"] = bool(copy["BucketKeyEnabled"])
    if copy.get("NewObjectTagging"):
        request["TaggingDirective"] = "REPLACE"
        request["Tagging"] = "&".join(f"{quote(t['Key'])}={quote(t.get('Value', ''))}" for t in copy["NewObjectTagging"])
    simple = (("StorageClass", "StorageClass"), ("ChecksumAlgorithm", "ChecksumAlgorithm"), ("ObjectLockMode", "ObjectLockMode"),
              ("ObjectLockRetainUntilDate", "ObjectLockRetainUntilDate"), ("ObjectLockLegalHoldStatus", "ObjectLockLegalHoldStatus"),
              ("CannedAccessControlList", "ACL"), ("ModifiedSinceConstraint", "CopySourceIfModifiedSince"),
              ("UnModifiedSinceConstraint", "CopySourceIfUnmodifiedSince"), ("RedirectLocation", "WebsiteRedirectLocation"))
    for field, name in simple:
        if copy.get(field):
            request[name] = copy[field]
    if copy.get("RequesterPays"):
        request["RequestPayer"] = "requester"
    grants = copy.get("AccessControlGrants") or []
    for permission, name in (("FULL_CONTROL", "GrantFullControl"), ("READ", "GrantRead"), ("READ_ACP", "GrantReadACP"), ("WRITE_ACP", "GrantWriteACP")):
        if value := _grant_header(grants, permission):
            request[name] = value
    return request


# --- the API ---------------------------------------------------------------------------------------------------------
def _store(account: str) -> tuple[dict[str, Job], dict[tuple[str, str], tuple[str, str]]]:
    """(job id -> job, (region, token) -> (request fingerprint, job id)) of an account, kept on its s3control backend
    so that /moto-api/reset forgets them with everything else."""
    backend = s3control_backends[account]["aws"]
    if not hasattr(backend, "byok_jobs"):
        backend.byok_jobs, backend.byok_job_tokens = {}, {}
    return backend.byok_jobs, backend.byok_job_tokens


def _job(account: str, region: str, job_id: str) -> Job:
    """Jobs are regional: another Region's job is not found (troubleshooting-batch-operations.html, NoSuchJobException)."""
    job = _store(account)[0].get(job_id)
    if job is None or job.region != region:
        raise NotFoundException("The specified job does not exist")
    return job


def _endpoint_of(response: Any) -> str:
    """This server, as the job's own requests reach it (not through a proxy in front of it)."""
    environ = response.normalized_request.environ
    host = environ.get("SERVER_NAME") or "127.0.0.1"
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{host}:{environ.get('SERVER_PORT', '5000')}"


def _validate(params: dict[str, Any]) -> None:
    if bool(params.get("Manifest")) == bool(params.get("ManifestGenerator")):
        raise BadRequestException("Jobs must be created with either a manifest file or a ManifestGenerator, but not both.")
    operation = params.get("Operation") or {}
    if len(operation) != 1:
        raise BadRequestException("Exactly one operation must be specified")
    name = next(iter(operation))
    if name not in SUPPORTED_OPERATIONS:
        raise BadRequestException(f"The local AWS does not run {name} jobs (only {', '.join(SUPPORTED_OPERATIONS)})")
    if params.get("ManifestGenerator") and not (params["ManifestGenerator"].get("S3JobManifestGenerator") or {}).get("SourceBucket"):
        raise BadRequestException("S3JobManifestGenerator.SourceBucket is required")
    report = params.get("Report") or {}
    if report.get("Enabled") and (not report.get("Bucket") or report.get("Format") != "Report_CSV_20180820"):
        raise BadRequestException("An enabled job report needs a Bucket and the Format Report_CSV_20180820")
    if name == "S3UpdateObjectEncryption" and not ((operation[name].get("ObjectEncryption") or {}).get("SSEKMS") or {}).get("KMSKeyArn"):
        raise BadRequestException("S3UpdateObjectEncryption needs ObjectEncryption.SSEKMS.KMSKeyArn")


def create_job(self: S3ControlResponse) -> ActionResult:
    params = dict(self.params)
    account = params.pop("AccountId", None) or self.current_account
    _validate(params)
    token = params.get("ClientRequestToken") or str(uuid.uuid4())
    fingerprint = _fingerprint(params)
    with _LOCK:
        jobs, tokens = _store(account)
        known = tokens.get((self.region, token))
        if known:
            if known[0] != fingerprint:
                raise IdempotencyException("A job with this ClientRequestToken already exists with different parameters")
            return ActionResult({"JobId": known[1]})
        job = Job(account, self.region, params, _endpoint_of(self))
        jobs[job.id] = job
        tokens[(self.region, token)] = (fingerprint, job.id)
    job.start()
    return ActionResult({"JobId": job.id})


def describe_job(self: S3ControlResponse) -> ActionResult:
    job = _job(self._get_param("AccountId"), self.region, self._get_param("JobId"))  # pylint: disable=protected-access
    with job.lock:
        return ActionResult({"Job": job.descriptor()})


def list_jobs(self: S3ControlResponse) -> ActionResult:
    account = self._get_param("AccountId")  # pylint: disable=protected-access
    statuses = self._get_param("JobStatuses") or []  # pylint: disable=protected-access
    max_results = int(self._get_param("MaxResults") or 1000)  # pylint: disable=protected-access
    token = self._get_param("NextToken")  # pylint: disable=protected-access
    jobs = sorted(_store(account)[0].values(), key=lambda j: j.created, reverse=True)
    jobs = [j for j in jobs if j.region == self.region and (not statuses or j.status in statuses)]
    start = 0
    if token:
        try:
            start = int(token.split("-", 1)[1]) if token.startswith("page-") else -1
        except ValueError:
            start = -1
        if start < 0 or start > len(jobs):
            raise InvalidNextTokenException("The NextToken is not valid")
    page = jobs[start:start + max_results]
    result: dict[str, Any] = {"Jobs": [j.list_descriptor() for j in page]}
    if start + max_results < len(jobs):
        result["NextToken"] = f"page-{start + max_results}"
    return ActionResult(result)


def update_job_status(self: S3ControlResponse) -> ActionResult:
    job = _job(self._get_param("AccountId"), self.region, self._get_param("JobId"))  # pylint: disable=protected-access
    requested = self._get_param("RequestedJobStatus")  # pylint: disable=protected-access
    reason = self._get_param("StatusUpdateReason")  # pylint: disable=protected-access
    with job.lock:
        if requested == "Ready":
            if job.status != "Suspended":
                raise JobStatusException(f"The job is {job.status}: only a Suspended job can be confirmed (Ready)")
            job.status = "Ready"
            job.confirmed.set()
        elif requested == "Cancelled":
            if job.status in NOT_CANCELLABLE:
                raise JobStatusException(f"The job is {job.status} and can no longer be cancelled")
            job.status = "Cancelling"
            job.cancel_requested.set()
        else:
            raise BadRequestException("RequestedJobStatus must be Ready or Cancelled")
        if reason:
            job.status_update_reason = reason
        answer = {"JobId": job.id, "Status": job.status}
        if job.status_update_reason:
            answer["StatusUpdateReason"] = job.status_update_reason
    return ActionResult(answer)


def update_job_priority(self: S3ControlResponse) -> ActionResult:
    job = _job(self._get_param("AccountId"), self.region, self._get_param("JobId"))  # pylint: disable=protected-access
    with job.lock:
        job.priority = int(self._get_param("Priority"))  # pylint: disable=protected-access
    return ActionResult({"JobId": job.id, "Priority": job.priority})


def get_job_tagging(self: S3ControlResponse) -> ActionResult:
    job = _job(self._get_param("AccountId"), self.region, self._get_param("JobId"))  # pylint: disable=protected-access
    with job.lock:
        return ActionResult({"Tags": list(job.params.get("Tags") or [])})


def put_job_tagging(self: S3ControlResponse) -> ActionResult:
    job = _job(self._get_param("AccountId"), self.region, self._get_param("JobId"))  # pylint: disable=protected-access
    with job.lock:
        job.params["Tags"] = list(self._get_param("Tags") or [])  # pylint: disable=protected-access
    return ActionResult({})


def delete_job_tagging(self: S3ControlResponse) -> ActionResult:
    job = _job(self._get_param("AccountId"), self.region, self._get_param("JobId"))  # pylint: disable=protected-access
    with job.lock:
        job.params["Tags"] = []
    return ActionResult({})


PATHS = {
    "/v20180820/jobs": S3ControlResponse.dispatch,
    "/v20180820/jobs/<id>": S3ControlResponse.dispatch,
    "/v20180820/jobs/<id>/status": S3ControlResponse.dispatch,
    "/v20180820/jobs/<id>/priority": S3ControlResponse.dispatch,
    "/v20180820/jobs/<id>/tagging": S3ControlResponse.dispatch,
}


# S3 resources whose ARN carries a Region and an account (Service Authorization Reference, "Actions, resources, and
# condition keys for Amazon S3", resource types: accesspoint, job, storagelensconfiguration, storagelensgroup,
# accessgrantsinstance and its locations/grants): IAM accepts them in a policy's Resource. moto's policy validator
# refuses every S3 ARN with a Region but an access point's, so a policy scoped to `arn:aws:s3:<region>:<account>:job/*`
# (what s3:DescribeJob or s3:UpdateJobStatus are granted on) was refused as MalformedPolicyDocument.
S3_REGIONAL_RESOURCE_TYPES = ("accesspoint/", "job/", "storage-lens/", "storage-lens-group/", "access-grants/")


def allow_regional_s3_resources_in_policies() -> None:
    rule = policy_validation.SERVICE_TYPE_REGION_INFORMATION_ERROR_ASSOCIATIONS["s3"]
    starts = rule.setdefault("valid_starting_values", [])
    starts.extend(s for s in S3_REGIONAL_RESOURCE_TYPES if s not in starts)


def apply() -> None:
    allow_regional_s3_resources_in_policies()
    for name, fn in (("create_job", create_job), ("describe_job", describe_job), ("list_jobs", list_jobs),
                     ("update_job_status", update_job_status), ("update_job_priority", update_job_priority),
                     ("get_job_tagging", get_job_tagging), ("put_job_tagging", put_job_tagging),
                     ("delete_job_tagging", delete_job_tagging)):
        add(S3ControlResponse, name, fn)
    for path, handler in PATHS.items():
        s3control_urls.url_paths.setdefault(path, handler)
