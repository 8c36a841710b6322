"""S3: what an object write makes of its ETag and its object lock retention, as AWS documents them.

- ETag of an SSE-KMS object. Plain moto gives every object the MD5 of its body. AWS:
  https://docs.aws.amazon.com/AmazonS3/latest/API/API_Object.html (ETag: "Objects created by the PUT Object, POST
  Object, or Copy operation ... and are encrypted by SSE-C or SSE-KMS, have ETags that are not an MD5 digest of
  their object data"; objects from a multipart upload have an ETag that is not an MD5 digest either, which moto
  already gives as "<md5 of the parts' MD5s>-<parts>"). Two writes of the same body get different ETags here, so
  nothing can pair an object with its copy by ETag (on AWS the ETag of an SSE-KMS object is opaque).
- Retain-until dates in the past. Plain moto stores any date. AWS:
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html#object-lock-retention-periods (a retention
  period protects an object version until its retain-until date) and S3 refuses a write (PutObject, CopyObject,
  CreateMultipartUpload) whose ``x-amz-object-lock-retain-until-date`` is not in the future with 400
  ``InvalidArgument`` "The retain until date must be in the future!" (S3's answer as recorded in
  https://github.com/versity/versitygw/issues/1734 and https://github.com/storj/edge/issues/510, whose S3-compatible
  servers were changed to give the same answer).

- Checksums of SSE-KMS objects. Plain moto answers HeadObject with ``x-amz-checksum-mode: ENABLED`` whatever the
  object's key. AWS (HeadObject, ChecksumMode): "If you enable checksum mode and the object is uploaded with a checksum
  and encrypted with an Key Management Service (KMS) key, you must have permission to use the kms:Decrypt action to
  retrieve the checksum" (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html): here such a HeadObject
  fails when the key is unusable (disabled, pending deletion), as reading the object does; without checksum mode it
  needs no Decrypt and still answers.

The third behaviour of the kind, ``aws:kms`` with no key id meaning the AWS managed key ``aws/s3`` rather than the
bucket default key, is in ``s3._effective_sse`` where the key of every write is decided.
"""
from __future__ import annotations

import datetime
import uuid
from xml.sax.saxutils import escape

from moto.s3.exceptions import S3ClientError
from moto.s3.models import S3Backend
from moto.s3.responses import S3Response

from ._patching import wrap
from .s3 import check_readable

KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
RETAIN_UNTIL_HEADER = "x-amz-object-lock-retain-until-date"
PAST_RETAIN_UNTIL = "The retain until date must be in the future!"


def _invalid_argument(message: str, name: str, value: str) -> tuple[int, dict, str]:
    return (400, {"content-type": "application/xml"},
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidArgument</Code>'
            f"<Message>{escape(message)}</Message><ArgumentName>{escape(name)}</ArgumentName>"
            f"<ArgumentValue>{escape(value)}</ArgumentValue></Error>")


def _not_in_future(value: str) -> bool:
    """True when a retain-until header names a moment that is not after now (an unparsable one is moto's to refuse)."""
    try:
        until = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return False
    if until.tzinfo is None:
        until = until.replace(tzinfo=datetime.timezone.utc)
    return until <= datetime.datetime.now(datetime.timezone.utc)


def apply() -> None:
    @wrap(S3Backend, "put_object")
    def put_object(original, self, *args, **kwargs):
        # Every object write lands here (PutObject, CopyObject, CompleteMultipartUpload); a multipart ETag ("-N")
        # is already not an MD5, every other SSE-KMS object gets an opaque one.
        key = original(self, *args, **kwargs)
        if key.encryption in KMS_ALGORITHMS and not (key._etag and "-" in key._etag):  # pylint: disable=protected-access
            key._etag = uuid.uuid4().hex  # pylint: disable=protected-access
        return key

    @wrap(S3Response, "_key_response")
    def key_response(original, self, request, full_url):
        value = request.headers.get(RETAIN_UNTIL_HEADER)
        query = full_url.split("?", 1)[1] if "?" in full_url else ""
        writes = request.method == "PUT" and "partNumber" not in query or request.method == "POST" and "uploads" in query
        if value and writes and _not_in_future(value):
            return _invalid_argument(PAST_RETAIN_UNTIL, RETAIN_UNTIL_HEADER, value)
        return original(self, request, full_url)

    @wrap(S3Response, "head_object")
    def head_object_response(original, self, bucket_name, query, key_name, headers):
        result = original(self, bucket_name, query, key_name, headers)
        if result[0] == 200 and (self.headers.get("x-amz-checksum-mode") or "").upper() == "ENABLED":
            key = self.backend.get_object(bucket_name, key_name, version_id=query.get("versionId", [None])[0])
            if key is not None and key.encryption in KMS_ALGORITHMS and key.checksum_value:
                try:
                    check_readable(self.current_account, self.backend.get_bucket(bucket_name).region_name, key.kms_key_id)
                except S3ClientError:
                    return 400, {}, ""  # HEAD answers carry no body: botocore reports 400 Bad Request
        return result
