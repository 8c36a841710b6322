"""S3 SSE-KMS: the key must exist and be usable; S3 stores and reports the key ARN; copies honour the bucket
default and the copy-source preconditions.

- https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html (KMS key in the bucket's Region;
  a key id or alias resolves in the requester's account; reads need kms:Decrypt)
- https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html, API_CopyObject.html (x-amz-copy-source-if-match
  → 412 PreconditionFailed), API_CreateMultipartUpload.html, API_UploadPartCopy.html
- S3 relays KMS failures as KMS.NotFoundException / KMS.DisabledException / KMS.KMSInvalidStateException (HTTP 400).
"""
from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from .support import CUSTOMER, DID_NOT_RAISE, OTHER_REGION, PROVIDER, STATE_ERRORS, against_both, error_of, key_in_state, new_key

NOT_VALIDATED = "S3 accepts any SSE-KMS key string: missing, disabled or pending deletion"
STORED_AS_SENT = "the key is stored as sent, not as the key ARN"
SSE_KMS = {"ServerSideEncryption": "aws:kms"}


@pytest.fixture
def bucket(aws, unique_name):
    s3 = aws.client("s3", account=PROVIDER)
    name = unique_name("byok")
    s3.create_bucket(Bucket=name)
    return name


def kms_error(excinfo):
    return error_of(excinfo)[:2]


def write_with_key(s3, bucket, how, key_ref):
    """Write one object with SSE-KMS ``key_ref`` using PutObject, CopyObject or CreateMultipartUpload."""
    if how == "put":
        s3.put_object(Bucket=bucket, Key="object", Body=b"data", SSEKMSKeyId=key_ref, **SSE_KMS)
    elif how == "copy":
        s3.put_object(Bucket=bucket, Key="source", Body=b"data")
        s3.copy_object(Bucket=bucket, Key="object", CopySource={"Bucket": bucket, "Key": "source"}, SSEKMSKeyId=key_ref, **SSE_KMS)
    else:
        s3.create_multipart_upload(Bucket=bucket, Key="object", SSEKMSKeyId=key_ref, **SSE_KMS)


WRITES = ["put", "copy", "multipart"]


@pytest.mark.parametrize("how", WRITES)
@pytest.mark.parametrize("state", ["missing", *sorted(STATE_ERRORS)])
@against_both(NOT_VALIDATED, raises=DID_NOT_RAISE)
def test_write_refused_with_unusable_key(aws, bucket, how, state):
    s3 = aws.client("s3", account=PROVIDER)
    if state == "missing":
        key_ref, expected = f"arn:aws:kms:us-east-1:{CUSTOMER}:key/{uuid.uuid4()}", "KMS.NotFoundException"
    else:
        key_ref, expected = key_in_state(aws.client("kms", account=CUSTOMER), state)["Arn"], f"KMS.{STATE_ERRORS[state][0]}"
    with pytest.raises(ClientError) as excinfo:
        write_with_key(s3, bucket, how, key_ref)
    assert kms_error(excinfo) == (expected, 400)


@against_both(NOT_VALIDATED, raises=DID_NOT_RAISE)
def test_bucket_default_key_is_checked_on_write(aws, bucket):
    s3 = aws.client("s3", account=PROVIDER)
    key = key_in_state(aws.client("kms", account=CUSTOMER), "Disabled")
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key["Arn"]}, "BucketKeyEnabled": True}]})
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket=bucket, Key="object", Body=b"data")
    assert kms_error(excinfo) == ("KMS.DisabledException", 400)


@pytest.mark.parametrize("how", WRITES)
@against_both(STORED_AS_SENT, raises=AssertionError)
def test_key_id_and_alias_are_stored_as_key_arn(aws, bucket, how):
    s3, kms = aws.client("s3", account=PROVIDER), aws.client("kms", account=PROVIDER)
    key = new_key(kms)
    alias = f"alias/s3-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    for key_ref in (key["KeyId"], alias):
        write_with_key(s3, bucket, how, key_ref)
        if how == "multipart":
            upload = s3.create_multipart_upload(Bucket=bucket, Key="object", SSEKMSKeyId=key_ref, **SSE_KMS)
            assert upload["SSEKMSKeyId"] == key["Arn"]
            part = s3.upload_part(Bucket=bucket, Key="object", UploadId=upload["UploadId"], PartNumber=1, Body=b"data")
            s3.complete_multipart_upload(Bucket=bucket, Key="object", UploadId=upload["UploadId"],
                                         MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
        assert s3.head_object(Bucket=bucket, Key="object")["SSEKMSKeyId"] == key["Arn"]


@against_both("S3 ignores the account in a key ARN and accepts a bare key id without lookup", raises=DID_NOT_RAISE)
def test_customer_key_by_arn_and_not_by_bare_id(aws, bucket):
    s3 = aws.client("s3", account=PROVIDER)
    key = new_key(aws.client("kms", account=CUSTOMER))
    s3.put_object(Bucket=bucket, Key="by-arn", Body=b"data", SSEKMSKeyId=key["Arn"], **SSE_KMS)
    assert s3.head_object(Bucket=bucket, Key="by-arn")["SSEKMSKeyId"] == key["Arn"]
    # A key id resolves in the requester's account, where this key does not exist.
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket=bucket, Key="by-id", Body=b"data", SSEKMSKeyId=key["KeyId"], **SSE_KMS)
    assert kms_error(excinfo) == ("KMS.NotFoundException", 400)


