# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A step action (plugin_utils/step_action.py) that announces a disruptive step before and after it, as the RDS and
EBS steps do, and fails between the two when asked: for tests/integration/test_announce.py."""
from __future__ import annotations

from ansible_collections.mattermost.byok.plugins.plugin_utils.step_action import StepAction
from ansible_collections.mattermost.byok.plugins.plugin_utils.step_action import StepFailed


class ActionModule(StepAction):
    def step(self, task_vars, args):
        self.announce(task_vars, "before", args["step"], args["before"])
        if args.get("fail_between"):
            raise StepFailed("the disruptive action failed")
        self.announce(task_vars, "after", args["step"], args["after"])
        return dict(changed=False)
