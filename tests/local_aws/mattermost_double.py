"""A double of the Mattermost server's file store: writes, moves and reads files as the server does.

What it copies from the server (research/mattermost-app.md, the server's S3 file backend):
- it signs with the installation's own credentials (the IAM user the provisioner made for the bucket);
- with ``MM_FILESETTINGS_AMAZONS3SSE`` on it sends ``x-amz-server-side-encryption: AES256`` on PutObject, on
  CreateMultipartUpload (large files) and on the destination of CopyObject (moves and copies are server-side copies);
  with it off it sends no encryption header, so the bucket default applies;
- a move is a server-side copy followed by a delete of the source.
Its setting comes from the ``Mattermost`` custom resource's ``spec.mattermostEnv``, as the operator hands it to the
pod: ``from_cluster`` reads it from the local AWS's Kubernetes double (tests/local_aws/kube_double.py).
"""
from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from . import kube_double

SSE_VARIABLE = "MM_FILESETTINGS_AMAZONS3SSE"
TRUE_VALUES = ("1", "t", "T", "TRUE", "true", "True")
MIB = 1024 * 1024


class MattermostServer:
    def __init__(self, endpoint_url: str, bucket: str, credentials: dict[str, str], sse_s3: bool, region: str = "us-east-1"):
        self.bucket = bucket
        self.sse_s3 = sse_s3
        self.s3 = boto3.client("s3", region_name=region, endpoint_url=endpoint_url,
                               config=Config(retries={"total_max_attempts": 1}), **credentials)

    @classmethod
    def from_cluster(cls, endpoint_url: str, cluster: str, namespace: str, name: str, bucket: str,
                     credentials: dict[str, str], region: str = "us-east-1") -> "MattermostServer":
        resource = kube_double.get_resource(endpoint_url, cluster, namespace, name)
        env = {e.get("name"): e.get("value") for e in resource.get("spec", {}).get("mattermostEnv") or []}
        return cls(endpoint_url, bucket, credentials, env.get(SSE_VARIABLE) in TRUE_VALUES, region)

    def _headers(self) -> dict[str, Any]:
        return {"ServerSideEncryption": "AES256"} if self.sse_s3 else {}

    def upload(self, path: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=path, Body=body, **self._headers())

    def upload_large(self, path: str, body: bytes, part_size: int = 5 * MIB) -> None:
        upload = self.s3.create_multipart_upload(Bucket=self.bucket, Key=path, **self._headers())["UploadId"]
        parts = []
        for number, start in enumerate(range(0, len(body), part_size), start=1):
            answer = self.s3.upload_part(Bucket=self.bucket, Key=path, UploadId=upload, PartNumber=number,
                                         Body=body[start:start + part_size])
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        self.s3.complete_multipart_upload(Bucket=self.bucket, Key=path, UploadId=upload, MultipartUpload={"Parts": parts})

    def move(self, source: str, destination: str) -> None:
        self.s3.copy_object(Bucket=self.bucket, Key=destination, CopySource={"Bucket": self.bucket, "Key": source}, **self._headers())
        self.s3.delete_object(Bucket=self.bucket, Key=source)

    def read(self, path: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=path)["Body"].read()
