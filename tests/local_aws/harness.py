"""Test harness for the local AWS: boto3 clients that act as a given account, reset, private servers.

    aws = LocalAWS("http://127.0.0.1:5000")
    kms = aws.client("kms", account="111111111101")        # acts as the customer account
    env = aws.env(account="222222222222")                   # for Ansible or the AWS CLI in a subprocess

Accounts are selected with real credentials from ``sts:AssumeRole`` into ``arn:aws:iam::<account>:role/...``:
moto maps the returned access key to that account, which also works for subprocesses that cannot add
headers. Moto forgets those credentials on ``/moto-api/reset`` and then silently treats them as the default
account 123456789012 (docs/local-aws.md, "accounts reset silently"), so clients are re-assumed after
``reset()`` and cached credentials are re-checked whenever a new client is made.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Self

import boto3
import botocore.session
from botocore.config import Config

REPO_ROOT = Path(__file__).resolve().parents[2]
PROVIDER_ACCOUNT = "222222222222"
DEFAULT_REGION = "us-east-1"
MOTO_DEFAULT_ACCOUNT = "123456789012"
BASE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
HARNESS_ROLE = "local-aws-harness"
START_TIMEOUT = 120.0  # a loaded 2-CPU CI machine can take over 30 s to import moto and the extensions
# A new server is ready when /moto-api/data.json answers. Later liveness checks use the dashboard instead:
# data.json serializes every model (seconds once the demo fleet is seeded) and fails with HTTP 500 as soon
# as an RDS cluster exists (moto tries to read its master password).
READY_PATH = "/moto-api/data.json"
ALIVE_PATH = "/moto-api/"
HTTP_OK = 200
NO_RETRIES = Config(retries={"total_max_attempts": 1})
_ACCOUNT_LABEL = re.compile(r"^(https?://)\d{12}\.")


def drop_account_label(request: Any, **_: Any) -> None:
    """botocore sends every s3control request to ``<account id>.<endpoint host>`` (its endpoint rules add the label
    to a custom endpoint too, whatever inject_host_prefix says); a local endpoint has no such names, so the label is
    dropped before signing. Register it on ``before-sign.s3-control``."""
    request.url = _ACCOUNT_LABEL.sub(r"\1", request.url, count=1)


class LocalAWSError(RuntimeError):
    """The local AWS did not start or answer."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def answers(endpoint_url: str, timeout: float = 2.0, path: str = ALIVE_PATH) -> bool:
    """True when a moto server answers ``GET <path>`` (default: the /moto-api/ dashboard) with 200."""
    try:
        with urllib.request.urlopen(f"{endpoint_url}{path}", timeout=timeout) as response:
            return response.status == HTTP_OK
    except (OSError, urllib.error.URLError):
        return False


def server_command(host: str, port: int, extended: bool = True) -> list[str]:
    """The command that runs a server: ours (extended) or plain moto_server (``--plain``: moto's own server
    main with no extension applied)."""
    return [sys.executable, "-m", "tests.local_aws.server", "--host", host, "--port", str(port), *([] if extended else ["--plain"])]


def wait_until_answering(endpoint_url: str, process: subprocess.Popen | None, log_path: Path | None, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answers(endpoint_url, timeout=1.0, path=READY_PATH):
            return
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.05)
    reason = "exited" if process is not None and process.poll() is not None else f"did not answer within {timeout:.0f} s"
    raise LocalAWSError(f"local AWS at {endpoint_url} {reason}; log tail:\n{log_tail(log_path)}")


def log_tail(log_path: Path | None, lines: int = 30) -> str:
    if log_path is None or not log_path.exists():
        return "(no log)"
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


