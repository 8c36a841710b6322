# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""all_versions: history reproduced on the key in order, current content current again, a concurrent write never
reverted, idempotent, originals deleted only when asked and after their copy reads back."""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import threading
import uuid
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError

from ansible_collections.mattermost.byok.plugins.module_utils.s3 import reencrypt as s3_reencrypt

KEY = "arn:aws:kms:us-east-1:111111111111:key/0b5e8d3c-1f00-4a63-9d5e-0a1b2c3d4e5f"
OLD = "arn:aws:kms:us-east-1:111111111111:key/11111111-1f00-4a63-9d5e-0a1b2c3d4e5f"


class FakeEvents:
    def register(self, *_args, **_kwargs):
        pass


class FakeMeta:
    events = FakeEvents()


def precondition():
    return ClientError({"Error": {"Code": "PreconditionFailed", "Message": "At least one of the pre-conditions you specified did not hold"}}, "CopyObject")


class Body:
    def __init__(self, data: bytes):
        self.stream = io.BytesIO(data)

    def read(self, size=-1):
        return self.stream.read(size)

    def close(self):
        pass


def sha256(body: str) -> str:
    return base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()


class VersionedS3:
    """A versioned bucket: key -> versions oldest first. As on AWS, every write of an SSE-KMS object gets a new opaque
    ETag, a copy carries its source's checksum unless asked for another algorithm (then S3 computes it)."""

    meta = FakeMeta()

    def __init__(self):
        self.now = 100.0
        self.ids = itertools.count(1)
        self.keys: dict[str, list[dict]] = {}
        self.lock = threading.Lock()
        self.before_copy = None  # a hook: a concurrent writer
        self.reads = 0
        self.writes_left = None  # a run killed after this many more writes (copies, deletes): none reaches S3 after it
        self.refuse_delete = set()  # version ids whose deletion S3 refuses (object lock, legal hold)

    def _write(self, operation):
        if self.writes_left is not None:
            if self.writes_left <= 0:
                raise ClientError({"Error": {"Code": "Killed", "Message": "the run was killed"}}, operation)
            self.writes_left -= 1

    def put(self, key, body, kms=OLD, marker=False, checksum=None):
        self.keys.setdefault(key, []).append({"id": f"v{next(self.ids)}", "etag": f'"{uuid.uuid4().hex}"', "body": body,
                                              "at": self.now, "kms": kms, "marker": marker, "checksum": checksum})

    def bodies(self, key):
        return [v["body"] for v in self.keys[key] if not v["marker"]]

    def list_object_versions(self, Bucket, MaxKeys, KeyMarker=None, VersionIdMarker=None, **_):  # pylint: disable=invalid-name
        versions, markers = [], []
        for key in sorted(self.keys):
            if KeyMarker and key <= KeyMarker:
                continue
            history = self.keys[key]
            for i, v in enumerate(reversed(history)):
                entry = {"Key": key, "VersionId": v["id"], "IsLatest": i == 0,
                         "LastModified": datetime.fromtimestamp(int(v["at"]), tz=timezone.utc)}
                if v["marker"]:
                    markers.append(entry)
                else:
                    versions.append({**entry, "ETag": v["etag"], "Size": len(v["body"]), "StorageClass": "STANDARD",
                                     **({"ChecksumAlgorithm": [v["checksum"][0]]} if v["checksum"] else {})})
        return {"Versions": versions, "DeleteMarkers": markers, "IsTruncated": False}

    def _version(self, key, version_id=None):
        history = self.keys[key]
        return history[-1] if version_id is None else next(v for v in history if v["id"] == version_id)

    def head_object(self, Bucket, Key, VersionId=None, ChecksumMode=None):  # pylint: disable=invalid-name
        v = self._version(Key, VersionId)
        head = {"ETag": v["etag"], "VersionId": v["id"], "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": v["kms"],
                "ContentLength": len(v["body"])}
        if ChecksumMode == "ENABLED" and v["checksum"]:
            head[f"Checksum{v['checksum'][0]}"] = v["checksum"][1]
        return head

    def get_object(self, Bucket, Key, VersionId=None):  # pylint: disable=invalid-name
        self.reads += 1
        return {"Body": Body(self._version(Key, VersionId)["body"].encode())}

    def copy_object(self, Bucket, Key, CopySource, SSEKMSKeyId,  # pylint: disable=invalid-name
                    CopySourceIfMatch=None, IfMatch=None, ChecksumAlgorithm=None, **_):
        if self.before_copy:
            self.before_copy(self)
        with self.lock:
            self._write("CopyObject")
            source = self._version(Key, CopySource.get("VersionId"))
            if CopySourceIfMatch and CopySourceIfMatch != source["etag"]:
                raise precondition()
            if IfMatch and IfMatch != self.keys[Key][-1]["etag"]:
                raise precondition()
            assert ChecksumAlgorithm in (None, "SHA256")
            checksum = ("SHA256", sha256(source["body"])) if ChecksumAlgorithm else source["checksum"]
            self.put(Key, source["body"], kms=SSEKMSKeyId, checksum=checksum)
            new = self.keys[Key][-1]
            return {"CopyObjectResult": {"ETag": new["etag"]}, "VersionId": new["id"]}

    def delete_object(self, Bucket, Key, VersionId):  # pylint: disable=invalid-name
        self._write("DeleteObject")
        if VersionId in self.refuse_delete:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied because object protected by object lock."}},
                              "DeleteObject")
        self.keys[Key] = [v for v in self.keys[Key] if v["id"] != VersionId]


