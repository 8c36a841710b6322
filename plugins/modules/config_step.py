#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: config_step
short_description: The configuration step of one customer's BYOK run, as one task
version_added: 0.3.0
description:
  - The C(byok_config) role's one task. In order, it validates the roles' arguments (as M(ansible.builtin.validate_argument_spec)
    does) and the customer's C(byok_*) variables (as M(mattermost.byok.customer_config) does), with no AWS call; then, with
    O(assume_role_arn), assumes the automation role (as M(mattermost.byok.assume_role) does).
  - It sets the facts the later steps read, C(byok_config_customer), C(byok_config_aws_credentials), C(byok_run_services) and
    C(byok_disruption) (M(mattermost.byok.disruption_decision)). The credentials are facts only, never in the task's result.
  - Runs on the controller, through its action plugin only.
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  customer:
    description: Name of the customer (the inventory host name).
    type: str
    required: true
  variables:
    description: The customer's C(byok_*) variables, as M(mattermost.byok.customer_config) takes them.
    type: dict
    required: true
  role_arguments:
    description: The argument specification (option name to its spec) the run's variables are validated against first.
    type: dict
  assume_role_arn:
    description: The automation role to assume in the provider account; none uses the controller's credentials.
    type: str
  assume_role_external_id:
    description: External id the role's trust policy requires, if any.
    type: str
  services_only:
    description: Narrows this run to these of the customer's services (C(byok_services_only)).
    type: list
    elements: str
    default: []
  allow_disruption:
    description: The run's permission for disruptive steps (C(byok_allow_disruption)).
    type: bool
    default: false
  disruption_needed_minutes:
    description: Minutes a disruptive step needs before the maintenance window closes.
    type: int
    default: 30
attributes:
  check_mode:
    support: full
    description: Validates and assumes the role in check mode too; nothing in AWS changes either way.
  diff_mode:
    support: none
    description: Nothing is edited.
  idempotent:
    support: full
    description: Always C(changed=false).
"""

EXAMPLES = r"""
- name: Validate the customer's variables and assume the automation role in the provider account
  mattermost.byok.config_step:
    customer: "{{ inventory_hostname }}"
    variables: "{{ dict(_names | zip(query('ansible.builtin.vars', *_names))) }}"
    assume_role_arn: arn:aws:iam::222222222222:role/mattermost-byok-automation
  vars:
    _names: "{{ query('ansible.builtin.varnames', '^byok_(?!key_material|mattermost_webhook|run_)') }}"
"""

RETURN = r"""
msg:
  description: The services of this run and whether disruption is allowed now.
  returned: success
  type: str
  sample: "acme: s3, rds, ebs in this run; disruption not allowed (disruption not allowed for this run ...)"
errors:
  description: Each problem of the customer's variables, naming the variable.
  returned: when the variables are invalid
  type: list
  elements: str
argument_errors:
  description: Each problem of the roles' arguments.
  returned: when the arguments are invalid
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

# The action's argument spec too (plugins/action/config_step.py validates the task's arguments with it).
ARGUMENT_SPEC = dict(
    customer=dict(type="str", required=True),
    variables=dict(type="dict", required=True),
    role_arguments=dict(type="dict"),
    assume_role_arn=dict(type="str"),
    assume_role_external_id=dict(type="str", no_log=True),
    services_only=dict(type="list", elements="str", default=[]),
    allow_disruption=dict(type="bool", default=False),
    disruption_needed_minutes=dict(type="int", default=30),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.fail_json(msg="mattermost.byok.config_step runs only through its action on the controller")


if __name__ == "__main__":
    main()
