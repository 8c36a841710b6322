"""S3 UpdateObjectEncryption re-keys an object in place (tests/local_aws/extensions/s3_update_encryption.py).

AWS: https://docs.aws.amazon.com/AmazonS3/latest/API/API_UpdateObjectEncryption.html (botocore's model carries the
same text): no data movement, no new version; version id, storage class, creation and last-modified dates, ETag and
checksum are kept; unencrypted, SSE-C and DSSE-KMS objects are refused (InvalidRequest), as are keys of another
account than the bucket's and objects under object lock (AccessDenied). Plain moto has no such operation.
"""
from __future__ import annotations

import datetime
import json
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.local_aws.harness import LocalAWS

from .support import CUSTOMER, DID_NOT_RAISE, PROVIDER, REGION, against_both, error_of, new_key
from .test_iam_auth import set_enforcement

GAP = "plain moto has no UpdateObjectEncryption"


@pytest.fixture
def versioned(aws: Any, unique_name: Any) -> dict[str, Any]:
    s3, kms = aws.client("s3", PROVIDER), aws.client("kms", PROVIDER)
    bucket = unique_name("rekey")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return {"s3": s3, "kms": kms, "bucket": bucket, "old": new_key(kms)["Arn"], "new": new_key(kms)["Arn"]}


def rekey(world: dict[str, Any], key: str, version: str | None = None, arn: str | None = None, bucket_key: bool = True) -> None:
    extra = {"VersionId": version} if version else {}
    world["s3"].update_object_encryption(Bucket=world["bucket"], Key=key, ObjectEncryption={
        "SSEKMS": {"KMSKeyArn": arn or world["new"], "BucketKeyEnabled": bucket_key}}, **extra)


@against_both(GAP, raises=(AssertionError, ClientError))
def test_rekeys_one_version_in_place_keeping_every_attribute(aws, versioned):
    s3, bucket = versioned["s3"], versioned["bucket"]
    first = s3.put_object(Bucket=bucket, Key="doc", Body=b"first", ServerSideEncryption="aws:kms", SSEKMSKeyId=versioned["old"],
                          StorageClass="STANDARD_IA", Metadata={"owner": "a"}, Tagging="k=v", ChecksumAlgorithm="SHA256")["VersionId"]
    s3.put_object(Bucket=bucket, Key="doc", Body=b"second", ServerSideEncryption="AES256")
    before = s3.head_object(Bucket=bucket, Key="doc", VersionId=first, ChecksumMode="ENABLED")
    versions_before = s3.list_object_versions(Bucket=bucket)["Versions"]
    rekey(versioned, "doc", first)
    after = s3.head_object(Bucket=bucket, Key="doc", VersionId=first, ChecksumMode="ENABLED")
    assert (after["ServerSideEncryption"], after["SSEKMSKeyId"], after.get("BucketKeyEnabled")) == ("aws:kms", versioned["new"], True)
    for field in ("VersionId", "ETag", "LastModified", "StorageClass", "Metadata", "ContentLength", "ChecksumSHA256"):
        assert after.get(field) == before.get(field), field
    assert s3.get_object_tagging(Bucket=bucket, Key="doc", VersionId=first)["TagSet"] == [{"Key": "k", "Value": "v"}]
    assert s3.list_object_versions(Bucket=bucket)["Versions"] == versions_before  # no copy, no new version
    assert s3.head_object(Bucket=bucket, Key="doc")["ServerSideEncryption"] == "AES256"  # the current version is untouched


@against_both(GAP, raises=(AssertionError, ClientError))
def test_rekeys_sse_s3_objects_to_sse_kms(aws, versioned):
    s3, bucket = versioned["s3"], versioned["bucket"]
    s3.put_object(Bucket=bucket, Key="s3-managed", Body=b"x", ServerSideEncryption="AES256", StorageClass="GLACIER")
    rekey(versioned, "s3-managed", bucket_key=False)
    head = s3.head_object(Bucket=bucket, Key="s3-managed")
    assert (head.get("ServerSideEncryption"), head.get("SSEKMSKeyId"), head.get("BucketKeyEnabled", False)) == ("aws:kms", versioned["new"], False)
    assert head["StorageClass"] == "GLACIER" and "Restore" not in head  # an archived object is not restored


@against_both(GAP, raises=DID_NOT_RAISE)
@pytest.mark.parametrize("kind", ["unencrypted", "sse-c"])
def test_refuses_objects_it_does_not_support(aws, versioned, kind):
    s3, bucket = versioned["s3"], versioned["bucket"]
    if kind == "unencrypted":
        s3.put_object(Bucket=bucket, Key="obj", Body=b"x")
        message = "doesn't supported unencrypted source objects"
    else:
        s3.put_object(Bucket=bucket, Key="obj", Body=b"x", SSECustomerAlgorithm="AES256", SSECustomerKey="k" * 32)
        message = "DSSE-KMS or SSE-C"
    with pytest.raises(ClientError) as excinfo:
        rekey(versioned, "obj")
    code, status, text = error_of(excinfo)
    assert (code, status) == ("InvalidRequest", 400) and message in text


@against_both(GAP, raises=DID_NOT_RAISE)
def test_refuses_a_key_of_another_account(aws, versioned):
    versioned["s3"].put_object(Bucket=versioned["bucket"], Key="obj", Body=b"x", ServerSideEncryption="AES256")
    foreign = new_key(aws.client("kms", CUSTOMER))["Arn"]
    with pytest.raises(ClientError) as excinfo:
        rekey(versioned, "obj", arn=foreign)
    code, status, text = error_of(excinfo)
    assert (code, status) == ("AccessDenied", 403) and "owned by the same account as the bucket" in text


