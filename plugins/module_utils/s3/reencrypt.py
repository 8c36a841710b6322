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

import base64
import collections
import concurrent.futures
import hashlib
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

from ansible_collections.mattermost.byok.plugins.module_utils.aws.errors import error_code
from ansible_collections.mattermost.byok.plugins.module_utils.aws.errors import error_text
from ansible_collections.mattermost.byok.plugins.module_utils.s3.cutoff import time_says

GIB = 1024 ** 3
MIB = 1024 ** 2
ARCHIVED = ("GLACIER", "DEEP_ARCHIVE")
# Throttling and transient errors (SlowDown, 503, 5xx, dropped connections, RequestTimeout) are retried by the client:
# every client the collection makes has botocore's standard retry mode (aws_module.RETRY_POLICY). The engine retries
# only what that mode leaves out and S3 asks to retry: a conflicting conditional operation (409 OperationAborted).
RETRYABLE = {"OperationAborted"}
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
    # s3_cutoff.time_says: whether an object modified after the cutoff (and its margin) counts as on the key unread.
    trust_after_cutoff: bool = True
    cutoff_margin: float = 0.0


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
        self._local = threading.local()
        client.meta.events.register("before-send.s3", self._on_send)

    def _on_send(self, **kwargs):  # pylint: disable=unused-argument
        if getattr(self._local, "paused", False):
            return  # the checkpoint's own requests are not the objects' cost
        with self._lock:
            self.count += 1

    def call_uncounted(self, fn, *args):
        self._local.paused = True
        try:
            return fn(*args)
        finally:
            self._local.paused = False


class Retrying:
    """The retries a call took, as the result reports them: botocore's (each answer's RetryAttempts, the client's retry
    policy) and the engine's own for the codes in RETRYABLE, with jittered exponential backoff."""

    def __init__(self, max_retries: int):
        self.max_retries = max_retries
        self.retries = 0
        self._lock = threading.Lock()

    def _count(self, answer) -> None:
        attempts = (answer or {}).get("ResponseMetadata", {}).get("RetryAttempts", 0) if isinstance(answer, dict) else 0
        if attempts:
            with self._lock:
                self.retries += attempts

    def call(self, fn, **kwargs):
        attempt = 0
        while True:
            try:
                answer = fn(**kwargs)
                self._count(answer)
                return answer
            except ClientError as e:
                self._count(getattr(e, "response", None))
                if error_code(e) not in RETRYABLE or attempt >= self.max_retries:
                    raise
                attempt += 1
                with self._lock:
                    self.retries += 1
                time.sleep(min(5.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))


def lock_and_redirect(head: dict) -> dict:
    """A HeadObject answer's object lock and website redirect, as CopyObject parameters. Legal hold and a retention
    still running are kept. A retention whose retain-until date has passed (by S3's clock, the answer's Date) is not
    sent: it protects nothing any more and S3 refuses a write naming a past date (400 InvalidArgument), so the copy
    gets what any new version gets (the bucket's default retention, if it has one). A retention that runs out
    between the HeadObject and the copy fails that copy; the next run copies it as expired."""
    fields = {f: head[f] for f in ("ObjectLockLegalHoldStatus", "WebsiteRedirectLocation") if head.get(f)}
    until = head.get("ObjectLockRetainUntilDate")
    if head.get("ObjectLockMode") and until is not None and until.timestamp() > server_time(head):
        fields.update(ObjectLockMode=head["ObjectLockMode"], ObjectLockRetainUntilDate=until)
    return fields


