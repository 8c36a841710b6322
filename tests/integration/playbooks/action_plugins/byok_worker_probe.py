# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The probe module through this collection's in-worker action base, as every module of the collection runs."""
from __future__ import annotations

import importlib.util
import os

from ansible_collections.mattermost.byok.plugins.plugin_utils.module_in_worker import ModuleInWorkerAction

_SPEC = importlib.util.spec_from_file_location(
    "byok_worker_probe_module", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "library", "byok_worker_probe.py"))
PROBE = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(PROBE)


class ActionModule(ModuleInWorkerAction):
    MODULE = PROBE
