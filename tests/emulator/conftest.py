"""The ``aws`` fixture: the extended local AWS or plain moto, chosen by ``support.against_both``/``on_both``."""
from __future__ import annotations

import pytest

from tests.local_aws.harness import LocalAWS


@pytest.fixture
def aws(request: pytest.FixtureRequest) -> LocalAWS:
    return request.getfixturevalue("plain_moto" if request.param == "plain" else "local_aws")
