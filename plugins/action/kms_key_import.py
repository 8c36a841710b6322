# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""mattermost.byok.kms_key_import in the worker process when the customer's connection is local (plugin_utils/module_in_worker.py)."""
from __future__ import annotations

from ansible_collections.mattermost.byok.plugins.modules import kms_key_import
from ansible_collections.mattermost.byok.plugins.plugin_utils.module_in_worker import ModuleInWorkerAction


class ActionModule(ModuleInWorkerAction):
    MODULE = kms_key_import
