"""A small S3 client for the kops state store: GetObject, PutObject and ListObjectsV2 over signed HTTP.

Standard library only, so that `kops get` against the local AWS starts as fast as a Go binary would: importing
boto3 and making an S3 client cost ~0.7 CPU-seconds, which a fleet benchmark would otherwise count as playbook time.
Requests are path-style and signed with AWS Signature Version 4 exactly as botocore's S3SigV4Auth signs them over
http (payload hash sent and signed, headers named as botocore names them), because the local AWS's IAM enforcement
re-computes the signature with botocore from the headers the request says it signed.
"""
from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import os
import random
import time
import xml.etree.ElementTree as ET
from urllib.parse import quote, unquote_plus, urlsplit

DEFAULT_REGION = "us-east-1"
TIMEOUT = 60  # botocore's default connect and read timeouts
# kops reads its state store with aws-sdk-go-v2's default configuration (util/pkg/vfs/s3context.go,
# awsconfig.LoadDefaultConfig): the SDK's standard retryer, 3 attempts unless AWS_MAX_ATTEMPTS says otherwise, jittered
# exponential backoff capped at 20 s, on throttling errors, HTTP 5xx and connection errors
# (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html).
DEFAULT_MAX_ATTEMPTS = 3
MAX_BACKOFF = 20.0
THROTTLING_CODES = {"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
                    "RequestLimitExceeded", "BandwidthLimitExceeded", "SlowDown", "RequestThrottled", "PriorRequestNotComplete",
                    "RequestTimeout", "RequestTimeoutException", "InternalError"}


def max_attempts(environ=None) -> int:
    """AWS_MAX_ATTEMPTS as the SDKs read it (a whole number of at least 1), else the standard mode's 3."""
    value = (os.environ if environ is None else environ).get("AWS_MAX_ATTEMPTS", "")
    return int(value) if value.isdigit() and int(value) >= 1 else DEFAULT_MAX_ATTEMPTS


def retryable(error: Exception) -> bool:
    """What the standard retry mode retries: no S3 answer at all, a throttling or transient code, or HTTP 5xx."""
    if not isinstance(error, S3Error):
        return True
    return error.code in THROTTLING_CODES or (error.status or 0) >= 500


class S3ClientError(Exception):
    """A request that got no S3 answer (connection refused, timeout); str() reads as botocore's message."""


class S3Error(S3ClientError):
    """An S3 error response: its Code and Message, and text that reads as botocore's ClientError."""

    def __init__(self, code: str, message: str, text: str, status: int | None = None):
        super().__init__(text)
        self.code, self.message, self.status = code, message, status


def endpoint_from_environ(environ=None) -> str | None:
    """The S3 endpoint the AWS SDKs would use from the environment, or None for AWS's own endpoints."""
    environ = os.environ if environ is None else environ
    if environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    return environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or None


def _name(element: ET.Element) -> str:
    """An XML element's name without S3's namespace."""
    return element.tag.rpartition("}")[2]


def _fields(element: ET.Element) -> dict[str, str]:
    return {_name(child): child.text or "" for child in element}


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


