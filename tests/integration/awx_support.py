# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared by the offline AWX tests: the tools of the venv, and the awx.awx collection that awx/configure.yml uses."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COLLECTIONS = ROOT / ".collections"


def tool(name: str) -> str:
    return str(BIN / name)


def ensure_awx_collection() -> None:
    """awx.awx is not in ansible 14: awx/install-awx-collection takes it from PyPI's ansible 13 once (locked: the
    test workers share .collections)."""
    if (COLLECTIONS / "ansible_collections" / "awx" / "awx" / "MANIFEST.json").exists():
        return
    COLLECTIONS.mkdir(exist_ok=True)
    with open(COLLECTIONS / ".awx-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run([str(ROOT / "awx" / "install-awx-collection"), str(COLLECTIONS)], check=True, capture_output=True,
                       text=True, timeout=300, env={**os.environ, "PYTHON": sys.executable})


def ansible_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CONTROLLER_", "TOWER_"))}
    env.update({
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    })
    env.update(extra)
    return env
