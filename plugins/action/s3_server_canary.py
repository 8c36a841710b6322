# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""mattermost.byok.s3_server_canary in the worker process when the customer's connection is local (plugin_utils/module_in_worker.py)."""
from __future__ import annotations

from ansible_collections.mattermost.byok.plugins.modules import s3_server_canary
from ansible_collections.mattermost.byok.plugins.plugin_utils.module_in_worker import ModuleInWorkerAction


class ActionModule(ModuleInWorkerAction):
    MODULE = s3_server_canary
