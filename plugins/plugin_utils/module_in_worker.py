# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one of this collection's Python modules from Ansible's worker process, in a fork of it, on the controller.

A fleet run executes each module once per task and customer. Run as a module, each execution starts a Python
process that unpacks the module's payload and imports boto3 and ansible.module_utils again: about one CPU-second,
most of a customer's cost (docs/fleet.md). The customers are `ansible_connection: local` hosts, so the module can
run in a fork of the worker process that Ansible has already made for the task, where the module code, boto3 and
(when the run opted in with the `mattermost.byok.prepare_workers` callback) the parsed service models are already
in memory.

The module code is unchanged: its `main()` runs with the arguments Ansible would have sent (check mode, diff, no_log
included), and its result comes back through ansible-core's hook for exactly this, `AnsibleModule._record_module_result`
(added in ansible-core 2.19.1; ansible.netcommon's direct execution overrides it too), encoded and decoded as a
module process's result is. Running it in a fork, not in the worker itself, keeps a module run what a module process
is: the worker's state is never changed (arguments, warnings and deprecations of one loop item or task live and die
with its fork), the module's stdout and stderr are its own, and a module that crashes (`os._exit`, a signal) fails
that task for that customer only.

Any other connection (delegation to a remote host, become, async, a task `environment:`), an ansible-core outside
CORE_RANGE, and every module when the controller's environment has BYOK_MODULES_IN_WORKER=false run the module the
normal way, as a process.
"""
from __future__ import annotations

import io
import json
import os
import selectors
import signal
import sys
import traceback

from ansible.module_utils import basic
from ansible.module_utils.ansible_release import __version__ as CORE_VERSION
from ansible.plugins.action import ActionBase

try:  # ansible-core 2.19+
    from ansible.module_utils import _internal as module_utils_internal  # the seam's flag, see CORE_RANGE
    from ansible.module_utils.common.json import Direction
    from ansible.module_utils.common.json import get_module_encoder
except ImportError:
    module_utils_internal = Direction = get_module_encoder = None

PROFILE = "legacy"  # the serialization profile of modules that declare none (all of this collection's)

# The ansible-core minors whose seam is used here, all supported API of that minor:
# - AnsibleModule._record_module_result (2.19.1+): where a module hands over its finished result;
# - basic._ANSIBLE_ARGS / basic._ANSIBLE_PROFILE: where AnsibleModule reads its arguments (as ansible-core's own
#   module tests set them);
# - ansible.module_utils._internal.is_controller: the flag module_utils reads to tell a module process from the
#   controller. The fork sets it to False, as in a module process, so that the module's warnings and deprecations go
#   with its result (else they go to the worker's display, unattached to the task result);
# - ActionBase._parse_returned_data returning a UnifiedTaskResult, then remove_internal_keys() and
#   as_result_dict(for_round_trip=True): what ActionBase._execute_module does with a module's output in 2.21.
# Outside this range the modules run as processes: the same outcome, only slower.
CORE_RANGE = ((2, 21), (2, 22))


def _core_minor(version: str = CORE_VERSION) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def seam_available(version: str = CORE_VERSION) -> bool:
    """True when this ansible-core has the seam above (version guard plus a check that the hook is there)."""
    low, high = CORE_RANGE
    return (low <= _core_minor(version) < high and Direction is not None
            and isinstance(getattr(module_utils_internal, "is_controller", None), bool)
            and callable(getattr(basic.AnsibleModule, "_record_module_result", None)))


def in_worker_wanted(environ=None) -> bool:
    """BYOK_MODULES_IN_WORKER=false on the controller runs every module as its own process (to compare or debug)."""
    value = (environ if environ is not None else os.environ).get("BYOK_MODULES_IN_WORKER", "true")
    return value.strip().lower() not in ("0", "false", "no", "off")


def describe_exit(status: int) -> tuple[int, str]:
    """(rc, words) for a child's wait status, rc as a shell reports it (128 + signal number when killed)."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return 128 + number, f"killed by {name}"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1
    return code, f"exited with status {code}"


