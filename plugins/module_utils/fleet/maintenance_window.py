# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Maintenance windows: may a disruptive step (database cutover, node roll) run for this customer now?

A window is written the way RDS writes PreferredMaintenanceWindow, in UTC: ``sun:02:00-sun:06:00``; it may wrap
around the end of the week (``sat:23:00-sun:03:00``). A customer may declare several. Pure: no AWS calls.
"""

from __future__ import annotations

import datetime
import re

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_WEEK = 7 * 24 * 60
WINDOW_RE = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)-(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)$")


class InvalidWindow(ValueError):
    pass


def parse_window(spec, field: str = "byok_maintenance_window") -> tuple[int, int]:
    """Start and end of `spec` as minutes since Monday 00:00 UTC; the end may be below the start (wraps)."""
    m = WINDOW_RE.match(spec.strip().lower()) if isinstance(spec, str) else None
    if not m:
        raise InvalidWindow(f"{field}: {spec!r} is not a window; write it in UTC as ddd:hh:mm-ddd:hh:mm, e.g. sun:02:00-sun:06:00")
    start = DAYS.index(m.group(1)) * 1440 + int(m.group(2)) * 60 + int(m.group(3))
    end = DAYS.index(m.group(4)) * 1440 + int(m.group(5)) * 60 + int(m.group(6))
    if start == end:
        raise InvalidWindow(f"{field}: {spec!r} is empty; its end must differ from its start")
    return start, end


def normalize_windows(value, field: str = "byok_maintenance_window") -> list[str]:
    """One window or a list of them, validated; None means the customer declared none."""
    if value is None or value == "" or value == []:
        return []
    items = value if isinstance(value, list) else [value]
    windows = []
    for i, spec in enumerate(items):
        parse_window(spec, field if not isinstance(value, list) else f"{field}[{i}]")
        windows.append(spec.strip().lower())
    return windows


def _minute_of_week(now: datetime.datetime) -> int:
    now = now.astimezone(datetime.timezone.utc)
    return now.weekday() * 1440 + now.hour * 60 + now.minute


def _length(start: int, end: int) -> int:
    return (end - start) % MINUTES_PER_WEEK


def window_state(spec: str, now: datetime.datetime) -> dict:
    """Whether `spec` is open at `now`, minutes left if so, minutes until it opens if not."""
    start, end = parse_window(spec)
    minute = _minute_of_week(now)
    since_start = (minute - start) % MINUTES_PER_WEEK
    length = _length(start, end)
    if since_start < length:
        return {"window": spec, "open": True, "minutes_left": length - since_start, "opens_in_minutes": 0}
    return {"window": spec, "open": False, "minutes_left": 0, "opens_in_minutes": MINUTES_PER_WEEK - since_start}


def disruption_decision(windows: list[str], allow_disruption: bool, now: datetime.datetime,
                        needed_minutes: int = 0) -> dict:
    """May a disruptive step start now? Both the run (allow_disruption) and the customer's window must say yes.

    A customer without a declared window relies on the run's permission alone: whoever allows disruption for such
    a customer has agreed the time with them. `needed_minutes` keeps a step from starting at the end of a window.
    """
    states = [window_state(w, now) for w in windows]
    open_states = [s for s in states if s["open"] and s["minutes_left"] >= needed_minutes]
    decision = {
        "allowed": False,
        "now": now.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "windows": windows,
        "in_window": bool(open_states) if windows else None,
        "minutes_left": max((s["minutes_left"] for s in open_states), default=0),
        "next_window_in_minutes": min((s["opens_in_minutes"] for s in states if not s["open"]), default=None),
    }
    if not allow_disruption:
        decision["reason"] = "disruption not allowed for this run (set byok_allow_disruption: true to allow it)"
    elif not windows:
        decision.update(allowed=True, reason="allowed by the run; the customer declares no maintenance window")
    elif open_states:
        decision.update(allowed=True, reason=f"inside the maintenance window, {decision['minutes_left']} min left")
    else:
        closing = [s for s in states if s["open"]]
        if closing:
            decision["reason"] = (f"the maintenance window closes in {closing[0]['minutes_left']} min, "
                                  f"less than the {needed_minutes} min the step needs")
        else:
            decision["reason"] = (f"outside the maintenance window ({', '.join(windows)} UTC); "
                                  f"the next opens in {decision['next_window_in_minutes']} min")
    return decision