def run(s3, cutoff, delete=False, check=False, concurrency=2):
    options = s3_reencrypt.Options(bucket="b", key_arn=KEY, concurrency=concurrency, check_mode=check)
    return s3_reencrypt.run_versions(s3, options, s3_reencrypt.BucketTraits(), cutoff, None, delete_replaced=delete)


@pytest.fixture
def bucket():
    s3 = VersionedS3()
    for body in ("a1", "a2", "a3"):
        s3.put("a", body)
    s3.put("b", "b1")
    s3.put("gone", "g1")
    s3.put("gone", "", marker=True)
    s3.now = 105.0
    s3.put("late", "l0")  # an old version, then one written after the cutoff (on the key by the default)
    s3.keys["late"][0]["at"] = 100.0
    s3.put("late", "l1", kms=KEY)
    s3.now = 110.0
    return s3


@pytest.mark.parametrize("old, new, expected", [
    ("121", "12", [0, 1, None]),
    # Greedy, in order: the first "1" takes the later copy, so "2" (before it) can't pair.
    ("121", "21", [1, None, None]),
    ("121", "121", [0, 1, 2]),
    ("", "12", []),
    ("12", "", [None, None]),
    ("111", "1", [0, None, None]),
    ("123", "x1y2z3", [1, 3, 5]),
    ("123", "321", [2, None, None]),
])
def test_pair_in_order(old, new, expected):
    calls = []

    def same(a, b):
        calls.append((a, b))
        return a == b

    assert s3_reencrypt.pair_in_order(list(old), list(new), same) == expected
    assert len(calls) <= len(old) * len(new)


@pytest.mark.parametrize("head, expected", [
    ({}, None),
    ({"ChecksumCRC64NVME": "AAAAAAAAAAA="}, ("CRC64NVME", "AAAAAAAAAAA=")),
    ({"ChecksumSHA256": "abc=", "ChecksumType": "FULL_OBJECT"}, ("SHA256", "abc=")),
    ({"ChecksumCRC32": "abc=-3"}, None),  # composite: a checksum of the parts' checksums
    ({"ChecksumSHA1": "abc=", "ChecksumType": "COMPOSITE"}, None),
    ({"ETag": '"0123"', "ChecksumType": "FULL_OBJECT"}, None),
])
def test_full_object_checksum(head, expected):
    assert s3_reencrypt.full_object_checksum(head) == expected


@pytest.mark.parametrize("version, expected", [
    ({"ETag": '"a"'}, "SHA256"),  # no checksum: S3 computes one over the copy
    ({"ETag": '"a"', "ChecksumAlgorithm": ["CRC64NVME"]}, None),  # S3 carries the source's over
    ({"ETag": '"a"', "ChecksumAlgorithm": ["CRC32"], "ChecksumType": "FULL_OBJECT"}, None),
    ({"ETag": '"a-3"', "ChecksumAlgorithm": ["CRC32"]}, "SHA256"),  # multipart: maybe composite
    ({"ETag": '"a-3"', "ChecksumAlgorithm": ["CRC64NVME"], "ChecksumType": "FULL_OBJECT"}, None),
    ({"ETag": '"a"', "ChecksumAlgorithm": ["SHA1"], "ChecksumType": "COMPOSITE"}, "SHA256"),
    ({"ETag": '"a"', "ChecksumAlgorithm": []}, "SHA256"),
])
def test_copy_checksum_algorithm(version, expected):
    assert s3_reencrypt.copy_checksum_algorithm(version) == expected


