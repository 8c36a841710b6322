# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter: may a disruptive BYOK step run for this customer now?"""

from __future__ import annotations

DOCUMENTATION = r"""
name: disruption_decision
short_description: Whether a disruptive BYOK step may run now for a customer
version_added: 0.2.0
author:
  - Mattermost Infrastructure SRE (@mattermost)
description:
  - A disruptive step (database cutover with downtime, switchover, node rolling update) runs only when the run allows
    disruption and, if the customer declares maintenance windows, one of them is open with enough time left.
  - Windows are in UTC and written like RDS maintenance windows, C(ddd:hh:mm-ddd:hh:mm); they may wrap around the week.
  - A customer without a window relies on the run's permission alone.
options:
  _input:
    description: The customer's normalized configuration (the C(byok_config_customer) fact); reads C(maintenance_windows).
    type: dict
    required: true
  allow:
    description: The run's permission (C(byok_allow_disruption)).
    type: bool
    default: false
  now:
    description: The moment to decide for, ISO 8601 (default the current time); for plans and tests.
    type: str
  needed_minutes:
    description: Minutes of the window the step needs; a window closing sooner does not count.
    type: int
    default: 0
"""

EXAMPLES = r"""
- name: Decide whether the database cutover may run now
  ansible.builtin.set_fact:
    byok_disruption: "{{ byok_config_customer | mattermost.byok.disruption_decision(allow=byok_allow_disruption, needed_minutes=30) }}"
"""

RETURN = r"""
_value:
  description:
    - C(allowed), C(reason) (one line for the report), C(in_window) (null without windows), C(minutes_left),
      C(next_window_in_minutes), C(windows), C(now).
  type: dict
"""

import datetime

from ansible.errors import AnsibleFilterError

from ansible_collections.mattermost.byok.plugins.module_utils.fleet.maintenance_window import InvalidWindow
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.maintenance_window import disruption_decision as _decide
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.maintenance_window import normalize_windows


def disruption_decision(config, allow=False, now=None, needed_minutes=0):
    if not isinstance(config, dict):
        raise AnsibleFilterError("disruption_decision: the input must be the customer's configuration (byok_config_customer)")
    try:
        windows = normalize_windows(config.get("maintenance_windows"))
        when = datetime.datetime.now(datetime.timezone.utc)
        if now:
            when = datetime.datetime.fromisoformat(str(now).replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=datetime.timezone.utc)
    except (InvalidWindow, ValueError) as e:
        raise AnsibleFilterError(f"disruption_decision: {e}") from e
    return _decide(windows, bool(allow), when, int(needed_minutes))


class FilterModule:
    def filters(self):
        return {"disruption_decision": disruption_decision}
