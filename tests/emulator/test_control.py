"""scripts/local-aws: start (idempotent), status, env, endpoint, reset, stop (also when not running)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.local_aws import control
from tests.local_aws.harness import LocalAWS, LocalAWSError, answers, wait_until_answering


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCAL_AWS_DIR", str(tmp_path / "local-aws"))
    yield tmp_path / "local-aws"
    control.main(["stop"])


def test_lifecycle(state_dir, capsys):
    assert control.main(["status"]) == 1
    assert control.main(["start"]) == 0
    endpoint = (state_dir / "endpoint").read_text().strip()
    pid = (state_dir / "server.pid").read_text().strip()
    assert endpoint.startswith("http://127.0.0.1:") and answers(endpoint)
    assert (state_dir / "env").read_text().splitlines() == [
        f"export AWS_ENDPOINT_URL={endpoint}", "export AWS_ACCESS_KEY_ID=testing", "export AWS_SECRET_ACCESS_KEY=testing",
        "export AWS_DEFAULT_REGION=us-east-1", "export AWS_REGION=us-east-1", "unset AWS_PROFILE AWS_SESSION_TOKEN"]

    assert control.main(["start"]) == 0  # reuses the running server
    assert (state_dir / "server.pid").read_text().strip() == pid
    capsys.readouterr()
    assert control.main(["endpoint"]) == 0
    assert capsys.readouterr().out.strip() == endpoint
    assert control.main(["env"]) == 0
    assert capsys.readouterr().out == (state_dir / "env").read_text()

    aws = LocalAWS(endpoint)
    aws.client("s3").create_bucket(Bucket="before-reset")
    assert control.main(["reset"]) == 0
    assert aws.client("s3").list_buckets()["Buckets"] == []

    assert control.main(["stop"]) == 0
    assert not answers(endpoint) and not (state_dir / "server.pid").exists()
    assert control.main(["stop"]) == 0
    assert control.main(["endpoint"]) == 1


def test_start_failure_reports_the_log(tmp_path):
    log = tmp_path / "server.log"
    with (open(log, "wb") as out, subprocess.Popen([sys.executable, "-c", "print('cannot bind'); raise SystemExit(3)"], stdout=out) as process,
          pytest.raises(LocalAWSError, match=r"(?s)exited.*cannot bind")):
        wait_until_answering("http://127.0.0.1:9", process, log, timeout=10)
