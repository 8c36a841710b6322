# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""mattermost.byok.write_report in the worker process when the customer's connection is local (plugin_utils/module_in_worker.py),
with its template option rendered here first."""
from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.template import trust_as_template

from ansible_collections.mattermost.byok.plugins.modules import write_report
from ansible_collections.mattermost.byok.plugins.plugin_utils.module_in_worker import ModuleInWorkerAction


class ActionModule(ModuleInWorkerAction):
    MODULE = write_report

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        source = self._task.args.get("template")
        if source is not None and self._task.args.get("content") is None:
            args = dict(self._task.args)
            args["content"] = self.render(args.pop("template"), task_vars)
            self._task.args = args
        return super().run(tmp, task_vars)

    def render(self, source, task_vars):
        """What ansible.builtin.template renders for `source`: the task's variables (a shallow copy, where the template
        lookup deep-copies them all), the role's templates directory first in the search path, trim_blocks."""
        try:
            path = self._find_needle("templates", source)
        except Exception as e:  # AnsibleError with the paths searched
            raise AnsibleActionFail(f"template: {e}") from None
        data = trust_as_template(self._loader.get_text_file_contents(path))
        searchpath = []
        for directory in list(task_vars.get("ansible_search_path", [])) + [self._loader._basedir, os.path.dirname(path)]:
            searchpath += [os.path.join(directory, "templates"), directory]
        templar = self._templar.copy_with_new_env(searchpath=searchpath, available_variables=dict(task_vars))
        return templar.template(data, escape_backslashes=False, overrides=dict(trim_blocks=True))