class S3Client:
    """GetObject, PutObject and ListObjectsV2 against one endpoint, with static credentials."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str, session_token: str | None = None,
                 region: str = DEFAULT_REGION):
        parts = urlsplit(endpoint)
        self.origin, self.netloc, self.base_path = f"{parts.scheme}://{parts.netloc}", parts.netloc, parts.path.rstrip("/")
        self.secure = parts.scheme == "https"
        # The Host botocore signs: the endpoint's host, without the scheme's default port.
        host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
        self.host = host if parts.port in (None, 443 if self.secure else 80) else f"{host}:{parts.port}"
        self.access_key, self.secret_key, self.session_token, self.region = access_key, secret_key, session_token, region

    @classmethod
    def from_environ(cls, region: str = DEFAULT_REGION, environ=None) -> S3Client | None:
        """A client for the endpoint and static credentials in the environment, or None if they are not all set."""
        environ = os.environ if environ is None else environ
        endpoint = endpoint_from_environ(environ)
        if not (endpoint and environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY")):
            return None
        return cls(endpoint, environ["AWS_ACCESS_KEY_ID"], environ["AWS_SECRET_ACCESS_KEY"], environ.get("AWS_SESSION_TOKEN") or None,
                   region)

    # -- operations ------------------------------------------------------------------------------------------------

    def get_object(self, bucket: str, key: str) -> bytes | None:
        """The object's body, or None when the key does not exist."""
        try:
            return self._request("GetObject", "GET", self._object_path(bucket, key))
        except S3Error as e:
            if e.code in ("NoSuchKey", "404"):
                return None
            raise

    def put_object(self, bucket: str, key: str, body: bytes) -> None:
        self._request("PutObject", "PUT", self._object_path(bucket, key), body=body)

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key under prefix, following ListObjectsV2's continuation tokens."""
        keys: list[str] = []
        token = None
        while True:
            # Parameters in botocore's order, so the URL in an error message is the one boto3 would show.
            query = [("list-type", "2"), ("prefix", prefix)] + ([("continuation-token", token)] if token else []) + [("encoding-type", "url")]
            root = ET.fromstring(self._request("ListObjectsV2", "GET", f"/{bucket}", query))
            # encoding-type=url keeps any key representable in XML; botocore decodes it with unquote_plus too.
            keys += [unquote_plus(_fields(item).get("Key", "")) for item in root if _name(item) == "Contents"]
            fields = _fields(root)
            token = fields.get("NextContinuationToken")
            if fields.get("IsTruncated") != "true" or not token:
                return keys

    # -- HTTP and signing ------------------------------------------------------------------------------------------

    def _object_path(self, bucket: str, key: str) -> str:
        return f"/{bucket}/{quote(key, safe='/~')}"

    def _request(self, operation: str, method: str, path: str, query: list[tuple[str, str]] | None = None, body: bytes = b"") -> bytes:
        """One operation, retried as the SDK's standard mode retries it (a new signature for every attempt)."""
        attempts = max_attempts()
        for attempt in range(1, attempts + 1):
            try:
                return self._attempt(operation, method, path, query, body)
            except S3ClientError as e:
                if attempt == attempts or not retryable(e):
                    raise
                time.sleep(random.random() * min(MAX_BACKOFF, 2.0 ** attempt))
        raise AssertionError("unreachable")

    def _attempt(self, operation: str, method: str, path: str, query: list[tuple[str, str]] | None, body: bytes) -> bytes:
        path = self.base_path + path
        query_string = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in query or [])
        target = f"{path}?{query_string}" if query_string else path
        headers = self._signed_headers(method, path, query or [], body)
        if self.secure:
            import ssl  # pylint: disable=import-outside-toplevel  # the local AWS speaks http: load ssl only when needed
            context = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or None)
            connection = http.client.HTTPSConnection(self.netloc, timeout=TIMEOUT, context=context)
        else:
            connection = http.client.HTTPConnection(self.netloc, timeout=TIMEOUT)
        try:
            connection.request(method, target, body=body if method == "PUT" else None, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as e:
            raise S3ClientError(f'Could not connect to the endpoint URL: "{self.origin}{target}"') from e
        finally:
            connection.close()
        if not 200 <= response.status < 300:
            raise self._error(operation, response.status, data)
        return data

    @staticmethod
    def _error(operation: str, status: int, data: bytes) -> S3Error:
        # As botocore: the XML body's Code and Message, else the HTTP status and its reason.
        code, message = str(status), http.client.responses.get(status, "")
        try:
            fields = _fields(ET.fromstring(data)) if data else {}
        except ET.ParseError:
            fields = {}
        if "Code" in fields:
            code, message = fields["Code"], fields.get("Message", "")
        return S3Error(code, message, f"An error occurred ({code}) when calling the {operation} operation: {message}", status)

    def _signed_headers(self, method: str, path: str, query: list[tuple[str, str]], body: bytes) -> dict[str, str]:
        amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        payload_hash = hashlib.sha256(body).hexdigest()
        # Spelled as botocore spells them: moto's signature check looks the date up as "X-Amz-Date".
        headers = {"Host": self.host, "X-Amz-Content-SHA256": payload_hash, "X-Amz-Date": amz_date}
        if self.session_token:
            headers["X-Amz-Security-Token"] = self.session_token
        signed = sorted(headers, key=str.lower)
        canonical_query = "&".join(f"{k}={v}" for k, v in sorted((_encode(k), _encode(v)) for k, v in query))
        canonical_headers = "".join(f"{name.lower()}:{' '.join(headers[name].split())}\n" for name in signed)
        signed_names = ";".join(name.lower() for name in signed)
        canonical_request = "\n".join([method, path, canonical_query, canonical_headers, signed_names, payload_hash])
        scope = f"{amz_date[:8]}/{self.region}/s3/aws4_request"
        string_to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
        key = f"AWS4{self.secret_key}".encode()
        for part in (amz_date[:8], self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
                                    f"SignedHeaders={signed_names}, Signature={signature}")
        return headers
