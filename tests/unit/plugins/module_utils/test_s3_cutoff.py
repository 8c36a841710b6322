# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Time alone proves an object on the key only after the cutoff's second and its margin, and only when no writer
can name another encryption; the engines read everything else."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.s3 import reencrypt as s3_reencrypt
from ansible_collections.mattermost.byok.plugins.module_utils.s3.cutoff import DEFAULT_MARGIN
from ansible_collections.mattermost.byok.plugins.module_utils.s3.cutoff import time_says

CUT = 1_000_000.0
KEY = "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"


@pytest.mark.parametrize("offset, margin, trusted, expected", [
    (-1, 0, True, "before"),
    (-3600, 900, False, "before"),        # older than the key: copied whatever the writers do
    (0, 0, True, "unknown"),              # the cutoff's own second
    (0.9, 0, True, "unknown"),            # still the cutoff's second
    (1, 0, True, "after"),
    (1, 0, False, "unknown"),             # a writer may have sent AES256: read it
    (86400, 0, False, "unknown"),         # however long after
    (1, 900, True, "unknown"),            # within the margin: the old default may still have applied
    (900, 900, True, "unknown"),
    (901, 900, True, "after"),
    (901, 900, False, "unknown"),
    (5, -10, True, "after"),              # a negative margin counts as none
])
def test_time_says(offset, margin, trusted, expected):
    assert time_says(CUT + offset, CUT, margin, trusted) == expected


@pytest.mark.parametrize("trusted", [True, False])
def test_no_cutoff_says_nothing(trusted):
    assert time_says(CUT, None, 0, trusted) == "unknown"


def test_default_margin_is_fifteen_minutes():
    assert DEFAULT_MARGIN == 900


def item(offset):
    return {"Key": "k", "ETag": '"e"', "Size": 1, "StorageClass": "STANDARD",
            "LastModified": datetime.fromtimestamp(CUT + offset, tz=timezone.utc)}


@pytest.mark.parametrize("offset, margin, trusted, plan", [
    (-5, 900, False, "copy"), (3, 0, True, "on_key"), (3, 0, False, "head"), (600, 900, True, "head"), (1200, 900, True, "on_key"),
])
def test_engine_plan_follows_the_rule(offset, margin, trusted, plan):
    options = s3_reencrypt.Options(bucket="b", key_arn=KEY, trust_after_cutoff=trusted, cutoff_margin=margin)
    assert s3_reencrypt.Engine(None, options, s3_reencrypt.BucketTraits(), CUT).plan(item(offset)) == plan


class HeadOnly:
    """An S3 client that answers HeadObject only, from a table of (key, version) -> encryption."""

    def __init__(self, answers):
        self.answers, self.heads = answers, []

    def head_object(self, Bucket, Key, VersionId):  # pylint: disable=invalid-name,unused-argument
        self.heads.append((Key, VersionId))
        return self.answers[(Key, VersionId)]


@pytest.mark.parametrize("trusted, head, expected, heads", [
    (True, None, "on_key", 0),
    (False, {"ServerSideEncryption": "AES256"}, "old", 1),
    (False, {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KEY}, "on_key", 1),
])
def test_versions_engine_reads_after_the_cutoff_unless_trusted(trusted, head, expected, heads):
    s3 = HeadOnly({("k", "v1"): head})
    options = s3_reencrypt.Options(bucket="b", key_arn=KEY, trust_after_cutoff=trusted)
    engine = s3_reencrypt.VersionsEngine(s3, options, s3_reencrypt.BucketTraits(), CUT, delete_replaced=False)
    version = {"VersionId": "v1", "LastModified": datetime.fromtimestamp(CUT + 60, tz=timezone.utc)}
    assert engine._on_key("k", version) == expected  # pylint: disable=protected-access
    assert len(s3.heads) == heads
