# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running the kops CLI (and terraform, for kops's terraform target) with `--state` on every call.

Every mutation of a kops cluster goes through the CLI, never by writing the state store: `kops replace` runs kops's
validation and bumps the generation, and only `kops update cluster` turns the spec into launch templates.
The command runner is passed in (the module's run_command), so this is testable without Ansible.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
import time
from typing import Callable

from ansible_collections.mattermost.byok.plugins.module_utils.kops.spec import dump_documents
from ansible_collections.mattermost.byok.plugins.module_utils.kops.spec import load_documents

# run(argv, env) -> (rc, stdout, stderr)
Runner = Callable[[list, dict], tuple]


# kops exits 1 for every error, so a failed command is told transient by its message: AWS throttling and transient
# errors that kops's own SDK retries gave up on, and dropped connections. Only those are retried, and only for
# commands that converge when run again (get, replace -f of the whole document, update cluster, rolling-update, which
# skips the instances already replaced); a validation error or a refused change fails at once.
TRANSIENT_KOPS_ERROR = re.compile(
    r"SlowDown|Throttl|RequestLimitExceeded|Rate exceeded|TooManyRequests|ServiceUnavailable|InternalError|RequestTimeout"
    r"|status code:? 5\d\d|StatusCode: 5\d\d|connection reset|Connection was closed|broken pipe|unexpected EOF|i/o timeout"
    r"|Could not connect to the endpoint URL", re.IGNORECASE)
KOPS_ATTEMPTS = 4
KOPS_RETRY_BASE = 2.0  # seconds; doubled each time, with jitter


class KopsCliError(Exception):
    """A kops (or terraform) command failed; the message quotes its error output."""


def aws_environment(params: dict, region: str) -> dict:
    """A module's AWS connection options as the environment kops (and terraform) read it, like every AWS SDK."""
    env = {"AWS_REGION": region, "AWS_DEFAULT_REGION": region}
    for option, variable in (("access_key", "AWS_ACCESS_KEY_ID"), ("secret_key", "AWS_SECRET_ACCESS_KEY"),
                             ("session_token", "AWS_SESSION_TOKEN"), ("endpoint_url", "AWS_ENDPOINT_URL"),
                             ("profile", "AWS_PROFILE")):
        if params.get(option):
            env[variable] = params[option]
    return env


def resolve_binary(binary: str, option: str = "kops_binary") -> str:
    """The executable's path, or KopsCliError naming the option and the fix."""
    if os.path.sep in binary:
        if os.path.isfile(binary) and os.access(binary, os.X_OK):
            return binary
        raise KopsCliError(f"{option}: {binary!r} does not exist or is not executable; install it there or give "
                           f"the path of an executable in {option}")
    found = shutil.which(binary)
    if not found:
        raise KopsCliError(f"{option}: {binary!r} was not found on PATH; install it or give its full path in {option}")
    return found


def check_state_store(state: str) -> str:
    if not isinstance(state, str) or not state.startswith("s3://") or len(state) <= len("s3://"):
        raise KopsCliError(f"state: {state!r} is not a kops state store; give it as s3://<bucket>[/<prefix>]")
    return state.rstrip("/")


def _last_error(stderr: str, stdout: str) -> str:
    lines = [line for line in (stderr or stdout or "").strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:") or line.startswith("error")]
    return (errors or lines or ["(no output)"])[-1]


def transient(stderr: str, stdout: str = "") -> bool:
    """True when a failed kops command's output names an AWS throttling/transient error or a dropped connection."""
    return bool(TRANSIENT_KOPS_ERROR.search(f"{stderr or ''}\n{stdout or ''}"))


class KopsCli:
    def __init__(self, binary: str, state: str, run: Runner, env: dict | None = None, attempts: int = KOPS_ATTEMPTS,
                 sleep: Callable[[float], None] = time.sleep):
        self.binary, self.state, self._run, self.env = binary, state, run, env or {}
        self.attempts, self._sleep = attempts, sleep
        self.commands: list[str] = []
        self.retried: list[dict] = []  # {command, attempt, error}: each transient failure that was run again

    def run(self, *args: str, what: str) -> str:
        argv = [self.binary, *args, "--state", self.state]
        command = " ".join(argv[1:])
        self.commands.append(command)
        for attempt in range(1, self.attempts + 1):
            rc, out, err = self._run(argv, self.env)
            if rc == 0:
                return out
            if attempt == self.attempts or not transient(err, out):
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                raise KopsCliError(f"{what}: kops {' '.join(args[:2])} failed (exit {rc}){tries}: {_last_error(err, out)}")
            self.retried.append({"command": command, "attempt": attempt, "error": _last_error(err, out)})
            self._sleep(KOPS_RETRY_BASE * 2 ** (attempt - 1) * (0.5 + random.random() / 2))
        raise AssertionError("unreachable")

    def get_cluster(self, name: str) -> dict:
        docs = load_documents(self.run("get", "cluster", "--name", name, "-o", "yaml", what=f"reading cluster {name}"))
        if len(docs) != 1 or docs[0].get("kind") != "Cluster":
            raise KopsCliError(f"reading cluster {name}: kops get cluster printed no Cluster document")
        return docs[0]

    def get_instance_groups(self, name: str) -> list:
        docs = load_documents(self.run("get", "instancegroups", "--name", name, "-o", "yaml",
                                       what=f"reading the instance groups of {name}"))
        if any(d.get("kind") != "InstanceGroup" for d in docs):
            raise KopsCliError(f"reading the instance groups of {name}: kops printed a document that is not an InstanceGroup")
        return docs

    def get_cluster_and_instance_groups(self, name: str) -> tuple:
        """`kops get <cluster> -o yaml`: the Cluster and its InstanceGroups in one run (kops documents this form)."""
        docs = load_documents(self.run("get", name, "-o", "yaml", what=f"reading cluster {name} and its instance groups"))
        clusters = [d for d in docs if d.get("kind") == "Cluster"]
        if len(clusters) != 1:
            raise KopsCliError(f"reading cluster {name}: kops get {name} printed {len(clusters)} Cluster documents, expected one")
        return clusters[0], [d for d in docs if d.get("kind") == "InstanceGroup"]

    def replace(self, docs: list, what: str) -> None:
        handle, path = tempfile.mkstemp(prefix="byok-kops-", suffix=".yaml")
        try:
            with os.fdopen(handle, "w") as f:
                f.write(dump_documents(docs))
            self.run("replace", "-f", path, what=what)
        finally:
            os.unlink(path)

    def update_cluster(self, name: str, target: str = "direct", out: str | None = None) -> str:
        args = ["update", "cluster", "--name", name, "--yes"]
        if target == "terraform":
            args += ["--target", "terraform", "--out", out]
        return self.run(*args, what=f"applying the spec of {name}")

    def rolling_update(self, name: str, instance_groups: list | None = None) -> str:
        args = ["rolling-update", "cluster", "--name", name, "--yes"]
        for group in instance_groups or []:
            args += ["--instance-group", group]
        return self.run(*args, what=f"rolling the instances of {name}")


def ebs_volume_replacements(plan: dict) -> list:
    """Addresses of `aws_ebs_volume` resources a `terraform show -json` plan would delete (replace or destroy).

    kops's terraform target never looks at the real volumes, and terraform's `kms_key_id` is ForceNew: a changed
    etcd key plans a destroy and re-create of the member's volume, which loses the member's data if it succeeds.
    """
    found = []
    for change in plan.get("resource_changes") or []:
        if change.get("type") == "aws_ebs_volume" and "delete" in ((change.get("change") or {}).get("actions") or []):
            found.append(change.get("address"))
    return found


class Terraform:
    """terraform init / plan / show -json / apply in the directory kops wrote, refusing plans that replace volumes."""

    def __init__(self, binary: str, directory: str, run: Runner, env: dict | None = None):
        self.binary, self.directory, self._run, self.env = binary, directory, run, env or {}
        self.commands: list[str] = []

    def _terraform(self, *args: str) -> str:
        argv = [self.binary, f"-chdir={self.directory}", *args]
        self.commands.append("terraform " + " ".join(args))
        rc, out, err = self._run(argv, self.env)
        if rc != 0:
            raise KopsCliError(f"terraform {args[0]} in {self.directory} failed (exit {rc}): {_last_error(err, out)}")
        return out

    def plan(self) -> dict:
        self._terraform("init", "-input=false")
        self._terraform("plan", "-input=false", "-out=byok.tfplan")
        try:
            return json.loads(self._terraform("show", "-json", "byok.tfplan"))
        except ValueError as e:
            raise KopsCliError(f"terraform show -json in {self.directory} printed no JSON plan: {e}") from e

    def apply(self) -> str:
        return self._terraform("apply", "-input=false", "byok.tfplan")