@against_both(GAP, raises=DID_NOT_RAISE)
def test_refuses_a_key_id_instead_of_an_arn(aws, versioned):
    versioned["s3"].put_object(Bucket=versioned["bucket"], Key="obj", Body=b"x", ServerSideEncryption="AES256")
    with pytest.raises(ClientError) as excinfo:
        rekey(versioned, "obj", arn="alias/some-customer-key-alias")
    code, status, text = error_of(excinfo)
    assert (code, status) == ("InvalidRequest", 400) and "valid Amazon Web Services KMS key Amazon Resource Name" in text


@against_both(GAP, raises=DID_NOT_RAISE)
@pytest.mark.parametrize("lock", ["COMPLIANCE", "GOVERNANCE", "legal hold"])
def test_refuses_objects_under_object_lock(aws, unique_name, lock):
    s3, kms = aws.client("s3", PROVIDER), aws.client("kms", PROVIDER)
    bucket = unique_name("locked")
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    extra = {"ObjectLockLegalHoldStatus": "ON"} if lock == "legal hold" else {"ObjectLockMode": lock, "ObjectLockRetainUntilDate": until}
    s3.put_object(Bucket=bucket, Key="obj", Body=b"x", ServerSideEncryption="AES256", ChecksumAlgorithm="SHA256", **extra)
    with pytest.raises(ClientError) as excinfo:
        s3.update_object_encryption(Bucket=bucket, Key="obj", ObjectEncryption={"SSEKMS": {"KMSKeyArn": new_key(kms)["Arn"]}})
    code, status, text = error_of(excinfo)
    assert (code, status) == ("AccessDenied", 403) and "protected by S3 Object Lock" in text


@against_both(GAP, raises=DID_NOT_RAISE)
def test_refuses_a_key_that_does_not_exist(aws, versioned):
    versioned["s3"].put_object(Bucket=versioned["bucket"], Key="obj", Body=b"x", ServerSideEncryption="AES256")
    missing = versioned["new"].rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    with pytest.raises(ClientError) as excinfo:
        rekey(versioned, "obj", arn=missing)
    assert error_of(excinfo)[:2] == ("KMS.NotFoundException", 400)


@pytest.fixture
def private_aws(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    """IAM enforcement is server-wide: the extended run gets a server of its own."""
    if request.node.callspec.params["aws"] == "plain":
        yield request.getfixturevalue("plain_moto")
        return
    with LocalAWS.start(extended=True, log_path=tmp_path / "local-aws.log") as server:
        yield server


@against_both(GAP, raises=(AssertionError, ClientError))
def test_needs_s3_update_object_encryption_and_the_documented_kms_permissions(aws, private_aws, unique_name):
    """Permissions (API reference): s3:UpdateObjectEncryption, kms:Encrypt, kms:Decrypt, kms:GenerateDataKey,
    kms:ReEncrypt*. Each identity below lacks one of them, except `all`."""
    aws = private_aws
    iam, s3, kms = aws.client("iam", PROVIDER), aws.client("s3", PROVIDER), aws.client("kms", PROVIDER)
    bucket = unique_name("perm")
    s3.create_bucket(Bucket=bucket)
    old, new = new_key(kms)["Arn"], new_key(kms)["Arn"]
    s3.put_object(Bucket=bucket, Key="obj", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=old)
    kms_all = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncrypt*"]
    grants = {"all": (["s3:GetObject", "s3:UpdateObjectEncryption"], kms_all),
              "no-s3-action": (["s3:GetObject", "s3:PutObject"], kms_all),
              "no-reencrypt": (["s3:GetObject", "s3:UpdateObjectEncryption"], kms_all[:3]),
              "no-encrypt": (["s3:GetObject", "s3:UpdateObjectEncryption"], kms_all[1:])}
    clients = {}
    for name, (s3_actions, kms_actions) in grants.items():
        user = unique_name(name)
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": s3_actions, "Resource": f"arn:aws:s3:::{bucket}/*"},
            {"Effect": "Allow", "Action": kms_actions, "Resource": [old, new]}]}))
        access = iam.create_access_key(UserName=user)["AccessKey"]
        clients[name] = boto3.client("s3", region_name=REGION, endpoint_url=aws.endpoint_url, config=Config(retries={"total_max_attempts": 1}),
                                     aws_access_key_id=access["AccessKeyId"], aws_secret_access_key=access["SecretAccessKey"])
    set_enforcement(aws, "0")
    outcomes = {}
    try:
        for name, client in clients.items():
            try:
                client.update_object_encryption(Bucket=bucket, Key="obj", ObjectEncryption={"SSEKMS": {"KMSKeyArn": new}})
                outcomes[name] = "ok"
            except ClientError as exc:
                outcomes[name] = exc.response["Error"]["Code"]
    finally:
        set_enforcement(aws, "inf")
    assert outcomes == {"all": "ok", "no-s3-action": "AccessDenied", "no-reencrypt": "AccessDenied", "no-encrypt": "AccessDenied"}


@against_both(GAP, raises=DID_NOT_RAISE)
def test_a_delete_marker_is_not_an_object_to_rekey(aws, versioned):
    s3, bucket = versioned["s3"], versioned["bucket"]
    s3.put_object(Bucket=bucket, Key="gone", Body=b"x", ServerSideEncryption="AES256")
    marker = s3.delete_object(Bucket=bucket, Key="gone")["VersionId"]
    with pytest.raises(ClientError) as excinfo:
        rekey(versioned, "gone", marker)
    assert error_of(excinfo)[:2] == ("MethodNotAllowed", 405)
    with pytest.raises(ClientError) as excinfo:
        rekey(versioned, "gone")  # no current version
    assert error_of(excinfo)[:2] == ("NoSuchKey", 404)
