# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A role's template rendered by an action plugin on the controller, as ansible.builtin.template renders it.

The write_report action (a report from a template) and the step actions (a step's documents) share it."""
from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.template import trust_as_template


def render_role_template(action, source, task_vars, extra_vars=None):
    """What ansible.builtin.template renders for `source` in `action`'s task: the task's variables (a shallow copy,
    where the template lookup deep-copies them all) with `extra_vars` over them, the role's templates directory first
    in the search path, trim_blocks."""
    try:
        path = action._find_needle("templates", source)
    except Exception as e:  # AnsibleError with the paths searched
        raise AnsibleActionFail(f"template: {e}") from None
    data = trust_as_template(action._loader.get_text_file_contents(path))
    searchpath = []
    for directory in list(task_vars.get("ansible_search_path", [])) + [action._loader._basedir, os.path.dirname(path)]:
        searchpath += [os.path.join(directory, "templates"), directory]
    variables = dict(task_vars)
    variables.update(extra_vars or {})
    templar = action._templar.copy_with_new_env(searchpath=searchpath, available_variables=variables)
    return templar.template(data, escape_backslashes=False, overrides=dict(trim_blocks=True))
