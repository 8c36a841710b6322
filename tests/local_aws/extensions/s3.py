"""S3: SSE-KMS keys are checked and stored as ARNs; in-place copies keep the bucket default; copy preconditions.

Plain moto stores whatever key string it is sent, never asks KMS, downgrades an in-place copy to AES256 and
ignores x-amz-copy-source-if-match. AWS references:
- https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html (key must exist, be enabled
  and be in the bucket's Region; a key id or alias resolves in the requester's account)
- https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html (x-amz-copy-source-if-match → 412)
- https://docs.aws.amazon.com/AmazonS3/latest/userguide/specifying-kms-encryption.html (responses carry the key ARN)
- https://docs.aws.amazon.com/AmazonS3/latest/userguide/ServerSideEncryptionCustomerKeys.html (an SSE-C object can
  only be read or copied with its key: plain moto forgets SSE-C and copies or HEADs such objects freely)
- https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html (503 SlowDown when the request rate is too
  high): a test injects it with the bucket tag ``local-aws:throttle`` = ``<N>[#<anything>]``, which makes the next
  N object requests (CopyObject, UploadPartCopy, HeadObject) of that bucket answer 503 SlowDown; a new tag value
  arms it again.
- https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html (bucket policy conditions on
  ``s3:x-amz-server-side-encryption-aws-kms-key-id``): plain moto ignores a statement's Condition, so a Deny meant
  for "uploads under another key" refuses every upload; here the String/Arn and Null operators on that key are
  evaluated against the request's header, and so are those on ``s3:x-amz-server-side-encryption`` (statements with
  other condition keys keep moto's behaviour).
- https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html: a CopyObject carrying object lock headers
  (retention, legal hold) has no body, so no Content-MD5 is required; plain moto refuses it with
  MissingUploadObjectWithObjectLockHeaders as if it were a PutObject.
"""
from __future__ import annotations

import inspect
import json
import threading
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from moto.s3.exceptions import PreconditionFailed, S3ClientError
from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.s3.models import FakeBucket, FakeKey, S3Backend, get_canned_acl
from moto.s3.responses import S3Response
from werkzeug.datastructures import Headers

from ._patching import wrap
from .kms_keys import find_key, key_problem, parse_kms_arn, unusable_reason

KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
KMS_KEY_HEADER = "x-amz-server-side-encryption-aws-kms-key-id"
AWS_MANAGED_S3_KEY = "alias/aws/s3"
HTTP_OK = 200
THROTTLE_TAG = "local-aws:throttle"
SSE_C_HEADER = "x-amz-server-side-encryption-customer-algorithm"
COPY_SOURCE_SSE_C_HEADER = "x-amz-copy-source-server-side-encryption-customer-algorithm"
SLOW_DOWN = (503, {"content-type": "application/xml"},
             '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
             '<Message>Please reduce your request rate.</Message></Error>')
SSE_C_REQUIRED = ("The object was stored using a form of Server Side Encryption. "
                  "The correct parameters must be provided to retrieve the object.")

# bucket -> [tag value that armed it, requests left to refuse]
_THROTTLES: dict[str, list] = {}
_THROTTLE_LOCK = threading.Lock()


def _throttled(backend: S3Backend, bucket_name: str) -> bool:
    """True when this request must be answered 503 SlowDown (see the module docstring)."""
    try:
        tags = backend.get_bucket_tagging(bucket_name).get("Tags", [])
    except Exception:  # pylint: disable=broad-except  # no bucket, no tags: nothing injected
        return False
    value = next((t["Value"] for t in tags if t["Key"] == THROTTLE_TAG), None)
    if not value:
        return False
    with _THROTTLE_LOCK:
        state = _THROTTLES.get(bucket_name)
        if state is None or state[0] != value:
            state = _THROTTLES[bucket_name] = [value, int(value.split("#", 1)[0])]
        if state[1] <= 0:
            return False
        state[1] -= 1
        return True


_REQUEST = threading.local()
KMS_CONDITION_KEY = "s3:x-amz-server-side-encryption-aws-kms-key-id"


def _condition_holds(operator: str, value: str | None, expected) -> bool | None:
    """One condition on the KMS key header; None when the operator is not one we evaluate."""
    expected = [expected] if isinstance(expected, str) else list(expected)
    if operator == "Null":
        return (value is None) == (str(expected[0]).lower() == "true")
    if_exists = operator.endswith("IfExists")
    base = operator[:-len("IfExists")] if if_exists else operator
    if base not in ("StringEquals", "StringNotEquals", "ArnEquals", "ArnNotEquals", "ArnLike", "ArnNotLike"):
        return None
    if value is None:
        return if_exists or "Not" in base  # a missing key: negated operators match, IfExists matches
    matched = value in expected
    return not matched if "Not" in base else matched