def _read_all(fds: dict[str, int]) -> dict[str, bytes]:
    """Everything written to these pipes until each is closed, read together so that no writer blocks on a full pipe."""
    chunks = {name: [] for name in fds}
    with selectors.DefaultSelector() as selector:
        for name, fd in fds.items():
            selector.register(fd, selectors.EVENT_READ, name)
        open_fds = len(fds)
        while open_fds:
            for key, dummy in selector.select():
                data = os.read(key.fd, 65536)
                if data:
                    chunks[key.data].append(data)
                else:
                    selector.unregister(key.fd)
                    os.close(key.fd)
                    open_fds -= 1
    return {name: b"".join(parts) for name, parts in chunks.items()}


def _child(module, payload: bytes, result_fd: int, stdout_fd: int, stderr_fd: int):
    """In the fork: run the module's main() and hand its result to result_fd. Never returns."""
    code = 1
    try:
        os.dup2(stdout_fd, 1)
        os.dup2(stderr_fd, 2)
        sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), encoding="utf-8", errors="surrogateescape", line_buffering=True)
        sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False), encoding="utf-8", errors="backslashreplace", line_buffering=True)
        sys.stdin = io.TextIOWrapper(io.BytesIO(b""))
        module_utils_internal.is_controller = False  # a module, as in its own process (see CORE_RANGE)
        basic._ANSIBLE_ARGS = payload
        basic._ANSIBLE_PROFILE = PROFILE
        encoder = get_module_encoder(PROFILE, Direction.MODULE_TO_CONTROLLER)

        def record(self, o):  # the module's finished result: to the result pipe instead of stdout
            del self
            data = json.dumps(o, cls=encoder).encode()
            while data:
                data = data[os.write(result_fd, data):]

        # Only this fork's class is changed: the fork ends when the module does.
        basic.AnsibleModule._record_module_result = record
        try:
            module.main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # pylint: disable=broad-exception-caught
        # A module bug: its traceback on its stderr, as a module process would print it.
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # pylint: disable=broad-exception-caught
                pass
        os._exit(code)  # never back into the worker's code


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
        result.update(self._run_in_fork(task_vars))
        return result

    def _runs_in_worker(self):
        # Only where a module run would have run on this same machine, as this same user, in the foreground.
        return (
            seam_available()
            and in_worker_wanted()
            and self._connection.transport in ("local", "ansible.builtin.local")
            and not self._connection.become
            and not self._task.async_val
            and not any(self._task.environment or [])  # a play's `environment:` applies to module processes only
        )

    def _run_in_fork(self, task_vars, module=None, action=None, module_args=None):
        """The task's module (or, for a step action, the one given) run in a fork of this worker: its result dict."""
        module = module or self.MODULE
        action = action or self._task.action
        module_args = dict(self._task.args if module_args is None else module_args)
        self._update_module_args(action, module_args, task_vars)
        encoder = get_module_encoder(PROFILE, Direction.CONTROLLER_TO_MODULE)
        payload = json.dumps({"ANSIBLE_MODULE_ARGS": module_args}, cls=encoder).encode()
        pipes = {name: os.pipe() for name in ("result", "stdout", "stderr")}  # name: (read end, write end)
        pid = os.fork()
        if pid == 0:
            for ends in pipes.values():
                os.close(ends[0])
            _child(module, payload, *(ends[1] for ends in pipes.values()))
        for ends in pipes.values():
            os.close(ends[1])
        out = _read_all({name: ends[0] for name, ends in pipes.items()})
        status = os.waitpid(pid, 0)[1]
        rc, how = describe_exit(status)
        stdout = out["stdout"].decode("utf-8", errors="replace")
        stderr = out["stderr"].decode("utf-8", errors="replace")
        if not out["result"]:
            # No result: the module crashed or exited without one. Ansible's own reading of a module process's
            # output makes the failure (MODULE FAILURE, rc, module_stdout, module_stderr); the exit is named.
            stderr = stderr + ("" if stderr.endswith("\n") or not stderr else "\n") + f"{action} {how} without a result\n"
        utr = self._parse_returned_data(dict(rc=rc, stdout=out["result"].decode("utf-8") or stdout, stderr=stderr,
                                             stdout_lines=[], stderr_lines=[]), PROFILE)
        utr.remove_internal_keys()  # as ActionBase._execute_module does (see CORE_RANGE)
        result = utr.as_result_dict(for_round_trip=True)
        if out["result"] and stderr:  # what the module wrote to stderr is kept with its result
            result.setdefault("module_stderr", stderr)
        return result
