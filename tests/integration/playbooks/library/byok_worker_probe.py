#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A module for tests/integration/test_module_in_worker.py: warns, writes to stderr or crashes as asked, and says how
many times it ran in its process (a fresh process, or a fresh fork of the worker, says 1)."""
from __future__ import annotations

DOCUMENTATION = r"""
module: byok_worker_probe
short_description: Test probe of how this collection's modules are run
description: Warns, deprecates, writes to stderr or crashes as asked; returns how many runs its process has seen.
options:
  warn: {type: str, description: A warning to emit.}
  deprecate: {type: str, description: A deprecation to emit.}
  stderr: {type: str, description: Text written to stderr.}
  crash: {type: str, choices: [none, exit, signal, raise], default: none, description: How to end without a result.}
author: Mattermost
"""

import os
import signal
import sys

from ansible.module_utils.basic import AnsibleModule

RUNS = []  # grows by one per run in the same process


def main():
    module = AnsibleModule(argument_spec=dict(warn=dict(type="str"), deprecate=dict(type="str"), stderr=dict(type="str"),
                                              crash=dict(type="str", default="none", choices=["none", "exit", "signal", "raise"])),
                           supports_check_mode=True)
    RUNS.append(1)
    params = module.params
    if params["stderr"]:
        sys.stderr.write(params["stderr"] + "\n")
        sys.stderr.flush()
    if params["warn"]:
        module.warn(params["warn"])
    if params["deprecate"]:
        module.deprecate(params["deprecate"], version="99.0.0", collection_name="mattermost.byok")
    if params["crash"] == "exit":
        os._exit(3)
    if params["crash"] == "signal":
        os.kill(os.getpid(), signal.SIGKILL)
    if params["crash"] == "raise":
        raise RuntimeError("probe failed on purpose")
    module.exit_json(changed=False, runs_in_process=len(RUNS))


if __name__ == "__main__":
    main()
