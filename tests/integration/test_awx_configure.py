# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""awx/configure.yml, offline. There is no AWX API here, so the playbook cannot create anything; what is checked:
- it passes `ansible-playbook --syntax-check` and `ansible-lint --profile production`;
- the objects it would send (credential types, surveys, job templates, workflow), read through its own loading tasks,
  are the files under awx/ unchanged (injector templates stay literal for AWX to render) and fit the roles;
- every awx.awx task of it, run for real against an address where nothing listens, gets past the module's own
  argument validation (options, choices, types, workflow node suboptions) and fails only at the connection.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.integration.awx_support import ROOT, ansible_env, ensure_awx_collection, tool

AWX = ROOT / "awx"
NOWHERE = "https://127.0.0.1:1"  # nothing listens: the modules fail when they connect, after validating their arguments
ENABLE_EVERY_TASK = {
    "byok_awx_ee_image": "registry.example.com/mattermost/byok-ee:0.1.0",
    "byok_awx_aws_access_key_id": "AKIAEXAMPLEEXAMPLE01",
    "byok_awx_aws_secret_access_key": "example-secret",
    "byok_awx_mattermost_webhook_url": "https://chat.example.com/hooks/example",
    "byok_awx_scm_credential": "GitHub",
}


@pytest.fixture(scope="module", autouse=True)
def awx_collection() -> None:
    ensure_awx_collection()


