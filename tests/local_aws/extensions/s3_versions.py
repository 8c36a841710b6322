"""S3: CopyObject honours the destination conditions If-Match / If-None-Match (conditional writes); HeadObject
reads the "null" version of a bucket that never had versioning.

Plain moto checks If-Match on PutObject but ignores it on CopyObject, so a copy meant to land only while the key's
newest version is the one we expect would overwrite a concurrent writer. AWS reference:
- https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html (``If-Match``: "Copies the object if the
  entity tag (ETag) of the destination object matches the specified tag. If the ETag values do not match, the
  operation returns a 412 Precondition Failed error"; ``If-None-Match: *`` copies only when the key does not exist)
- https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html

Plain moto answers HeadObject with any ``versionId`` on a bucket that never had versioning with a bare 400, while its
GetObject and ListObjectVersions treat the object as the version ``null``. On AWS every object written while versioning
was never enabled has the version ID ``null`` and is addressed by it
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/versioning-workflows.html: "Objects that are stored in your bucket
before you set the versioning state have a version ID of null"; HeadObject's ``versionId`` selects that version), so a
reader walking ListObjectVersions can HEAD each entry whatever the bucket's state. Other version ids there stay 400.
"""
from __future__ import annotations

from moto.s3.exceptions import MissingKey, PreconditionFailed
from moto.s3.responses import S3Response

from ._patching import wrap


def _unquoted(etag: str) -> str:
    return etag.replace('"', "")


def apply() -> None:
    @wrap(S3Response, "head_object")
    def head_null_version(original, self, bucket_name, query, key_name, headers):
        if query.get("versionId") == ["null"]:
            bucket = self.backend.get_bucket(bucket_name)
            if getattr(bucket, "versioning_status", None) is None:  # never versioned: the object is the null version
                query = {k: v for k, v in query.items() if k != "versionId"}
        return original(self, bucket_name, query, key_name, headers)

    @wrap(S3Response, "copy_object")
    def copy_object_response(original, self):
        if_match = self.headers.get("If-Match")
        if_none_match = self.headers.get("If-None-Match")
        if if_match or if_none_match:
            current = self.backend.get_object(self.bucket_name, self.parse_key_name())
            if if_match and current is None:
                raise MissingKey(key=self.parse_key_name())
            if if_match and _unquoted(if_match) != _unquoted(current.etag):
                raise PreconditionFailed("If-Match")
            if if_none_match == "*" and current is not None:
                raise PreconditionFailed("If-None-Match")
        return original(self)