class LocalAWS:
    """A running local AWS endpoint, and clients that act as given accounts against it."""

    def __init__(self, endpoint_url: str, process: subprocess.Popen | None = None, log_path: Path | None = None):
        self.endpoint_url = endpoint_url.rstrip("/")
        self.process = process
        self.log_path = log_path
        self._credentials: dict[str, dict[str, str]] = {}
        self._lock = threading.RLock()
        # One boto3 session for every client: creating a client from a new session costs ~0.2 s, from this one
        # ~10 ms. Its "profile" setting ignores AWS_PROFILE, so a developer's profile cannot leak in.
        self._boto = boto3.Session(botocore_session=botocore.session.Session(session_vars={"profile": (None, None, None, None)}))

    def __repr__(self) -> str:
        return f"LocalAWS({self.endpoint_url!r})"

    # --- servers this object owns ---------------------------------------------------------------------

    @classmethod
    def start(cls, extended: bool = True, host: str = "127.0.0.1", port: int | None = None, log_path: Path | None = None,
              timeout: float = START_TIMEOUT) -> LocalAWS:
        """Start a private server (ours, or plain moto with ``extended=False``) and wait until it answers."""
        port = port or free_port(host)
        endpoint_url = f"http://{host}:{port}"
        with open(log_path or os.devnull, "ab") as log:
            process = subprocess.Popen(  # pylint: disable=consider-using-with
                server_command(host, port, extended), cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        aws = cls(endpoint_url, process=process, log_path=log_path)
        try:
            wait_until_answering(endpoint_url, process, log_path, timeout)
        except LocalAWSError:
            aws.stop()
            raise
        return aws

    def stop(self) -> None:
        """Stop the server this object started (no-op for an external one)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- state ------------------------------------------------------------------------------------------

    def is_answering(self) -> bool:
        return answers(self.endpoint_url)

    def reset(self) -> None:
        """Wipe every account and region, and forget credentials so the next client re-assumes its role."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        with self._lock:
            self._credentials.clear()

    # --- acting as an account -----------------------------------------------------------------------------

    def _client_with(self, service: str, region: str, credentials: dict[str, str], config: Config) -> Any:
        with self._lock:
            client = self._boto.client(service, region_name=region, endpoint_url=self.endpoint_url, config=config,
                                       aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"], aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
                                       aws_session_token=credentials.get("AWS_SESSION_TOKEN"))
        if service == "s3control":
            client.meta.events.register("before-sign.s3-control", drop_account_label)
        return client

    def _assume(self, account: str) -> dict[str, str]:
        base = {"AWS_ACCESS_KEY_ID": BASE_CREDENTIALS["aws_access_key_id"], "AWS_SECRET_ACCESS_KEY": BASE_CREDENTIALS["aws_secret_access_key"]}
        sts = self._client_with("sts", DEFAULT_REGION, base, NO_RETRIES)
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{HARNESS_ROLE}", RoleSessionName=HARNESS_ROLE)["Credentials"]
        return {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"], "AWS_SESSION_TOKEN": creds["SessionToken"]}

    def _still_valid(self, account: str, creds: dict[str, str]) -> bool:
        """False when a reset (from anywhere: another process, scripts/local-aws reset) made moto forget them."""
        return self._client_with("sts", DEFAULT_REGION, creds, NO_RETRIES).get_caller_identity()["Account"] == account

    def credentials(self, account: str = PROVIDER_ACCOUNT) -> dict[str, str]:
        """AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN that act as ``account``."""
        with self._lock:
            creds = self._credentials.get(account)
            if creds is None or not self._still_valid(account, creds):
                creds = self._credentials[account] = self._assume(account)
            return dict(creds)

    def env(self, account: str = PROVIDER_ACCOUNT, region: str = DEFAULT_REGION) -> dict[str, str]:
        """Environment for a subprocess (Ansible, AWS CLI) acting as ``account``: endpoint, region, credentials.

        Merge it into a copy of os.environ and drop AWS_PROFILE, which would otherwise win.
        """
        return {"AWS_ENDPOINT_URL": self.endpoint_url, "AWS_DEFAULT_REGION": region, "AWS_REGION": region, **self.credentials(account)}

    def subprocess_env(self, account: str = PROVIDER_ACCOUNT, region: str = DEFAULT_REGION) -> dict[str, str]:
        """os.environ with :meth:`env` applied and AWS_PROFILE removed."""
        environ = {k: v for k, v in os.environ.items() if k != "AWS_PROFILE"}
        environ.update(self.env(account, region))
        return environ

    def session(self, account: str = PROVIDER_ACCOUNT, region: str = DEFAULT_REGION) -> boto3.Session:
        """A boto3 session acting as ``account`` (for resources or waiters; clients are cheaper via :meth:`client`)."""
        creds = self.credentials(account)
        return boto3.Session(aws_access_key_id=creds["AWS_ACCESS_KEY_ID"], aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
                             aws_session_token=creds["AWS_SESSION_TOKEN"], region_name=region)

    def client(self, service: str, account: str = PROVIDER_ACCOUNT, region: str = DEFAULT_REGION, **config: Any) -> Any:
        """A boto3 client acting as ``account`` in ``region``; no retries, so a missing feature fails fast."""
        options = {"retries": {"total_max_attempts": 1}, **config}
        return self._client_with(service, region, self.credentials(account), Config(**options))
