# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a bucket's re-encryption stands, kept outside the customer's data: an S3 object or a local file.

The record (JSON) holds, per bucket, key ARN and scope: `cutoff` (the server time at which the bucket default was
on the key: anything written later is on the key, so it needs no read), `marker` (the last key of the listing
order whose copy, and every one before it, is finished), `complete`, the total found by the first count and the
running counts. A kill loses at most the copies in flight, which the cutoff rule finds done on the next run.

It also holds the run's `lease`: two runs copying one bucket at once would both copy an object listed by both (where
the copy keeps an MD5 ETag the ETag condition can't tell, giving it two new versions; where it gets a new one, as any
copy onto SSE-KMS on AWS, the second copy fails with 412). A run takes the lease before its
first copy, renews it with every checkpoint save, gives it back at the end; a second run waits while the holder lives.
A holder on this host is alive while its process is (pid and start time); on another host, while its heartbeat is
younger than LEASE_TTL. Killing ansible-playbook does not kill the module it started (ansible-core runs each worker in
its own session), so "resume after a kill" often meets a run that is still copying.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid

try:
    from botocore.exceptions import ClientError
except ImportError:
    ClientError = None


LEASE_TTL = 60.0  # seconds without a heartbeat after which a holder on another host counts as gone
HEARTBEAT_EVERY = 5.0  # the checkpoint (and the lease) is saved this often during a run
TAKEOVER_GRACE = 5.0  # after its holder died: S3 finishes the copies the dead run had in flight, then we list


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc), so a reused pid is not taken for the holder; None
    when it is gone or a zombie (killed, not yet reaped: it sends nothing any more)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if len(fields) < 20 or fields[0] in ("Z", "X") else fields[19]


def new_lease() -> dict:
    pid = os.getpid()
    return {"owner": uuid.uuid4().hex, "host": socket.gethostname(), "pid": pid, "process_start": _process_start(pid),
            "heartbeat": time.time()}


def lease_state(lease: dict | None, now: float, host: str | None = None, process_start=None) -> str:
    """free | alive | just_died (its copies may still be finishing) | dead."""
    process_start = process_start or _process_start
    if not lease:
        return "free"
    age = now - float(lease.get("heartbeat", 0))
    if lease.get("host") == (host or socket.gethostname()) and lease.get("pid"):
        running = process_start(int(lease["pid"]))
        if running is not None and running == lease.get("process_start"):
            return "alive"  # however old its heartbeat: a live process may still send copies
    elif age < LEASE_TTL:
        return "alive"
    return "just_died" if age < LEASE_TTL else "dead"


def describe_lease(lease: dict, now: float) -> str:
    return f"pid {lease.get('pid')} on {lease.get('host')}, checkpoint saved {max(0, now - float(lease.get('heartbeat', now))):.0f} s ago"


def checkpoint_name(bucket: str, key_arn: str, prefix: str, all_versions: bool = False, in_place: bool = False) -> str:
    key_id = key_arn.rsplit("/", 1)[-1]
    scope = re.sub(r"[^A-Za-z0-9._-]", "_", prefix) if prefix else "all"
    return f"{bucket}/{key_id}/{scope}{'.in-place' if in_place else '.versions' if all_versions else ''}.json"


class NoCheckpoint:
    """No place to keep state: every run starts without a cutoff (objects of unknown state are read with HEAD)."""

    location = None

    def load(self):
        return None

    def save(self, record):
        pass


class LocalCheckpoint:
    def __init__(self, directory: str, name: str):
        self.path = os.path.join(directory, name)
        self.location = self.path

    def load(self):
        try:
            with open(self.path) as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def save(self, record):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(record, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)  # atomic: a kill never leaves half a record


class S3Checkpoint:
    """An object in a state bucket of the provider account (in the role: the kops state store), so it survives
    the AWX job container."""

    def __init__(self, s3, bucket: str, prefix: str, name: str):
        self.s3 = s3
        self.bucket = bucket
        self.key = f"{prefix.rstrip('/')}/{name}" if prefix else name
        self.location = f"s3://{bucket}/{self.key}"

    def load(self):
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return json.loads(body)

    def save(self, record):
        self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=json.dumps(record, indent=1, sort_keys=True).encode(),
                           ContentType="application/json")