def playbook(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([tool("ansible-playbook"), *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          check=False, env=ansible_env(**env))


def test_syntax_check() -> None:
    result = playbook("--syntax-check", str(AWX / "configure.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_ansible_lint_production() -> None:
    # Also the EE files: ansible-lint validates them against the execution-environment schema.
    result = subprocess.run([tool("ansible-lint"), "--profile", "production", "--offline", "awx/", "execution-environment.yml",
                             "meta/execution-environment.yml"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600, check=False, env=ansible_env())
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def definitions(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What configure.yml's own loading tasks produce, dumped to JSON."""
    work = tmp_path_factory.mktemp("awx-definitions")
    (work / "dump.yml").write_text(yaml.safe_dump([{
        "name": "Dump the AWX definitions",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars_files": [str(AWX / "vars" / "byok.yml")],
        "vars": {"byok_awx_dir": str(AWX)},
        "tasks": [
            {"name": "Load", "ansible.builtin.import_tasks": str(AWX / "tasks" / "definitions.yml")},
            {"name": "Dump", "ansible.builtin.copy": {"dest": str(work / "definitions.json"), "mode": "0600", "content": (
                "{{ {'credential_types': byok_awx_credential_types, 'surveys': byok_awx_surveys,"
                " 'job_templates': byok_awx_job_templates, 'workflow': byok_awx_workflow,"
                " 'credentials': byok_awx_job_credentials, 'extra_vars': byok_awx_job_extra_vars,"
                " 'schedules': byok_awx_schedules} | to_json }}")}},
        ],
    }]))
    result = playbook(str(work / "dump.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((work / "definitions.json").read_text())


def role_options() -> set[str]:
    names: set[str] = set()
    for spec_file in ROOT.glob("roles/*/meta/argument_specs.yml"):
        for entry in yaml.safe_load(spec_file.read_text())["argument_specs"].values():
            names.update(entry.get("options") or {})
    return names


def test_credential_types_reach_awx_unrendered(definitions: dict) -> None:
    files = {p.stem: yaml.safe_load(p.read_text()) for p in (AWX / "credential_types").glob("*.yml")}
    assert definitions["credential_types"] == [files["customer_role"], files["webhook"], files["external_key"]]
    role = definitions["credential_types"][0]
    assert role["injectors"]["extra_vars"]["byok_assume_role_arn"] == "{{ role_arn }}"  # AWX renders it, not Ansible


def test_surveys_are_the_files(definitions: dict) -> None:
    for name in ("plan", "apply", "audit", "workflow", "watch"):
        assert definitions["surveys"][name] == json.loads((AWX / "surveys" / f"{name}.json").read_text())


def test_job_templates(definitions: dict) -> None:
    templates = {t["name"]: t for t in definitions["job_templates"]}
    assert set(templates) == {"BYOK - plan (check mode)", "BYOK - apply", "BYOK - audit", "BYOK - key watch"}
    plan, apply, audit = templates["BYOK - plan (check mode)"], templates["BYOK - apply"], templates["BYOK - audit"]
    # Plan: always check mode, never a run by a launch-time prompt.
    assert plan["job_type"] == "check" and plan["ask_job_type_on_launch"] is False and plan["diff_mode"] is True
    # Apply: a run that a launch can turn into check mode; two applies never overlap.
    assert apply["job_type"] == "run" and apply["ask_job_type_on_launch"] is True and apply["allow_simultaneous"] is False
    # Audit: only the read-only steps (byok_config runs under the always tag).
    assert audit["job_type"] == "run" and audit["job_tags"] == "audit"
    assert plan["survey_spec"]["name"] == "BYOK plan" and apply["survey_spec"]["name"] == "BYOK apply"
    assert audit["survey_spec"]["name"] == "BYOK audit"
    assert definitions["workflow"]["survey_spec"]["name"] == "BYOK plan, approve, apply"
    # The key watch: its own playbook, read-only, never two at once (each would post the same alerts).
    watch = templates["BYOK - key watch"]
    assert watch["playbook"] == "playbooks/key_watch.yml" and (ROOT / watch["playbook"]).is_file()
    assert watch["job_type"] == "run" and watch["allow_simultaneous"] is False and watch["survey_spec"]["name"] == "BYOK key watch"
    assert all("playbook" not in t for name, t in templates.items() if name != "BYOK - key watch")  # byok.yml


def test_key_watch_schedule(definitions: dict) -> None:
    [schedule] = definitions["schedules"]
    assert schedule["unified_job_template"] == "BYOK - key watch"
    assert schedule["unified_job_template"] in {t["name"] for t in definitions["job_templates"]}
    # AWX takes "DTSTART;TZID=...:<local time> RRULE:..." and parses it with dateutil, as here.
    from dateutil import rrule
    dtstart, rule = schedule["rrule"].split(" ")
    assert dtstart.startswith("DTSTART;TZID=UTC:") and rule == "RRULE:FREQ=HOURLY;INTERVAL=1"
    first = rrule.rrulestr(schedule["rrule"].replace(" RRULE:", "\nRRULE:"))[0]
    assert (first.minute, first.tzname()) == (5, "UTC")


def test_job_extra_vars_fit_awx(definitions: dict) -> None:
    # AWX keeps neither the inventory file's directory nor a working directory of ours: absolute project paths.
    assert definitions["extra_vars"] == {
        "byok_key_policy_dir": "/runner/project/inventories/prod/key-policies",
        "byok_key_artifacts_dir": "/runner/artifacts/byok",
        "byok_audit_artifacts_dir": "/runner/artifacts/byok",
    }
    assert set(definitions["extra_vars"]) <= role_options()
    # The key policies of the demo inventory sit where the same rule puts them.
    assert (ROOT / "inventories" / "demo" / "key-policies").is_dir()
    assert definitions["credentials"] == ["Mattermost BYOK automation (AWS)"]  # no webhook URL given: no webhook credential


@pytest.fixture(scope="module")
def module_runs(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """configure.yml's awx.awx tasks as they are, each allowed to fail, run against NOWHERE."""
    work = tmp_path_factory.mktemp("awx-modules")
    play = yaml.safe_load((AWX / "configure.yml").read_text())[0]
    tasks = []
    registered = []
    for index, task in enumerate(play["tasks"]):
        task = dict(task)
        if task.get("ansible.builtin.import_tasks"):
            task["ansible.builtin.import_tasks"] = str(AWX / task["ansible.builtin.import_tasks"])
        elif any(key.startswith("awx.awx.") for key in task):
            task.update({"ignore_errors": True, "no_log": False, "register": f"awx_task_{index}"})
            registered.append((task["name"], f"awx_task_{index}"))
        tasks.append(task)
    dump = "{{ {" + ", ".join(f"{name!r}: {var}" for name, var in registered) + "} | to_json }}"
    tasks.append({"name": "Dump", "ansible.builtin.copy": {"dest": str(work / "runs.json"), "mode": "0600", "content": dump}})
    play.update({"tasks": tasks, "vars_files": [str(AWX / "vars" / "byok.yml")], "vars": {"byok_awx_dir": str(AWX)}})
    (work / "configure.yml").write_text(yaml.safe_dump([play], sort_keys=False))
    extra = [arg for key, value in ENABLE_EVERY_TASK.items() for arg in ("-e", f"{key}={value}")]
    result = playbook(str(work / "configure.yml"), *extra, CONTROLLER_HOST=NOWHERE, CONTROLLER_OAUTH_TOKEN="offline")
    assert result.returncode == 0, result.stdout + result.stderr
    runs = json.loads((work / "runs.json").read_text())
    flat = []
    for name, outcome in runs.items():
        for one in outcome.get("results", [outcome]):
            flat.append({"task": name, "item": str(one.get("item", {}).get("name", "") if isinstance(one.get("item"), dict) else ""), **one})
    return flat


def test_every_awx_task_ran(module_runs: list[dict]) -> None:
    ran = {run["task"] for run in module_runs if not run.get("skipped")}
    assert ran == {"Execution environment", "Project", "Inventory",
                   "Inventory source (the inventory file of the project, with its host_vars and group_vars)",
                   "Credential types", "AWS credential of the automation identity", "Mattermost webhook credential",
                   "Job templates", "Schedules", "Workflow - plan, approve, apply"}
    assert len([r for r in module_runs if r["task"] in ("Credential types", "Job templates", "Schedules")]) == 8


def test_awx_modules_accept_the_arguments(module_runs: list[dict]) -> None:
    # Could not run: creating the objects (there is no AWX API here). What ran: each module's argument validation.
    for run in module_runs:
        assert run.get("failed") is True, run
        assert "trying to connect to https://127.0.0.1:1/api/" in run["msg"], (run["task"], run["item"], run["msg"])
