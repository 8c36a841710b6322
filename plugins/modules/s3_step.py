#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_step
short_description: The S3 step of a customer in one task - server setting, canaries, batch rounds, records
version_added: 0.1.0
description:
  - Runs on the controller (an action) the modules of the S3 step one after another, each as its own task would run
    it, for one customer. The C(mattermost.byok.byok_s3) role is this one task.
  - With O(server_setting_stopgap), first M(mattermost.byok.mattermost_server_setting) turns the servers' SSE setting off
    in their custom resources (check mode and diff as that module's).
  - M(mattermost.byok.mattermost_server_info) reads what each Mattermost server sends with its uploads; the result is
    kept as the fact C(byok_s3_server) (C(installations), C(buckets), C(findings)).
  - With O(canary), M(mattermost.byok.s3_server_canary) as each installation's server on each of its buckets among
    O(buckets), before any object changes. Every pair is tried; when any fails the step stops with the failed ones'
    messages, one a line, before any object changes.
  - Then rounds of M(mattermost.byok.s3_bucket_kms) - one call for every bucket still pending, time-boxed to
    O(batch_seconds) - printing each bucket's progress line after each round, until no bucket is pending (finished,
    or waiting for the confirmation of its S3 Batch Operations job) or O(max_rounds) rounds ran. In check mode, one
    round without a time box (every object counted). Each bucket's latest result is kept as the fact C(byok_s3_latest)
    (bucket to C(complete), C(pass_totals), C(skipped_objects), C(cutoff), C(jobs_awaiting_confirmation)), also when
    the step fails.
  - With O(canary), the canaries again once the objects are re-encrypted.
  - Appends one record per bucket to C(byok_step_results) (C(step) C(s3), C(resource), C(changed), C(status) -
    C(done), C(in_progress) or C(server_sends_sse_s3) - C(summary), C(findings), C(canary)).
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  buckets:
    description: The customer's buckets (C(byok_config_customer.s3_buckets)).
    type: list
    elements: str
    required: true
  key_arn:
    description: Full ARN of the customer's S3 key.
    type: str
    required: true
  installations:
    description: The customer's Mattermost installations, for M(mattermost.byok.mattermost_server_info) and the stopgap.
    type: list
    elements: dict
    default: []
  canary_installations:
    description:
      - The installations the canaries act as (C(byok_s3_installations)); each one's C(s3_identity_arn) and
        C(canary_credentials) are used, and errors name C(byok_mattermost_installations[<index in this list>]).
    type: list
    elements: dict
    default: []
  canary:
    description: Run the canary as each installation's server before and after the objects are re-encrypted.
    type: bool
    default: true
  server_sse:
    description:
      - The server's SSE setting per installation id, where known, for the canary; otherwise the setting read from
        its custom resource, else the installation's C(sse_enabled), else the provisioner's rule (forced on; off for
        C(bifrost)).
    type: dict
    default: {}
  kubectl:
    description: kubectl that reads (and with the stopgap, changes) the Mattermost custom resources.
    type: str
    default: kubectl
  server_setting_unreadable:
    description: The O(mattermost.byok.mattermost_server_info#module:on_unreadable) of the setting's read.
    type: str
    choices: [fail, provisioner_rule]
    default: fail
  server_setting_stopgap:
    description:
      - Set C(MM_FILESETTINGS_AMAZONS3SSE) off in each installation's custom resource before the setting is read. While
        set, an object's time is never trusted for a bucket (the provisioner may turn the setting back on at any time).
    type: bool
    default: false
  batch_seconds:
    description: Seconds of copying per round (the O(mattermost.byok.s3_bucket_kms#module:max_seconds)); not used in check mode.
    type: int
    default: 300
  max_rounds:
    description: Most batch rounds in one run; a later run resumes from the checkpoint.
    type: int
    default: 200
  bucket_options:
    description:
      - Options of M(mattermost.byok.s3_bucket_kms) for every round (C(concurrency), C(engine), C(checkpoint_bucket),
        ...), passed as given. The step sets C(buckets), C(key_arn), C(max_seconds) and the AWS options itself.
    type: dict
    default: {}
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: Each module runs in check mode; one round counts every object; the records say what would be done.
  diff_mode:
    support: full
    description: The diffs of the stopgap and of the buckets' configuration.
  idempotent:
    support: full
    description: A customer already on the key is C(changed=false).
notes:
  - Runs only through its action on the controller; it needs the task's variables (C(byok_step_results)).
"""

EXAMPLES = r"""
- name: S3 - re-encrypt every bucket of the customer, with the canaries before and after
  mattermost.byok.s3_step:
    buckets: "{{ byok_config_customer.s3_buckets }}"
    key_arn: "{{ byok_config_customer.service_keys.s3 }}"
    installations: "{{ byok_config_customer.mattermost_installations }}"
    canary_installations: "{{ byok_config_customer.mattermost_installations }}"
    bucket_options:
      checkpoint_bucket: "{{ byok_config_customer.kops_state_store.bucket }}"
      deny_other_keys: true
  register: byok_s3_step
"""

RETURN = r"""
server:
  description: What M(mattermost.byok.mattermost_server_info) read (also the fact C(byok_s3_server)).
  returned: always
  type: dict
canary:
  description: Every canary's result (M(mattermost.byok.s3_server_canary)), before then after, each with its C(bucket).
  returned: when O(canary)
  type: list
  elements: dict
rounds:
  description: How many batch rounds ran.
  returned: success
  type: int
bucket_results:
  description: Each bucket's latest result of M(mattermost.byok.s3_bucket_kms), by bucket (C(progress_line), C(requests), ...).
  returned: always
  type: dict
records:
  description: The records appended to C(byok_step_results), one per bucket.
  returned: success
  type: list
  elements: dict
"""

from ansible_collections.mattermost.byok.plugins.module_utils.aws.module import ByokModule

ARGUMENT_SPEC = dict(
    buckets=dict(type="list", elements="str", required=True),
    key_arn=dict(type="str", required=True, no_log=False),
    installations=dict(type="list", elements="dict", default=[]),
    canary_installations=dict(type="list", elements="dict", default=[]),
    canary=dict(type="bool", default=True),
    server_sse=dict(type="dict", default={}),
    kubectl=dict(type="str", default="kubectl"),
    server_setting_unreadable=dict(type="str", choices=["fail", "provisioner_rule"], default="fail"),
    server_setting_stopgap=dict(type="bool", default=False),
    batch_seconds=dict(type="int", default=300),
    max_rounds=dict(type="int", default=200),
    bucket_options=dict(type="dict", default={}),
)


def main():
    module = ByokModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.fail_json(msg="mattermost.byok.s3_step runs only through its action on the controller (it runs the step's "
                         "modules and reads the task's variables); call it as a task, not as a module")


if __name__ == "__main__":
    main()
