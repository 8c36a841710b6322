# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline stand-in for the get-pip.py bootstrap that ansible-test downloads for its sanity virtualenvs.

ansible-test runs `python get_pip.py <pip options> <packages> [--no-setuptools] [--no-wheel]` in a fresh venv
without pip. This installs pip from the interpreter's bundled wheel (ensurepip), then the packages from the
configured package index, so no request goes to ci-files.testing.ansible.com.
"""

from __future__ import annotations

import subprocess
import sys

GET_PIP_ONLY = ("--no-setuptools", "--no-wheel")


def main() -> int:
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
    args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
    return subprocess.call([sys.executable, "-m", "pip", "install"] + args)


if __name__ == "__main__":
    sys.exit(main())
