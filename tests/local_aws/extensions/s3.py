"""S3: SSE-KMS keys are checked and stored as ARNs; in-place copies keep the bucket default; copy preconditions.

Plain moto stores whatever key string it is sent, never asks KMS, downgrades an in-place copy to AES256 and
ignores x-amz-copy-source-if-match. AWS references:
- https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html (key must exist, be enabled
  and be in the bucket's Region; a key id or alias resolves in the requester's account)
- https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html (x-amz-copy-source-if-match → 412)
- https://docs.aws.amazon.com/AmazonS3/latest/userguide/specifying-kms-encryption.html (responses carry the key ARN)
"""
from __future__ import annotations

import inspect
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from moto.s3.exceptions import PreconditionFailed, S3ClientError
from moto.s3.models import FakeBucket, FakeKey, S3Backend
from moto.s3.responses import S3Response

from ._patching import wrap
from .kms_keys import find_key, key_problem, parse_kms_arn, unusable_reason

KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
KMS_KEY_HEADER = "x-amz-server-side-encryption-aws-kms-key-id"
AWS_MANAGED_S3_KEY = "alias/aws/s3"
HTTP_OK = 200


def kms_error(code: str, message: str) -> S3ClientError:
    """S3 relays KMS failures as HTTP 400 with the KMS error code prefixed: KMS.NotFoundException,
    KMS.DisabledException, KMS.KMSInvalidStateException."""
    return S3ClientError(f"KMS.{code}", message)


def key_arn_for_write(account_id: str, region: str, ref: str | None) -> str:
    """The ARN S3 stores for an SSE-KMS write, or the S3 error AWS returns. No key means aws/s3."""
    ref = ref or AWS_MANAGED_S3_KEY
    if problem := key_problem(account_id, region, ref):
        raise kms_error(*problem)
    return find_key(account_id, region, ref).arn


def check_readable(account_id: str, region: str, stored_ref: str | None) -> None:
    """Reading (or copying from) an SSE-KMS object needs kms:Decrypt, so an unusable key fails the read."""
    key = find_key(account_id, region, stored_ref) if stored_ref else None
    if key is not None and (reason := unusable_reason(key)):
        raise kms_error(*reason)


def _bucket_default(bucket: FakeBucket) -> dict[str, Any]:
    return (bucket.encryption or {}).get("Rule", {}).get("ApplyServerSideEncryptionByDefault", {})


def _effective_sse(bucket: FakeBucket, encryption: str | None, kms_key_id: str | None) -> tuple[str | None, str | None]:
    """(algorithm, key) the object gets: the request's, else the bucket default's (as moto's put_object does)."""
    default = _bucket_default(bucket)
    return encryption or default.get("SSEAlgorithm"), kms_key_id or default.get("KMSMasterKeyID")


def _copy_source(response: S3Response) -> FakeKey | None:
    """The source object of a CopyObject/UploadPartCopy request, parsed as moto does."""
    copy_source = response.headers.get("x-amz-copy-source")
    if isinstance(copy_source, bytes):
        copy_source = copy_source.decode("utf-8")
    parsed = urlparse(copy_source)
    bucket, key = unquote(parsed.path).lstrip("/").split("/", 1)
    version_id = parse_qs(parsed.query).get("versionId", [None])[0]
    return response.backend.get_object(bucket, key, version_id=version_id)


def _check_copy_preconditions(response: S3Response) -> None:
    source = _copy_source(response)
    if_match = response.headers.get("x-amz-copy-source-if-match")
    if source is not None and if_match and if_match.strip('"') != source.etag.strip('"'):
        raise PreconditionFailed("x-amz-copy-source-If-Match")
    if_none_match = response.headers.get("x-amz-copy-source-if-none-match")
    if source is not None and if_none_match and if_none_match.strip('"') == source.etag.strip('"'):
        raise PreconditionFailed("x-amz-copy-source-If-None-Match")