def test_history_reproduced_in_order_current_last_and_idempotent(bucket):
    plan = run(bucket, 102.0, check=True)
    assert plan["re_encrypted"] == 5 and bucket.bodies("a") == ["a1", "a2", "a3"], "check mode changed something"
    result = run(bucket, 102.0)
    assert result["re_encrypted"] == 5 and result["failed"] == 0 and result["restored_current"] == 1
    assert bucket.bodies("a") == ["a1", "a2", "a3", "a1", "a2", "a3"]
    assert [v["kms"] for v in bucket.keys["a"][3:]] == [KEY] * 3
    assert bucket.bodies("b") == ["b1", "b1"]
    # The current version was on the key already: its older one is copied, then it is copied again to stay current.
    assert bucket.bodies("late") == ["l0", "l1", "l0", "l1"] and bucket.keys["late"][-1]["kms"] == KEY
    assert bucket.bodies("gone") == ["g1"] and bucket.keys["gone"][-1]["marker"], "a deleted key came back"
    assert any(o["key"].startswith("gone?versionId=") for o in result["skipped_objects"])
    again = run(bucket, 102.0)
    assert again["re_encrypted"] == 0 and again["replaced_versions"] == 5 and bucket.bodies("a") == ["a1", "a2", "a3"] * 2


def test_originals_deleted_only_when_asked_after_read_back(bucket):
    run(bucket, 102.0)
    plan = run(bucket, 102.0, delete=True, check=True)
    assert plan["versions_deleted"] == 5 and len(bucket.keys["a"]) == 6
    result = run(bucket, 102.0, delete=True)
    assert result["versions_deleted"] == 5 and result["re_encrypted"] == 0
    assert bucket.bodies("a") == ["a1", "a2", "a3"] and {v["kms"] for v in bucket.keys["a"]} == {KEY}
    assert bucket.bodies("late") == ["l1", "l0", "l1"]
    assert run(bucket, 102.0, delete=True)["versions_deleted"] == 0


def test_a_concurrent_write_is_never_reverted(bucket):
    copies = []

    def writer(s3):
        copies.append(1)
        if len(copies) == 2:  # between our first and second copy of "a"'s versions
            s3.put("a", "writer", kms=KEY)

    bucket.keys = {"a": bucket.keys["a"]}
    bucket.before_copy = writer
    result = run(bucket, 102.0)
    assert bucket.keys["a"][-1]["body"] == "writer", "the writer's object is not current"
    assert result["failed"] == 1 and "another write" in result["failed_objects"][0]["reason"]


def test_a_version_with_its_own_checksum_pairs_without_reading_its_body(bucket):
    bucket.keys, bucket.now = {}, 100.0
    for body in ("c1", "c2"):
        bucket.put("c", body, checksum=("CRC64NVME", f"crc{body}="))
    bucket.now = 110.0
    first = run(bucket, 102.0)
    copied = [v["checksum"] for v in bucket.keys["c"][2:]]
    assert first["re_encrypted"] == 2 and copied == [("CRC64NVME", "crcc1="), ("CRC64NVME", "crcc2=")]
    again = run(bucket, 102.0, delete=True)
    assert again["re_encrypted"] == 0 and again["versions_deleted"] == 2 and bucket.reads == 0
    assert bucket.bodies("c") == ["c1", "c2"] and {v["kms"] for v in bucket.keys["c"]} == {KEY}


def test_copies_of_a_killed_run_count_on_the_next_one(bucket):
    """A run killed after its first copy of "a": the copy it made is found by its checksum, not copied again."""
    a1 = bucket.keys["a"][0]
    bucket.now = 111.0
    bucket.copy_object(Bucket="b", Key="a", CopySource={"Key": "a", "VersionId": a1["id"]}, SSEKMSKeyId=KEY,
                       CopySourceIfMatch=a1["etag"], ChecksumAlgorithm="SHA256")
    result = run(bucket, 102.0)
    assert result["failed"] == 0 and result["replaced_versions"] == 1
    assert bucket.bodies("a") == ["a1", "a2", "a3", "a1", "a2", "a3"] and bucket.keys["a"][-1]["body"] == "a3"


