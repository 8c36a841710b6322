# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a bucket's re-encryption stands, kept outside the customer's data: an S3 object or a local file.

The record (JSON) holds, per bucket, key ARN and scope: `cutoff` (the server time at which the bucket default was
on the key: anything written later is on the key, so it needs no read), `marker` (the last key of the listing
order whose copy, and every one before it, is finished), `complete`, the total found by the first count and the
running counts. A kill loses at most the copies in flight, which the cutoff rule finds done on the next run.
"""

from __future__ import annotations

import json
import os
import re

try:
    from botocore.exceptions import ClientError
except ImportError:
    ClientError = None


def checkpoint_name(bucket: str, key_arn: str, prefix: str) -> str:
    key_id = key_arn.rsplit("/", 1)[-1]
    scope = re.sub(r"[^A-Za-z0-9._-]", "_", prefix) if prefix else "all"
    return f"{bucket}/{key_id}/{scope}.json"


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