def apply() -> None:
    put_object_signature = inspect.signature(S3Backend.put_object)

    @wrap(S3Backend, "put_object")
    def put_object(original, self, *args, **kwargs):
        # Every object write (PutObject, CopyObject, CompleteMultipartUpload) lands here.
        call = put_object_signature.bind(self, *args, **kwargs)
        call.apply_defaults()
        arguments = call.arguments
        bucket = self.get_bucket(arguments["bucket_name"])
        encryption, kms_key_id = _effective_sse(bucket, arguments["encryption"], arguments["kms_key_id"])
        if encryption in KMS_ALGORITHMS:
            arguments["encryption"] = encryption
            arguments["kms_key_id"] = key_arn_for_write(self.account_id, bucket.region_name, kms_key_id)
        return original(*call.args, **call.kwargs)

    copy_object_signature = inspect.signature(S3Backend.copy_object)

    @wrap(S3Backend, "copy_object")
    def copy_object(original, self, *args, **kwargs):
        call = copy_object_signature.bind(self, *args, **kwargs)
        call.apply_defaults()
        arguments = call.arguments
        source: FakeKey = arguments["src_key"]
        if source.encryption in KMS_ALGORITHMS:
            check_readable(self.account_id, self.get_bucket(source.bucket_name).region_name, source.kms_key_id)
        # A copy with no SSE parameters is encrypted with the destination bucket's default, also in place
        # (moto turns an in-place copy of an SSE-KMS object into AES256).
        if not arguments["encryption"]:
            default = _bucket_default(self.get_bucket(arguments["dest_bucket_name"]))
            if default:
                arguments["encryption"] = default.get("SSEAlgorithm")
                arguments["kms_key_id"] = arguments["kms_key_id"] or default.get("KMSMasterKeyID")
        return original(*call.args, **call.kwargs)

    multipart_signature = inspect.signature(S3Backend.create_multipart_upload)

    @wrap(S3Backend, "create_multipart_upload")
    def create_multipart_upload(original, self, *args, **kwargs):
        # The key is checked when the upload starts, and the upload keeps the ARN.
        call = multipart_signature.bind(self, *args, **kwargs)
        arguments = call.arguments
        bucket = self.get_bucket(arguments["bucket_name"])
        encryption, key_ref = _effective_sse(bucket, arguments.get("sse_encryption"), arguments.get("kms_key_id"))
        if encryption in KMS_ALGORITHMS:
            arguments["sse_encryption"] = encryption
            arguments["kms_key_id"] = key_arn_for_write(self.account_id, bucket.region_name, key_ref)
        return original(*call.args, **call.kwargs)

    @wrap(S3Response, "_key_response_post")
    def key_response_post(original, self, request, *args, **kwargs):
        # CreateMultipartUpload echoes the key as sent; AWS answers with the key ARN.
        result = original(self, request, *args, **kwargs)
        status, headers = result[0], result[1]
        sent = request.headers.get(KMS_KEY_HEADER)
        if status == HTTP_OK and "uploads" in self.querystring and sent and KMS_KEY_HEADER in headers and not parse_kms_arn(sent):
            headers[KMS_KEY_HEADER] = key_arn_for_write(self.current_account, self.backend.get_bucket(self.bucket_name).region_name, sent)
        return result

    @wrap(S3Response, "copy_object")
    def copy_object_response(original, self):
        _check_copy_preconditions(self)
        return original(self)

    @wrap(S3Response, "upload_part_copy")
    def upload_part_copy_response(original, self):
        _check_copy_preconditions(self)
        return original(self)

    @wrap(S3Response, "get_object")
    def get_object_response(original, self):
        key = self._get_key()[0]  # pylint: disable=protected-access
        if key.encryption in KMS_ALGORITHMS:
            check_readable(self.current_account, self.backend.get_bucket(self.bucket_name).region_name, key.kms_key_id)
        return original(self)
