# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_in_worker's decisions: which ansible-core gets the seam, the opt-out switch, how a fork's end is named."""
from __future__ import annotations

import os
import signal

import pytest

from ansible_collections.mattermost.byok.plugins.plugin_utils import module_in_worker as miw


@pytest.mark.parametrize("version, minor", [
    ("2.21.5", (2, 21)), ("2.21.0rc1", (2, 21)), ("2.22.0.dev0", (2, 22)), ("2.19.14", (2, 19)), ("2.21", (2, 21)),
])
def test_core_minor(version, minor):
    assert miw._core_minor(version) == minor  # pylint: disable=protected-access


@pytest.mark.parametrize("version, expected", [
    ("2.18.6", False), ("2.19.14", False), ("2.20.10", False), ("2.21.0", True), ("2.21.5", True), ("2.21.0rc1", True),
    ("2.22.0", False), ("2.22.0.dev0", False), ("3.0.0", False),
])
def test_seam_only_on_the_minor_it_was_written_against(version, expected):
    assert miw.seam_available(version) is expected


def test_seam_needs_the_hook(monkeypatch):
    assert miw.seam_available("2.21.5") is True  # the installed core has it
    monkeypatch.delattr(miw.basic.AnsibleModule, "_record_module_result")
    assert miw.seam_available("2.21.5") is False


@pytest.mark.parametrize("value, wanted", [
    (None, True), ("true", True), ("1", True), ("yes", True), ("", True),
    ("false", False), ("False", False), ("0", False), ("no", False), ("off", False), (" OFF ", False),
])
def test_in_worker_switch(value, wanted):
    environ = {} if value is None else {"BYOK_MODULES_IN_WORKER": value}
    assert miw.in_worker_wanted(environ) is wanted


def _status_of(action):
    pid = os.fork()
    if pid == 0:
        action()
        os._exit(0)
    return os.waitpid(pid, 0)[1]


@pytest.mark.parametrize("action, expected", [
    (lambda: os._exit(0), (0, "exited with status 0")),
    (lambda: os._exit(3), (3, "exited with status 3")),
    (lambda: os.kill(os.getpid(), signal.SIGKILL), (137, "killed by SIGKILL")),
    (lambda: os.kill(os.getpid(), signal.SIGTERM), (143, "killed by SIGTERM")),
    (lambda: os.kill(os.getpid(), signal.SIGUSR1), (128 + signal.SIGUSR1, "killed by SIGUSR1")),
])
def test_describe_exit(action, expected):
    assert miw.describe_exit(_status_of(action)) == expected


def test_read_all_reads_every_pipe_to_the_end():
    pipes = {name: os.pipe() for name in ("result", "stdout", "stderr")}
    big = b"x" * (1 << 20)  # more than a pipe holds: the reader must drain all pipes together
    pid = os.fork()
    if pid == 0:
        for ends in pipes.values():
            os.close(ends[0])
        for name, (dummy, write_fd) in pipes.items():
            data = big if name == "stderr" else name.encode()
            while data:
                data = data[os.write(write_fd, data):]
            os.close(write_fd)
        os._exit(0)
    for ends in pipes.values():
        os.close(ends[1])
    out = miw._read_all({name: ends[0] for name, ends in pipes.items()})  # pylint: disable=protected-access
    os.waitpid(pid, 0)
    assert out == {"result": b"result", "stdout": b"stdout", "stderr": big}
