# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bucket default encryption and the bucket policy statement that refuses uploads under another key."""

from __future__ import annotations

import copy
import json

DENY_OTHER_KEYS_SID = "ByokDenyUploadsUnderOtherKeys"


def encryption_config(key_arn: str, bucket_key: bool) -> dict:
    """The ServerSideEncryptionConfiguration S3 stores for a default of SSE-KMS with `key_arn`."""
    return {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
                       "BucketKeyEnabled": bool(bucket_key)}]}


def normalize_encryption(config: dict | None) -> dict | None:
    """The parts of a GetBucketEncryption answer that matter, comparable with encryption_config()."""
    if not config:
        return None
    rules = []
    for rule in config.get("Rules", []):
        default = rule.get("ApplyServerSideEncryptionByDefault", {})
        entry = {"SSEAlgorithm": default.get("SSEAlgorithm")}
        if default.get("KMSMasterKeyID"):
            entry["KMSMasterKeyID"] = default["KMSMasterKeyID"]
        rules.append({"ApplyServerSideEncryptionByDefault": entry, "BucketKeyEnabled": bool(rule.get("BucketKeyEnabled", False))})
    return {"Rules": rules}


def deny_other_keys_statement(bucket: str, key_arn: str, sid: str = DENY_OTHER_KEYS_SID) -> dict:
    """Deny PutObject (also CopyObject and CreateMultipartUpload) that asks for SSE-KMS with anything but `key_arn`:
    another key id, or none at all, which S3 takes as the AWS managed key aws/s3, not the bucket default key
    (UserGuide, "Specifying server-side encryption with AWS KMS"). A write that sends no encryption header is
    allowed: the bucket default applies (a deny on a missing header would break clients that rely on the default,
    and UploadPart, which never carries the header; research §3.3). StringNotEquals holds for a missing key id."""
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
        "Condition": {"StringEquals": {"s3:x-amz-server-side-encryption": ["aws:kms", "aws:kms:dsse"]},
                      "StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn}},
    }


def merge_statement(policy: dict | str | None, statement: dict) -> tuple[dict, bool]:
    """(policy with `statement` in place of any statement with the same Sid, changed?). Every other statement is kept
    as it is, in its place; a new statement is appended."""
    if isinstance(policy, str):
        policy = json.loads(policy) if policy.strip() else None
    merged = copy.deepcopy(policy) if policy else {"Version": "2012-10-17", "Statement": []}
    statements = merged.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    for index, existing in enumerate(statements):
        if existing.get("Sid") == statement["Sid"]:
            if existing == statement:
                merged["Statement"] = statements
                return merged, False
            statements[index] = statement
            merged["Statement"] = statements
            return merged, True
    merged["Statement"] = statements + [statement]
    return merged, True


def remove_statement(policy: dict | str | None, sid: str) -> tuple[dict | None, bool]:
    """(policy without the statement `sid`, changed?); None when no statement is left."""
    if isinstance(policy, str):
        policy = json.loads(policy) if policy.strip() else None
    if not policy:
        return policy, False
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    kept = [s for s in statements if s.get("Sid") != sid]
    if len(kept) == len(statements):
        return policy, False
    if not kept:
        return None, True
    return {**policy, "Statement": kept}, True
