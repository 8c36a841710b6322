"""S3 UpdateObjectEncryption: change an object's SSE-KMS key in place, without a copy (plain moto lacks the operation).

AWS reference: https://docs.aws.amazon.com/AmazonS3/latest/API/API_UpdateObjectEncryption.html (the same text is
botocore's service model, ``get_service_model('s3').operation_model('UpdateObjectEncryption').documentation``) and
https://docs.aws.amazon.com/AmazonS3/latest/userguide/update-sse-encryption.html. What is emulated:

- ``PUT /{Bucket}/{Key}?encryption[&versionId=]`` with body ``<ObjectEncryption><SSE-KMS><KMSKeyArn>…</KMSKeyArn>
  <BucketKeyEnabled>…</BucketKeyEnabled></SSE-KMS></ObjectEncryption>``; answers 200 with no body.
- The object (the version named, else the current one) gets the new key and Bucket Key flag (BucketKeyEnabled
  defaults to false) and nothing else changes: no new version, same version id, ETag, last-modified date, storage
  class (an archived object is not restored), checksum, metadata, tags, ACL and object lock settings.
- Refused with 400 InvalidRequest, as documented: an unencrypted object ("doesn't supported unencrypted source
  objects"), an SSE-C or DSSE-KMS object, a request without SSE-KMS, without a key ARN or with a key id/alias instead
  of a full ARN (Pattern ``arn:aws[-a-z0-9]*:kms:[-a-z0-9]*:[0-9]{12}:key/.+``).
- Refused with 403 AccessDenied: a key of another account than the bucket owner's ("must be owned by the same
  account as the bucket"; the Organizations exception is support-granted and not emulated); an object under object
  lock (a retention period in the future, governance or compliance, or a legal hold ON: "you must first remove the
  Object Lock status on the object").
- A delete marker named by version id: 405 MethodNotAllowed, S3's answer to object requests on one
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/DeleteMarker.html).
- The key must exist and be enabled (S3 relays KMS.NotFoundException / KMS.DisabledException as for writes), and
  with IAM enforcement on the caller needs the documented kms:Encrypt, kms:Decrypt, kms:GenerateDataKey and
  kms:ReEncrypt*: kms:Decrypt and kms:ReEncryptFrom on the current key (when SSE-KMS), kms:Encrypt,
  kms:GenerateDataKey and kms:ReEncryptTo on the new one (key policy + IAM, s3_kms_access); moto checks
  s3:UpdateObjectEncryption itself.

An object with no encryption recorded is "unencrypted" here (the local S3 reports no ServerSideEncryption for it);
on AWS every object written since January 2023 is at least SSE-S3, so there such objects are old ones only.
"""
from __future__ import annotations

import datetime
import re
import xml.etree.ElementTree as ET
from typing import Any

from moto.s3.exceptions import MissingKey, S3ClientError
from moto.s3.models import FakeKey, S3Backend
from moto.s3.responses import S3Response

from ._patching import add, wrap
from .kms_keys import key_problem
from .s3 import kms_error
from .s3_kms_access import require_kms

KMS_KEY_ARN = re.compile(r"^arn:aws[-a-z0-9]*:kms:[-a-z0-9]*:[0-9]{12}:key/.+$")
UNENCRYPTED = ("The UpdateObjectEncryption operation doesn't supported unencrypted source objects. "
               "Only source objects encrypted with SSE-S3 or SSE-KMS are supported.")
UNSUPPORTED_SOURCE = ("The UpdateObjectEncryption operation doesn't support source objects with the encryption type "
                      "DSSE-KMS or SSE-C. Only source objects encrypted with SSE-S3 or SSE-KMS are supported.")
NEED_NEW_TYPE = ("Requests that modify an object encryption configuration require a valid new encryption type. "
                 "Valid values are SSEKMS. Modify the request to specify SSE-KMS for the updated encryption type, and then try again.")
NEED_ARN = ("Requests that modify an object's encryption type to SSE-KMS require an Amazon Web Services KMS key Amazon "
            "Resource Name (ARN). Modify the request to specify a KMS key ARN, and then try again.")
INVALID_ARN = ("Requests that modify an object's encryption type to SSE-KMS require a valid Amazon Web Services KMS key "
               "Amazon Resource Name (ARN). Confirm that you have a correctly formatted KMS key ARN in your request, and then try again.")
INVALID_BUCKET_KEY = ("The BucketKeyEnabled value isn't valid. Valid values are true or false. "
                      "Modify the request to specify a valid value, and then try again.")
OTHER_ACCOUNT = ("The Amazon Web Services KMS key in the request must be owned by the same account as the bucket. "
                 "Modify the request to specify a KMS key from the same account, and then try again.")
OBJECT_LOCKED = ("The encryption type for the specified object can't be updated because that object is protected by "
                 "S3 Object Lock. If the object has a governance-mode retention period or a legal hold, you must first "
                 "remove the Object Lock status on the object before you issue your UpdateObjectEncryption request. You "
                 "can't use the UpdateObjectEncryption operation with objects that have an Object Lock compliance mode "
                 "retention period applied to them.")


