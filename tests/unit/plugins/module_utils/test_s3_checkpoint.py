# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resume without duplicates: one run at a time per bucket (the lease), and a resumed run copies only what the cutoff
says is not yet on the key."""

from __future__ import annotations

import copy
import threading
from datetime import datetime, timezone

from ansible_collections.mattermost.byok.plugins.module_utils.s3 import checkpoint as s3_checkpoint
from ansible_collections.mattermost.byok.plugins.module_utils.s3 import reencrypt as s3_reencrypt
from ansible_collections.mattermost.byok.plugins.module_utils.s3.bucket_kms import BucketKms

KEY = "arn:aws:kms:us-east-1:111111111111:key/0b5e8d3c-1f00-4a63-9d5e-0a1b2c3d4e5f"
OLD = "arn:aws:kms:us-east-1:111111111111:key/11111111-1f00-4a63-9d5e-0a1b2c3d4e5f"


def lease(host="here", pid=42, start="777", heartbeat=1000.0):
    return {"owner": "x", "host": host, "pid": pid, "process_start": start, "heartbeat": heartbeat}


def test_lease_state_on_this_host_follows_the_process():
    running = {42: "777"}.get
    # Alive however old its heartbeat: a stalled process can still send copies.
    assert s3_checkpoint.lease_state(lease(), 5000.0, host="here", process_start=running) == "alive"
    # A reused pid (another start time) is not the holder.
    assert s3_checkpoint.lease_state(lease(start="1"), 1001.0, host="here", process_start=running) == "just_died"
    assert s3_checkpoint.lease_state(lease(pid=43), 1001.0, host="here", process_start=running) == "just_died"
    assert s3_checkpoint.lease_state(lease(pid=43), 1000.0 + s3_checkpoint.LEASE_TTL, host="here", process_start=running) == "dead"
    assert s3_checkpoint.lease_state(None, 1000.0) == "free"


def test_lease_state_on_another_host_follows_the_heartbeat():
    never = {}.get
    assert s3_checkpoint.lease_state(lease(host="awx-1"), 1030.0, host="awx-2", process_start=never) == "alive"
    assert s3_checkpoint.lease_state(lease(host="awx-1"), 1000.0 + s3_checkpoint.LEASE_TTL, host="awx-2", process_start=never) == "dead"


class MemoryStore:
    location = "memory"

    def __init__(self, record=None):
        self.record = copy.deepcopy(record)
        self.saves = 0

    def load(self):
        return copy.deepcopy(self.record)

    def save(self, record):
        self.saves += 1
        self.record = copy.deepcopy(record)


def params(**overrides):
    base = {"bucket": "b-bucket", "key_arn": KEY, "prefix": "", "max_seconds": None}
    return {**base, **overrides}


def test_a_run_waits_while_another_live_run_holds_the_bucket(monkeypatch):
    now = [1000.0]
    alive = [True]
    monkeypatch.setattr(s3_checkpoint, "_process_start", lambda pid: "777" if alive[0] and pid == 42 else None)
    monkeypatch.setattr("socket.gethostname", lambda: "here")
    store = MemoryStore({"bucket": "b-bucket", "key_arn": KEY, "prefix": "", "cutoff": 900.0, "lease": lease()})

    def sleep(seconds):
        now[0] += seconds

    kms = BucketKms(None, params(), False, sleep=sleep, clock=lambda: now[0])
    record, why = kms.acquire(store, 5.0)
    assert record is None and "another run" in why and "pid 42 on here" in why
    assert store.record["lease"]["pid"] == 42 and store.saves == 0, "the holder's record was touched"

    alive[0] = False  # the holder dies: its in-flight copies get TAKEOVER_GRACE, then the bucket is ours
    before = now[0]
    record, why = kms.acquire(store, 5.0)
    assert why is None and record["lease"]["owner"] == kms.lease["owner"] and record["cutoff"] == 900.0
    assert now[0] - before >= s3_checkpoint.TAKEOVER_GRACE


def test_two_runs_starting_together_one_backs_off(monkeypatch):
    monkeypatch.setattr("socket.gethostname", lambda: "here")
    store = MemoryStore()
    other = {}

    def sleep(_seconds):
        if not other:  # the other run writes its lease while we wait to read ours back
            other.update(s3_checkpoint.new_lease(), pid=1, process_start=None, host="elsewhere")
            store.save({**store.record, "lease": other})

    kms = BucketKms(None, params(), False, sleep=sleep, clock=lambda: other.get("heartbeat", 0.0) + 1.0)
    record, why = kms.acquire(store, 0.0)
    assert record is None and "another run" in why and kms.lease is None


# --- the engine against an in-memory bucket: a resumed run copies only what is not on the key ------------------------

class FakeEvents:
    def register(self, *_args, **_kwargs):
        pass


class FakeMeta:
    events = FakeEvents()


class FakeS3:
    """Objects with LastModified on a fake server clock (whole seconds, as S3 lists them) and their version count."""

    meta = FakeMeta()

    def __init__(self, keys, written_at):
        self.now = written_at
        self.lock = threading.Lock()
        self.objects = {k: {"etag": f'"{k}"', "modified": written_at, "key": OLD, "versions": 1} for k in keys}

    def list_objects_v2(self, Bucket, MaxKeys, StartAfter=None, **_kwargs):  # pylint: disable=invalid-name
        keys = sorted(k for k in self.objects if StartAfter is None or k > StartAfter)[:MaxKeys]
        return {"Contents": [{"Key": k, "ETag": self.objects[k]["etag"], "Size": 1, "StorageClass": "STANDARD",
                              "LastModified": datetime.fromtimestamp(int(self.objects[k]["modified"]), tz=timezone.utc)}
                             for k in keys], "IsTruncated": False}

    def head_object(self, Bucket, Key):  # pylint: disable=invalid-name
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.objects[Key]["key"], "ETag": self.objects[Key]["etag"]}

    def copy_object(self, Key, SSEKMSKeyId, CopySourceIfMatch, **_kwargs):  # pylint: disable=invalid-name
        with self.lock:
            obj = self.objects[Key]
            assert CopySourceIfMatch == obj["etag"]
            obj.update(key=SSEKMSKeyId, modified=self.now, versions=obj["versions"] + 1)


def test_a_resumed_run_copies_only_what_is_not_yet_on_the_key():
    keys = [f"k{i:03d}" for i in range(60)]
    s3 = FakeS3(keys, written_at=100.0)
    cutoff = 105.4  # the bucket default went onto the key; copies land in the same second and later
    s3.now = 105.8
    traits = s3_reencrypt.BucketTraits()
    options = s3_reencrypt.Options(bucket="b", key_arn=KEY, concurrency=3)
    ticks = iter(range(100000))
    # First run: stops after a few objects (time box), as a kill would, its marker not saved.
    first = s3_reencrypt.run(s3, s3_reencrypt.Options(bucket="b", key_arn=KEY, concurrency=3, max_seconds=12),
                             traits, cutoff, None, clock=lambda: next(ticks))
    assert not first["complete"] and 0 < first["re_encrypted"] < 60
    s3.now = 107.2
    second = s3_reencrypt.run(s3, options, traits, cutoff, None)  # from the start: nothing was saved
    assert second["complete"] and second["re_encrypted"] + first["re_encrypted"] == 60
    assert {o["versions"] for o in s3.objects.values()} == {2} and {o["key"] for o in s3.objects.values()} == {KEY}


def test_save_marker_refusing_stops_new_copies():
    s3 = FakeS3([f"k{i:04d}" for i in range(3000)], written_at=100.0)
    ticks = iter(range(100000))
    result = s3_reencrypt.run(s3, s3_reencrypt.Options(bucket="b", key_arn=KEY, concurrency=2), s3_reencrypt.BucketTraits(),
                              105.0, None, save_marker=lambda marker, counts: False, clock=lambda: next(ticks), save_every=50)
    assert not result["complete"] and result["re_encrypted"] < 3000


def test_a_batch_whose_listing_outlasts_its_time_box_still_moves_on():
    s3 = FakeS3([f"k{i}" for i in range(5)], written_at=100.0)
    ticks = iter(range(0, 100000, 100))  # every clock read is 100 s later: the time box is over before the first object
    result = s3_reencrypt.run(s3, s3_reencrypt.Options(bucket="b", key_arn=KEY, concurrency=1, max_seconds=1),
                              s3_reencrypt.BucketTraits(), 105.0, None, clock=lambda: next(ticks))
    assert not result["complete"] and result["scanned"] == 1 and result["marker"] == "k0"


def test_window_merges_finished_entries_and_settles_only_up_to_the_marker():
    import concurrent.futures
    gate = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        result = s3_reencrypt.new_result()
        window = s3_reencrypt.OrderedWindow(pool, result, pending=4, span=50, marker=None)
        window.submit("a", "a", lambda: (gate.wait(5), s3_reencrypt.Outcome("a", "re_encrypted", size=3))[1])
        for key in "bcdefghijklmnopqrstuvwxyz":
            window.done(key, [s3_reencrypt.Outcome(key, "on_key")])
        assert len(window.entries) == 2, "finished entries behind a slow one are merged"
        assert window.marker is None and window.counts()["scanned"] == 0, "nothing settles past the slow entry"
        gate.set()
        window.drain(0)
    assert window.marker == "z" and window.counts()["scanned"] == 26 and window.counts()["bytes"] == 3
    assert result["re_encrypted"] == 1 and result["already_on_key"] == 25
