"""Local AWS extensions the S3 re-encryption relies on, each failing on plain moto:

- SSE-C objects need their customer key to be read or copied (CopyObject → 400 InvalidRequest, HeadObject → 400)
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/ServerSideEncryptionCustomerKeys.html
- 503 SlowDown injected by the bucket tag ``local-aws:throttle`` = ``<N>[#tag]`` (the next N object requests)
  https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
- Bucket policy conditions on ``s3:x-amz-server-side-encryption-aws-kms-key-id`` are evaluated (plain moto ignores
  a statement's Condition, so a Deny for "another key" refuses every upload)
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html
"""
from __future__ import annotations

import json
import os

import pytest
from botocore.exceptions import ClientError

from .support import DID_NOT_RAISE, PROVIDER, against_both, new_key


@pytest.fixture
def bucket(aws, unique_name):
    name = unique_name("fid")
    aws.client("s3", account=PROVIDER).create_bucket(Bucket=name)
    return name


@against_both("SSE-C is forgotten: the object is copied and read without its key", raises=DID_NOT_RAISE)
def test_sse_c_object_cannot_be_copied_or_read_without_its_key(aws, bucket):
    s3 = aws.client("s3", account=PROVIDER)
    customer_key = os.urandom(32)
    s3.put_object(Bucket=bucket, Key="c", Body=b"secret", SSECustomerAlgorithm="AES256", SSECustomerKey=customer_key)
    with pytest.raises(ClientError) as copy_error:
        s3.copy_object(Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "c"}, ServerSideEncryption="AES256")
    assert copy_error.value.response["Error"]["Code"] == "InvalidRequest"
    with pytest.raises(ClientError) as head_error:
        s3.head_object(Bucket=bucket, Key="c")
    assert head_error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert s3.head_object(Bucket=bucket, Key="c", SSECustomerAlgorithm="AES256", SSECustomerKey=customer_key)["ContentLength"] == 6


@against_both("no throttling can be injected", raises=AssertionError)
def test_throttle_tag_answers_slow_down_n_times(aws, bucket):
    s3 = aws.client("s3", account=PROVIDER, retries={"total_max_attempts": 1})
    s3.put_object(Bucket=bucket, Key="o", Body=b"x")
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "local-aws:throttle", "Value": "2#a"}]})
    codes = []
    for _attempt in range(3):
        try:
            s3.copy_object(Bucket=bucket, Key="o", CopySource={"Bucket": bucket, "Key": "o"}, ServerSideEncryption="AES256")
            codes.append("ok")
        except ClientError as e:
            codes.append((e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]))
    assert codes == [("SlowDown", 503), ("SlowDown", 503), "ok"]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "local-aws:throttle", "Value": "1#b"}]})
    with pytest.raises(ClientError) as again:
        s3.head_object(Bucket=bucket, Key="o")
    assert again.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


@against_both("a Deny's Condition is ignored: every upload is refused", raises=ClientError)
def test_deny_other_keys_condition_is_evaluated(aws, bucket):
    s3 = aws.client("s3", account=PROVIDER)
    kms = aws.client("kms", account=PROVIDER)
    good, other = new_key(kms)["Arn"], new_key(kms)["Arn"]
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyOther", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*",
        "Condition": {"Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"},
                      "StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": good}}}]}))
    s3.put_object(Bucket=bucket, Key="good", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=good)
    s3.put_object(Bucket=bucket, Key="default", Body=b"x")
    with pytest.raises(ClientError) as denied:
        s3.put_object(Bucket=bucket, Key="other", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=other)
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


@against_both("a copy with object lock headers is refused for lack of Content-MD5", raises=ClientError)
def test_copy_keeps_lock_headers_without_content_md5(aws, unique_name):
    s3 = aws.client("s3", account=PROVIDER)
    bucket = unique_name("lock")
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3.put_object(Bucket=bucket, Key="held", Body=b"x", ObjectLockLegalHoldStatus="ON", ChecksumAlgorithm="SHA256")
    s3.copy_object(Bucket=bucket, Key="held", CopySource={"Bucket": bucket, "Key": "held"}, ServerSideEncryption="AES256",
                   ObjectLockLegalHoldStatus="ON")
    assert s3.head_object(Bucket=bucket, Key="held")["ObjectLockLegalHoldStatus"] == "ON"


@against_both("an object completed from a multipart upload has no ACL: GetObjectAcl answers 500", raises=ClientError)
def test_multipart_object_has_the_owners_acl(aws, bucket):
    s3 = aws.client("s3", account=PROVIDER)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="big", UploadId=upload, PartNumber=1, Body=b"x" * 1024)
    s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    grants = s3.get_object_acl(Bucket=bucket, Key="big")["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]
