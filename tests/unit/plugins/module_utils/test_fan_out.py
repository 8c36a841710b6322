# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import threading
import time

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.fleet.fan_out import fan_out


def test_results_keep_the_order_of_the_items():
    # The later items finish first: the order is the list's, not the finishing order.
    assert fan_out(lambda n: (time.sleep(0.01 * (5 - n)), n * 10)[1], range(5), 5) == [0, 10, 20, 30, 40]


@pytest.mark.parametrize("bound", [1, 2, 3])
def test_no_more_than_the_bound_run_at_once(bound):
    lock, running, peak = threading.Lock(), [0], [0]

    def work(item):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return item

    assert fan_out(work, range(8), bound) == list(range(8))
    assert peak[0] <= bound
    if bound > 1:
        assert peak[0] > 1  # it does fan out


def test_a_single_item_runs_in_the_calling_thread():
    assert fan_out(lambda _: threading.current_thread().name, ["one"], 4) == [threading.main_thread().name]


def test_no_items():
    assert not fan_out(lambda item: item, [], 4)


def test_an_unexpected_error_is_raised_after_every_item_finished():
    done = []

    def work(item):
        if item == 0:
            raise RuntimeError("boom")
        time.sleep(0.02)
        done.append(item)
        return item

    with pytest.raises(RuntimeError, match="boom"):
        fan_out(work, range(4), 4)
    assert sorted(done) == [1, 2, 3]


def test_a_bound_below_one_is_refused():
    with pytest.raises(ValueError):
        fan_out(lambda item: item, [1, 2], 0)