def lock_fits(head: dict) -> tuple[bool, str]:
    """Whether a job's copy of this object (one sending no object lock header) ends exactly as the controller's:
    so when lock_and_redirect() gives the controller's copy nothing to send - no legal hold (ON or OFF: either is
    kept on the copy), no retention still running, no website redirect. Both copies then get what any new version
    gets, the bucket's default retention if it has one (an expired retention is not sent by either)."""
    fields = lock_and_redirect(head)
    if "ObjectLockLegalHoldStatus" in fields:
        return False, f"legal hold {fields['ObjectLockLegalHoldStatus']} of its own: copied by the controller, which keeps it"
    if "ObjectLockMode" in fields:
        return False, (f"{fields['ObjectLockMode']} retention until {fields['ObjectLockRetainUntilDate'].isoformat()} of its own: "
                       "copied by the controller, which keeps it")
    if fields:
        return False, "a website redirect of its own: copied by the controller, which keeps it"
    return True, ""


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
        if self.o.verify:
            return "head"
        # The cutoff's own second, the margin after it, and objects a writer may have encrypted otherwise are read.
        told = time_says(item["LastModified"].timestamp(), self.cutoff, self.o.cutoff_margin, self.o.trust_after_cutoff)
        return {"before": "copy", "after": "on_key"}.get(told, "head")

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
            # (the lock split of the job engine has read it already: passed along as "Head", not read twice)
            head = item.get("Head") or self.retry.call(self.s3.head_object, Bucket=self.o.bucket, Key=key)
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
            extra.update(lock_and_redirect(head))
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

    def job_or_process(self, item: dict, plan: str, take) -> Outcome:
        """An object of an object-lock bucket that a job could copy by its listing: its lock read (HeadObject), then
        `take(item)` hands it to the job when the job's copy ends exactly as ours (lock_fits), else it is
        copied here with its own retention and legal hold (with the answer already read)."""
        key, size = item["Key"], item.get("Size", 0)
        try:
            head = self.retry.call(self.s3.head_object, Bucket=self.o.bucket, Key=key)
        except (ClientError, BotoCoreError):
            return self.process(item, plan)  # (SSE-C answers 400 to a plain HEAD: reported by the controller as always)
        if head.get("ServerSideEncryption") == "aws:kms" and head.get("SSEKMSKeyId") == self.o.key_arn:
            return Outcome(key, "on_key", size=size)
        fits, why = lock_fits(head)
        if fits and not head.get("SSECustomerAlgorithm"):
            take(item)
            return Outcome(key, "to_job", size=size)
        outcome = self.process({**item, "Head": head}, plan)
        if outcome.status == "re_encrypted":
            outcome.reason = why  # listed in by_controller_objects: why the job did not take it
        return outcome

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
    """ListObjectsV2 pages, one at a time, with RestoreStatus for archived objects."""
    # Not botocore's paginator: every page goes through the engine's Retrying, whose retries the result reports.
    kwargs = {"Bucket": bucket, "OptionalObjectAttributes": ["RestoreStatus"], "MaxKeys": 1000}
    if prefix:
        kwargs["Prefix"] = prefix
    if start_after:
        kwargs["StartAfter"] = start_after
    while True:
        page = retry.call(s3.list_objects_v2, **kwargs)
        token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
        yield page
        del page  # not held while the next page is fetched and parsed: one page in memory, not two
        if not token:
            return
        kwargs.pop("StartAfter", None)
        kwargs["ContinuationToken"] = token


def list_items(s3, retry: Retrying, bucket: str, prefix: str, start_after: str | None):
    """The listing's entries one by one; the caller holds one entry, the generator one page."""
    for page in list_pages(s3, retry, bucket, prefix, start_after):
        contents = page.pop("Contents", None) or []
        del page
        contents.reverse()
        while contents:
            yield contents.pop()  # each entry is freed as soon as its copy is done, not with its whole page


def count_objects(s3, retry: Retrying, bucket: str, prefix: str) -> int:
    """A listing pass without copying: ~1 request per 1,000 objects, for the progress total."""
    return sum(page.get("KeyCount", len(page.get("Contents", []))) for page in list_pages(s3, retry, bucket, prefix, None))


def count_versions(s3, retry: Retrying, bucket: str, prefix: str) -> int:
    return sum(len(versions) for _key, versions, _deleted in list_version_groups(s3, retry, bucket, prefix, None))


def new_result() -> dict:
    return {"scanned": 0, "re_encrypted": 0, "already_on_key": 0, "skipped": 0, "failed": 0, "bytes": 0, "to_job": 0,
            "skipped_objects": [], "failed_objects": [], "skipped_objects_truncated": 0, "failed_objects_truncated": 0,
            # all_versions only
            "replaced_versions": 0, "restored_current": 0, "versions_deleted": 0, "versions_kept": 0,
            "kept_versions": [], "kept_versions_truncated": 0,
            # S3 Batch Operations engine: objects the controller copied although a job would have taken them by the listing
            "by_controller_objects": [], "by_controller_objects_truncated": 0}


def _listed(result: dict, name: str, outcome) -> None:
    if len(result[name]) < MAX_REPORTED:
        result[name].append({"key": outcome.key, "reason": outcome.reason})
    else:
        result[f"{name}_truncated"] += 1  # counted, not listed: memory stays flat however many there are


def _record(result: dict, outcome: Outcome) -> None:
    if outcome.status in ("restored", "deleted", "kept"):  # a second step on a version already counted
        result[{"restored": "restored_current", "deleted": "versions_deleted", "kept": "versions_kept"}[outcome.status]] += 1
        if outcome.status == "kept":
            _listed(result, "kept_versions", outcome)
        return
    result["scanned"] += 1
    if outcome.status == "to_job":
        result["to_job"] += 1
    elif outcome.status == "replaced":
        result["replaced_versions"] += 1
    elif outcome.status == "on_key":
        result["already_on_key"] += 1
    elif outcome.status == "re_encrypted":
        result["re_encrypted"] += 1
        result["bytes"] += outcome.size
        if outcome.reason:
            _listed(result, "by_controller_objects", outcome)
    else:
        result[outcome.status] += 1
        _listed(result, "skipped_objects" if outcome.status == "skipped" else "failed_objects", outcome)


SETTLED = ("scanned", "re_encrypted", "already_on_key", "skipped", "failed", "bytes", "to_job")


