# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Re-encrypt a bucket's objects in place under a KMS key: CopyObject onto itself, every attribute kept.

Speed: the listing already gives size, ETag, storage class and checksum algorithm, so on the normal path (ACLs
disabled, no object lock, no website hosting) an object costs ONE request, the conditional CopyObject. Reads are
added only where the bucket needs them: GetObjectAcl (ACLs enabled), HeadObject (object lock, website redirects,
multipart-sized objects, and objects whose key can't be known from the checkpoint).

Knowing what is done without reading it: the bucket default is on the key from `cutoff` (server time, kept in the
checkpoint), so an object last modified after the cutoff was written under the default or by our copy. Objects
modified in the cutoff's second, or when no cutoff is known, are read with HEAD.
"""

from __future__ import annotations

import collections
import concurrent.futures
import random
import threading
import time
import urllib.parse
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # the module reports the missing SDK; distinct stand-ins keep the except clauses apart
    class BotoCoreError(Exception):
        pass

    class ClientError(Exception):
        pass

from ansible_collections.mattermost.byok.plugins.module_utils.aws_errors import error_code
from ansible_collections.mattermost.byok.plugins.module_utils.aws_errors import error_text

GIB = 1024 ** 3
MIB = 1024 ** 2
ARCHIVED = ("GLACIER", "DEEP_ARCHIVE")
RETRYABLE = {"SlowDown", "503", "ServiceUnavailable", "Throttling", "ThrottlingException", "RequestTimeout",
             "RequestTimeTooSkewed", "InternalError", "500", "OperationAborted"}
MAX_REPORTED = 1000  # per-key lists in the result are capped; the counts are not
CHECKPOINT_EVERY = 15.0
HEAD_FIELDS = ("CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage", "ContentType", "Expires",
               "WebsiteRedirectLocation")
GRANT_PARAMS = {"FULL_CONTROL": "GrantFullControl", "READ": "GrantRead", "READ_ACP": "GrantReadACP", "WRITE_ACP": "GrantWriteACP"}


@dataclass
class Options:
    bucket: str
    key_arn: str
    bucket_key: bool = True
    prefix: str = ""
    concurrency: int = 10
    multipart_threshold: int = 5 * GIB
    part_size: int = 512 * MIB
    max_seconds: float | None = None
    verify: bool = False
    check_mode: bool = False
    max_retries: int = 8


@dataclass
class BucketTraits:
    acls_enabled: bool = False
    object_lock: bool = False
    website: bool = False

    def extra_reads(self) -> list[str]:
        return [name for name, on in (("GetObjectAcl", self.acls_enabled), ("HeadObject (object lock)", self.object_lock),
                                      ("HeadObject (website redirects)", self.website)) if on]


def _missing(e, *codes) -> bool:
    return isinstance(e, ClientError) and error_code(e) in codes


def bucket_traits(s3, bucket: str) -> BucketTraits:
    traits = BucketTraits()
    try:
        rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
        traits.acls_enabled = not any(r.get("ObjectOwnership") == "BucketOwnerEnforced" for r in rules)
    except ClientError as e:
        if not _missing(e, "OwnershipControlsNotFoundError"):
            raise
        traits.acls_enabled = True  # no ownership controls: the bucket still uses ACLs
    try:
        lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
        traits.object_lock = lock.get("ObjectLockEnabled") == "Enabled"
    except ClientError as e:
        if not _missing(e, "ObjectLockConfigurationNotFoundError", "ObjectLockConfigurationNotFound"):
            raise
    try:
        s3.get_bucket_website(Bucket=bucket)
        traits.website = True
    except ClientError as e:
        if not _missing(e, "NoSuchWebsiteConfiguration"):
            raise
    return traits


def server_time(response: dict) -> float:
    """The S3 server's clock (the Date header) as epoch seconds: LastModified is compared with it, not ours."""
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    return parsedate_to_datetime(date).timestamp() if date else time.time()


class RequestCounter:
    """Counts the HTTP requests a client sends (retries included), through botocore's event hooks."""

    def __init__(self, client):
        self.count = 0
        self._lock = threading.Lock()
        client.meta.events.register("before-send.s3", self._on_send)

    def _on_send(self, **kwargs):  # pylint: disable=unused-argument
        with self._lock:
            self.count += 1


class Retrying:
    """Throttling (SlowDown, 503) and transient errors retried with jittered exponential backoff."""

    def __init__(self, max_retries: int):
        self.max_retries = max_retries
        self.retries = 0
        self._lock = threading.Lock()

    def call(self, fn, **kwargs):
        attempt = 0
        while True:
            try:
                return fn(**kwargs)
            except (ClientError, BotoCoreError) as e:
                retryable = error_code(e) in RETRYABLE or isinstance(e, BotoCoreError)
                if not retryable or attempt >= self.max_retries:
                    raise
                attempt += 1
                with self._lock:
                    self.retries += 1
                time.sleep(min(5.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))


class Outcome:
    """What happened to one object."""

    __slots__ = ("key", "status", "reason", "size")

    def __init__(self, key, status, reason="", size=0):
        self.key, self.status, self.reason, self.size = key, status, reason, size


def _grants(acl: dict) -> dict:
    """GetObjectAcl grants as CopyObject grant headers (the copy would otherwise reset the ACL to private)."""
    headers: dict[str, list[str]] = collections.defaultdict(list)
    for grant in acl.get("Grants", []):
        grantee, param = grant.get("Grantee", {}), GRANT_PARAMS.get(grant.get("Permission"))
        if not param:
            continue
        if grantee.get("Type") == "CanonicalUser":
            headers[param].append(f'id="{grantee["ID"]}"')
        elif grantee.get("Type") == "Group":
            headers[param].append(f'uri="{grantee["URI"]}"')
        elif grantee.get("Type") == "AmazonCustomerByEmail":
            headers[param].append(f'emailAddress="{grantee["EmailAddress"]}"')
    return {param: ", ".join(values) for param, values in headers.items()}


class Engine:
    def __init__(self, s3, options: Options, traits: BucketTraits, cutoff: float | None):
        self.s3 = s3
        self.o = options
        self.traits = traits
        self.cutoff = cutoff
        self.retry = Retrying(options.max_retries)

    # --- classification from the listing alone -------------------------------------------------------------
    def plan(self, item: dict) -> str:
        """copy | head | on_key | archived"""
        storage = item.get("StorageClass", "STANDARD")
        restore = item.get("RestoreStatus") or {}
        if storage in ARCHIVED and not (restore.get("RestoreExpiryDate") and not restore.get("IsRestoreInProgress")):
            return "archived"
        if self.o.verify or self.cutoff is None:
            return "head"
        modified = int(item["LastModified"].timestamp())
        if modified > int(self.cutoff):
            return "on_key"
        if modified == int(self.cutoff):
            return "head"  # LastModified has one-second resolution: the cutoff's own second is ambiguous
        return "copy"

    # --- one object ------------------------------------------------------------------------------------------
    def process(self, item: dict, plan: str) -> Outcome:
        key, size = item["Key"], item.get("Size", 0)
        try:
            return self._process(item, plan)
        except ClientError as e:
            code = error_code(e)
            if (code == "InvalidRequest" and "Server Side Encryption" in error_text(e)) or code in ("400", "BadRequest"):
                return Outcome(key, "skipped", "SSE-C: encrypted with a customer-provided key, which S3 needs to read it; "
                               "only its owner can re-encrypt it", size)
            if code in ("ObjectNotInActiveTierError", "InvalidObjectState"):
                return Outcome(key, "skipped", f"archived ({item.get('StorageClass')}), not restored: restore it first", size)
            return Outcome(key, "failed", error_text(e), size)
        except BotoCoreError as e:
            return Outcome(key, "failed", f"{type(e).__name__}: {e}", size)

    def _process(self, item: dict, plan: str) -> Outcome:
        key, size, etag = item["Key"], item.get("Size", 0), item["ETag"]
        head = None
        needs_head = plan == "head" or self.traits.object_lock or self.traits.website or size > self.o.multipart_threshold
        if needs_head:
            head = self.retry.call(self.s3.head_object, Bucket=self.o.bucket, Key=key)
            if head.get("SSECustomerAlgorithm"):
                raise ClientError({"Error": {"Code": "InvalidRequest", "Message": "Server Side Encryption with customer key"}}, "HeadObject")
            if head.get("ServerSideEncryption") == "aws:kms" and head.get("SSEKMSKeyId") == self.o.key_arn:
                return Outcome(key, "on_key", size=size)
            etag = head.get("ETag", etag)
        if self.o.check_mode:
            return Outcome(key, "re_encrypted", size=size)
        extra = {}
        if self.traits.acls_enabled:
            extra.update(_grants(self.retry.call(self.s3.get_object_acl, Bucket=self.o.bucket, Key=key)))
        if head is not None:
            for field in ("ObjectLockMode", "ObjectLockRetainUntilDate", "ObjectLockLegalHoldStatus", "WebsiteRedirectLocation"):
                if head.get(field):
                    extra[field] = head[field]
        checksum = (item.get("ChecksumAlgorithm") or [None])[0]
        if checksum:
            extra["ChecksumAlgorithm"] = checksum
        if size > self.o.multipart_threshold:
            self._multipart_copy(key, size, etag, item.get("StorageClass", "STANDARD"), head, extra)
        else:
            self.retry.call(
                self.s3.copy_object, Bucket=self.o.bucket, Key=key, CopySource={"Bucket": self.o.bucket, "Key": key},
                CopySourceIfMatch=etag, MetadataDirective="COPY", TaggingDirective="COPY",
                StorageClass=item.get("StorageClass", "STANDARD"), ServerSideEncryption="aws:kms",
                SSEKMSKeyId=self.o.key_arn, BucketKeyEnabled=self.o.bucket_key, **extra)
        return Outcome(key, "re_encrypted", size=size)

    def _multipart_copy(self, key, size, etag, storage_class, head, extra):
        """Objects above the single-copy limit: every attribute given again to CreateMultipartUpload (it inherits
        nothing), parts copied with the same ETag condition, aborted on any failure."""
        tags = self.retry.call(self.s3.get_object_tagging, Bucket=self.o.bucket, Key=key).get("TagSet", [])
        create = dict(Bucket=self.o.bucket, Key=key, ServerSideEncryption="aws:kms", SSEKMSKeyId=self.o.key_arn,
                      BucketKeyEnabled=self.o.bucket_key, StorageClass=storage_class, Metadata=head.get("Metadata", {}), **extra)
        for field in HEAD_FIELDS:
            if head.get(field) and field not in create:
                create[field] = head[field]
        if tags:
            create["Tagging"] = urllib.parse.urlencode([(t["Key"], t["Value"]) for t in tags])
        upload_id = self.retry.call(self.s3.create_multipart_upload, **create)["UploadId"]
        try:
            parts = []
            for number, start in enumerate(range(0, size, self.o.part_size), start=1):
                end = min(start + self.o.part_size, size) - 1
                result = self.retry.call(
                    self.s3.upload_part_copy, Bucket=self.o.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                    CopySource={"Bucket": self.o.bucket, "Key": key}, CopySourceIfMatch=etag,
                    CopySourceRange=f"bytes={start}-{end}")["CopyPartResult"]
                part = {"PartNumber": number, "ETag": result["ETag"]}
                for name in ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1", "ChecksumSHA256", "ChecksumCRC64NVME"):
                    if result.get(name):
                        part[name] = result[name]
                parts.append(part)
            self.retry.call(self.s3.complete_multipart_upload, Bucket=self.o.bucket, Key=key, UploadId=upload_id,
                            MultipartUpload={"Parts": parts})
        except BaseException:
            try:
                self.s3.abort_multipart_upload(Bucket=self.o.bucket, Key=key, UploadId=upload_id)
            except (ClientError, BotoCoreError):
                pass  # reported by the copy's own error; a lifecycle rule for incomplete uploads cleans the rest
            raise


def list_pages(s3, retry: Retrying, bucket: str, prefix: str, start_after: str | None):
    """ListObjectsV2 pages, one at a time (memory stays flat), with RestoreStatus for archived objects."""
    kwargs = {"Bucket": bucket, "OptionalObjectAttributes": ["RestoreStatus"], "MaxKeys": 1000}
    if prefix:
        kwargs["Prefix"] = prefix
    if start_after:
        kwargs["StartAfter"] = start_after
    while True:
        page = retry.call(s3.list_objects_v2, **kwargs)
        yield page
        if not page.get("IsTruncated"):
            return
        kwargs.pop("StartAfter", None)
        kwargs["ContinuationToken"] = page["NextContinuationToken"]


def count_objects(s3, retry: Retrying, bucket: str, prefix: str) -> int:
    """A listing pass without copying: ~1 request per 1,000 objects, for the progress total."""
    return sum(page.get("KeyCount", len(page.get("Contents", []))) for page in list_pages(s3, retry, bucket, prefix, None))


def new_result() -> dict:
    return {"scanned": 0, "re_encrypted": 0, "already_on_key": 0, "skipped": 0, "failed": 0, "bytes": 0,
            "skipped_objects": [], "failed_objects": []}


def _record(result: dict, outcome: Outcome) -> None:
    result["scanned"] += 1
    if outcome.status == "on_key":
        result["already_on_key"] += 1
    elif outcome.status == "re_encrypted":
        result["re_encrypted"] += 1
        result["bytes"] += outcome.size
    else:
        result[outcome.status] += 1
        bucket = result["skipped_objects" if outcome.status == "skipped" else "failed_objects"]
        if len(bucket) < MAX_REPORTED:
            bucket.append({"key": outcome.key, "reason": outcome.reason})


def run(s3, options: Options, traits: BucketTraits, cutoff: float | None, start_after: str | None,
        save_marker=None, clock=time.monotonic) -> dict:
    """Re-encrypt (or, in check mode, count) the bucket's current objects after `start_after`.

    Returns the counts plus `marker` (last key done with all before it) and `complete` (listing exhausted).
    `save_marker(marker)` is called every CHECKPOINT_EVERY seconds so a kill loses little.
    """
    engine = Engine(s3, options, traits, cutoff)
    counter = RequestCounter(s3)
    result = new_result()
    started = clock()
    deadline = started + options.max_seconds if options.max_seconds else None
    marker, complete, last_save = start_after, True, started
    # In flight, in listing order: the marker only moves past keys whose copy (and every earlier one) is finished.
    window: collections.deque = collections.deque()
    slots = threading.BoundedSemaphore(options.concurrency * 2)

    def release(_future):
        slots.release()

    def drain(block_until: int):
        nonlocal marker
        while window and (window[0][1].done() or len(window) > block_until):
            key, future = window.popleft()
            _record(result, future.result())
            marker = key

    with concurrent.futures.ThreadPoolExecutor(max_workers=options.concurrency) as pool:
        for page in list_pages(s3, engine.retry, options.bucket, options.prefix, start_after):
            stop = False
            for item in page.get("Contents", []):
                if deadline is not None and clock() >= deadline:
                    stop = True
                    break
                plan = engine.plan(item)
                if plan in ("on_key", "archived") and not window:
                    outcome = Outcome(item["Key"], "on_key", size=item.get("Size", 0)) if plan == "on_key" else Outcome(
                        item["Key"], "skipped", f"archived ({item.get('StorageClass')}), not restored: restore it first")
                    _record(result, outcome)
                    marker = item["Key"]
                    continue
                if plan in ("on_key", "archived"):
                    future = concurrent.futures.Future()
                    future.set_result(Outcome(item["Key"], "on_key", size=item.get("Size", 0)) if plan == "on_key" else Outcome(
                        item["Key"], "skipped", f"archived ({item.get('StorageClass')}), not restored: restore it first"))
                else:
                    slots.acquire()  # pylint: disable=consider-using-with  # released when the copy finishes
                    future = pool.submit(engine.process, item, plan)
                    future.add_done_callback(release)
                window.append((item["Key"], future))
                drain(options.concurrency * 50)
                if save_marker is not None and clock() - last_save >= CHECKPOINT_EVERY:
                    save_marker(marker, result)
                    last_save = clock()
            if stop:
                complete = False
                break
        drain(0)
    seconds = max(clock() - started, 1e-6)
    result.update({
        "marker": marker, "complete": complete, "seconds": round(seconds, 3),
        "objects_per_second": round(result["scanned"] / seconds, 1),
        "requests": counter.count, "retries": engine.retry.retries,
        "requests_per_object": round(counter.count / result["scanned"], 3) if result["scanned"] else 0.0,
        "extra_reads": traits.extra_reads(),
    })
    return result