@against_both("a key from another Region is accepted", raises=DID_NOT_RAISE)
def test_key_must_be_in_the_buckets_region(aws, bucket):
    s3 = aws.client("s3", account=PROVIDER)
    key = new_key(aws.client("kms", account=PROVIDER, region=OTHER_REGION))
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket=bucket, Key="object", Body=b"data", SSEKMSKeyId=key["Arn"], **SSE_KMS)
    assert kms_error(excinfo) == ("KMS.NotFoundException", 400)


@against_both("aws:kms without a key id stores no key (AWS uses the aws/s3 key)", raises=KeyError)
def test_sse_kms_without_key_uses_aws_managed_key(aws, bucket):
    s3, kms = aws.client("s3", account=PROVIDER), aws.client("kms", account=PROVIDER)
    s3.put_object(Bucket=bucket, Key="object", Body=b"data", **SSE_KMS)
    managed = kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]["Arn"]
    assert s3.head_object(Bucket=bucket, Key="object")["SSEKMSKeyId"] == managed


@against_both("an in-place copy without SSE parameters is downgraded to AES256", raises=KeyError)
def test_in_place_copy_gets_bucket_default_key(aws, bucket):
    s3 = aws.client("s3", account=PROVIDER)
    old_key, new_default = new_key(aws.client("kms", account=CUSTOMER)), new_key(aws.client("kms", account=CUSTOMER))
    s3.put_object(Bucket=bucket, Key="object", Body=b"data", SSEKMSKeyId=old_key["Arn"], **SSE_KMS)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": new_default["Arn"]}}]})
    s3.copy_object(Bucket=bucket, Key="object", CopySource={"Bucket": bucket, "Key": "object"}, MetadataDirective="COPY")
    head = s3.head_object(Bucket=bucket, Key="object")
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", new_default["Arn"])


@against_both("x-amz-copy-source-if-match is ignored", raises=DID_NOT_RAISE)
def test_copy_source_if_match_is_enforced(aws, bucket):
    s3 = aws.client("s3", account=PROVIDER)
    etag = s3.put_object(Bucket=bucket, Key="object", Body=b"data")["ETag"]
    source = {"Bucket": bucket, "Key": "object"}
    with pytest.raises(ClientError) as excinfo:
        s3.copy_object(Bucket=bucket, Key="object", CopySource=source, CopySourceIfMatch='"0123456789abcdef0123456789abcdef"', **SSE_KMS)
    assert kms_error(excinfo) == ("PreconditionFailed", 412)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")
    with pytest.raises(ClientError) as excinfo:
        s3.upload_part_copy(Bucket=bucket, Key="big", UploadId=upload["UploadId"], PartNumber=1, CopySource=source, CopySourceIfMatch='"0"')
    assert kms_error(excinfo) == ("PreconditionFailed", 412)
    s3.copy_object(Bucket=bucket, Key="object", CopySource=source, CopySourceIfMatch=etag, **SSE_KMS)


@against_both("objects under a disabled key can still be read and copied", raises=DID_NOT_RAISE)
def test_reading_object_under_disabled_key_fails(aws, bucket):
    s3, customer_kms = aws.client("s3", account=PROVIDER), aws.client("kms", account=CUSTOMER)
    key = new_key(customer_kms)
    s3.put_object(Bucket=bucket, Key="object", Body=b"data", SSEKMSKeyId=key["Arn"], **SSE_KMS)
    customer_kms.disable_key(KeyId=key["KeyId"])

    assert s3.head_object(Bucket=bucket, Key="object")["SSEKMSKeyId"] == key["Arn"]  # metadata needs no Decrypt
    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket=bucket, Key="object")
    assert kms_error(excinfo) == ("KMS.DisabledException", 400)
    with pytest.raises(ClientError) as excinfo:
        s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "object"}, ServerSideEncryption="AES256")
    assert kms_error(excinfo) == ("KMS.DisabledException", 400)