def _settled_delta(outcomes) -> tuple:
    """The counts of SETTLED for some outcomes, as a tuple: hundreds of these wait in the window at once."""
    scanned = re_encrypted = on_key = skipped = failed = size = to_job = 0
    for outcome in outcomes:
        if outcome.status in ("restored", "deleted", "kept"):
            continue
        scanned += 1
        if outcome.status == "to_job":
            to_job += 1
        elif outcome.status == "re_encrypted":
            re_encrypted += 1
            size += outcome.size
        elif outcome.status == "on_key":
            on_key += 1
        elif outcome.status == "skipped":
            skipped += 1
        elif outcome.status == "failed":
            failed += 1
    return (scanned, re_encrypted, on_key, skipped, failed, size, to_job)


class OrderedWindow:
    """Work in flight, in listing order, kept small: an entry is [marker, done, counts], the outcome is counted as soon
    as it is known (no future or listing entry is held after its copy), and the marker only moves past entries that are
    done with every earlier one. `settled` counts exactly the entries up to the marker (what a checkpoint may claim).
    At most `pending` copies are queued; at most `span` entries wait behind a slow one."""

    def __init__(self, pool, result: dict, pending: int, span: int, marker):
        self.pool = pool
        self.result = result
        self.span = span
        self.marker = marker
        self.settled = dict.fromkeys(SETTLED, 0)
        self.entries: collections.deque = collections.deque()
        self.lock = threading.Condition()
        self.slots = threading.BoundedSemaphore(pending)
        self.compact_above = 4 * pending  # unfinished entries are at most `pending`: compacting leaves ~2 * pending

    def _settle(self, delta: tuple) -> None:
        for name, value in zip(SETTLED, delta):
            self.settled[name] += value

    def done(self, marker, outcomes) -> None:
        with self.lock:
            for outcome in outcomes:
                _record(self.result, outcome)
            if self.entries and self.entries[-1][1]:
                last = self.entries[-1]  # finished entries next to each other are one: the window stays O(pending)
                last[0], last[2] = marker, tuple(a + b for a, b in zip(last[2], _settled_delta(outcomes)))
            elif self.entries:
                self.entries.append([marker, True, _settled_delta(outcomes)])
            else:
                self.marker = marker
                self._settle(_settled_delta(outcomes))

    def submit(self, marker, label, fn, *args) -> None:
        entry = [marker, False, None]
        with self.lock:
            self.entries.append(entry)
        self.slots.acquire()  # pylint: disable=consider-using-with  # released when the work finishes

        def finished(future):
            try:
                outcomes = future.result()
            except Exception as e:  # pylint: disable=broad-except  # one object's bug never stops the bucket
                outcomes = [Outcome(label, "failed", f"{type(e).__name__}: {e}")]
            outcomes = outcomes if isinstance(outcomes, list) else [outcomes]
            with self.lock:
                for outcome in outcomes:
                    _record(self.result, outcome)
                entry[2] = _settled_delta(outcomes)
                entry[1] = True
                self.lock.notify_all()
            self.slots.release()

        self.pool.submit(fn, *args).add_done_callback(finished)
        self.drain(self.span)

    def _compact(self) -> None:
        """Merge runs of finished entries (a callback holds only its own unfinished entry, so merging is safe)."""
        merged: collections.deque = collections.deque()
        for entry in self.entries:
            if entry[1] and merged and merged[-1][1]:
                merged[-1] = [entry[0], True, tuple(a + b for a, b in zip(merged[-1][2], entry[2]))]
            else:
                merged.append(entry)
        self.entries = merged

    def drain(self, span: int) -> None:
        with self.lock:
            if len(self.entries) > self.compact_above:
                self._compact()
            while self.entries and (self.entries[0][1] or len(self.entries) > span):
                if not self.entries[0][1]:
                    self.lock.wait()
                    continue
                marker, _done, delta = self.entries.popleft()
                self.marker = marker
                self._settle(delta)

    def counts(self) -> dict:
        """The counts up to the marker (consistent with it)."""
        with self.lock:
            return dict(self.settled)


