# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""This collection's modules run in Ansible's worker process (plugin_utils/module_in_worker.py) and as a module process
(BYOK_MODULES_IN_WORKER=false) with the same outcome: check mode, diff, idempotence, failures, AWS results."""

from __future__ import annotations

import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
import yaml

from ansible_collections.mattermost.byok.plugins.module_utils.aws.module import process_session
from tests.integration import runner

PLAYBOOK = "tests/integration/playbooks/module_in_worker.yml"
WAYS = {"worker": {}, "process": {"BYOK_MODULES_IN_WORKER": "false"}}


def run(local_aws, tmp_path, way, case, *args, runs_module=True, **extra_vars):
    out = tmp_path / f"result-{way}-{case}.json"
    extra = {"case": case, "out": str(out), **extra_vars}
    proc = runner.run_playbook(local_aws.endpoint_url, "localhost,", str(tmp_path / "artifacts"), "-vvv", "-e", json.dumps(extra), *args,
                               playbook=PLAYBOOK, extra_env=WAYS[way])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # A module process is announced by its payload's path; the worker runs it without one.
    module_file = {"audit": "encryption_audit_info", "template_lookup": "write_report", "assume_role": "sts_assume_role"}.get(case, case)
    ran_as_process = f"/plugins/modules/{module_file}.py" in "".join(
        line for line in proc.stdout.splitlines() if line.startswith("Using module file "))
    assert ran_as_process == (way == "process" and runs_module), f"{case} did not run as {way}"
    return json.loads(out.read_text()), proc.stdout


def result_of(*args, **kwargs):
    return run(*args, **kwargs)[0]


@pytest.mark.parametrize("way", WAYS)
def test_write_report_check_diff_idempotence_and_errors(local_aws, tmp_path, way):
    dest = tmp_path / "reports" / "customers" / "acme.json"
    content = '{"customer": "acme"}\n'

    result = result_of(local_aws, tmp_path, way, "write_report", "--check", dest=str(dest), content=content)
    assert result["changed"] is True and not dest.exists() and not dest.parent.exists()

    result, output = run(local_aws, tmp_path, way, "write_report", "--diff", dest=str(dest), content=content)
    assert result["changed"] is True and result["size"] == len(content)
    assert dest.read_text() == content
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640
    assert stat.S_IMODE(dest.parent.stat().st_mode) == 0o750
    assert '+{"customer": "acme"}' in output  # the diff of a new file

    result = result_of(local_aws, tmp_path, way, "write_report", dest=str(dest), content=content)
    assert result["changed"] is False

    result = result_of(local_aws, tmp_path, way, "write_report", dest=str(dest), content=content, file_mode="0600")
    assert result["changed"] is True and stat.S_IMODE(dest.stat().st_mode) == 0o600

    result = result_of(local_aws, tmp_path, way, "write_report", "--check", dest=str(dest), content="other\n")
    assert result["changed"] is True and dest.read_text() == content

    result = result_of(local_aws, tmp_path, way, "write_report", dest=str(dest.parent), content=content)
    assert result["failed"] is True and "is a directory" in result["msg"]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["acme.json"]  # no temporary file left behind


@pytest.mark.parametrize("way", WAYS)
def test_write_report_renders_a_template_as_the_template_lookup_does(local_aws, tmp_path, way):
    dest, reference = tmp_path / "out" / "report.md", tmp_path / "out" / "lookup.md"
    keys = {"s3": "arn:aws:kms:us-east-1:111122223333:key/a", "rds": "arn:aws:kms:us-east-1:111122223333:key/b"}
    result = result_of(local_aws, tmp_path, way, "write_report", "--check", dest=str(dest), template="report.md.j2",
                       customer="acme", keys=keys)
    assert result["changed"] is True and not dest.exists()
    result = result_of(local_aws, tmp_path, way, "write_report", dest=str(dest), template="report.md.j2", customer="acme", keys=keys)
    assert result["changed"] is True
    assert result_of(local_aws, tmp_path, way, "template_lookup", dest=str(reference), template="report.md.j2",
                     customer="acme", keys=keys)["changed"] is True
    assert dest.read_text() == reference.read_text()
    assert dest.read_text().startswith("# Report for acme\n\n| Service | Key |\n|---|---|\n| Aurora/RDS | `arn:aws:kms:")
    assert "\n2 keys: s3, rds.\n" in dest.read_text()
    again = result_of(local_aws, tmp_path, way, "write_report", dest=str(dest), template="report.md.j2", customer="acme", keys=keys)
    assert again["changed"] is False

    missing = result_of(local_aws, tmp_path, way, "write_report", dest=str(tmp_path / "x.md"), template="absent.md.j2",
                        runs_module=False)
    assert missing["failed"] is True and "absent.md.j2" in missing["msg"]
    both = result_of(local_aws, tmp_path, way, "write_report", dest=str(tmp_path / "x.md"), template="report.md.j2",
                     content="text", customer="acme", keys=keys)
    assert both["failed"] is True and "mutually exclusive" in both["msg"]
    assert not (tmp_path / "x.md").exists()


@pytest.mark.parametrize("way", WAYS)
def test_the_configuration_step_assumes_the_role_with_amazon_aws(local_aws, tmp_path, way, acme_variables):
    """byok_config's step runs amazon.aws.sts_assume_role (in the worker, or as a process) and keeps working credentials
    as a fact, in check mode too; a malformed role ARN is refused before any call."""
    role_arn = "arn:aws:iam::222222222222:role/mattermost-byok-automation"
    result = result_of(local_aws, tmp_path, way, "assume_role", "--check", role_arn=role_arn, customer=f"byok-{way}",
                       variables=acme_variables)
    assert result["changed"] is False and not result.get("failed"), result
    creds = result["credentials"]  # the fact byok_config_aws_credentials, added by the test playbook
    task_result = json.dumps({k: v for k, v in result.items() if k != "credentials"})
    assert creds["secret_key"] not in task_result and creds["session_token"] not in task_result
    assert set(creds) == {"access_key", "secret_key", "session_token", "expiration"}
    # Independent reader: the credentials act as the assumed role.
    sts = boto3.client("sts", endpoint_url=local_aws.endpoint_url, region_name="us-east-1", aws_access_key_id=creds["access_key"],
                       aws_secret_access_key=creds["secret_key"], aws_session_token=creds["session_token"])
    identity = sts.get_caller_identity()
    assert identity["Account"] == "222222222222"
    assert identity["Arn"].endswith(f":assumed-role/mattermost-byok-automation/byok-byok-{way}")

    result = result_of(local_aws, tmp_path, way, "assume_role", role_arn="mattermost-byok-automation", variables=acme_variables,
                       runs_module=False)
    assert result["failed"] is True and "is not a role ARN" in result["msg"]


@pytest.fixture(scope="module")
def acme_variables():
    """acme's byok_* variables as the configuration step takes them (its host_vars over the demo's group_vars)."""
    with open(os.path.join(runner.DEMO_INVENTORY, "group_vars", "dedicated.yml")) as f:
        group_vars = yaml.safe_load(f)
    return {k: v for k, v in {**group_vars, **runner.demo_host_vars("acme")}.items() if k.startswith("byok_")}


@pytest.fixture(scope="module")
def acme_config(local_aws, tmp_path_factory):
    """acme seeded (alone), and its normalized configuration as the playbook computes it."""
    inventory_dir = tmp_path_factory.mktemp("inventory")
    inventory = runner.write_inventory(str(inventory_dir), {"acme": runner.demo_host_vars("acme")})
    runner.seed(local_aws.endpoint_url, str(inventory_dir))
    from ansible_collections.mattermost.byok.plugins.module_utils.fleet.customer_config import validate_customer

    host_vars = runner.demo_host_vars("acme")
    with open(os.path.join(runner.DEMO_INVENTORY, "group_vars", "dedicated.yml")) as f:
        import yaml
        group_vars = yaml.safe_load(f)
    variables = {k: v for k, v in {**group_vars, **host_vars}.items() if k.startswith("byok_")}
    return inventory, validate_customer("acme", variables)


def test_audit_reads_the_same_in_worker_and_process(local_aws, tmp_path, acme_config):
    config = acme_config[1]
    results = {way: run(local_aws, tmp_path, way, "audit", config=config)[0] for way in WAYS}
    for result in results.values():
        assert result["changed"] is False and result["summary"]["in_scope"] > 0
    worker, process = ({(r["type"], r["id"]): {k: v for k, v in r.items() if k != "detail"} for r in results[w]["resources"]} for w in WAYS)
    assert worker == process
    assert results["worker"]["summary"] == results["process"]["summary"]


def test_clients_of_the_process_session_act_with_their_own_credentials(local_aws):
    """A module's clients come from one boto3 session per process (aws_module.process_session), made in the main
    process and inherited by every worker: each client must still sign with the credentials it was given."""
    accounts = ["222222222222", "111111111101", "333300000001"] * 4

    def identity(account):
        creds = local_aws.credentials(account)
        sts = process_session().client("sts", region_name="us-east-1", endpoint_url=local_aws.endpoint_url,
                                       aws_access_key_id=creds["AWS_ACCESS_KEY_ID"], aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
                                       aws_session_token=creds["AWS_SESSION_TOKEN"])
        return sts.get_caller_identity()["Account"]

    assert [identity(a) for a in accounts] == accounts
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(identity, accounts)) == accounts


# -- how a module run is isolated: the probe module (tests/integration/playbooks/library/byok_worker_probe.py) runs
# through the same action base as every module of this collection.

PROBE_PLAYBOOK = "tests/integration/playbooks/worker_probe.yml"


def probe(local_aws, tmp_path, way, items, hosts=("acme",), crash_host=""):
    out_dir = tmp_path / f"probe-{way}"
    out_dir.mkdir()
    extra = {"probe_items": items, "out_dir": str(out_dir), "crash_host": crash_host}
    proc = runner.run_playbook(local_aws.endpoint_url, ",".join(hosts) + ",", str(tmp_path / "artifacts"), "-vvv", "-e", json.dumps(extra),
                               playbook=PROBE_PLAYBOOK, extra_env=WAYS[way])
    ran_as_process = "/library/byok_worker_probe.py" in "".join(l for l in proc.stdout.splitlines() if l.startswith("Using module file "))
    assert ran_as_process == (way == "process"), f"the probe did not run as {way}: {proc.stdout[-2000:]}"
    results = {h: json.loads((out_dir / f"{h}.json").read_text())["results"] for h in hosts}
    return proc, results


@pytest.mark.parametrize("way", WAYS)
def test_warnings_and_state_of_one_loop_item_do_not_reach_the_next(local_aws, tmp_path, way):
    items = [{"warn": "first item's warning", "deprecate": "first item's deprecation"}, {}, {"warn": "third item's warning"}, {}]
    proc, results = probe(local_aws, tmp_path, way, items)
    assert proc.returncode == 0, proc.stdout[-3000:]
    # ansible-core shows a module's warnings and deprecations on stderr as each item ends (they are not registered):
    # each item's own once, none of an earlier item's again.
    shown = [line.strip() for line in proc.stderr.splitlines() if line.startswith(("[WARNING]: ", "[DEPRECATION WARNING]: "))
             and "Deprecation warnings can be disabled" not in line]
    assert shown == [
        "[WARNING]: first item's warning",
        "[DEPRECATION WARNING]: first item's deprecation. This feature will be removed from collection 'mattermost.byok' version 99.0.0.",
        "[WARNING]: third item's warning",
    ], proc.stderr
    assert len(results["acme"]) == 4 and not any(r["failed"] for r in results["acme"])
    # Each run starts from the same state: a fresh process, or a fresh fork of the worker.
    assert [r["runs_in_process"] for r in results["acme"]] == [1, 1, 1, 1]


def test_the_module_stderr_is_kept_with_its_result(local_aws, tmp_path):
    proc, results = probe(local_aws, tmp_path, "worker", [{"stderr": "a note on stderr"}, {}])
    assert proc.returncode == 0, proc.stdout[-3000:]
    noted, quiet = results["acme"]
    assert noted["failed"] is False and noted["module_stderr"] == "a note on stderr\n"
    assert "module_stderr" not in quiet


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("crash, rc", [("exit", 3), ("signal", 137), ("raise", 1)])
def test_a_crashing_module_fails_that_task_for_that_customer_only(local_aws, tmp_path, way, crash, rc):
    hosts = ("acme", "globex", "initech")
    items = [{"stderr": "before the crash"}, {"crash": crash, "stderr": "about to crash"}, {}]
    proc, results = probe(local_aws, tmp_path, way, items, hosts=hosts, crash_host="globex")
    carried_on = {h for h in hosts if (tmp_path / f"probe-{way}" / f"{h}.done").exists()}
    assert proc.returncode == 2, proc.stdout[-3000:]  # a host failed, the run finished
    assert carried_on == {"acme", "initech"}
    for host in ("acme", "initech"):
        assert [r["failed"] for r in results[host]] == [False, False, False]
    before, crashed, after = results["globex"]
    assert before["failed"] is False and after["failed"] is False  # the next item of the same customer still ran
    assert crashed["failed"] is True
    if crash == "raise":  # a module process reports the exception in its result, the fork on its stderr
        assert "probe failed on purpose" in json.dumps(crashed)
    else:
        assert crashed["rc"] == rc and "about to crash" in crashed["module_stderr"]
    if way == "worker":
        assert crashed["rc"] == rc and "about to crash" in crashed["module_stderr"]
    if way == "worker" and crash != "raise":
        assert ("killed by SIGKILL" if crash == "signal" else "exited with status 3") in crashed["module_stderr"]
    recap = {line.split()[0]: line for line in proc.stdout.splitlines() if " : ok=" in line}
    assert "failed=1" in recap["globex"] and "failed=0" in recap["acme"] and "failed=0" in recap["initech"]


# -- a step action (plugin_utils/step_action.py) runs several modules in one task, each isolated as its own task's

@pytest.mark.parametrize("way", WAYS)
def test_a_step_passes_on_its_modules_warnings_and_a_crash_fails_that_customer_only(local_aws, tmp_path, way):
    hosts = ("acme", "globex", "initech")
    items = [{"warn": "first run's warning", "deprecate": "first run's deprecation"}, {"stderr": "about to crash", "crash": "exit"}, {}]
    out_dir = tmp_path / f"step-{way}"
    out_dir.mkdir()
    extra = {"probe_items": items, "out_dir": str(out_dir), "crash_host": "globex"}
    proc = runner.run_playbook(local_aws.endpoint_url, ",".join(hosts) + ",", str(tmp_path / "artifacts"), "-vvv", "-e", json.dumps(extra),
                               playbook="tests/integration/playbooks/step_probe.yml", extra_env=WAYS[way])
    ran_as_process = "/library/byok_worker_probe.py" in "".join(l for l in proc.stdout.splitlines() if l.startswith("Using module file "))
    assert ran_as_process == (way == "process"), proc.stdout[-2000:]
    saved = {h: json.loads((out_dir / f"{h}.json").read_text()) for h in hosts}
    assert proc.returncode == 2, proc.stdout[-3000:]  # one customer failed, the run finished
    for host in ("acme", "initech"):
        assert saved[host]["step"]["failed"] is False and saved[host]["step"]["runs"] == [1, 1, 1]
        assert saved[host]["kept"] == [1, 1, 1]  # the fact, for the next task
    crashed = saved["globex"]
    # ansible-core applies no variable of a failed task: what the step kept before the crash is not a fact.
    assert crashed["step"]["failed"] is True and crashed["kept"] is None
    if way == "worker":
        assert crashed["step"]["msg"] == "byok_worker_probe exited with status 3 without a result", crashed
    else:
        assert "MODULE FAILURE" not in crashed["step"]["msg"], crashed  # the module's own last words, not Ansible's
    # Each customer's first run warned once; the warnings and deprecations reach the output as the task's own.
    shown = [line.strip() for line in proc.stderr.splitlines() if line.startswith(("[WARNING]: ", "[DEPRECATION WARNING]: "))
             and "Deprecation warnings can be disabled" not in line]
    assert sorted(line for line in shown if line.startswith("[WARNING]")) == [
        f"[WARNING]: first run's warning ({host})" for host in hosts], proc.stderr
    # (a deprecation's text is shown once per run however many customers hit it)
    assert any(line.startswith("[DEPRECATION WARNING]: first run's deprecation") for line in shown), proc.stderr