def test_a_run_killed_before_restoring_the_current_restores_it_next_time(bucket):
    """"late": its old version copied, the run killed before the current (on the key) was copied back on top. The old
    content is newest now; the next run makes the content that was current before current again."""
    l0 = bucket.keys["late"][0]
    bucket.copy_object(Bucket="b", Key="late", CopySource={"Key": "late", "VersionId": l0["id"]}, SSEKMSKeyId=KEY,
                       CopySourceIfMatch=l0["etag"], ChecksumAlgorithm="SHA256")
    result = run(bucket, 102.0)
    assert result["failed"] == 0 and result["restored_current"] == 1 and bucket.keys["late"][-1]["body"] == "l1"
    assert bucket.bodies("late") == ["l0", "l1", "l0", "l1"]
    again = run(bucket, 102.0)
    assert again["re_encrypted"] == 0 and again["restored_current"] == 0 and bucket.bodies("late") == ["l0", "l1", "l0", "l1"]


def test_same_size_other_content_on_the_key_is_no_copy(bucket):
    """A version on the key of the original's size but other content (a writer's) pairs with nothing; the original
    is copied, and only then deleted."""
    bucket.keys, bucket.now = {"d": []}, 100.0
    bucket.put("d", "d1")
    bucket.now = 105.0
    bucket.put("d", "dX", kms=KEY, checksum=("SHA256", sha256("dX")))
    bucket.now = 110.0
    result = run(bucket, 102.0, delete=True)
    assert result["re_encrypted"] == 1 and result["replaced_versions"] == 0 and result["versions_deleted"] == 1
    assert bucket.bodies("d") == ["dX", "d1", "dX"] and {v["kms"] for v in bucket.keys["d"]} == {KEY}


def test_an_original_is_kept_when_its_copy_does_not_read_back(bucket):
    run(bucket, 102.0)
    bucket.keys["b"][-1]["kms"] = OLD  # its copy is not on the key (e.g. rewritten since by someone else)
    result = run(bucket, 102.0, delete=True)
    kept = [v for v in result["kept_versions"] if v["key"].startswith("b?")]
    assert kept and "did not read back" in kept[0]["reason"] and bucket.bodies("b") == ["b1", "b1"]


NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
DATE = {"ResponseMetadata": {"HTTPHeaders": {"date": "Thu, 01 Jan 2026 00:00:00 GMT"}}}