def run(s3, options: Options, traits: BucketTraits, cutoff: float | None, start_after: str | None,
        save_marker=None, clock=time.monotonic, save_every: float = CHECKPOINT_EVERY, route=None) -> dict:
    """Re-encrypt (or, in check mode, count) the bucket's current objects after `start_after`.

    Returns the counts plus `marker` (last key done with all before it) and `complete` (listing exhausted).
    `save_marker(marker, counts)` is called every `save_every` seconds so a kill loses little; when it returns False
    (the run lost its lease) no further copy is started. `route(item)` (the S3 Batch Operations engine) returns
    "job" for an object a job copies: it is counted (`to_job`) with no request, and the rest goes on as here; or
    ("lock", take) on an object-lock bucket: the object's lock is read first (Engine.job_or_process).
    """
    engine = Engine(s3, options, traits, cutoff)
    counter = RequestCounter(s3)
    result = new_result()
    started = clock()
    deadline = started + options.max_seconds if options.max_seconds else None
    complete, last_save = True, started
    with concurrent.futures.ThreadPoolExecutor(max_workers=options.concurrency) as pool:
        window = OrderedWindow(pool, result, options.concurrency * 2, options.concurrency * 50, start_after)
        for handled, item in enumerate(list_items(s3, engine.retry, options.bucket, options.prefix, start_after)):
            # The time box counts from the first object: on a loaded machine the first listing page alone can outlast
            # a short one, and a batch that stops before its first object would leave the next one exactly there.
            if handled == 0 and options.max_seconds:
                deadline = clock() + options.max_seconds
            if deadline is not None and handled and clock() >= deadline:
                complete = False
                break
            plan = engine.plan(item)
            where = route(item) if route is not None else None
            if where == "job":
                window.done(item["Key"], [Outcome(item["Key"], "to_job", size=item.get("Size", 0))])
            elif where is not None and where[0] == "lock":
                window.submit(item["Key"], item["Key"], engine.job_or_process, item, plan, where[1])
            elif plan == "on_key":
                window.done(item["Key"], [Outcome(item["Key"], "on_key", size=item.get("Size", 0))])
            elif plan == "archived":
                window.done(item["Key"], [Outcome(item["Key"], "skipped",
                                                  f"archived ({item.get('StorageClass')}), not restored: restore it first")])
            else:
                window.submit(item["Key"], item["Key"], engine.process, item, plan)
            del item  # a queued copy holds its entry; nothing else does
            if save_marker is not None and clock() - last_save >= save_every:
                last_save = clock()
                window.drain(options.concurrency * 50)
                if counter.call_uncounted(save_marker, window.marker, window.counts()) is False:
                    complete = False
                    break
        window.drain(0)
    return _finish(result, window.marker, complete, clock() - started, counter, engine, traits)


def _finish(result, marker, complete, seconds, counter, engine, traits) -> dict:
    seconds = max(seconds, 1e-6)
    result.update({
        "marker": marker, "complete": complete, "seconds": round(seconds, 3),
        "objects_per_second": round(result["scanned"] / seconds, 1),
        "requests": counter.count, "retries": engine.retry.retries,
        "requests_per_object": round(counter.count / result["scanned"], 3) if result["scanned"] else 0.0,
        "extra_reads": traits.extra_reads(),
    })
    return result


# --- all versions ------------------------------------------------------------------------------------------------
# A copy always lands as the key's newest version, so per key: the noncurrent versions not yet reproduced on the key
# are copied oldest to newest (each by VersionId), then the version that was current is copied again last so its
# content is current once more. Every copy is conditional on the destination's newest ETag (IfMatch: the listed
# current, then our own previous copy): a write by anyone else in between makes it fail with 412 and the key stops
# there, the writer's object staying current. An original is reproduced when a later version on the key has the same
# content, matched in order; originals are deleted only with delete_replaced_versions, after their copy was read back.
#
# "Same content" is not the ETag: on AWS an SSE-KMS object's ETag is not an MD5 of its body and is new with every
# write (S3 API reference, Object.ETag), so a copy never has its original's ETag. It is the additional checksum S3
# keeps with every version: CopyObject carries the source's full-object checksum over to the copy when no algorithm
# is asked for, and a source without one (or with a composite, per-part one, which a single copy can't carry) is
# copied with SHA-256, which S3 computes over the copy while the source's SHA-256 is computed here by reading it.
# A map of version ids kept in the checkpoint was the alternative; it loses the copies a killed run had in flight
# (each copied again, a duplicate version, on the next run) and everything with the checkpoint, while the checksum
# stays with the version in S3 for any later run to read.

def list_version_groups(s3, retry: Retrying, bucket: str, prefix: str, key_marker: str | None):
    """(key, versions newest first, latest is a delete marker) per key; a key's versions gathered across pages."""
    # Not botocore's paginator: pages go through the engine's Retrying (its retries are reported) and a key's delete
    # markers are carried from one page to the next.
    kwargs = {"Bucket": bucket, "MaxKeys": 1000}
    if prefix:
        kwargs["Prefix"] = prefix
    if key_marker:
        kwargs["KeyMarker"] = key_marker
    key, versions, deleted, latest_markers = None, [], False, set()
    while True:
        page = retry.call(s3.list_object_versions, **kwargs)
        # A key's current delete marker may end one page and its versions start the next: markers are carried over.
        latest_markers = {k for k in latest_markers if key is None or k >= key}
        latest_markers.update(m["Key"] for m in page.get("DeleteMarkers", []) if m.get("IsLatest"))
        for version in page.get("Versions", []):
            if version["Key"] != key:
                if key is not None:
                    yield key, versions, deleted
                key, versions, deleted = version["Key"], [], False
            deleted = deleted or version["Key"] in latest_markers
            versions.append(version)
        if not page.get("IsTruncated"):
            break
        kwargs["KeyMarker"], kwargs["VersionIdMarker"] = page["NextKeyMarker"], page.get("NextVersionIdMarker")
        del page
    if key is not None:
        yield key, versions, deleted


