"""S3 reads and writes of SSE-KMS objects need the caller's KMS permissions on both halves
(tests/local_aws/extensions/s3_kms_access.py).

AWS (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html, "Permissions"): GetObject of an
SSE-KMS object needs kms:Decrypt, PutObject kms:GenerateDataKey, a multipart upload both, a copy kms:Decrypt on the
source's key; from another account the key policy AND the caller's IAM policy must allow it
(https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html). Plain moto
never asks: a Mattermost server identity with S3 permissions only reads and writes SSE-KMS objects of a customer's
key. Each test runs on a private server per kind with IAM enforcement on.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.local_aws.harness import LocalAWS

from .support import CUSTOMER, PROVIDER, REGION
from .test_iam_auth import set_enforcement

BUCKET = "kms-access-filestore"
KMS_USE = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
GAP = "S3 never checks the caller's KMS permissions: an identity without them reads and writes SSE-KMS objects"


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


class World:
    """A provider bucket on a customer key; server identities (IAM users of the provider) with one half, the other
    half, both halves, or a key policy that denies them."""

    USERS = ("s3_only", "iam_only", "both", "encrypt_only", "denied_by_key")

    def __init__(self, aws: LocalAWS):
        self.aws = aws
        iam = aws.client("iam", PROVIDER)
        self.keys, self.arns = {}, {}
        for name in self.USERS:
            iam.create_user(UserName=name)
            k = iam.create_access_key(UserName=name)["AccessKey"]
            self.keys[name] = {"aws_access_key_id": k["AccessKeyId"], "aws_secret_access_key": k["SecretAccessKey"]}
            self.arns[name] = f"arn:aws:iam::{PROVIDER}:user/{name}"
        kms = aws.client("kms", CUSTOMER)
        self.key = kms.create_key(Description="customer key")["KeyMetadata"]["Arn"]
        self.other_key = kms.create_key(Description="a key nobody of the provider may use")["KeyMetadata"]["Arn"]
        key_policy = doc(
            {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{CUSTOMER}:root"}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "server", "Effect": "Allow", "Principal": {"AWS": [self.arns[n] for n in ("s3_only", "both", "encrypt_only", "denied_by_key")]},
             "Action": KMS_USE, "Resource": "*"},
            {"Sid": "deny", "Effect": "Deny", "Principal": {"AWS": self.arns["denied_by_key"]}, "Action": "kms:Decrypt", "Resource": "*"})
        kms.put_key_policy(KeyId=self.key, PolicyName="default", Policy=key_policy)
        s3_all = {"Effect": "Allow", "Action": "s3:*", "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]}
        for name in self.USERS:
            statements = [s3_all]
            if name in ("iam_only", "both", "denied_by_key"):
                statements.append({"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": self.key})
            if name == "encrypt_only":
                statements.append({"Effect": "Allow", "Action": ["kms:GenerateDataKey"], "Resource": self.key})
            iam.put_user_policy(UserName=name, PolicyName="server", PolicyDocument=doc(*statements))
        s3 = aws.client("s3", PROVIDER)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": self.key}, "BucketKeyEnabled": True}]})
        s3.put_object(Bucket=BUCKET, Key="data/on-key", Body=b"file on the customer key")
        s3.put_object(Bucket=BUCKET, Key="data/sse-s3", Body=b"file on SSE-S3", ServerSideEncryption="AES256")
        set_enforcement(aws, "0")

    def s3(self, name: str) -> Any:
        return boto3.client("s3", region_name=REGION, endpoint_url=self.aws.endpoint_url,
                            config=Config(retries={"total_max_attempts": 1}), **self.keys[name])


@pytest.fixture(scope="module", params=["extended", "plain"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    directory = tmp_path_factory.mktemp(f"s3-kms-access-{request.param}")
    with LocalAWS.start(extended=request.param == "extended", log_path=directory / "server.log") as aws:
        yield World(aws)


def gap_on_plain(request: pytest.FixtureRequest) -> None:
    """On plain moto the denial does not happen: pytest.raises fails with DID NOT RAISE."""
    if "plain" in request.node.callspec.id:
        request.applymarker(pytest.mark.xfail(strict=True, raises=pytest.fail.Exception, reason=f"plain moto: {GAP}"))


def access_denied(call, **kwargs) -> str:
    with pytest.raises(ClientError) as excinfo:
        call(**kwargs)
    error = excinfo.value.response["Error"]
    assert (error["Code"], excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]) == ("AccessDenied", 403)
    return error.get("Message", "")


def test_s3_permissions_alone_cannot_read_an_object_on_the_key(world: World, request: pytest.FixtureRequest) -> None:
    gap_on_plain(request)
    message = access_denied(world.s3("s3_only").get_object, Bucket=BUCKET, Key="data/on-key")
    assert message == (f"User: {world.arns['s3_only']} is not authorized to perform: kms:Decrypt on resource: {world.key} "
                       "because no identity-based policy allows it")


def test_s3_permissions_alone_cannot_write_under_the_bucket_default(world: World, request: pytest.FixtureRequest) -> None:
    gap_on_plain(request)
    message = access_denied(world.s3("s3_only").put_object, Bucket=BUCKET, Key="new/upload", Body=b"x")
    assert "kms:GenerateDataKey" in message and world.key in message


def test_the_iam_half_alone_is_not_enough_from_another_account(world: World, request: pytest.FixtureRequest) -> None:
    gap_on_plain(request)
    message = access_denied(world.s3("iam_only").get_object, Bucket=BUCKET, Key="data/on-key")
    assert message.endswith("because the key policy does not allow it")


def test_an_explicit_deny_in_the_key_policy_wins(world: World, request: pytest.FixtureRequest) -> None:
    gap_on_plain(request)
    message = access_denied(world.s3("denied_by_key").get_object, Bucket=BUCKET, Key="data/on-key")
    assert message.endswith("because an explicit deny in the key policy")


def test_a_multipart_upload_needs_decrypt_too(world: World, request: pytest.FixtureRequest) -> None:
    gap_on_plain(request)
    s3 = world.s3("encrypt_only")
    s3.put_object(Bucket=BUCKET, Key="new/single", Body=b"x")  # GenerateDataKey is enough for one PutObject
    message = access_denied(s3.create_multipart_upload, Bucket=BUCKET, Key="new/multipart")
    assert "kms:Decrypt" in message


def test_a_copy_needs_decrypt_on_the_source_key(world: World, request: pytest.FixtureRequest) -> None:
    gap_on_plain(request)
    message = access_denied(world.s3("encrypt_only").copy_object, Bucket=BUCKET, Key="moved/file",
                            CopySource={"Bucket": BUCKET, "Key": "data/on-key"})
    assert "kms:Decrypt" in message


@pytest.mark.parametrize("name", ["s3_only", "both"])
def test_sse_s3_objects_need_no_kms_permission(world: World, name: str) -> None:
    s3 = world.s3(name)
    assert s3.get_object(Bucket=BUCKET, Key="data/sse-s3")["Body"].read() == b"file on SSE-S3"
    s3.put_object(Bucket=BUCKET, Key=f"aes/{name}", Body=b"x", ServerSideEncryption="AES256")


def test_both_halves_read_write_copy_and_multipart(world: World) -> None:
    s3 = world.s3("both")
    assert s3.get_object(Bucket=BUCKET, Key="data/on-key")["Body"].read() == b"file on the customer key"
    s3.put_object(Bucket=BUCKET, Key="both/upload", Body=b"new file")
    s3.copy_object(Bucket=BUCKET, Key="both/moved", CopySource={"Bucket": BUCKET, "Key": "both/upload"})
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="both/large")["UploadId"]
    part = s3.upload_part(Bucket=BUCKET, Key="both/large", UploadId=upload, PartNumber=1, Body=b"p" * 10)
    s3.complete_multipart_upload(Bucket=BUCKET, Key="both/large", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert s3.get_object(Bucket=BUCKET, Key="both/moved")["Body"].read() == b"new file"
