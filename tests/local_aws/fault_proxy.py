"""A fault proxy in front of the local AWS: AWS's throttling answers and dropped connections, on a seeded share of requests.

    python -m tests.local_aws.fault_proxy --upstream http://127.0.0.1:5000 --port 5100 --faults throttle:0.10,drop:0.02,seed:7

AWS throttles and drops connections; the local AWS never does. Clients pointed at this proxy (AWS_ENDPOINT_URL) see a
share of their signed requests answered the way AWS answers a throttled request, and a share of their connections
closed with no answer, while every other request is forwarded unchanged (same method, path, headers and body, so
signatures still verify). Faults never reach the local AWS: a throttled or dropped request changed nothing there, as
on AWS. ``lost:<share>`` forwards the request and then drops the connection instead of answering (the request took
effect, its answer was lost): a separate, harsher fault for tests of non-idempotent calls.

Throttling answers, one per protocol, as AWS documents them:

- S3 (REST-XML): HTTP 503, ``<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>...``.
  https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html - "SlowDown: Please reduce your request rate.
  503 Slow Down", error body ``<Error><Code/><Message/><RequestId/><HostId/></Error>``.
- EC2 (EC2 query): HTTP 503, ``<Response><Errors><Error><Code>RequestLimitExceeded</Code>...``.
  https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html - "If you exceed an API throttling limit,
  you get the RequestLimitExceeded error code"; the error structure is in
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html (``Response/Errors/Error``,
  ``RequestID``).
- RDS, IAM, STS, Auto Scaling (AWS query): HTTP 400,
  ``<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>...``.
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/CommonErrors.html - throttling is "HTTP Status Code: 400";
  https://docs.aws.amazon.com/IAM/latest/APIReference/CommonErrors.html the same; these services answer the code
  ``Throttling`` with "Rate exceeded" (the code botocore's retry handlers list first among throttling codes).
- KMS and the tagging API (AWS JSON 1.1): HTTP 400, ``{"__type": "ThrottlingException", "message": "Rate exceeded"}``
  (the tagging API's code is ``ThrottledException``).
  https://docs.aws.amazon.com/kms/latest/APIReference/CommonErrors.html - "ThrottlingException: The request was denied
  due to request throttling. HTTP Status Code: 400";
  https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/API_GetResources.html - "ThrottledException
  ... HTTP Status Code: 400".

A dropped connection is read in full and then closed with no answer: clients see "Connection was closed before we
received a valid response", which AWS's SDKs retry as a transient error
(https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html: "transient errors ... connection
errors").

Decisions come from one ``random.Random(seed)`` drawn once per eligible request in arrival order, so a run with the
same seed and the same request order gets the same faults. Only signed AWS requests are eligible; the emulator's own
``/moto-api/`` endpoints pass untouched. ``GET /__fault_proxy__/stats`` answers what was done so far (JSON).

A test can also stop a client at an exact request (``FaultProxy.hold``): the first requests that match pass, the next
one is held unanswered (not forwarded) until the test has done what it wanted at that point (kill the client), then
dropped. This is how the tests kill a run deterministically between two of its writes.
"""
from __future__ import annotations

import argparse
import http.client
import json
import random
import re
import signal
import socket
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

STATS_PATH = "/__fault_proxy__/stats"
FAULT_KINDS = ("throttle", "drop", "lost")
# Hop-by-hop headers (RFC 9110 7.6.1) are the proxy's own; everything else is forwarded exactly.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
JSON_THROTTLE_CODES = {"tagging": "ThrottledException"}


class FaultSpecError(ValueError):
    """A --faults/BYOK_FAULTS value that cannot be read."""