CHECKSUM_FIELDS = ("ChecksumCRC64NVME", "ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1", "ChecksumSHA256", "ChecksumSHA512",
                   "ChecksumMD5", "ChecksumXXHASH64", "ChecksumXXHASH3", "ChecksumXXHASH128")
COPY_CHECKSUM = "SHA256"  # asked for on copies of versions without a full-object checksum; computable from the body here


def full_object_checksum(head: dict) -> tuple[str, str] | None:
    """(algorithm, value) of the full-object checksum in a HeadObject answer (ChecksumMode=ENABLED); None when the
    object has none, or only a composite one ("<checksum of the parts' checksums>-<parts>")."""
    if head.get("ChecksumType") == "COMPOSITE":
        return None
    for field in CHECKSUM_FIELDS:
        value = head.get(field)
        if value:
            return None if "-" in value else (field[len("Checksum"):], value)
    return None


def copy_checksum_algorithm(version: dict) -> str | None:
    """The ChecksumAlgorithm a version's copy asks for: none when the listing shows a full-object checksum (S3 copies
    it over), COPY_CHECKSUM when the version has none or one that may be composite (a multipart upload's, unless the
    listing says FULL_OBJECT)."""
    algorithm = (version.get("ChecksumAlgorithm") or [None])[0]
    kind = version.get("ChecksumType")
    composite = kind == "COMPOSITE" or (kind is None and "-" in version.get("ETag", ""))
    return None if algorithm and not composite else COPY_CHECKSUM


def pair_in_order(old: list, new: list, same) -> list[int | None]:
    """For each old version (oldest first), the index of the later version on the key (oldest first) with the same
    content, matched in order: each version on the key pairs with one original at most, after the previous pair.
    `same(old, new)` is called lazily (it may read S3)."""
    pairs, j = [], 0
    for version in old:
        k = next((i for i in range(j, len(new)) if same(version, new[i])), None)
        pairs.append(k)
        if k is not None:
            j = k + 1
    return pairs


