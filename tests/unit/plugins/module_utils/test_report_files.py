# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""report_files.make_parents raced by forked processes, as a fleet run's workers do when every customer's report
goes under the same new directory (a run of 200 customers once lost one to "[Errno 17] File exists")."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.fleet import report_files

WORKERS = 8
ROUNDS = 40


def _race(barrier, directory, results):
    barrier.wait()
    try:
        results.put(("ok", report_files.make_parents(directory)))
    except OSError as e:
        results.put(("error", repr(e)))


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # the workers only mkdir
def test_workers_racing_on_the_same_new_directories(tmp_path):
    context = multiprocessing.get_context("fork")
    errors, created_once = [], True
    for n in range(ROUNDS):
        directory = str(tmp_path / f"run-{n}" / "reports" / "customers")
        barrier, results = context.Barrier(WORKERS), context.Queue()
        workers = [context.Process(target=_race, args=(barrier, directory, results)) for dummy in range(WORKERS)]
        for worker in workers:
            worker.start()
        outcomes = [results.get(timeout=30) for dummy in workers]
        for worker in workers:
            worker.join(timeout=30)
        errors += [detail for status, detail in outcomes if status == "error"]
        created = [path for status, paths in outcomes if status == "ok" for path in paths]
        # Each directory made exactly once, by one of the workers; all of them there.
        created_once = created_once and sorted(created) == sorted(set(created))
        assert os.path.isdir(directory)
    assert errors == []
    assert created_once


def test_creates_only_what_is_missing(tmp_path):
    (tmp_path / "a").mkdir()
    target = tmp_path / "a" / "b" / "c"
    assert report_files.make_parents(str(target)) == [str(tmp_path / "a" / "b"), str(target)]
    assert report_files.make_parents(str(target)) == []


def test_a_file_in_the_way_is_an_error(tmp_path):
    (tmp_path / "a").write_text("not a directory")
    with pytest.raises(OSError):
        report_files.make_parents(str(tmp_path / "a" / "b"))
