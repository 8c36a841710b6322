"""Local AWS extension all_versions relies on, failing on plain moto:

- CopyObject honours the destination condition ``If-Match`` (412 when the key's newest ETag differs) and
  ``If-None-Match: *``; plain moto checks them on PutObject only, so a conditional copy would overwrite a concurrent
  writer's object. https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html
"""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from .support import DID_NOT_RAISE, PROVIDER, against_both


@against_both("CopyObject ignores the destination If-Match", raises=DID_NOT_RAISE)
def test_copy_object_destination_if_match(aws, unique_name):
    s3 = aws.client("s3", account=PROVIDER)
    bucket = unique_name("ifm")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"one")
    s3.put_object(Bucket=bucket, Key="k", Body=b"two")  # a concurrent writer: the newest ETag is not the one we expect
    source = {"Bucket": bucket, "Key": "k", "VersionId": first["VersionId"]}
    with pytest.raises(ClientError) as refused:
        s3.copy_object(Bucket=bucket, Key="k", CopySource=source, IfMatch=first["ETag"], ServerSideEncryption="AES256")
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    with pytest.raises(ClientError) as exists:
        s3.copy_object(Bucket=bucket, Key="k", CopySource=source, IfNoneMatch="*", ServerSideEncryption="AES256")
    assert exists.value.response["Error"]["Code"] == "PreconditionFailed"
    newest = s3.head_object(Bucket=bucket, Key="k")["ETag"]
    copied = s3.copy_object(Bucket=bucket, Key="k", CopySource=source, IfMatch=newest, ServerSideEncryption="AES256")
    assert copied["VersionId"] and s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"one"


@against_both("HeadObject with versionId=null on a bucket that never had versioning answers a bare 400", raises=ClientError)
def test_head_object_reads_the_null_version_of_a_never_versioned_bucket(aws, unique_name):
    s3 = aws.client("s3", account=PROVIDER)
    bucket = unique_name("never-versioned")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a", Body=b"content", Metadata={"n": "1"})
    [version] = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert version["VersionId"] == "null"
    head = s3.head_object(Bucket=bucket, Key="a", VersionId="null")
    assert (head["ContentLength"], head["Metadata"]) == (7, {"n": "1"})
    with pytest.raises(ClientError) as other:
        s3.head_object(Bucket=bucket, Key="a", VersionId="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY")
    assert other.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