class VersionsEngine(Engine):
    def __init__(self, s3, options: Options, traits: BucketTraits, cutoff: float | None, delete_replaced: bool):
        super().__init__(s3, options, traits, cutoff)
        self.delete_replaced = delete_replaced

    def _on_key(self, key: str, version: dict) -> str:
        """on_key | old | ssec: from the cutoff, or a HEAD of the version where the time can't tell."""
        if not self.o.verify:
            told = time_says(version["LastModified"].timestamp(), self.cutoff, self.o.cutoff_margin, self.o.trust_after_cutoff)
            if told != "unknown":
                return {"before": "old", "after": "on_key"}[told]
        head = self.retry.call(self.s3.head_object, Bucket=self.o.bucket, Key=key, VersionId=version["VersionId"])
        if head.get("SSECustomerAlgorithm"):
            return "ssec"
        return "on_key" if head.get("ServerSideEncryption") == "aws:kms" and head.get("SSEKMSKeyId") == self.o.key_arn else "old"

    def process_key(self, key: str, versions: list[dict], deleted: bool) -> list[Outcome]:
        try:
            return self._process_key(key, versions, deleted)
        except (ClientError, BotoCoreError) as e:
            return [Outcome(key, "failed", error_text(e) if isinstance(e, ClientError) else f"{type(e).__name__}: {e}")]

    def _process_key(self, key: str, versions: list[dict], deleted: bool) -> list[Outcome]:
        def label(version):
            return f"{key}?versionId={version['VersionId']}"

        if deleted:
            return [Outcome(label(v), "skipped", "its key is deleted (a delete marker is current): copying a version would "
                            "bring the object back; its versions stay on their key", v.get("Size", 0)) for v in versions]
        outcomes, old, new = [], [], []
        for version in reversed(versions):  # oldest first
            if version.get("StorageClass", "STANDARD") in ARCHIVED:
                outcomes.append(Outcome(label(version), "skipped", f"archived ({version.get('StorageClass')}): restore it first"))
                continue
            if version.get("Size", 0) > self.o.multipart_threshold and not version.get("IsLatest"):
                outcomes.append(Outcome(label(version), "skipped", "noncurrent version above multipart_threshold: not copied "
                                        "part by part (all_versions copies versions up to the single-copy limit)"))
                continue
            state = self._on_key(key, version)
            if state == "ssec":
                outcomes.append(Outcome(label(version), "skipped", "SSE-C: only the owner of its customer-provided key can copy it"))
            else:
                (new if state == "on_key" else old).append(version)
        seen: dict = {}  # ("head" | "body", VersionId) -> content identity: each version read at most once per key
        pairs = pair_in_order(old, new, lambda original, on_key: self._same_content(key, original, on_key, seen))
        replaced = [(v, new[k]) for v, k in zip(old, pairs) if k is not None]
        todo = [v for v, k in zip(old, pairs) if k is None]
        outcomes += [Outcome(label(v), "on_key", size=v.get("Size", 0)) for v in new]
        outcomes += [Outcome(label(v), "replaced", size=v.get("Size", 0)) for v, _copy in replaced]
        # The content that must end current: the newest version that is no copy of ours. Normally the listed current;
        # after a run killed between a key's copies the newest is a copy of an older version, and the content that
        # was current before that run is made current again (a copy taken for the current would revert the object).
        copy_of = {new[k]["VersionId"]: old[i]["VersionId"] for i, k in enumerate(pairs) if k is not None}
        head = versions[0]
        target = next((v for v in versions if v["VersionId"] not in copy_of), head)
        todo_ids = {v["VersionId"] for v in todo}
        newest_first = {v["VersionId"]: i for i, v in enumerate(versions)}
        if not todo and target["VersionId"] in (head["VersionId"], copy_of.get(head["VersionId"])):
            return outcomes + self._delete_replaced(key, replaced, seen, newest_first, copy_of.get(head["VersionId"]))
        plan = [v for v in todo if v["VersionId"] != target["VersionId"]] + [target]
        restored = [] if target["VersionId"] in todo_ids else [Outcome(label(target), "restored", size=target.get("Size", 0))]
        # The original whose copy ends newest: the target when it is an original copied now (a restored target's new
        # copy pairs with nothing, its original pairing with an earlier copy).
        current_of = target["VersionId"] if target["VersionId"] in todo_ids else None
        if self.o.check_mode:
            return outcomes + [Outcome(label(v), "re_encrypted", size=v.get("Size", 0)) for v in todo] + restored + self._delete_replaced(
                key, replaced + [(v, None) for v in todo], seen, newest_first, current_of)
        if plan == [head] and not restored and head.get("Size", 0) > self.o.multipart_threshold:  # the ordinary copy, part by part
            outcome = self.process(head, "copy")
            outcome.key = label(head)
            # No constraint from the head: once noncurrent, a version above multipart_threshold is left out of the pairing.
            return outcomes + [outcome] + ([] if outcome.status != "re_encrypted" else self._delete_replaced(key, replaced, seen, newest_first))
        copies, latest_etag = [], head["ETag"]
        for version in plan:
            try:
                response = self._copy_version(key, version, latest_etag)
            except ClientError as e:
                reason = ("another write to the key while its versions were being copied: it stays current; run again "
                          "to finish this key") if error_code(e) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409") else error_text(e)
                return outcomes + [Outcome(label(v), "re_encrypted", size=v.get("Size", 0)) for v, _response in copies
                                   if v["VersionId"] in todo_ids] + [Outcome(label(version), "failed", reason, version.get("Size", 0))]
            copies.append((version, response))
            latest_etag = response.get("CopyObjectResult", {}).get("ETag", latest_etag)
        outcomes += [Outcome(label(v), "re_encrypted", size=v.get("Size", 0)) for v, _response in copies if v["VersionId"] in todo_ids]
        made = [(v, {"VersionId": r.get("VersionId"), "Size": v.get("Size", 0)}) for v, r in copies if v["VersionId"] in todo_ids]
        return outcomes + restored + self._delete_replaced(key, replaced + made, seen, newest_first, current_of)

    # --- content identity (see the comment above list_version_groups) ------------------------------------------
    def _head(self, key: str, version_id: str, seen: dict) -> dict:
        """HeadObject of a version with its checksum, once per run and key (versions don't change; only what is kept
        of the answer is held)."""
        name = ("head", version_id)
        if name not in seen:
            head = self.retry.call(self.s3.head_object, Bucket=self.o.bucket, Key=key, VersionId=version_id, ChecksumMode="ENABLED")
            seen[name] = {"SSEKMSKeyId": head.get("SSEKMSKeyId"), "ContentLength": head.get("ContentLength"),
                          "checksum": full_object_checksum(head)}
        return seen[name]

    def _checksum(self, key: str, version: dict, seen: dict) -> tuple[str, str] | None:
        """The full-object checksum S3 keeps with a version."""
        return self._head(key, version["VersionId"], seen)["checksum"]

    def _original_identity(self, key: str, version: dict, seen: dict) -> tuple[str, str] | None:
        """What the copy of an original carries: its own full-object checksum, or the SHA-256 of its body (read here)
        when its copy is made with COPY_CHECKSUM."""
        if copy_checksum_algorithm(version) is None:
            return self._checksum(key, version, seen)
        name = ("body", version["VersionId"])
        if name not in seen:
            digest = hashlib.sha256()
            body = self.retry.call(self.s3.get_object, Bucket=self.o.bucket, Key=key, VersionId=version["VersionId"])["Body"]
            try:
                for chunk in iter(lambda: body.read(MIB), b""):
                    digest.update(chunk)
            finally:
                body.close()
            seen[name] = (COPY_CHECKSUM, base64.b64encode(digest.digest()).decode())
        return seen[name]

    def _same_content(self, key: str, original: dict, on_key: dict, seen: dict) -> bool:
        """Is this version on the key a copy of the original? Sizes first (from the listing, free), then the
        checksum of the version on the key (a version without one is no copy of ours), then the original's."""
        if original.get("Size", 0) != on_key.get("Size", 0):
            return False
        theirs = self._checksum(key, on_key, seen)
        if theirs is None or theirs[0] != (copy_checksum_algorithm(original) or (original.get("ChecksumAlgorithm") or [None])[0]):
            return False  # another algorithm than its copy would carry: no read of the original needed to tell
        return theirs == self._original_identity(key, original, seen)

    def _copy_version(self, key: str, version: dict, latest_etag: str) -> dict:
        extra = {}
        if self.traits.acls_enabled:
            extra.update(_grants(self.retry.call(self.s3.get_object_acl, Bucket=self.o.bucket, Key=key, VersionId=version["VersionId"])))
        if self.traits.object_lock or self.traits.website:
            head = self.retry.call(self.s3.head_object, Bucket=self.o.bucket, Key=key, VersionId=version["VersionId"])
            extra.update(lock_and_redirect(head))
        checksum = copy_checksum_algorithm(version)
        if checksum:
            extra["ChecksumAlgorithm"] = checksum
        return self.retry.call(
            self.s3.copy_object, Bucket=self.o.bucket, Key=key,
            CopySource={"Bucket": self.o.bucket, "Key": key, "VersionId": version["VersionId"]},
            CopySourceIfMatch=version["ETag"], IfMatch=latest_etag, MetadataDirective="COPY", TaggingDirective="COPY",
            StorageClass=version.get("StorageClass", "STANDARD"), ServerSideEncryption="aws:kms",
            SSEKMSKeyId=self.o.key_arn, BucketKeyEnabled=self.o.bucket_key, **extra)

    def _delete_replaced(self, key: str, pairs: list[tuple], seen: dict, newest_first: dict, current_of: str | None = None) -> list[Outcome]:
        """Originals whose copy reads back on the key (HeadObject of the copy: the key, the size and the content
        identity of its original) are deleted; `pairs` are (original, its copy or None when it is still to be made).

        Newest original first, and none while `current_of` stays: the original whose copy is the key's newest version.
        A copy whose original is gone pairs with nothing on the next run, so it reads as content someone else wrote;
        below a copy that still pairs with its original (the newest), it would be taken for the content to make
        current again, copied on top and the object reverted. Deleting the newest original first leaves the newest
        version unpaired, the content to keep, whatever happens to the older ones; a run killed in between resumes there."""
        if not self.delete_replaced or not pairs:
            return []
        outcomes = []
        blocked = current_of is not None and current_of not in {original["VersionId"] for original, _copy in pairs}
        for original, copy in sorted(pairs, key=lambda pair: newest_first[pair[0]["VersionId"]]):
            label = f"{key}?versionId={original['VersionId']}"
            if blocked:
                outcomes.append(Outcome(label, "kept", "the original of the current version stays, so this one stays with it "
                                        "(a copy without its original would read as another writer's content); a later run deletes it"))
                continue
            if self.o.check_mode:
                outcomes.append(Outcome(label, "deleted"))  # would be, once its copy reads back
                continue
            head = self._head(key, copy["VersionId"], seen)  # read in this run: by the pairing, or now for a new copy
            theirs = head["checksum"]
            if (head["SSEKMSKeyId"] != self.o.key_arn or head["ContentLength"] != original.get("Size", 0)
                    or theirs is None or theirs != self._original_identity(key, original, seen)):
                outcomes.append(Outcome(label, "kept", "its copy did not read back on the key with the same size and checksum: kept"))
            else:
                try:
                    self.retry.call(self.s3.delete_object, Bucket=self.o.bucket, Key=key, VersionId=original["VersionId"])
                    outcomes.append(Outcome(label, "deleted"))
                    continue
                except ClientError as e:
                    outcomes.append(Outcome(label, "kept", f"delete refused ({error_text(e)}): kept"))
            blocked = original["VersionId"] == current_of
        return outcomes


