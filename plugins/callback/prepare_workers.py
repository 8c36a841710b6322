# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prepare, once at the start of a run, what every forked worker would otherwise build again."""
from __future__ import annotations

DOCUMENTATION = r"""
name: prepare_workers
type: aggregate
short_description: Prepare the controller once for a fleet run of this collection's modules
description:
  - At the start of the playbook, in Ansible's main process (before any worker is forked), parses the botocore service
    models this collection's modules use into their shared boto3 session, prepares the template engine (its lexer and
    the filter and test plugins the roles use) and freezes the garbage collector's view of what the process then
    holds, so that each worker inherits this work done instead of repeating it per task and customer.
  - Changes nothing in how tasks run or what they return; a run without it does the same work, in every worker.
  - Nothing happens at import time; only an enabled callback acts, once, at C(v2_playbook_on_start).
requirements:
  - Enabled in the configuration (C(callbacks_enabled = mattermost.byok.prepare_workers)).
"""

import gc

from ansible.plugins.callback import CallbackBase

try:
    import boto3  # noqa: F401 pylint: disable=unused-import
    HAS_BOTO3 = True
except ImportError:
    HAS_BOTO3 = False

# The services this collection's modules call.
SERVICES = ("autoscaling", "ec2", "iam", "kms", "rds", "resourcegroupstaggingapi", "s3", "sts")

# What the roles' templates use, rendered once so that the lexer and these plugins are loaded before the workers fork.
WARM_TEMPLATE = ("{{ (x | default({}) | combine({'a': 1}) | dict2items | map(attribute='key') | select | list | unique | first"
                 " | length | int | float | round | string | to_json | from_json | to_nice_json | from_yaml,"
                 " 'true' | bool, [1] | intersect([1]) | difference([]) | zip([2]) | list | selectattr('0') | rejectattr('0')"
                 " | join(','), {} | items | list, 'x' is defined, 'x' is string, {} is skipped)"
                 " if x is not defined else x | mattermost.byok.disruption_decision(allow=false) }}")


def warm_templating() -> bool:
    """Render one template using the roles' filters and tests with the public Templar API; False if it could not."""
    try:
        from ansible.parsing.dataloader import DataLoader
        from ansible.template import Templar, trust_as_template

        templar = Templar(loader=DataLoader(), variables={})
        templar.template(trust_as_template(WARM_TEMPLATE))
        templar.evaluate_conditional(trust_as_template("x is not defined"))
        return True
    except Exception:  # pylint: disable=broad-exception-caught
        return False  # best effort: the workers then do it, as without this callback


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "mattermost.byok.prepare_workers"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.prepared = False

    def v2_playbook_on_start(self, playbook):
        if self.prepared:
            return
        self.prepared = True
        models = 0
        if HAS_BOTO3:
            from ansible_collections.mattermost.byok.plugins.module_utils.aws.module import load_service_models

            models = load_service_models(SERVICES)
        templating = warm_templating()
        # What the main process holds now lives as long as the run. Frozen, the garbage collector no longer walks
        # it: a collection would write into those objects, and each write to a page shared with a forked worker
        # copies that page.
        gc.freeze()
        self._display.vvv(f"mattermost.byok.prepare_workers: {models} service models parsed, templating "
                          f"{'prepared' if templating else 'left to the workers'}, {gc.get_freeze_count()} objects frozen")
