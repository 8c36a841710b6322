# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Record every task result's ``resource_actions`` (amazon.aws's debug_botocore_endpoint_logs) as JSON lines.

Enabled by scripts/least-privilege (ANSIBLE_CALLBACKS_ENABLED=byok_resource_actions, the file in
BYOK_RESOURCE_ACTIONS_LOG); a test helper, not part of the collection.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: byok_resource_actions
type: aggregate
short_description: write each task result's resource_actions to a JSON-lines file
description:
  - Writes one line per task result (loop items included) with host, task, module and C(resource_actions).
requirements:
  - the environment variable BYOK_RESOURCE_ACTIONS_LOG names the file
"""

import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "byok_resource_actions"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._path = os.environ.get("BYOK_RESOURCE_ACTIONS_LOG")

    def _write(self, result, failed):
        if not self._path:
            return
        body = result._result  # pylint: disable=protected-access
        items = body.get("results") if isinstance(body.get("results"), list) else [body]
        task = result._task  # pylint: disable=protected-access
        with open(self._path, "a", encoding="utf-8") as log:
            for item in items:
                if not isinstance(item, dict):
                    continue
                record = {
                    "host": result._host.get_name(),  # pylint: disable=protected-access
                    "task": task.get_name(),
                    "module": task.resolved_action or task.action,
                    "failed": bool(failed or item.get("failed")),
                    "censored": "censored" in item,
                    "resource_actions": item.get("resource_actions"),
                }
                log.write(json.dumps(record, sort_keys=True) + "\n")

    def v2_runner_on_ok(self, result):
        self._write(result, False)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write(result, True)