def run_versions(s3, options: Options, traits: BucketTraits, cutoff: float | None, start_after: str | None,
                 delete_replaced: bool = False, save_marker=None, clock=time.monotonic,
                 save_every: float = CHECKPOINT_EVERY) -> dict:
    """run() over every version: keys in parallel, a key's versions in order by one worker; the marker is a key."""
    engine = VersionsEngine(s3, options, traits, cutoff, delete_replaced)
    return _run_key_groups(s3, options, traits, engine, start_after, save_marker, clock, save_every)


# --- in place (UpdateObjectEncryption) -----------------------------------------------------------------------------
# For a key of the bucket owner's own account (the external-key path: the imported key lives in the provider account,
# with the buckets), S3 changes an object's key without moving its data: same version id, ETag, last-modified date,
# storage class (archived objects are not restored), checksum, metadata, tags, ACL and object lock settings. So every
# version is re-keyed, not only the current one, and nothing is copied. It refuses (API reference,
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_UpdateObjectEncryption.html): unencrypted, SSE-C and DSSE-KMS
# objects (400 InvalidRequest), objects under object lock - a retention still running or a legal hold (403
# AccessDenied), keys of another account (403). A refused CURRENT version is copied as the controller engine copies
# (the copy keeps its lock; SSE-C fails the copy too and is skipped as always); a refused noncurrent version can't be
# copied into its place and is reported skipped. The object's key is read first (HeadObject of the version), so a
# re-run changes nothing and reports changed=false.

