# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""all_versions: history reproduced on the key in order, current content current again, a concurrent write never
reverted, idempotent, originals deleted only when asked and after their copy reads back."""

from __future__ import annotations

import itertools
import threading
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError

from ansible_collections.mattermost.byok.plugins.module_utils import s3_reencrypt

KEY = "arn:aws:kms:us-east-1:111111111111:key/0b5e8d3c-1f00-4a63-9d5e-0a1b2c3d4e5f"
OLD = "arn:aws:kms:us-east-1:111111111111:key/11111111-1f00-4a63-9d5e-0a1b2c3d4e5f"


class FakeEvents:
    def register(self, *_args, **_kwargs):
        pass


class FakeMeta:
    events = FakeEvents()


def precondition():
    return ClientError({"Error": {"Code": "PreconditionFailed", "Message": "At least one of the pre-conditions you specified did not hold"}}, "CopyObject")


class VersionedS3:
    """A versioned bucket: key -> versions oldest first, each {id, etag, at, kms, deleted_marker}."""

    meta = FakeMeta()

    def __init__(self):
        self.now = 100.0
        self.ids = itertools.count(1)
        self.keys: dict[str, list[dict]] = {}
        self.lock = threading.Lock()
        self.before_copy = None  # a hook: a concurrent writer

    def put(self, key, body, kms=OLD, marker=False):
        self.keys.setdefault(key, []).append({"id": f"v{next(self.ids)}", "etag": f'"{body}"', "body": body, "at": self.now,
                                              "kms": kms, "marker": marker})

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
                    versions.append({**entry, "ETag": v["etag"], "Size": len(v["body"]), "StorageClass": "STANDARD"})
        return {"Versions": versions, "DeleteMarkers": markers, "IsTruncated": False}

    def _version(self, key, version_id=None):
        history = self.keys[key]
        return history[-1] if version_id is None else next(v for v in history if v["id"] == version_id)

    def head_object(self, Bucket, Key, VersionId=None):  # pylint: disable=invalid-name
        v = self._version(Key, VersionId)
        return {"ETag": v["etag"], "VersionId": v["id"], "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": v["kms"]}

    def copy_object(self, Bucket, Key, CopySource, SSEKMSKeyId, CopySourceIfMatch=None, IfMatch=None, **_):  # pylint: disable=invalid-name
        if self.before_copy:
            self.before_copy(self)
        with self.lock:
            source = self._version(Key, CopySource.get("VersionId"))
            if CopySourceIfMatch and CopySourceIfMatch != source["etag"]:
                raise precondition()
            if IfMatch and IfMatch != self.keys[Key][-1]["etag"]:
                raise precondition()
            self.put(Key, source["body"], kms=SSEKMSKeyId)
            new = self.keys[Key][-1]
            return {"CopyObjectResult": {"ETag": new["etag"]}, "VersionId": new["id"]}

    def delete_object(self, Bucket, Key, VersionId):  # pylint: disable=invalid-name
        self.keys[Key] = [v for v in self.keys[Key] if v["id"] != VersionId]


def run(s3, cutoff, delete=False, check=False):
    options = s3_reencrypt.Options(bucket="b", key_arn=KEY, concurrency=2, check_mode=check)
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


def test_reproduced_matches_in_order():
    e = [{"ETag": x} for x in ("1", "2", "1")]
    assert s3_reencrypt.reproduced(e, [{"ETag": "1"}, {"ETag": "2"}]) == [True, True, False]
    # Greedy, in order: the first "1" takes the later copy, so "2" (before it) can't count as reproduced.
    assert s3_reencrypt.reproduced(e, [{"ETag": "2"}, {"ETag": "1"}]) == [True, False, False]


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
