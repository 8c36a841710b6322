# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter: the key-policy statements a customer adds to one BYOK key."""

from __future__ import annotations

DOCUMENTATION = r"""
name: key_policy_statements
short_description: The key-policy statements a BYOK customer adds to their KMS key
version_added: 0.1.0
author:
  - Mattermost Infrastructure SRE (@mattermost)
description:
  - Renders, for one customer key, the statements the customer must add to the key policy so that the provider's
    principals can encrypt the customer's EBS volumes (kops), Aurora/RDS clusters and S3 objects with it.
  - First the two statements of the Mattermost Cloud Dedicated BYOK runbook, exactly as the runbook prints them
    (key use for the provisioning user and for the kops nodes role), marked RV(_value[].documented=true).
  - Then the statements AWS also requires that the runbook lacks, each with a one-line reason, only for the
    services that need them; key use for the kops control-plane role C(masters.<cluster>) (EBS),
    C(kms:CreateGrant)/C(kms:ListGrants)/C(kms:RevokeGrant) restricted to grants for AWS resources (EBS and Aurora),
    and a C(kms:CreateGrant) restricted to the provider account's Auto Scaling service-linked role and a fixed list of
    grant operations (EBS), so the provider can create that role's grant from its own account.
  - S3 does not use grants; a key that serves only S3 gets the runbook's two statements and nothing else.
  - See C(docs/key-policy.md) in the collection for why each statement exists and the AWS documentation behind it.
options:
  _input:
    description:
      - The customer's normalized configuration, as returned by M(mattermost.byok.customer_config) (the
        C(byok_config_customer) fact of the C(mattermost.byok.byok_config) role).
      - Needs C(principals), C(services), C(provider_account_id) and C(region); C(distinct_keys) is used to find the
        services and region of O(key_arn).
    type: dict
    required: true
  key_arn:
    description:
      - The ARN of the key whose policy the statements go into; it fills the C(Resource) element.
      - When it is one of the customer's keys (C(distinct_keys)), only the services that use that key are covered.
      - The default V(*) means "this key" inside a key policy, and covers all the customer's services.
    type: str
    default: "*"
  services:
    description:
      - The services the key serves, overriding what the configuration says for O(key_arn).
    type: list
    elements: str
    choices: [s3, rds, ebs]
  only:
    description:
      - V(all) returns every statement, V(documented) only the runbook's two, V(missing) only those the runbook lacks.
    type: str
    choices: [all, documented, missing]
    default: all
seealso:
  - module: mattermost.byok.customer_config
  - module: mattermost.byok.kms_policy_check
"""

EXAMPLES = r"""
- name: Show the statements the customer adds to the key that serves every service
  ansible.builtin.debug:
    msg: "{{ byok_config_customer | mattermost.byok.key_policy_statements }}"

- name: The JSON to paste into the key policy's Statement list, for one key
  ansible.builtin.debug:
    msg: >-
      {{ byok_config_customer
         | mattermost.byok.key_policy_statements(key_arn=byok_config_customer.distinct_keys[0].arn)
         | map(attribute='statement') | to_nice_json(sort_keys=false) }}

- name: Only the statements the runbook does not list, with why AWS needs them
  ansible.builtin.debug:
    msg: "{{ item.sid }}: {{ item.reason }}"
  loop: "{{ byok_config_customer | mattermost.byok.key_policy_statements(only='missing') }}"
"""

RETURN = r"""
_value:
  description: The statements, in the order they go into the key policy.
  type: list
  elements: dict
  contains:
    sid:
      description: The statement's C(Sid); stable, so a checker can name the statement to add.
      type: str
      sample: Allow use of the key
    statement:
      description: The policy statement (C(Sid), C(Effect), C(Principal), C(Action), C(Resource), and C(Condition) where there is one).
      type: dict
      sample:
        Sid: Allow use of the key
        Effect: Allow
        Principal:
          AWS: arn:aws:iam::222222222222:user/mattermost-cloud-prod-provisioning-vpc-0ac0e000000000001
        Action: ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
        Resource: "*"
    documented:
      description: Whether the statement is one of the two the BYOK runbook lists.
      type: bool
    services:
      description: The services (among those of the key) that need the statement.
      type: list
      elements: str
      sample: [rds, ebs]
    reason:
      description: One line on why the statement is needed.
      type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.mattermost.byok.plugins.module_utils.kms.onboarding_policy import key_policy_statements as render

ONLY = ("all", "documented", "missing")
REQUIRED = ("principals", "services", "provider_account_id", "region")


def key_policy_statements(config, key_arn="*", only="all", services=None):
    """The statements for one key of the customer (see DOCUMENTATION)."""
    if not isinstance(config, dict):
        raise AnsibleFilterError(f"key_policy_statements: the input must be the customer's normalized config (a dict), not {type(config).__name__}")
    missing = [name for name in REQUIRED if name not in config]
    if missing:
        raise AnsibleFilterError(f"key_policy_statements: the input lacks {', '.join(missing)}; "
                                 "give the config of mattermost.byok.customer_config (byok_config_customer)")
    if only not in ONLY:
        raise AnsibleFilterError(f"key_policy_statements: only={only!r} is not one of {', '.join(ONLY)}")
    region = config["region"]
    key = next((k for k in config.get("distinct_keys") or [] if k.get("arn") == key_arn), None)
    if services is None:
        services = key["services"] if key else config["services"]
    if key:
        region = key.get("region", region)
    try:
        statements = render(config["principals"], list(services), config["provider_account_id"], region, key_arn)
    except ValueError as e:
        raise AnsibleFilterError(f"key_policy_statements: {e}") from e
    if only == "documented":
        return [s for s in statements if s["documented"]]
    if only == "missing":
        return [s for s in statements if not s["documented"]]
    return statements


class FilterModule:
    """mattermost.byok filters for key policies."""

    def filters(self):
        return {"key_policy_statements": key_policy_statements}
