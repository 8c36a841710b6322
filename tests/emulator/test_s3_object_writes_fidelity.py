"""Local AWS extensions for what S3 makes of an object write, each failing on plain moto with the named gap:

- An SSE-KMS object's ETag is not the MD5 of its body, and two writes of the same body get different ETags
  (S3 API reference, Object.ETag: "Objects created by the PUT Object, POST Object, or Copy operation ... and are
  encrypted by SSE-C or SSE-KMS, have ETags that are not an MD5 digest of their object data").
  https://docs.aws.amazon.com/AmazonS3/latest/API/API_Object.html
- ``aws:kms`` with no key id is the AWS managed key ``aws/s3``, whatever the bucket default key (PutObject
  SSEKMSKeyId: "If you specify x-amz-server-side-encryption:aws:kms ... but do not provide
  x-amz-server-side-encryption-aws-kms-key-id, Amazon S3 uses the Amazon Web Services managed key (aws/s3)").
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/specifying-kms-encryption.html
- A write (PutObject, CopyObject, CreateMultipartUpload) whose ``x-amz-object-lock-retain-until-date`` is not in the
  future is refused: 400 InvalidArgument "The retain until date must be in the future!".
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html#object-lock-retention-periods
- HeadObject with ``ChecksumMode=ENABLED`` of an SSE-KMS object uploaded with a checksum needs kms:Decrypt: it fails
  when the key is unusable (without checksum mode it still answers).
  https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html
"""
from __future__ import annotations

import datetime
import hashlib
import json

import pytest
from botocore.exceptions import ClientError

from .support import CUSTOMER, PROVIDER, against_both, new_key


@pytest.fixture
def bucket(aws, unique_name):
    name = unique_name("writes")
    aws.client("s3", account=PROVIDER).create_bucket(Bucket=name)
    return name


def outcome(call, **kwargs):
    """The call's error as (code, HTTP status), or "ok": plain moto's gap shows as a failed comparison."""
    try:
        call(**kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    return "ok"


@against_both("an SSE-KMS object's ETag is the MD5 of its body", raises=AssertionError)
def test_sse_kms_etag_is_not_the_md5_and_differs_per_write(aws, bucket):
    s3 = aws.client("s3", account=PROVIDER)
    key = new_key(aws.client("kms", account=PROVIDER))["Arn"]
    body = b"the same body"
    md5 = f'"{hashlib.md5(body).hexdigest()}"'  # noqa: S324  # S3's ETag algorithm, not a security use
    sse_kms = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key}
    first = s3.put_object(Bucket=bucket, Key="a", Body=body, **sse_kms)["ETag"]
    second = s3.put_object(Bucket=bucket, Key="b", Body=body, **sse_kms)["ETag"]
    copied = s3.copy_object(Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "a"}, **sse_kms)["CopyObjectResult"]["ETag"]
    plain = s3.put_object(Bucket=bucket, Key="s3", Body=body, ServerSideEncryption="AES256")["ETag"]
    listed = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert plain == md5, "an SSE-S3 object's ETag stays the MD5 of its body"
    assert len({first, second, copied, md5}) == 4, (first, second, copied, md5)
    assert listed == {"a": first, "b": second, "c": copied, "s3": plain}
    assert s3.head_object(Bucket=bucket, Key="a")["ETag"] == first
    # The copy-source condition still holds against the ETag S3 gave the source.
    assert outcome(s3.copy_object, Bucket=bucket, Key="d", CopySource={"Bucket": bucket, "Key": "a"}, CopySourceIfMatch=first, **sse_kms) == "ok"
    assert outcome(s3.copy_object, Bucket=bucket, Key="d", CopySource={"Bucket": bucket, "Key": "a"}, CopySourceIfMatch=md5,
                   **sse_kms) == ("PreconditionFailed", 412)


@against_both("aws:kms without a key id gets the bucket default key, not aws/s3", raises=AssertionError)
def test_aws_kms_without_key_id_is_aws_s3_not_the_bucket_default(aws, bucket):
    s3, kms = aws.client("s3", account=PROVIDER), aws.client("kms", account=PROVIDER)
    default = new_key(kms)["Arn"]
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": default}, "BucketKeyEnabled": True}]})
    s3.put_object(Bucket=bucket, Key="no-header", Body=b"data")
    s3.put_object(Bucket=bucket, Key="put", Body=b"data", ServerSideEncryption="aws:kms")
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "no-header"}, ServerSideEncryption="aws:kms")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="multipart", ServerSideEncryption="aws:kms")
    part = s3.upload_part(Bucket=bucket, Key="multipart", UploadId=upload["UploadId"], PartNumber=1, Body=b"data")
    s3.complete_multipart_upload(Bucket=bucket, Key="multipart", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    managed = kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]["Arn"]
    keys = {k: s3.head_object(Bucket=bucket, Key=k).get("SSEKMSKeyId") for k in ("no-header", "put", "copy", "multipart")}
    assert keys == {"no-header": default, "put": managed, "copy": managed, "multipart": managed}