@pytest.mark.parametrize("head, expected", [
    ({}, {}),
    ({"ObjectLockLegalHoldStatus": "ON"}, {"ObjectLockLegalHoldStatus": "ON"}),
    ({"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": datetime(2027, 1, 1, tzinfo=timezone.utc)},
     {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": datetime(2027, 1, 1, tzinfo=timezone.utc)}),
    ({"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": datetime(2025, 1, 1, tzinfo=timezone.utc)}, {}),
    ({"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": NOW}, {}),  # runs out now: S3 refuses it
    ({"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": datetime(2025, 1, 1, tzinfo=timezone.utc),
      "ObjectLockLegalHoldStatus": "ON", "WebsiteRedirectLocation": "/x"},
     {"ObjectLockLegalHoldStatus": "ON", "WebsiteRedirectLocation": "/x"}),
])
def test_lock_and_redirect_copies_expired_retention_as_none(head, expected):
    assert s3_reencrypt.lock_and_redirect({**head, **DATE}) == expected


def test_a_candidate_with_another_algorithm_is_told_apart_without_reading_the_original(bucket):
    """An original without a checksum of its own is paired by SHA-256; a same-size version on the key with a CRC64NVME
    checksum (a writer's, as S3 adds by default) can't be its copy, and the original's body is not read to say so."""
    bucket.keys, bucket.now = {"e": []}, 100.0
    bucket.put("e", "e1")
    bucket.now = 105.0
    bucket.put("e", "eW", kms=KEY, checksum=("CRC64NVME", "crcW="))
    bucket.now = 110.0
    plan = run(bucket, 102.0, check=True)
    assert plan["re_encrypted"] == 1 and plan["replaced_versions"] == 0 and bucket.reads == 0


def state(s3):
    """What a reader sees per key, oldest first: (body, key) of every version, delete markers as such."""
    return {key: [("<marker>",) if v["marker"] else (v["body"], v["kms"]) for v in history] for key, history in s3.keys.items()}


def killable_bucket(bucket):
    """The fixture's keys, plus "m": versions of which two have the same content, one of them the current."""
    bucket.now = 100.0
    for body in ("m1", "m2", "m1"):
        bucket.put("m", body)
    bucket.now = 110.0
    return bucket


def test_a_run_killed_at_any_write_converges_on_the_next_one(bucket):
    """delete_replaced_versions killed after each of its writes in turn (a copy or a deletion), then run again: the
    same state as an uninterrupted run, every original's content on the key at every point, and a third run that
    changes nothing. Killed after a key's first deletion, an older run left that key with copies whose originals
    were gone below copies still paired with theirs; the next run took the first of them for content written by
    someone else and copied it on top (one extra version, the object's current content reverted)."""
    reference = killable_bucket(bucket)
    snapshot = {key: [dict(v) for v in history] for key, history in reference.keys.items()}
    uninterrupted = run(reference, 102.0, delete=True, concurrency=1)
    assert uninterrupted["failed"] == 0
    writes = uninterrupted["re_encrypted"] + uninterrupted["restored_current"] + uninterrupted["versions_deleted"]
    expected = state(reference)
    assert expected["m"] == [("m1", KEY), ("m2", KEY), ("m1", KEY)]
    for killed_after in range(writes):
        s3 = VersionedS3()
        s3.keys = {key: [dict(v) for v in history] for key, history in snapshot.items()}
        s3.ids = itertools.count(1000)
        s3.now = 110.0
        s3.writes_left = killed_after
        run(s3, 102.0, delete=True, concurrency=1)
        for key, history in snapshot.items():
            bodies = [v["body"] for v in s3.keys[key] if not v["marker"]]
            assert all(v["body"] in bodies for v in history if not v["marker"]), (killed_after, key, state(s3)[key])
        s3.writes_left = None
        again = run(s3, 102.0, delete=True, concurrency=1)
        assert again["failed"] == 0 and state(s3) == expected, (killed_after, state(s3))
        last = run(s3, 102.0, delete=True, concurrency=1)
        assert (last["re_encrypted"], last["restored_current"], last["versions_deleted"]) == (0, 0, 0), killed_after


@pytest.mark.parametrize("copied, deleted, copies, deletions", [
    (1, (), 2, 3),  # killed between the copies of a1 and a2
    (2, (), 1, 3),
    (3, (), 0, 3),  # every copy made, none of the originals deleted
    (3, ("a3",), 0, 2),  # killed after the first deletion: the original of the current content goes first
    (3, ("a3", "a2"), 0, 1),
    (3, ("a3", "a2", "a1"), 0, 0),
])
def test_the_history_a_killed_run_leaves_is_finished_without_a_second_copy(bucket, copied, deleted, copies, deletions):
    """"a" (a1, a2, a3 current) as a run with delete_replaced_versions leaves it when killed: the first `copied`
    originals copied onto the key (in order, each with its SHA-256), then the originals named in `deleted` deleted.
    The next run copies only what is missing, deletes the rest of the originals, and ends as an uninterrupted run."""
    bucket.keys = {"a": bucket.keys["a"]}
    originals = {v["body"]: v for v in bucket.keys["a"]}
    for v in list(originals.values())[:copied]:
        bucket.copy_object(Bucket="b", Key="a", CopySource={"Key": "a", "VersionId": v["id"]}, SSEKMSKeyId=KEY,
                           CopySourceIfMatch=v["etag"], ChecksumAlgorithm="SHA256")
    for body in deleted:
        bucket.delete_object(Bucket="b", Key="a", VersionId=originals[body]["id"])
    result = run(bucket, 102.0, delete=True)
    assert (result["re_encrypted"], result["restored_current"], result["versions_deleted"]) == (copies, 0, deletions), result
    assert state(bucket)["a"] == [("a1", KEY), ("a2", KEY), ("a3", KEY)]


def test_originals_are_deleted_newest_first_and_kept_while_the_current_ones_original_stays(bucket):
    """The original of the current content can't be deleted (object lock): every older original of its key stays
    too, so the next run still pairs each copy with its original and neither copies nor reverts anything."""
    bucket.keys = {"a": bucket.keys["a"]}
    bucket.refuse_delete = {bucket.keys["a"][-1]["id"]}  # a3, the current
    first = run(bucket, 102.0, delete=True)
    assert first["re_encrypted"] == 3 and first["versions_deleted"] == 0 and first["versions_kept"] == 3, first
    reasons = sorted(v["reason"] for v in first["kept_versions"])
    assert "delete refused" in reasons[0] and all("stays" in r for r in reasons[1:]), reasons
    before = state(bucket)
    again = run(bucket, 102.0, delete=True)
    assert again["re_encrypted"] == 0 and again["restored_current"] == 0 and state(bucket) == before
    assert bucket.keys["a"][-1]["body"] == "a3"
    bucket.refuse_delete = set()  # the retention ran out
    last = run(bucket, 102.0, delete=True)
    assert last["versions_deleted"] == 3 and state(bucket)["a"] == [("a1", KEY), ("a2", KEY), ("a3", KEY)]
