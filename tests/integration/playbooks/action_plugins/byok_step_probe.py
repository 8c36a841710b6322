# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A step action (plugin_utils/step_action.py) that runs the probe module once per item, as the collection's steps run
their modules: for tests/integration/test_module_in_worker.py."""
from __future__ import annotations

import importlib.util
import os

from ansible_collections.mattermost.byok.plugins.plugin_utils.step_action import StepAction

_SPEC = importlib.util.spec_from_file_location(
    "byok_step_probe_module", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "library", "byok_worker_probe.py"))
PROBE = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(PROBE)


class ActionModule(StepAction):
    def module_action(self, name):
        return name  # the playbook's library module, by its plain name

    def module_code(self, action):
        return PROBE

    def step(self, task_vars, args):
        runs = []
        for item in args["items"]:
            if item.get("warn"):  # Ansible shows a warning text once per run: each customer's its own
                item = dict(item, warn=f"{item['warn']} ({task_vars['inventory_hostname']})")
            result = self.run_module("byok_worker_probe", dict(item), task_vars)
            runs.append(result["runs_in_process"])
            self.keep(byok_probe_runs=runs)  # a fact only if the step ends well (the test checks it)
        self.progress([f"{len(runs)} probe run(s)"])
        return dict(changed=False, runs=runs)
