# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""byok_announce posts to a Mattermost incoming webhook: a local HTTP receiver stands in for the server."""

from __future__ import annotations

import http.server
import json
import os
import threading

import pytest

from tests.integration.runner import read_json
from tests.integration.runner import run_playbook

PLAYBOOK = "tests/integration/playbooks/announce.yml"


class Receiver(http.server.ThreadingHTTPServer):
    """Records each POST; answers with `status` as Mattermost does (200 and "ok")."""

    def __init__(self, status=200):
        self.posts = []
        self.status = status
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/xk3q9h7w1b8bto"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.posts.append({"path": self.path, "content_type": self.headers.get("Content-Type"), "body": json.loads(body)})
        self.send_response(self.server.status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    def start(status=200):
        server = Receiver(status)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return server
    started = []
    yield start
    for server in started:
        server.shutdown()


# The byok_announce role (the key watch's announcements) and a step action's announce() (the RDS and EBS steps').
WAYS = {"role": PLAYBOOK, "step": "tests/integration/playbooks/announce_step.yml"}


def run(tmp_path, *args, url=None, way="role"):
    extra = ["-e", f"byok_mattermost_webhook_url={url}"] if url else []
    return run_playbook("http://127.0.0.1:1", "localhost,", str(tmp_path), *extra, *args, playbook=WAYS[way])


@pytest.mark.parametrize("way", WAYS)
def test_before_and_after_are_posted(way, tmp_path, receiver):
    hook = receiver()
    result = run(tmp_path, "-e", "byok_announce_channel=byok-ops", url=hook.url, way=way)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [p["path"] for p in hook.posts] == ["/hooks/xk3q9h7w1b8bto"] * 2
    assert all(p["content_type"] == "application/json" for p in hook.posts)
    before, after = (p["body"] for p in hook.posts)
    assert before["channel"] == "byok-ops" and before["username"] == "BYOK automation"
    assert "[BYOK demo] localhost rds before:" in before["text"] and "writes pause for under a minute" in before["text"]
    assert "rds after:" in after["text"] and "switchover 21 s" in after["text"]
    recorded = read_json(os.path.join(tmp_path, "announcements.json"))
    assert [(a["event"], a["posted"]) for a in recorded] == [("before", True), ("after", True)]
    # The webhook URL is a credential: it never appears in the job output.
    assert hook.url not in result.stdout


@pytest.mark.parametrize("way", WAYS)
def test_check_mode_posts_nothing(way, tmp_path, receiver):
    hook = receiver()
    result = run(tmp_path, "--check", url=hook.url, way=way)
    assert result.returncode == 0, result.stdout + result.stderr
    assert hook.posts == []
    assert "acme-db switches over" in " ".join(result.stdout.split())  # still shown in the job output


@pytest.mark.parametrize("way", WAYS)
def test_without_a_webhook_it_only_prints(way, tmp_path):
    result = run(tmp_path, way=way)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "acme-db is on the customer key" in " ".join(result.stdout.split())
    assert [a["posted"] for a in read_json(os.path.join(tmp_path, "announcements.json"))] == [False, False]


@pytest.mark.parametrize("way", WAYS)
def test_a_failed_announcement_before_stops_the_step(way, tmp_path, receiver):
    hook = receiver(status=500)
    result = run(tmp_path, url=hook.url, way=way)
    if way == "role":
        assert result.returncode != 0
    else:  # the step failed, before its disruptive action (the test playbook rescues it)
        assert "The rds announcement could not be posted to Mattermost (HTTPError)" in result.stdout, result.stdout
        assert "disruptive action failed" not in result.stdout
    assert len(hook.posts) == 1  # "before" was tried; the play stopped there
    if way == "role":
        assert not os.path.exists(os.path.join(tmp_path, "announcements.json"))
    else:  # nothing announced: the rescue found no announcement in the failed result
        assert read_json(os.path.join(tmp_path, "announcements.json")) == []


def test_a_step_that_fails_after_announcing_keeps_its_announcement_for_the_rescue(tmp_path, receiver):
    """ansible-core applies no fact of a failed task: the step passes its announcements in its failed result, and the
    rescue (as playbooks/byok.yml's) keeps them for the customer's outcome."""
    hook = receiver()
    result = run(tmp_path, "-e", "fail_between=true", url=hook.url, way="step")
    assert result.returncode == 0, result.stdout + result.stderr  # rescued
    assert len(hook.posts) == 1 and "rds before:" in hook.posts[0]["body"]["text"]
    recorded = read_json(os.path.join(tmp_path, "announcements.json"))
    assert [(a["event"], a["posted"]) for a in recorded] == [("before", True)]
    assert hook.url not in result.stdout