@dataclass(frozen=True)
class FaultSpec:
    """Shares of requests throttled, dropped before forwarding, and forwarded with their answer lost; the seed."""

    throttle: float = 0.0
    drop: float = 0.0
    lost: float = 0.0
    seed: int = 0

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """``throttle:0.10,drop:0.02[,lost:0.01][,seed:7]`` (shares between 0 and 1; together at most 1)."""
        values: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in (text or "").split(","))):
            name, sep, value = item.partition(":")
            name = name.strip()
            if not sep or name not in (*FAULT_KINDS, "seed"):
                raise FaultSpecError(f"fault {item!r}: write name:value with a name of {', '.join((*FAULT_KINDS, 'seed'))}, "
                                     "e.g. throttle:0.10,drop:0.02,seed:7")
            try:
                values[name] = int(value) if name == "seed" else float(value)
            except ValueError:
                raise FaultSpecError(f"fault {item!r}: {value!r} is not a {'whole number' if name == 'seed' else 'number'}") from None
            if name != "seed" and not 0.0 <= values[name] <= 1.0:
                raise FaultSpecError(f"fault {item!r}: a share is between 0 and 1 (0.10 is 10 %)")
        spec = cls(**values)
        if spec.throttle + spec.drop + spec.lost > 1.0:
            raise FaultSpecError(f"faults {text!r}: the shares add up to more than 1")
        return spec

    def __str__(self) -> str:
        return ",".join(f"{k}:{getattr(self, k)}" for k in (*FAULT_KINDS, "seed"))


class Decider:
    """One seeded draw per eligible request, in arrival order: 'throttle', 'drop', 'lost' or None (forward)."""

    def __init__(self, spec: FaultSpec):
        self.spec = spec
        self._random = random.Random(spec.seed)
        self._lock = threading.Lock()

    def next(self) -> str | None:
        with self._lock:
            draw = self._random.random()
        edge = 0.0
        for kind in FAULT_KINDS:
            edge += getattr(self.spec, kind)
            if draw < edge:
                return kind
        return None


def signing_service(headers: Any, query: str) -> str | None:
    """The service a SigV4 request is signed for (its credential scope), or None for an unsigned request."""
    match = SCOPE.search(headers.get("Authorization") or "")
    if match:
        return match.group(1)
    credential = parse_qs(query).get("X-Amz-Credential")
    if credential:
        parts = credential[0].split("/")
        return parts[3] if len(parts) > 3 else None
    return None


def throttle_answer(service: str, json_protocol: bool) -> tuple[int, str, bytes]:
    """(HTTP status, content type, body) of AWS's throttling answer for a request signed for ``service``."""
    request_id = str(uuid.uuid4())
    if service == "s3":
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>'
                f"<RequestId>{request_id}</RequestId><HostId>{uuid.uuid4().hex}</HostId></Error>")
        return 503, "application/xml", body.encode()
    if json_protocol:
        code = JSON_THROTTLE_CODES.get(service, "ThrottlingException")
        return 400, "application/x-amz-json-1.1", json.dumps({"__type": code, "message": "Rate exceeded"}).encode()
    if service == "ec2":
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>RequestLimitExceeded</Code>'
                f"<Message>Request limit exceeded.</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>")
        return 503, "text/xml;charset=UTF-8", body.encode()
    body = ('<ErrorResponse xmlns="https://aws.amazon.com/"><Error><Type>Sender</Type><Code>Throttling</Code>'
            f"<Message>Rate exceeded</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>")
    return 400, "text/xml", body.encode()


class Hold:
    """The request after the first `passes` requests for which `matches(method, path, query, headers, body)` is true: held
    unforwarded (``reached`` is set) until ``release()``, then dropped; every later match is dropped too."""

    def __init__(self, matches: Callable[[str, str, str, Any, bytes], bool], passes: int):
        self.matches, self.passes = matches, passes
        self.reached, self.released = threading.Event(), threading.Event()
        self._lock = threading.Lock()

    def takes(self, method: str, path: str, query: str, headers: Any, body: bytes) -> bool:
        if not self.matches(method, path, query, headers, body):
            return False
        with self._lock:
            self.passes -= 1
            return self.passes < 0

    def release(self) -> None:
        self.released.set()


