# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The drill refuses any endpoint but the local AWS on this machine, before any AWS call."""

from __future__ import annotations

import contextlib

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.fleet import revocation_drill as rd


class Answer:
    def __init__(self, status):
        self.status = status


def opener(status=200, error=None):
    calls = []

    @contextlib.contextmanager
    def open_(url, timeout):
        calls.append(url)
        if error:
            raise error
        yield Answer(status)
    open_.calls = calls
    return open_


@pytest.mark.parametrize("endpoint, message", [
    (None, "not set"),
    ("", "not set"),
    ("https://kms.us-east-1.amazonaws.com", "(is not on this machine|does not resolve)"),  # no DNS in some sandboxes
    ("https://52.94.0.10", "is not on this machine"),
    ("http://10.0.0.5:5000", "is not on this machine"),
    ("http://no-such-host.invalid:5000", "does not resolve"),
])
def test_refused_before_any_call(endpoint, message):
    o = opener()
    with pytest.raises(rd.DrillError, match=message):
        rd.local_endpoint(endpoint, opener=o)
    assert o.calls == []


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:5000", "http://localhost:5000", "http://[::1]:5000"])
def test_loopback_that_serves_the_local_aws(endpoint):
    o = opener()
    assert rd.local_endpoint(endpoint, opener=o) == endpoint
    assert o.calls == [endpoint + "/moto-api/"]


def test_loopback_that_is_not_the_local_aws():
    with pytest.raises(rd.DrillError, match="does not serve the local AWS"):
        rd.local_endpoint("http://127.0.0.1:5000", opener=opener(error=OSError("connection refused")))
    with pytest.raises(rd.DrillError, match="not the local AWS"):
        rd.local_endpoint("http://127.0.0.1:5000", opener=opener(status=404))
