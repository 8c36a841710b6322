# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A live canary as the Mattermost server: its own credentials, its own requests, on the customer's bucket.

The server signs with the installation's IAM identity and, with FileSettings.AmazonS3SSE on, names SSE-S3
(``x-amz-server-side-encryption: AES256``) on PutObject, CreateMultipartUpload and CopyObject's destination; with it
off it names no encryption and the bucket default applies (research: mattermost-app.md). Reading an SSE-KMS object
needs kms:Decrypt and writing one kms:GenerateDataKey, each allowed by the key policy AND the identity's IAM policy.

The canary writes, reads, copies (server-side) and multipart-uploads objects under a reserved prefix with exactly the
server's headers, writes and reads one object explicitly on the customer key (what every upload needs once the
bucket default is the key, whatever the default is today), reads one object already on the key, then deletes what
it wrote. Versions and delete markers the server's deletes leave in a versioned bucket are removed with the run's
own credentials (the server's policy has no s3:DeleteObjectVersion). A bucket with a default object-lock retention
gets the read-only steps only: a canary object there could not be deleted.

Pure logic with clients passed in; the module makes the clients.
"""

from __future__ import annotations

import json

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    BotoCoreError = ClientError = Exception  # the module reports the missing library

CANARY_PREFIX = ".mattermost-byok-canary/"
BODY = b"mattermost byok canary: the server's identity can use the customer key\n"

# What each step asks KMS for, when the object is (or becomes) SSE-KMS.
STEP_NEEDS = {
    "write_on_key": ("kms:GenerateDataKey",), "read_on_key": ("kms:Decrypt",),
    "write": ("kms:GenerateDataKey",), "read": ("kms:Decrypt",), "copy": ("kms:Decrypt", "kms:GenerateDataKey"),
    "multipart": ("kms:GenerateDataKey", "kms:Decrypt"), "read_reencrypted": ("kms:Decrypt",), "delete": (),
}


class CanaryCredentialsError(ValueError):
    """The canary's credentials could not be read; the message names the variable."""


def access_key_from_secret(text, where: str) -> dict:
    """boto3 credentials from a Secrets Manager secret holding an IAM access key.

    The provisioner (mattermost-cloud) stores {"ID": ..., "Secret": ...}; {"AccessKeyId": ..., "SecretAccessKey": ...}
    is accepted too. The values are never put in a message.
    """
    try:
        data = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise CanaryCredentialsError(f"{where}: the secret is not a JSON object with the access key (expected {{\"ID\": ..., \"Secret\": ...}})")
    key_id = data.get("ID") or data.get("AccessKeyId") or data.get("AccessKeyID")
    secret = data.get("Secret") or data.get("SecretAccessKey")
    if not isinstance(key_id, str) or not key_id or not isinstance(secret, str) or not secret:
        raise CanaryCredentialsError(f"{where}: the secret has no access key (expected the fields ID and Secret, "
                                     f"found {', '.join(sorted(str(k) for k in data)) or 'none'})")
    # No session token: an IAM user's access key has none (and the run's own token must not ride along).
    return {"aws_access_key_id": key_id, "aws_secret_access_key": secret, "aws_session_token": None}


def server_write_headers(sse_on: bool) -> dict:
    """The encryption the server names on its writes: SSE-S3 with the setting on, nothing with it off."""
    return {"ServerSideEncryption": "AES256"} if sse_on else {}


def error_code(error) -> str:
    return getattr(error, "response", {}).get("Error", {}).get("Code", "") if isinstance(error, ClientError) else type(error).__name__


def on_key(head: dict, key_arn: str) -> bool:
    return head.get("ServerSideEncryption") == "aws:kms" and head.get("SSEKMSKeyId") == key_arn


class Canary:
    """One canary run on one bucket. `server` is the S3 client with the server's credentials, `run` the automation's."""

    def __init__(self, server, run, bucket: str, key_arn: str, sse_on: bool, run_id: str, identity: str):
        self.server, self.run, self.bucket, self.key_arn = server, run, bucket, key_arn
        self.sse_on, self.identity = sse_on, identity
        self.prefix = f"{CANARY_PREFIX}{run_id}/"
        self.steps: list[dict] = []
        self.written: list[str] = []

    def step(self, name: str, call) -> bool:
        try:
            detail = call()
        except (ClientError, BotoCoreError) as e:
            needs = STEP_NEEDS.get(name, ())
            code = error_code(e)
            what = (f"{self.identity} could not {name.replace('_', ' ')} ({code}: {e})"
                    + (f"; it needs {' and '.join(needs)} on {self.key_arn}, allowed by the key policy (statement 'Allow use of the "
                       "key Mattermost server') and by its IAM policy in the provider account" if needs and _kms_related(e) else ""))
            self.steps.append({"step": name, "ok": False, "detail": what, "error_code": code, "needs": list(needs)})
            return False
        self.steps.append({"step": name, "ok": True, "detail": detail or "ok", "error_code": None, "needs": []})
        return True

    def _put(self, key: str, **headers) -> str:
        self.written.append(key)
        self.server.put_object(Bucket=self.bucket, Key=key, Body=BODY, ContentType="text/plain", **headers)
        return self._describe(key)

    def _describe(self, key: str) -> str:
        head = self.server.head_object(Bucket=self.bucket, Key=key)
        enc = head.get("ServerSideEncryption") or "none"
        return f"{key}: {enc}" + (f" with {head.get('SSEKMSKeyId')}" if enc == "aws:kms" else "")

    def _read(self, key: str) -> str:
        body = self.server.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        if body != BODY:
            raise ValueError(f"{key} read back {len(body)} bytes that differ from what was written")
        return f"{key}: read back"

    def _copy(self, source: str, dest: str) -> str:
        self.written.append(dest)
        self.server.copy_object(Bucket=self.bucket, Key=dest, CopySource={"Bucket": self.bucket, "Key": source},
                                **server_write_headers(self.sse_on))
        return self._describe(dest)

    def _multipart(self, key: str) -> str:
        self.written.append(key)
        upload = self.server.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType="text/plain",
                                                     **server_write_headers(self.sse_on))["UploadId"]
        try:
            part = self.server.upload_part(Bucket=self.bucket, Key=key, UploadId=upload, PartNumber=1, Body=BODY)
            self.server.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload,
                                                  MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
        except (ClientError, BotoCoreError):
            try:
                self.server.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload)
            except (ClientError, BotoCoreError):
                pass  # the cleanup below aborts what is left under the prefix
            raise
        return self._read(key) + "; " + self._describe(key)

    def _read_reencrypted(self, object_key: str | None) -> str:
        key = object_key or self._find_on_key()
        if key is None:
            return "no object of the bucket is on the key yet: nothing to read"
        head = self.run.head_object(Bucket=self.bucket, Key=key)
        if not on_key(head, self.key_arn):
            return f"{key} is not on the key yet: nothing to read"
        # The first byte is enough to make S3 decrypt; an empty object has no byte to ask for (InvalidRange).
        ranged = {"Range": "bytes=0-0"} if head.get("ContentLength") else {}
        self.server.get_object(Bucket=self.bucket, Key=key, **ranged)["Body"].read()
        return f"{key}: read as the server"

    def _find_on_key(self, limit: int = 20) -> str | None:
        """The newest of the first objects of the listing that is on the key (a few HEADs, not a scan)."""
        listed = self.run.list_objects_v2(Bucket=self.bucket, MaxKeys=200).get("Contents") or []
        listed = [o for o in listed if not o["Key"].startswith(CANARY_PREFIX)]
        for obj in sorted(listed, key=lambda o: (o["Size"] > 0, o["LastModified"]), reverse=True)[:limit]:  # non-empty first
            if on_key(self.run.head_object(Bucket=self.bucket, Key=obj["Key"]), self.key_arn):
                return obj["Key"]
        return None

    def retention_blocks_writes(self) -> bool:
        try:
            rule = self.run.get_object_lock_configuration(Bucket=self.bucket).get("ObjectLockConfiguration", {}).get("Rule")
        except ClientError as e:
            if error_code(e) in ("ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration"):
                return False
            raise
        return bool((rule or {}).get("DefaultRetention"))

    def execute(self, writes: bool, object_key: str | None = None) -> list[dict]:
        if writes:
            on_key_probe, plain, copied, multipart = (self.prefix + name for name in ("on-key", "write", "copy", "multipart"))
            if self.step("write_on_key", lambda: self._put(on_key_probe, ServerSideEncryption="aws:kms", SSEKMSKeyId=self.key_arn)):
                self.step("read_on_key", lambda: self._read(on_key_probe))
            if self.step("write", lambda: self._put(plain, **server_write_headers(self.sse_on))):
                self.step("read", lambda: self._read(plain))
                self.step("copy", lambda: self._copy(plain, copied))
            self.step("multipart", lambda: self._multipart(multipart))
        self.step("read_reencrypted", lambda: self._read_reencrypted(object_key))
        if writes:
            self.step("delete", self._delete)
            self.cleanup()
        return self.steps

    def _delete(self) -> str:
        for key in dict.fromkeys(self.written):
            self.server.delete_object(Bucket=self.bucket, Key=key)
        return f"{len(set(self.written))} canary objects deleted as the server"

    def cleanup(self) -> None:
        """Remove every version, delete marker and unfinished upload under the canary prefix (the run's credentials)."""
        for page in self.run.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in (page.get("Versions") or []) + (page.get("DeleteMarkers") or []):
                self.run.delete_object(Bucket=self.bucket, Key=item["Key"], VersionId=item["VersionId"])
        for upload in self.run.list_multipart_uploads(Bucket=self.bucket, Prefix=self.prefix).get("Uploads") or []:
            self.run.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])


def _kms_related(error) -> bool:
    code = error_code(error)
    text = str(error)
    return code in ("AccessDenied", "AccessDeniedException", "KMS.AccessDeniedException", "KMS.DisabledException",
                    "KMS.KMSInvalidStateException", "KMS.NotFoundException") or "kms" in text.lower()


def failed_steps(steps: list[dict]) -> list[dict]:
    return [s for s in steps if not s["ok"]]
