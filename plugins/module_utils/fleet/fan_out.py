# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One module call for all of a customer's resources of a step: each resource on a bounded thread pool.

Each task costs every customer of a fleet run a worker process and a templating pass; a loop costs one module run
per item. A module given the customer's whole list runs the same per-resource function for each resource here,
and returns one result per resource in the list's order.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable
from typing import Iterable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def fan_out(work: Callable[[T], R], items: Iterable[T], max_workers: int) -> list[R]:
    """work(item) for every item, at most `max_workers` at a time; the results in the items' order.

    `work` turns its own expected errors into a result (one resource's failure must not hide the others'
    outcomes); an unexpected exception is raised here once every item has finished.
    """
    items = list(items)
    if not items:
        return []
    if max_workers < 1:
        raise ValueError("max_workers: at least 1")
    if len(items) == 1 or max_workers == 1:  # no thread for the common single-resource customer
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(items)), thread_name_prefix="byok-fan-out") as pool:
        futures = [pool.submit(work, item) for item in items]
    return [future.result() for future in futures]