class InvalidRequest(S3ClientError):
    code = 400

    def __init__(self, message: str):
        super().__init__("InvalidRequest", message)


class MethodNotAllowed(S3ClientError):
    code = 405

    def __init__(self):
        super().__init__("MethodNotAllowed", "The specified method is not allowed against this resource.")


class AccessDenied(S3ClientError):
    code = 403

    def __init__(self, message: str):
        super().__init__("AccessDenied", message)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_request(body: bytes) -> tuple[str, bool]:
    """(key ARN, bucket key enabled) from the request body, or the documented InvalidRequest."""
    try:
        root = ET.fromstring(body or b"<ObjectEncryption/>")
    except ET.ParseError as exc:
        raise S3ClientError("MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema") from exc
    sse_kms = next((child for child in root if _local(child.tag) == "SSE-KMS"), None)
    if sse_kms is None:
        raise InvalidRequest(NEED_NEW_TYPE)
    fields = {_local(child.tag): (child.text or "").strip() for child in sse_kms}
    arn = fields.get("KMSKeyArn")
    if not arn:
        raise InvalidRequest(NEED_ARN)
    if not KMS_KEY_ARN.match(arn):
        raise InvalidRequest(INVALID_ARN)
    bucket_key = fields.get("BucketKeyEnabled", "false").lower()
    if bucket_key not in ("true", "false"):
        raise InvalidRequest(INVALID_BUCKET_KEY)
    return arn, bucket_key == "true"


def _locked(key: FakeKey) -> bool:
    if (key.lock_legal_status or "").upper() == "ON":
        return True
    if key.lock_mode and key.lock_until:
        until = datetime.datetime.fromisoformat(str(key.lock_until).replace("Z", "+00:00"))
        if until.tzinfo is None:
            until = until.replace(tzinfo=datetime.timezone.utc)
        return until > datetime.datetime.now(datetime.timezone.utc)
    return False


def update_object_encryption(backend: S3Backend, bucket_name: str, key_name: str, version_id: str | None,
                             key_arn: str, bucket_key_enabled: bool) -> FakeKey:
    """Re-key one object version in place, as the API reference documents (see the module docstring)."""
    bucket = backend.get_bucket(bucket_name)
    key = backend.get_object(bucket_name, key_name, version_id=version_id)
    if version_id and (key is None or not isinstance(key, FakeKey)):
        versions = bucket.keys.getlist(key_name, []) if hasattr(bucket.keys, "getlist") else []
        if any(v.version_id == version_id and not isinstance(v, FakeKey) for v in versions):
            raise MethodNotAllowed()  # a delete marker, as S3 answers object requests on one
    if key is None or not isinstance(key, FakeKey):
        raise MissingKey(key=key_name)
    if getattr(key, "byok_sse_c", None) or key.encryption == "aws:kms:dsse":
        raise InvalidRequest(UNSUPPORTED_SOURCE)
    if key.encryption not in ("AES256", "aws:kms"):
        raise InvalidRequest(UNENCRYPTED)
    if key_arn.split(":")[4] != getattr(bucket, "account_id", backend.account_id):  # the bucket owner's account
        raise AccessDenied(OTHER_ACCOUNT)
    if _locked(key):
        raise AccessDenied(OBJECT_LOCKED)
    if problem := key_problem(backend.account_id, bucket.region_name, key_arn):
        raise kms_error(*problem)
    if key.encryption == "aws:kms":
        for action in ("kms:Decrypt", "kms:ReEncryptFrom"):
            require_kms(backend.account_id, bucket.region_name, key.kms_key_id, action)
    for action in ("kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptTo"):
        require_kms(backend.account_id, bucket.region_name, key_arn, action)
    key.encryption = "aws:kms"
    key.kms_key_id = key_arn
    key.bucket_key_enabled = bucket_key_enabled
    return key


def apply() -> None:
    def backend_update_object_encryption(self, bucket_name, key_name, version_id, key_arn, bucket_key_enabled):
        return update_object_encryption(self, bucket_name, key_name, version_id, key_arn, bucket_key_enabled)

    add(S3Backend, "update_object_encryption", backend_update_object_encryption)

    @wrap(S3Response, "_key_response_put")
    def key_response_put(original, self, query: dict[str, Any], key_name: str):
        if "encryption" not in query or "uploadId" in query:
            return original(self, query, key_name)
        self.data["Action"] = "UpdateObjectEncryption"
        self._authenticate_and_authorize_s3_action(bucket_name=self.bucket_name, key_name=key_name)  # pylint: disable=protected-access
        key_arn, bucket_key = parse_request(self.body)
        version_id = query.get("versionId", [None])[0]
        key = self.backend.update_object_encryption(self.bucket_name, key_name, version_id, key_arn, bucket_key)
        headers = {"x-amz-version-id": key.version_id} if version_id else {}
        return 200, headers, ""
