# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files of the run's reports, written by many forked workers at once (one per customer)."""

from __future__ import annotations

import os


def make_parents(directory):
    """Create `directory` and its missing parents; returns the ones this call created (parents first).

    Workers of a fleet run create the same report directories at the same moment: a directory that another process
    created between the look and the mkdir is there, which is all that is wanted (os.makedirs(exist_ok=True) would do
    too, but would not say which ones were new, and only those get the directory mode)."""
    missing = []
    while directory and not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    created = []
    for path in reversed(missing):
        try:
            os.mkdir(path)
        except FileExistsError:
            if not os.path.isdir(path):
                raise
            continue
        created.append(path)
    return created