def _lock_bucket(s3, name):
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name


@against_both("a retain-until date in the past is accepted", raises=AssertionError)
def test_retain_until_in_the_past_is_refused(aws, unique_name):
    s3 = aws.client("s3", account=PROVIDER)
    bucket = _lock_bucket(s3, unique_name("lock"))
    now = datetime.datetime.now(datetime.timezone.utc)
    past, future = now - datetime.timedelta(days=1), now + datetime.timedelta(days=1)
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", ChecksumAlgorithm="SHA256")
    source = {"Bucket": bucket, "Key": "src"}
    refused = ("InvalidArgument", 400)
    results = {
        "put past": outcome(s3.put_object, Bucket=bucket, Key="p", Body=b"x", ChecksumAlgorithm="SHA256",
                            ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=past),
        "copy past": outcome(s3.copy_object, Bucket=bucket, Key="c", CopySource=source, ServerSideEncryption="AES256",
                             ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=past),
        "multipart past": outcome(s3.create_multipart_upload, Bucket=bucket, Key="m", ObjectLockMode="GOVERNANCE",
                                  ObjectLockRetainUntilDate=past),
        "copy future": outcome(s3.copy_object, Bucket=bucket, Key="f", CopySource=source, ServerSideEncryption="AES256",
                               ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=future),
        "copy legal hold": outcome(s3.copy_object, Bucket=bucket, Key="h", CopySource=source, ServerSideEncryption="AES256",
                                   ObjectLockLegalHoldStatus="ON"),
    }
    assert results == {"put past": refused, "copy past": refused, "multipart past": refused, "copy future": "ok",
                       "copy legal hold": "ok"}
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["f", "h", "src"]
    s3.put_object_legal_hold(Bucket=bucket, Key="h", LegalHold={"Status": "OFF"})


@against_both("a Deny's Condition is ignored: every upload is refused, the default-encrypted one too", raises=AssertionError)
def test_deny_on_the_encryption_header_and_a_missing_key_id_is_evaluated(aws, bucket):
    """A Deny for "SSE-KMS asked for, with a key id other than ours or none" (StringNotEquals holds for a missing key:
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html) refuses
    aws:kms without a key id and with another key, and lets through a write with no encryption header (the default)
    and one naming our key. https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html"""
    s3, kms = aws.client("s3", account=PROVIDER), aws.client("kms", account=PROVIDER)
    ours, other = new_key(kms)["Arn"], new_key(kms)["Arn"]
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyOther", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*",
        "Condition": {"StringEquals": {"s3:x-amz-server-side-encryption": ["aws:kms", "aws:kms:dsse"]},
                      "StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": ours}}}]}))
    results = {
        "no header": outcome(s3.put_object, Bucket=bucket, Key="a", Body=b"x"),
        "ours": outcome(s3.put_object, Bucket=bucket, Key="b", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=ours),
        "aws:kms alone": outcome(s3.put_object, Bucket=bucket, Key="c", Body=b"x", ServerSideEncryption="aws:kms"),
        "other": outcome(s3.put_object, Bucket=bucket, Key="d", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=other),
    }
    statuses = {name: result if result == "ok" else result[1] for name, result in results.items()}
    assert statuses == {"no header": "ok", "ours": "ok", "aws:kms alone": 403, "other": 403}


@against_both("the checksum of an object under a disabled key is answered", raises=AssertionError)
def test_checksum_of_an_object_under_an_unusable_key_needs_decrypt(aws, bucket):
    s3, customer_kms = aws.client("s3", account=PROVIDER), aws.client("kms", account=CUSTOMER)
    key = new_key(customer_kms)
    s3.put_object(Bucket=bucket, Key="o", Body=b"data", ServerSideEncryption="aws:kms", SSEKMSKeyId=key["Arn"],
                  ChecksumAlgorithm="SHA256")
    assert s3.head_object(Bucket=bucket, Key="o", ChecksumMode="ENABLED").get("ChecksumSHA256")
    customer_kms.disable_key(KeyId=key["KeyId"])
    results = {"head": outcome(s3.head_object, Bucket=bucket, Key="o"),
               "head with checksum": outcome(s3.head_object, Bucket=bucket, Key="o", ChecksumMode="ENABLED")}
    assert results == {"head": "ok", "head with checksum": ("400", 400)}
