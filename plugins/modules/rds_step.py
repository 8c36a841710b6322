#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rds_step
short_description: The RDS step of a customer's BYOK run in one task - every database onto its key, in rounds with progress
version_added: 0.1.0
description:
  - The step of the C(mattermost.byok.byok_rds) role as one task (an action on the controller). It moves the customer's
    databases (O(customer)) onto their keys with M(mattermost.byok.rds_reencrypt), in rounds of one time-boxed call
    for every database still pending, and prints after each round one line per database with its step, status and
    the seconds elapsed over all calls (for example C(acme-db) at step C(wait_green), status C(available), 241.0 s
    elapsed), noting a deferred switchover, a plan, or a run resumed where an earlier one stopped.
  - Rounds go on until no database is pending (each is complete or deferred) or O(max_calls) calls were made; a re-run
    resumes. In check mode, and for a C(snapshot_restore) that may not disrupt now (its plan only), one round of
    planning calls that change nothing.
  - A global database (C(rds_global_cluster) of O(customer)) is moved as one, through its primary (the member in the
    customer's home region), each member on its own region's key; other databases one by one on their own keys.
  - When O(allow_disruption) is true, outside check mode, the cut-over is announced before the first call and after
    the last round as the C(mattermost.byok.byok_announce) role does (job output, Mattermost webhook
    C(byok_mattermost_webhook_url), appended to the C(byok_announcements) fact). A C(before) announcement that cannot be
    posted stops the step before any call.
  - Appends one record per database (a global database as one) to the C(byok_step_results) fact - step, resource,
    changed, disruptive, deferred, estimated_disruption_seconds, summary.
  - Runs only through its action on the controller; the module itself refuses to run.
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  customer:
    description:
      - The customer's normalized configuration (C(byok_config_customer), role C(mattermost.byok.byok_config)); its
        C(rds_clusters) (identifier, region, kind, key_arn), C(rds_global_cluster) and C(region) are read.
    type: dict
    required: true
  strategy:
    description: How to move a regional database (see M(mattermost.byok.rds_reencrypt)).
    type: str
    choices: [blue_green, snapshot_restore]
    default: blue_green
  allow_disruption:
    description:
      - Whether the disruptive steps (switchovers, the snapshot cut-over) may run now - the customer's C(byok_disruption.allowed).
      - When false, blue_green creates and verifies the green side and defers the switchover; snapshot_restore only
        plans (recorded as deferred).
    type: bool
    default: false
  time_box_seconds:
    description: Seconds per call before it returns to print progress.
    type: int
    default: 120
  max_calls:
    description: Most rounds of calls in one run; the next run resumes.
    type: int
    default: 120
  poll_seconds:
    description: Seconds between status reads while waiting.
    type: float
    default: 15
  switchover_timeout:
    description: Seconds AWS may take for a switchover before it rolls it back.
    type: int
    default: 300
  wait_timeout:
    description: Seconds one long step (snapshot, restore, green creation) may take before the call fails.
    type: int
    default: 7200
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: One round of plans (steps, renames, expected disruption); records the plan, changes nothing.
  diff_mode:
    support: full
    description: Each database's key before and after (the first call's).
  idempotent:
    support: full
    description: Databases already on their keys report C(changed=false).
"""

EXAMPLES = r"""
- name: Move each database onto its key, in rounds of time-boxed calls that print progress
  mattermost.byok.rds_step:
    customer: "{{ byok_config_customer }}"
    strategy: "{{ byok_rds_strategy }}"
    allow_disruption: "{{ byok_disruption.allowed | default(false) }}"
    time_box_seconds: 120
    max_calls: 120
"""

RETURN = r"""
records:
  description: The records appended to C(byok_step_results), one per database (a global database as one).
  returned: always
  type: list
  elements: dict
databases:
  description:
    - Per database identifier, over all calls - seconds, changed, measured (downtime_seconds, switchover_seconds) and
      last (the latest answer's step, status, complete, deferred, plan, strategy, retained_old, dr_exposure,
      prerequisites).
  returned: always
  type: dict
calls:
  description: How many rounds of calls were made.
  returned: always
  type: int
plan_only:
  description: True when the databases were only planned because snapshot_restore may not disrupt now.
  returned: always
  type: bool
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule


# The action's argument spec too (plugins/action/rds_step.py validates the task's arguments with it).
ARGUMENT_SPEC = dict(
    customer=dict(type="dict", required=True),
    strategy=dict(type="str", choices=["blue_green", "snapshot_restore"], default="blue_green"),
    allow_disruption=dict(type="bool", default=False),
    time_box_seconds=dict(type="int", default=120),
    max_calls=dict(type="int", default=120),
    poll_seconds=dict(type="float", default=15),
    switchover_timeout=dict(type="int", default=300),
    wait_timeout=dict(type="int", default=7200),
)


def main():
    module = AnsibleAWSModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.fail_json(msg="mattermost.byok.rds_step runs only through its action on the controller (one task per "
                         "customer that runs mattermost.byok.rds_reencrypt in rounds)")


if __name__ == "__main__":
    main()
