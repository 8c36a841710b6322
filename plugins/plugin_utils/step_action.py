# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Base of the step actions: one task per customer per BYOK step.

A fleet run pays for every task once per customer (a worker process, the task's templating, its callbacks), so each
step of the runbook is one task: an action on the controller that runs the step's modules one after another (each
the way its own task would run it: in a fork of the worker, or as a process, plugin_utils/module_in_worker.py),
prints the progress lines, and keeps what the later steps read as facts. What a step decides and records is pure
Python in plugins/module_utils (unit tested); the action only sequences module runs.
"""
from __future__ import annotations

import datetime
import importlib
import json

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.module_utils.urls import open_url
from ansible.plugins.action import VariableLayer
from ansible.utils.display import Display

from ansible_collections.amazon.aws.plugins.module_utils.modules import aws_argument_spec

from ansible_collections.mattermost.byok.plugins.module_utils.fleet.maintenance_window import disruption_decision
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.maintenance_window import normalize_windows
from ansible_collections.mattermost.byok.plugins.plugin_utils.module_in_worker import ModuleInWorkerAction

display = Display()


def aws_option_spec():
    """amazon.aws's connection options as a step takes them (from module_defaults of group/mattermost.byok.byok) and
    passes them on to each module it runs: without their environment fallbacks and defaults, so that only what the
    task gives is passed on, and each module run reads its environment itself, as its own task would."""
    return {name: {k: v for k, v in option.items() if k not in ("fallback", "default")}
            for name, option in aws_argument_spec().items()}


AWS_OPTIONS = tuple(aws_argument_spec())


def decide_disruption(config, allow, needed_minutes):
    """May a disruptive step start now, for this customer (its maintenance windows) and this run (its permission)?"""
    return disruption_decision(normalize_windows(config.get("maintenance_windows")), allow,
                               datetime.datetime.now(datetime.timezone.utc), needed_minutes)


def failure_text(result):
    """What a failed module run says: its message, or the last line of what it printed when it crashed."""
    msg = result.get("msg") or "failed"
    if msg.startswith(("MODULE FAILURE", "Module result deserialization failed")):  # Ansible's words for "no result"
        lines = [line for line in (result.get("module_stderr") or result.get("module_stdout") or "").splitlines() if line.strip()]
        msg = lines[-1].strip() if lines else msg
    return msg


# What a failed step passes to the playbook's rescue (playbooks/byok.yml): its announcements and the records of what it
# finished before it failed.
RESCUED_FACTS = ("byok_step_results", "byok_announcements")


class StepFailed(Exception):
    """A module of the step failed: the step fails with its message (the customer stops, the others go on)."""

    def __init__(self, msg, result=None):
        super().__init__(msg)
        self.result = result or {}


class StepAction(ModuleInWorkerAction):
    """Subclasses implement step(task_vars, args) -> result dict; run_module() runs one of the collection's modules."""

    _supports_async = False  # a step records facts (register_host_variables)

    def run(self, tmp=None, task_vars=None):
        result = super(ModuleInWorkerAction, self).run(tmp, task_vars)  # ActionBase.run: the step runs no module itself
        del tmp
        self._warnings, self._deprecations = [], []
        self._facts = {}
        self._task_vars_host = (task_vars or {}).get("inventory_hostname")
        try:
            result.update(self.step(task_vars or {}, dict(self._task.args)))
        except StepFailed as e:
            result.update(e.result, failed=True, msg=str(e))
            # ansible-core applies no fact of a failed task; the playbook's rescue takes these from the failed result,
            # so that what the step announced and recorded before it failed reaches the customer's outcome.
            kept = {name: self._facts[name] for name in RESCUED_FACTS if name in self._facts}
            if kept:
                result["kept"] = kept
        if self._warnings:
            result["warnings"] = self._warnings
        if self._deprecations:
            result["deprecations"] = self._deprecations
        if self._facts:
            # As ansible.builtin.set_fact keeps facts: for this host, for the rest of the play, not cached.
            self.register_host_variables({}, VariableLayer.CACHEABLE_FACT)
            self.register_host_variables(self._facts, VariableLayer.EPHEMERAL_FACT)
        return result

    def step(self, task_vars, args):
        raise NotImplementedError

    # --- helpers for the steps

    def keep(self, **facts):
        """Facts the later steps (and the fleet summary) read. ansible-core applies them only when the step succeeds
        (it applies no variable of a failed task); of a failed step, RESCUED_FACTS go in its result for the playbook's
        rescue. They are not in a successful task's result: the output stays readable, and credentials are never printed."""
        self._facts.update(facts)

    def aws_args(self, args):
        """The connection options the task was given, for a module the step runs."""
        return {k: args[k] for k in AWS_OPTIONS if args.get(k) is not None}

    def run_module(self, name, module_args, task_vars, check_mode=None, fail=True, diff=None):
        """A module with these arguments (None values left out, as `omit`), as its own task would run it: `name` is
        one of this collection's (`s3_bucket_kms`) or another collection's by its full name (`amazon.aws.sts_assume_role`).

        check_mode overrides the task's (a plan that is only a plan, or a report written in check mode too), diff too
        (off for a report, which is not a managed file). A failed module raises StepFailed with its message unless
        fail=False."""
        action = self.module_action(name)
        module_args = {k: v for k, v in module_args.items() if v is not None}
        saved = self._task.check_mode, self._task.diff
        if check_mode is not None:
            self._task.check_mode = check_mode
        if diff is not None:
            self._task.diff = diff
        try:
            if self._runs_in_worker():
                result = self._run_in_fork(task_vars, module=self.module_code(action), action=action, module_args=module_args)
            else:
                result = self._execute_module(module_name=action, module_args=module_args, task_vars=task_vars)
        finally:
            self._task.check_mode, self._task.diff = saved
        # The module's warnings and deprecations become the step's (as they come: ansible-core's own summaries).
        self._warnings.extend(result.get("warnings") or [])
        self._deprecations.extend(result.get("deprecations") or [])
        if fail and result.get("failed"):
            raise StepFailed(failure_text(result), result)
        return result

    def module_action(self, name):
        """The name a task would give the module: this collection's by its short name, any other by its full name."""
        return name if "." in name else f"mattermost.byok.{name}"

    def module_code(self, action):
        """The Python module whose main() the fork runs, from the installed collections."""
        namespace, collection, short = action.split(".")
        return importlib.import_module(f"ansible_collections.{namespace}.{collection}.plugins.modules.{short}")

    def progress(self, lines):
        """Progress lines, printed as the step goes (a long step shows where it is), each with the customer's name:
        the customers of a fleet run print side by side."""
        host = self._task_vars_host
        for line in lines:
            display.display(f"  {line}" if not host or line.startswith(f"{host}:") else f"  {host}: {line}")

    def disruption_now(self, task_vars, config):
        """byok_disruption decided again now (a run that started inside the window may reach a disruptive step after
        it has closed); the fact is updated. Without the run's permission nothing is decided: not allowed."""
        # As `| bool` reads it: `-e byok_allow_disruption=false` is the string "false", not a permission.
        allow = boolean(self._templar.template(task_vars.get("byok_allow_disruption", False)), strict=False)
        needed = int(self._templar.template(task_vars.get("byok_disruption_needed_minutes", 30)))
        decision = decide_disruption(config, allow, needed)
        self.keep(byok_disruption=decision)
        return decision

    def announce(self, task_vars, event, step, text):
        """What the byok_announce role does, for a step that is one task: the announcement in the job output and, with
        byok_mattermost_webhook_url outside check mode, posted to Mattermost; appended to byok_announcements.
        A 'before' announcement that cannot be posted stops the step (nobody was told); an 'after' one is a warning."""
        def get(name, default):
            return self._templar.template(task_vars.get(name, default))

        config = get("byok_config_customer", {}) or {}
        icon = get("byok_announce_icon", "") or (":warning:" if event == "before" else ":white_check_mark:")
        environment = config.get("environment") or get("byok_environment", "")
        host = task_vars.get("inventory_hostname")
        message = f"{icon} [BYOK {environment}] {host} {step} {event}: {text}"
        display.display(f"  {message}")
        posted = False
        webhook = get("byok_mattermost_webhook_url", "") or ""
        if webhook and not self._task.check_mode:
            body = {"text": message, "username": get("byok_announce_username", "BYOK automation")}
            channel = get("byok_announce_channel", "")
            if channel:
                body["channel"] = channel
            try:
                answer = open_url(webhook, data=json.dumps(body), method="POST", headers={"Content-Type": "application/json"},
                                  timeout=int(get("byok_announce_timeout", 10)))
                posted = answer.getcode() == 200
            except Exception as e:  # pylint: disable=broad-exception-caught
                # The webhook URL is a credential: never in the message.
                if event == "before":
                    raise StepFailed(f"The {step} announcement could not be posted to Mattermost ({type(e).__name__}); "
                                     "nothing disruptive was started") from None
                self._warnings.append(f"The {step} 'after' announcement could not be posted to Mattermost ({type(e).__name__})")
        record = {"event": event, "step": step, "text": text, "posted": posted}
        announcements = list(self._facts.get("byok_announcements") or self._templar.template(task_vars.get("byok_announcements", [])) or [])
        self.keep(byok_announcements=announcements + [record])
        return record
