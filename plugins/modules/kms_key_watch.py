#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kms_key_watch
short_description: Watch a Mattermost Cloud Dedicated customer's KMS keys and what depends on them
version_added: 0.1.0
description:
  - Reads, for one customer, every key (state, key manager, region, deletion date, imported material expiry), uses
    each enabled key as the calling identity (the live probe of M(mattermost.byok.kms_policy_check)), evaluates the
    key policy where KMS lets the provider read it (a key of the provider's own account, such as an imported external
    key), looks for the Auto Scaling grant, and reads the dependents (bucket default encryption, databases and their
    instances, the kops cluster's launch templates).
  - Returns findings with a severity (C(critical), C(warning), C(info)) and a sentence saying what stops working and
    when, and, compared with the state the last run kept, the alerts to post (new, changed severity, resolved).
  - Read-only, one call per customer; the reads are fanned out over a thread pool.
  - A key policy of the customer's account can't be read by the provider (KMS allows GetKeyPolicy in the key's own
    account only), so a statement removed there for a provider principal other than the calling one is not seen.
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  config:
    description: The customer's normalized configuration, as returned by M(mattermost.byok.customer_config).
    type: dict
    required: true
  expiry_warning_days:
    description: Imported key material expiring within this many days is a C(warning).
    type: int
    default: 30
  probe:
    description: Use each enabled key as the calling identity (encrypt DryRun, data key round trip, DryRun grant).
    type: bool
    default: true
  state_bucket:
    description:
      - Bucket of the provider account holding the state the last run kept; omit to treat every finding as new.
    type: str
  state_key:
    description: Object key of the customer's kept state in O(state_bucket).
    type: str
  concurrency:
    description: How many AWS calls run at once.
    type: int
    default: 8
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to diff.
  idempotent:
    support: full
    description: Changes nothing.
"""

EXAMPLES = r"""
- name: Watch the customer's keys
  mattermost.byok.kms_key_watch:
    config: "{{ byok_config_customer }}"
    state_bucket: mattermost-kops-state-demo
    state_key: "byok-key-watch/{{ inventory_hostname }}.json"
  register: watch

- name: Show the critical findings
  ansible.builtin.debug:
    msg: "{{ watch.findings | selectattr('severity', 'eq', 'critical') | map(attribute='message') | list }}"

- name: Show each key's state and days to its nearest deadline
  ansible.builtin.debug:
    msg: "{{ watch.customer_keys | map(attribute='state') | zip(watch.customer_keys | map(attribute='days_to_deadline')) | list }}"
"""

RETURN = r"""
customer_keys:
  description: One record per key, most urgent first, with its state, deadline, probe, grant, dependents and findings.
  returned: always
  type: list
  elements: dict
findings:
  description: Every finding of every key (C(id), C(severity), C(code), C(key_arn), C(message), C(fix)).
  returned: always
  type: list
  elements: dict
alerts:
  description: Findings to post now (C(event) is C(new), C(changed) or C(resolved)).
  returned: always
  type: list
  elements: dict
state:
  description: The alerted findings by id, for the next run to compare with.
  returned: always
  type: dict
previous_state:
  description: The state the last run kept, or null when it could not be read.
  returned: always
  type: dict
previous_state_note:
  description: C(read), or why the kept state could not be read (then every finding counts as new).
  returned: always
  type: str
seconds:
  description: Time the reads took.
  returned: always
  type: float
"""

import datetime

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # handled by ByokModule

from ansible_collections.mattermost.byok.plugins.module_utils.kms import key_watch
from ansible_collections.mattermost.byok.plugins.module_utils.aws.module import ByokModule


def main():
    module = ByokModule(
        argument_spec=dict(
            config=dict(type="dict", required=True),
            expiry_warning_days=dict(type="int", default=30),
            probe=dict(type="bool", default=True),
            state_bucket=dict(type="str"),
            state_key=dict(type="str", no_log=False),
            concurrency=dict(type="int", default=8),
        ),
        required_together=[("state_bucket", "state_key")],
        supports_check_mode=True,
    )
    p = module.params
    if p["expiry_warning_days"] < 0:
        module.fail_json(msg="expiry_warning_days: must be 0 or more days")
    if p["concurrency"] < 1:
        module.fail_json(msg="concurrency: must be at least 1")
    module.require_config(p["config"], ("customer", "region", "services", "distinct_keys", "principals", "s3_buckets",
                                        "rds_clusters", "provider_account_id"))
    client = module.client_cache(max_pool_connections=p["concurrency"])

    try:
        caller = client("sts", p["config"]["region"]).get_caller_identity(aws_retry=True)["Arn"]
    except (ClientError, BotoCoreError) as e:
        module.fail_json_aws(e, msg="Cannot tell who the caller is (sts:GetCallerIdentity)")
    now = datetime.datetime.now(datetime.timezone.utc)
    result = key_watch.CustomerWatch(p["config"], client, caller, now, p["expiry_warning_days"], p["concurrency"], p["probe"]).run()
    if p["state_bucket"]:
        previous, note = key_watch.read_kept_state(client("s3", p["config"]["region"]), p["state_bucket"], p["state_key"])
    else:
        previous, note = None, "no state_bucket given: every finding is new"
    result.update(previous_state=previous, previous_state_note=note, alerts=key_watch.alerts(previous, result["findings"]))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
