# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""mattermost.byok.write_report in the worker process when the customer's connection is local (plugin_utils/module_in_worker.py),
with its template option rendered here first."""
from __future__ import annotations

from ansible_collections.mattermost.byok.plugins.modules import write_report
from ansible_collections.mattermost.byok.plugins.plugin_utils.module_in_worker import ModuleInWorkerAction
from ansible_collections.mattermost.byok.plugins.plugin_utils.role_template import render_role_template


class ActionModule(ModuleInWorkerAction):
    MODULE = write_report

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        source = self._task.args.get("template")
        if source is not None and self._task.args.get("content") is None:
            args = dict(self._task.args)
            args["content"] = render_role_template(self, args.pop("template"), task_vars)
            self._task.args = args
        return super().run(tmp, task_vars)
