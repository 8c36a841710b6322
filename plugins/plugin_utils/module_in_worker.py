# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one of this collection's Python modules inside Ansible's worker process on the controller.

A fleet run executes each module once per task and customer. Run as a module, each execution starts a Python
process that unpacks the module's payload and imports boto3 and ansible.module_utils again: about one CPU-second,
most of a customer's cost (docs/fleet.md). The customers are `ansible_connection: local` hosts, so the module can run
in the worker process that Ansible forks for the task instead: the linear strategy loads the action plugin in the
controller's main process, so the module and boto3 are imported once there and every worker inherits them.

The module code is unchanged: its `main()` runs with the arguments Ansible would have sent (check mode, diff, no_log
included) and its JSON result is read back as Ansible reads a module's output. Any other connection (delegation to
a remote host, become, async, a task `environment:`) runs the module the normal way, and so does every module when
the controller's environment has BYOK_MODULES_IN_WORKER=false.
"""
from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import traceback

from ansible.module_utils import basic
from ansible.module_utils.common.json import Direction
from ansible.module_utils.common.json import get_module_encoder
from ansible.plugins.action import ActionBase

from ansible_collections.mattermost.byok.plugins.module_utils.aws_module import process_session
from ansible_collections.mattermost.byok.plugins.plugin_utils import template_cache

try:
    import botocore.exceptions
    import botocore.loaders
    import botocore.session
except ImportError:
    botocore = None  # the modules report the missing SDK

PROFILE = "legacy"  # the serialization profile of modules that declare none (all of this collection's)
# The module protocol used below (arguments with a serialization profile) is ansible-core 2.19's; older cores run
# the modules as processes.
IN_WORKER_PROTOCOL = hasattr(basic, "_ANSIBLE_PROFILE")

# The services this collection's modules call: their models are parsed once, before the workers fork.
SERVICES = ("autoscaling", "ec2", "iam", "kms", "rds", "resourcegroupstaggingapi", "s3", "sts")


class _UniquePaths(list):
    """boto3 appends its data path to the loader on every new session; a shared loader needs it once."""

    def append(self, path):
        if path not in self:
            super().append(path)


def share_botocore_models():
    """Give every botocore session of this process one data loader, with this collection's service models loaded.

    Each client starts a new session whose loader finds (thousands of stat calls) and parses its service model again:
    about half a CPU-second per module run. The loader only reads botocore's packaged data files, so sharing it
    between sessions changes nothing but the cost; workers forked afterwards inherit it parsed.
    """
    if botocore is None or getattr(botocore.session, "_byok_shared_loader", None) or os.environ.get("AWS_DATA_PATH"):
        return  # with extra data paths, each session keeps its own loader
    loader = botocore.loaders.create_loader()
    loader._search_paths = _UniquePaths(loader.search_paths)
    botocore.session.create_loader = lambda search_path_string=None: loader
    botocore.session._byok_shared_loader = loader
    session = botocore.session.get_session()
    session.get_component("endpoint_resolver")
    for service in SERVICES:
        for kind in ("service-2", "endpoint-rule-set-1", "paginators-1", "waiters-2"):
            try:
                loader.load_service_model(service, kind)
            except botocore.exceptions.DataNotFoundError:
                pass


share_botocore_models()
if botocore is not None:
    process_session()  # made here, with the shared models, so that the workers inherit it


# What the roles' templates use, prepared once here instead of in every worker (see warm_templating).
_WARM_TEMPLATE = ("{{ (x | default({}) | combine({'a': 1}) | dict2items | map(attribute='key') | select | list | unique | first"
                  " | length | int | float | round | string | to_json | from_json | to_nice_json | from_yaml,"
                  " 'true' | bool, [1] | intersect([1]) | difference([]) | zip([2]) | list | selectattr('0') | rejectattr('0')"
                  " | join(','), {} | items | list, 'x' is defined, 'x' is string, {} is skipped)"
                  " if x is not defined else x | mattermost.byok.disruption_decision(allow=false) }}")


def warm_templating():
    """Create the template engine's lexer and load the filter and test plugins the roles use, before workers fork.

    A worker renders each template of its task; the first one in a process builds Jinja's lexer (its regular
    expressions) and loads the filter plugins it names: about 20 ms of CPU per task and customer, which workers
    forked afterwards inherit done instead. Best effort: any failure leaves the work to the workers, as before.
    """
    try:
        from ansible.parsing.dataloader import DataLoader
        from ansible.template import Templar, trust_as_template

        templar = Templar(loader=DataLoader(), variables={})
        templar.template(trust_as_template(_WARM_TEMPLATE))
        templar.evaluate_conditional(trust_as_template("x is not defined"))
    except Exception:  # pylint: disable=broad-exception-caught
        pass


template_cache.install()
warm_templating()
# What the main process holds now (Ansible, boto3, the service models) lives as long as the run. Frozen, the garbage
# collector no longer walks it: a collection in the main process or in a worker would write into every one of those
# objects, and each write to a page shared with a forked worker copies that page (about 5 % of a fleet run's CPU).
gc.freeze()


class ModuleInWorkerAction(ActionBase):
    """Base class: subclasses set MODULE to the imported module (a Python module with a main())."""

    MODULE = None
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        if not self._runs_in_worker():
            result.update(self._execute_module(task_vars=task_vars, wrap_async=self._task.async_val))
            return result
        result.update(self._run_in_worker(task_vars))
        return result

    def _runs_in_worker(self):
        # Only where a module run would have run on this same machine, as this same user, in the foreground.
        # BYOK_MODULES_IN_WORKER=false on the controller runs every module as its own process (to compare or debug).
        return (
            IN_WORKER_PROTOCOL
            and os.environ.get("BYOK_MODULES_IN_WORKER", "true").lower() not in ("0", "false", "no", "off")
            and self._connection.transport in ("local", "ansible.builtin.local")
            and not self._connection.become
            and not self._task.async_val
            and not any(self._task.environment or [])  # a play's `environment:` applies to module processes only
        )

    def _run_in_worker(self, task_vars):
        module_args = dict(self._task.args)
        self._update_module_args(self._task.action, module_args, task_vars)
        encoder = get_module_encoder(PROFILE, Direction.CONTROLLER_TO_MODULE)
        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": module_args}, cls=encoder).encode()
        basic._ANSIBLE_PROFILE = PROFILE
        stdout = io.StringIO()
        rc = 0
        try:
            with contextlib.redirect_stdout(stdout):
                self.MODULE.main()
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except Exception as e:  # a module bug: report it as a module failure would be
            return dict(failed=True, msg=f"{self._task.action} failed in the worker: {e}", exception=traceback.format_exc())
        finally:
            basic._ANSIBLE_ARGS = None
        utr = self._parse_returned_data(dict(rc=rc, stdout=stdout.getvalue(), stderr="", stdout_lines=[], stderr_lines=[]), PROFILE)
        utr.remove_internal_keys()
        return utr.as_result_dict(for_round_trip=True)
