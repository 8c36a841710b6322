# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet benchmark at N=3, so that it keeps working as roles join playbooks/byok.yml."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.integration.runner import ROOT


def test_fleet_benchmark_runs_and_reports(fresh_local_aws, tmp_path):
    """benchmarks/fleet.py seeds 3 customers, times byok.yml --check and the boto3 reads twice, and reports per customer.

    On a private local AWS: the benchmark resets the server it is given."""
    figures = tmp_path / "fleet.json"
    done = subprocess.run([sys.executable, "benchmarks/fleet.py", "--sizes", "3", "--repeat", "2", "--endpoint-url", fresh_local_aws.endpoint_url,
                           "--work-dir", str(tmp_path / "work"), "--json", str(figures)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Fleet benchmark" in done.stdout and "ratio" in done.stdout
    row = json.loads(figures.read_text())["rows"][0]
    assert row["n"] == 3 and row["check"]["rc"] == 0 and row["check"]["failed"] == []
    # Two timed runs on the same seed; the row's figure is one of them (the median, the lower of two).
    assert len(row["check_seconds"]) == 2 and row["check"]["seconds"] == min(row["check_seconds"])
    assert len(row["boto3_seconds"]) == 2 and "median of" in done.stdout
    # Every customer ran the key check and the audit: their per-customer reports exist.
    reports = sorted(p.name for p in (tmp_path / "work" / "artifacts-check-3-1" / "customers").glob("*.json"))
    assert reports == ["bench0001.json", "bench0002.json", "bench0003.json"]
    assert row["boto3"]["calls"] > 3 * 10 and row["boto3"]["seconds"] > 0
