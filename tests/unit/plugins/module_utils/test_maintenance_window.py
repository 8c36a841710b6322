# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import datetime

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mattermost.byok.plugins.filter.disruption_decision import disruption_decision as decision_filter
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.maintenance_window import InvalidWindow
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.maintenance_window import disruption_decision
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.maintenance_window import normalize_windows
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.maintenance_window import parse_window
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.maintenance_window import window_state

UTC = datetime.timezone.utc
# 2026-11-29 is a Sunday.
SUNDAY_0300 = datetime.datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def at(day, hh, mm=0):
    """A moment in the week of 2026-11-23 (Monday)."""
    return datetime.datetime(2026, 11, 23 + ("mon tue wed thu fri sat sun".split().index(day)), hh, mm, tzinfo=UTC)


@pytest.mark.parametrize("spec, expected", [
    ("mon:00:00-mon:01:00", (0, 60)),
    ("sun:02:00-sun:06:00", (6 * 1440 + 120, 6 * 1440 + 360)),
    ("sat:23:00-sun:03:00", (5 * 1440 + 1380, 6 * 1440 + 180)),
    ("sun:23:30-mon:00:30", (6 * 1440 + 1410, 30)),
    ("  Tue:10:15-Tue:11:45 ", (1440 + 615, 1440 + 705)),
])
def test_parse_window(spec, expected):
    assert parse_window(spec) == expected


@pytest.mark.parametrize("spec", [
    "sun:2:00-sun:06:00", "sunday:02:00-sunday:06:00", "sun:24:00-mon:01:00", "sun:02:60-sun:03:00",
    "sun:02:00", "sun:02:00-sun:02:00", "", None, 5, "02:00-06:00",
])
def test_parse_window_refuses(spec):
    with pytest.raises(InvalidWindow, match="byok_maintenance_window"):
        parse_window(spec)


def test_normalize_windows_one_or_many():
    assert normalize_windows(None) == []
    assert normalize_windows("") == []
    assert normalize_windows("SUN:02:00-SUN:06:00") == ["sun:02:00-sun:06:00"]
    assert normalize_windows(["sun:02:00-sun:06:00", "wed:01:00-wed:02:00"]) == ["sun:02:00-sun:06:00", "wed:01:00-wed:02:00"]
    with pytest.raises(InvalidWindow, match=r"byok_maintenance_window\[1\]"):
        normalize_windows(["sun:02:00-sun:06:00", "never"])


@pytest.mark.parametrize("spec, now, is_open, left, opens_in", [
    ("sun:02:00-sun:06:00", at("sun", 2), True, 240, 0),
    ("sun:02:00-sun:06:00", at("sun", 5, 59), True, 1, 0),
    ("sun:02:00-sun:06:00", at("sun", 6), False, 0, 7 * 1440 - 240),
    ("sun:02:00-sun:06:00", at("sun", 1, 30), False, 0, 30),
    ("sun:02:00-sun:06:00", at("mon", 0), False, 0, 6 * 1440 + 120),
    # Wrapping over the end of the week.
    ("sun:23:00-mon:01:00", at("sun", 23, 30), True, 90, 0),
    ("sun:23:00-mon:01:00", at("mon", 0, 30), True, 30, 0),
    ("sun:23:00-mon:01:00", at("mon", 1), False, 0, 7 * 1440 - 120),
    # Wrapping over midnight of a weekday.
    ("wed:22:00-thu:02:00", at("thu", 1), True, 60, 0),
])
def test_window_state(spec, now, is_open, left, opens_in):
    state = window_state(spec, now)
    assert (state["open"], state["minutes_left"], state["opens_in_minutes"]) == (is_open, left, opens_in)


def test_window_state_converts_other_time_zones_to_utc():
    # 04:00 in UTC+2 is 02:00 UTC: inside the window.
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    assert window_state("sun:02:00-sun:06:00", datetime.datetime(2026, 11, 29, 4, 0, tzinfo=plus_two))["open"]


def test_run_permission_comes_first():
    d = disruption_decision(["sun:02:00-sun:06:00"], False, SUNDAY_0300)
    assert not d["allowed"] and "byok_allow_disruption" in d["reason"]
    assert d["in_window"] is True


def test_inside_window_allowed():
    d = disruption_decision(["sun:02:00-sun:06:00"], True, SUNDAY_0300, needed_minutes=30)
    assert d["allowed"] and d["minutes_left"] == 180 and "inside" in d["reason"]


def test_outside_window_deferred_with_next_opening():
    d = disruption_decision(["sun:02:00-sun:06:00"], True, at("sat", 2))
    assert not d["allowed"] and d["next_window_in_minutes"] == 1440
    assert "outside the maintenance window" in d["reason"] and "1440 min" in d["reason"]


def test_window_closing_too_soon():
    d = disruption_decision(["sun:02:00-sun:06:00"], True, at("sun", 5, 50), needed_minutes=30)
    assert not d["allowed"] and "closes in 10 min" in d["reason"]


def test_any_open_window_counts():
    d = disruption_decision(["wed:01:00-wed:02:00", "sun:02:00-sun:06:00"], True, SUNDAY_0300)
    assert d["allowed"]


def test_no_window_relies_on_the_run():
    assert disruption_decision([], True, SUNDAY_0300)["allowed"]
    d = disruption_decision([], False, SUNDAY_0300)
    assert not d["allowed"] and d["in_window"] is None


def test_filter_reads_the_config_and_parses_now():
    config = {"maintenance_windows": ["sun:02:00-sun:06:00"]}
    assert decision_filter(config, allow=True, now="2026-11-29T03:00:00Z")["allowed"]
    assert not decision_filter(config, allow=True, now="2026-11-29T07:00:00")["allowed"]
    assert decision_filter({}, allow=True)["allowed"]


@pytest.mark.parametrize("config, now", [(None, None), ({"maintenance_windows": ["bad"]}, None), ({}, "yesterday")])
def test_filter_errors(config, now):
    with pytest.raises(AnsibleFilterError, match="disruption_decision"):
        decision_filter(config, allow=True, now=now)