IN_PLACE_REFUSED = ("InvalidRequest", "AccessDenied", "400", "403")


class InPlaceEngine(Engine):
    def __init__(self, s3, options: Options, traits: BucketTraits, cutoff: float | None, current_done_by_job: bool = False):
        super().__init__(s3, options, traits, cutoff)
        self.current_done_by_job = current_done_by_job  # an UpdateObjectEncryption job took the current versions

    def process_key(self, key: str, versions: list[dict], deleted: bool) -> list[Outcome]:
        outcomes = []
        for v in reversed(versions):
            current = bool(v.get("IsLatest")) and not deleted
            if current and self.current_done_by_job:
                outcomes.append(Outcome(f"{key}?versionId={v['VersionId']}", "to_job", size=v.get("Size", 0)))
            else:
                outcomes.append(self._version(key, v, current))
        return outcomes

    def _version(self, key: str, version: dict, current: bool) -> Outcome:
        label = f"{key}?versionId={version['VersionId']}"
        size = version.get("Size", 0)
        try:
            head = self.retry.call(self.s3.head_object, Bucket=self.o.bucket, Key=key, VersionId=version["VersionId"])
        except ClientError as e:
            if error_code(e) in ("400", "BadRequest", "InvalidRequest"):
                return Outcome(label, "skipped", "SSE-C: encrypted with a customer-provided key, which S3 needs to read it; "
                               "only its owner can re-encrypt it", size)
            return Outcome(label, "failed", error_text(e), size)
        if head.get("ServerSideEncryption") == "aws:kms" and head.get("SSEKMSKeyId") == self.o.key_arn:
            return Outcome(label, "on_key", size=size)
        if self.o.check_mode:
            return Outcome(label, "re_encrypted", size=size)
        try:
            self.retry.call(self.s3.update_object_encryption, Bucket=self.o.bucket, Key=key, VersionId=version["VersionId"],
                            ObjectEncryption={"SSEKMS": {"KMSKeyArn": self.o.key_arn, "BucketKeyEnabled": self.o.bucket_key}})
            return Outcome(label, "re_encrypted", size=size)
        except ClientError as e:
            if error_code(e) not in IN_PLACE_REFUSED:
                return Outcome(label, "failed", error_text(e), size)
            refused = error_text(e)
        if not current:
            return Outcome(label, "skipped", f"UpdateObjectEncryption refused ({refused}); a noncurrent version can't be "
                           "copied into its place: it stays on its key", size)
        item = {"Key": key, "Size": size, "ETag": version["ETag"], "StorageClass": version.get("StorageClass", "STANDARD"),
                "ChecksumAlgorithm": version.get("ChecksumAlgorithm"), "LastModified": version["LastModified"]}
        outcome = self.process(item, "copy")  # the controller's copy, with every attribute (object lock included)
        outcome.key = label
        return outcome


def run_in_place(s3, options: Options, traits: BucketTraits, start_after: str | None, save_marker=None,
                 clock=time.monotonic, save_every: float = CHECKPOINT_EVERY, current_done_by_job: bool = False) -> dict:
    """Every version of every key re-keyed with UpdateObjectEncryption (see above); the marker is a key. With
    `current_done_by_job`, current versions are counted (`to_job`) without a request: a job has re-keyed them."""
    engine = InPlaceEngine(s3, options, traits, None, current_done_by_job)
    return _run_key_groups(s3, options, traits, engine, start_after, save_marker, clock, save_every)


def _run_key_groups(s3, options: Options, traits: BucketTraits, engine, start_after: str | None, save_marker, clock,
                    save_every: float) -> dict:
    """The driver of the every-version engines: each key's versions to `engine.process_key`, keys in parallel and
    reported in key order, time-boxed from the first key, the marker saved every `save_every` seconds."""
    counter = RequestCounter(s3)
    result = new_result()
    started = clock()
    deadline = None
    complete, last_save = True, started
    with concurrent.futures.ThreadPoolExecutor(max_workers=options.concurrency) as pool:
        window = OrderedWindow(pool, result, options.concurrency * 2, options.concurrency * 50, start_after)
        groups = list_version_groups(s3, engine.retry, options.bucket, options.prefix, start_after)
        for handled, (key, versions, deleted) in enumerate(groups):
            if handled == 0 and options.max_seconds:
                deadline = clock() + options.max_seconds  # the time box counts from the first key (see run)
            if deadline is not None and handled and clock() >= deadline:
                complete = False
                break
            window.submit(key, key, engine.process_key, key, versions, deleted)
            del versions
            if save_marker is not None and clock() - last_save >= save_every:
                last_save = clock()
                window.drain(options.concurrency * 50)
                if counter.call_uncounted(save_marker, window.marker, window.counts()) is False:
                    complete = False
                    break
        window.drain(0)
    return _finish(result, window.marker, complete, clock() - started, counter, engine, traits)
