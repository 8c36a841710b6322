# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""mattermost.byok.iam_kms_access in the worker process when the customer's connection is local (plugin_utils/module_in_worker.py)."""
from __future__ import annotations

from ansible_collections.mattermost.byok.plugins.modules import iam_kms_access
from ansible_collections.mattermost.byok.plugins.plugin_utils.module_in_worker import ModuleInWorkerAction


class ActionModule(ModuleInWorkerAction):
    MODULE = iam_kms_access