class FaultProxy(ThreadingHTTPServer):
    """The proxy server: forwards to ``upstream``, faults what the decider says, counts both."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], upstream: str, spec: FaultSpec):
        super().__init__(address, ProxyHandler)
        parts = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname, parts.port or 80
        self.spec, self.decider = spec, Decider(spec)
        self.counts: Counter = Counter()
        self._counts_lock = threading.Lock()
        self.holds: list[Hold] = []

    def hold(self, matches: Callable[[str, str, str, Any, bytes], bool], passes: int = 0) -> Hold:
        """Hold the request after the first `passes` that match (see Hold)."""
        hold = Hold(matches, passes)
        self.holds.append(hold)
        return hold

    @property
    def endpoint_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def count(self, service: str, kind: str) -> None:
        with self._counts_lock:
            self.counts[(service, kind)] += 1

    def stats(self) -> dict:
        with self._counts_lock:
            counts = dict(self.counts)
        totals: Counter = Counter()
        services: dict[str, dict[str, int]] = {}
        for (service, kind), n in counts.items():
            totals[kind] += n
            services.setdefault(service, {})[kind] = n
        return {"faults": str(self.spec), "totals": dict(totals), "services": services}


class ProxyHandler(BaseHTTPRequestHandler):
    """One client connection (HTTP/1.1 keep-alive, as botocore's pool uses it)."""

    protocol_version = "HTTP/1.1"
    server: FaultProxy

    def log_message(self, format: str, *args: Any) -> None:  # pylint: disable=redefined-builtin
        pass  # a fleet run makes thousands of requests; the stats endpoint sums them up

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _drop(self) -> None:
        """Close the connection with no answer (a reset, as a load balancer's idle or failed connection)."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes, head: bool = False, reason: str | None = None) -> None:
        self.send_response_only(status, reason)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def _handle(self) -> None:
        split = urlsplit(self.path)
        if split.path == STATS_PATH:
            body = json.dumps(self.server.stats()).encode()
            self._answer(200, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))], body)
            return
        body = self._body()
        hold = next((h for h in self.server.holds if h.takes(self.command, split.path, split.query, self.headers, body)), None)
        if hold is not None:
            hold.reached.set()
            hold.released.wait(600)
            self._drop()
            return
        service = None if split.path.startswith("/moto-api") else signing_service(self.headers, split.query)
        fault = self.server.decider.next() if service else None
        if fault == "throttle":
            status, content_type, answer = throttle_answer(service, bool(self.headers.get("X-Amz-Target")))
            self.server.count(service, "throttle")
            self._answer(status, [("Content-Type", content_type), ("Content-Length", str(len(answer))),
                                  ("x-amzn-RequestId", str(uuid.uuid4()))], answer, head=self.command == "HEAD",
                         reason="Slow Down" if service == "s3" else None)
            return
        if fault == "drop":
            self.server.count(service, "drop")
            self._drop()
            return
        status, headers, answer = self._forward(body)
        if fault == "lost":
            self.server.count(service, "lost")
            self._drop()
            return
        if service:
            self.server.count(service, "forwarded")
        self._answer(status, headers, answer, head=self.command == "HEAD")

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        upstream = http.client.HTTPConnection(self.server.upstream_host, self.server.upstream_port, timeout=600)
        try:
            headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP}
            if body or self.command in ("POST", "PUT"):
                headers["Content-Length"] = str(len(body))
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                upstream.putheader(name, value)
            upstream.endheaders(body or None)
            response = upstream.getresponse()
            answer = response.read()
            out = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"]
            length = response.getheader("Content-Length") if self.command == "HEAD" else None
            out.append(("Content-Length", length if length is not None else str(len(answer))))
            return response.status, out, answer
        finally:
            upstream.close()

    def do_GET(self) -> None:  # noqa: N802 (http.server's names)
        self._handle()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET


def start(upstream: str, spec: FaultSpec, host: str = "127.0.0.1", port: int = 0) -> FaultProxy:
    """A proxy serving in a background thread of this process (tests); ``proxy.shutdown()`` stops it."""
    proxy = FaultProxy((host, port), upstream, spec)
    threading.Thread(target=proxy.serve_forever, name="fault-proxy", daemon=True).start()
    return proxy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.local_aws.fault_proxy", description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="the local AWS endpoint, e.g. http://127.0.0.1:5000")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on the first line)")
    parser.add_argument("--faults", default="throttle:0.10,drop:0.02", help="e.g. throttle:0.10,drop:0.02,seed:7 (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        spec = FaultSpec.parse(args.faults)
    except FaultSpecError as exc:
        print(f"fault proxy: {exc}", file=sys.stderr)
        return 2
    proxy = FaultProxy((args.host, args.port), args.upstream, spec)
    print(proxy.endpoint_url, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=proxy.shutdown, daemon=True).start())
    try:
        proxy.serve_forever()
    except KeyboardInterrupt:
        pass
    print(json.dumps(proxy.stats()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