# Condition keys evaluated against the request header of the same name (amazon-s3-policy-keys.html).
HEADER_CONDITION_KEYS = {KMS_CONDITION_KEY: KMS_KEY_HEADER, "s3:x-amz-server-side-encryption": "x-amz-server-side-encryption"}


def _statement_applies(statement: dict, headers) -> bool:
    for operator, keys in (statement.get("Condition") or {}).items():
        for name, expected in keys.items():
            header = HEADER_CONDITION_KEYS.get(name.lower())
            if header is None:
                continue
            holds = _condition_holds(operator, headers.get(header), expected)
            if holds is False:
                return False
    return True


def _sse_c_error() -> tuple[int, dict, str]:
    return (400, {"content-type": "application/xml"},
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidRequest</Code><Message>{SSE_C_REQUIRED}</Message></Error>')


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
    """(algorithm, key) the object gets: the request's, else the bucket default's. A request that names aws:kms
    without a key id gets the AWS managed key aws/s3, not the bucket default key (moto takes the default's):
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/specifying-kms-encryption.html, PutObject SSEKMSKeyId."""
    if encryption:
        return encryption, kms_key_id
    default = _bucket_default(bucket)
    return default.get("SSEAlgorithm"), kms_key_id or default.get("KMSMasterKeyID")


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
    @wrap(S3Backend, "put_object_acl")
    def put_object_acl(original, self, bucket_name, key_name, acl, *args, **kwargs):
        # Every S3 object has an ACL (the owner's FULL_CONTROL unless told otherwise); moto gives an object completed
        # from a multipart upload created without ACL headers none, and GetObjectAcl on it answers 500.
        return original(self, bucket_name, key_name, acl if acl is not None else get_canned_acl("private"), *args, **kwargs)

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

    @wrap(S3Response, "_key_response_put")
    def key_response_put(original, self, query, key_name):
        if "x-amz-copy-source" in self.headers and "uploadId" not in query and not self.headers.get("Content-Md5"):
            headers = Headers(self.headers)  # a copy: its body is the source's, so the MD5 check does not apply
            headers["Content-Md5"] = "copy"
            self.headers = headers
        return original(self, query, key_name)

    @wrap(S3Response, "_key_response")
    def key_response(original, self, request, full_url):
        _REQUEST.headers = request.headers
        try:
            return original(self, request, full_url)
        finally:
            _REQUEST.headers = None

    @wrap(FakeBucket, "get_permission")
    def get_permission(original, self, action, resource):
        headers = getattr(_REQUEST, "headers", None)
        if self.policy is None or headers is None:
            return original(self, action, resource)
        document = json.loads(self.policy)
        statements = document.get("Statement", [])
        statements = [statements] if isinstance(statements, dict) else statements
        kept = [st for st in statements if _statement_applies(st, headers)]
        if len(kept) == len(statements):
            return original(self, action, resource)
        if not kept:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps({**document, "Statement": kept})).is_action_permitted(action, resource)

    @wrap(S3Response, "copy_object")
    def copy_object_response(original, self):
        if _throttled(self.backend, self.bucket_name):
            return SLOW_DOWN
        source = _copy_source(self)
        if source is not None and getattr(source, "byok_sse_c", None) and not self.headers.get(COPY_SOURCE_SSE_C_HEADER):
            return _sse_c_error()
        _check_copy_preconditions(self)
        return original(self)

    @wrap(S3Response, "upload_part_copy")
    def upload_part_copy_response(original, self):
        if _throttled(self.backend, self.bucket_name):
            return SLOW_DOWN
        _check_copy_preconditions(self)
        return original(self)

    @wrap(S3Response, "put_object")
    def put_object_response(original, self):
        # Plain moto drops the SSE-C headers; remember that the object needs its customer key to be read.
        result = original(self)
        algorithm = self.headers.get(SSE_C_HEADER)
        if algorithm and result[0] == HTTP_OK:
            key = self.backend.get_object(self.bucket_name, self.parse_key_name())
            if key is not None:
                key.byok_sse_c = algorithm
        return result

    @wrap(S3Response, "head_object")
    def head_object_response(original, self, bucket_name, query, key_name, headers):
        if _throttled(self.backend, bucket_name):
            return 503, {}, ""
        result = original(self, bucket_name, query, key_name, headers)
        if result[0] == HTTP_OK and not self.headers.get(SSE_C_HEADER):
            version_id = query.get("versionId", [None])[0]
            key = self.backend.get_object(bucket_name, key_name, version_id=version_id)
            if key is not None and getattr(key, "byok_sse_c", None):
                return 400, {}, ""  # HEAD answers carry no body: botocore reports 400 Bad Request
        return result

    @wrap(S3Response, "get_object")
    def get_object_response(original, self):
        key = self._get_key()[0]  # pylint: disable=protected-access
        if key.encryption in KMS_ALGORITHMS:
            check_readable(self.current_account, self.backend.get_bucket(self.bucket_name).region_name, key.kms_key_id)
        return original(self)
