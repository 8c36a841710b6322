"""Shared pytest fixtures: the local AWS (moto + BYOK extensions), plain moto, unique names.

- ``local_aws`` (session): the running server named by BYOK_LOCAL_AWS_ENDPOINT or AWS_ENDPOINT_URL if it
  answers, else a private extended server started for this session (each xdist worker gets its own).
- ``plain_moto`` (session): unmodified moto_server, started on first use, for showing what plain moto gets wrong.
- ``fresh_local_aws`` (function): a private, empty local AWS for a test that needs isolation or a reset (~1 s to
  start). Prefer unique names (``unique_name``) on the shared server; never reset the shared one, other tests'
  state (e.g. a seeded demo fleet) lives there.
"""
from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
for _path in (REPO_ROOT / ".collections", REPO_ROOT):  # ansible_collections.mattermost.byok, tests.local_aws
    if _path.is_dir() and str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from tests.local_aws.harness import LocalAWS, answers  # noqa: E402  pylint: disable=wrong-import-position

ENDPOINT_VARIABLES = ("BYOK_LOCAL_AWS_ENDPOINT", "AWS_ENDPOINT_URL")


def _external_endpoint() -> str | None:
    for name in ENDPOINT_VARIABLES:
        endpoint = os.environ.get(name)
        if endpoint and answers(endpoint):
            return endpoint
    return None


@pytest.fixture(scope="session")
def local_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAWS]:
    """The local AWS for this session: an already running one, or a private one stopped at the end."""
    endpoint = _external_endpoint()
    if endpoint:
        yield LocalAWS(endpoint)
        return
    server = LocalAWS.start(extended=True, log_path=tmp_path_factory.mktemp("local-aws") / "server.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def plain_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAWS]:
    """Unmodified moto_server (no extensions), started on demand."""
    server = LocalAWS.start(extended=False, log_path=tmp_path_factory.mktemp("plain-moto") / "server.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_local_aws(tmp_path: Path) -> Iterator[LocalAWS]:
    """A private, empty extended local AWS for one test, stopped after it."""
    with LocalAWS.start(extended=True, log_path=tmp_path / "local-aws.log") as server:
        yield server


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """unique_name("bucket") -> "bucket-<test>-<8 hex>": names that cannot collide between parallel tests."""
    test = "".join(c if c.isalnum() else "-" for c in request.node.name.lower()).strip("-")[:24].strip("-")

    def make(prefix: str) -> str:
        return f"{prefix}-{test}-{uuid.uuid4().hex[:8]}"

    return make


def pytest_configure(config: pytest.Config) -> None:
    # `slow`: a whole demo-fleet run (minutes); deselect with -m "not slow" for a quick pass.
    config.addinivalue_line("markers", "slow: runs the whole demo fleet (minutes)")
