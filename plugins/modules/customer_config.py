#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: customer_config
short_description: Validate a customer's BYOK inventory variables and derive keys, principals and resources
version_added: 0.1.0
description:
  - Checks the C(byok_*) variables of one Mattermost Cloud Dedicated customer before anything touches AWS,
    and returns the normalized configuration every other step of the BYOK flow uses.
  - Every problem is reported at once, each naming the variable (for example C(byok_keys.rds) or
    C(byok_services[2])) and the fix.
  - Makes no AWS call. Keys must be full KMS key ARNs; aliases and bare key ids are refused because they resolve in
    the caller's account, which is the wrong key across accounts.
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  customer:
    description: Name of the customer (the inventory host name).
    type: str
    required: true
  variables:
    description:
      - The customer's C(byok_*) variables, as a mapping of variable name to value.
      - C(byok_customer_account_id), C(byok_provider_account_id), C(byok_environment), C(byok_region),
        C(byok_vpc_id), C(byok_kops_cluster_id), C(byok_services), C(byok_keys) are required;
        C(byok_s3_buckets), C(byok_rds_clusters) and C(byok_kops_state_store) are required for the services that use them.
      - See the C(byok_config) role's argument specification for each variable.
    type: dict
    required: true
attributes:
  check_mode:
    support: full
    description: Reads nothing and changes nothing in either mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to diff.
  idempotent:
    support: full
    description: The same input gives the same result.
"""

EXAMPLES = r"""
- name: Validate the customer's BYOK variables
  mattermost.byok.customer_config:
    customer: "{{ inventory_hostname }}"
    variables: "{{ dict(_names | zip(query('ansible.builtin.vars', *_names))) }}"
  vars:
    _names: "{{ query('ansible.builtin.varnames', '^byok_') }}"
  register: byok_config
"""

RETURN = r"""
config:
  description: The normalized configuration.
  returned: success
  type: dict
  contains:
    customer:
      description: Customer name.
      type: str
      sample: acme
    services:
      description: Enabled services, in the order they are applied.
      type: list
      elements: str
      sample: [s3, rds, ebs]
    service_keys:
      description: Key ARN per enabled service.
      type: dict
      sample: {s3: "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"}
    distinct_keys:
      description: Each key once, with its region and the services that use it.
      type: list
      elements: dict
    rds_clusters:
      description: RDS clusters or instances with their region and the key they must be on.
      type: list
      elements: dict
    principals:
      description: Provider-side IAM principals that use the key (provisioning user, kops node and control-plane roles).
      type: dict
    kops_cluster_name:
      description: The kops cluster name, C(<cluster id>-kops.k8s.local).
      type: str
      sample: acme01-kops.k8s.local
    maintenance_windows:
      description: The customer's maintenance windows (UTC, C(ddd:hh:mm-ddd:hh:mm)); empty when none is declared.
      type: list
      elements: str
      sample: ["sun:02:00-sun:06:00"]
    rds_strategy:
      description: How the database moves to the key, C(blue_green) or C(snapshot_restore).
      type: str
      sample: blue_green
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mattermost.byok.plugins.module_utils.fleet.customer_config import CustomerConfigError
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.customer_config import validate_customer


def main():
    module = AnsibleModule(
        argument_spec=dict(customer=dict(type="str", required=True), variables=dict(type="dict", required=True)),
        supports_check_mode=True,
    )
    try:
        config = validate_customer(module.params["customer"], module.params["variables"])
    except CustomerConfigError as e:
        module.fail_json(msg=str(e), errors=e.errors)
    module.exit_json(changed=False, config=config)


if __name__ == "__main__":
    main()
