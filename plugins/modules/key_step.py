#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: key_step
short_description: Verify a customer's KMS keys, the provider's IAM access to them, and write the onboarding document
version_added: 0.2.0
description:
  - The key check of one customer as one task (the C(mattermost.byok.byok_key) role), run by its action on the
    controller. It runs the collection's modules one after another, as their own tasks would run them.
  - For an external key (C(key_source=external) in O(config)) with O(key_material) that belongs to this customer
    (O(material_customer)), imports the material into the key of O(external_alias) with
    M(mattermost.byok.kms_key_import), once per distinct key; outside check mode the alias must lead to a key the
    inventory names. The material is never in any output.
  - Checks each distinct key once with M(mattermost.byok.kms_policy_check), for the union of the services that use
    it, against the customer's saved policy from O(policies) or C(<policy_dir>/<key id>.json) (read on the
    controller), else the policy read from AWS.
  - When S3 is among the customer's services, reads each installation's canary credentials
    (M(mattermost.byok.s3_server_canary) with C(credentials_only)); unreadable ones stop the customer, every
    installation read first, before any change.
  - Checks the provider's principals' IAM permissions on each key with M(mattermost.byok.iam_kms_access), and gives
    the missing ones (O(iam_fix)) only for a key whose check passed.
  - Writes C(onboarding/<customer>.md) (from the role's C(onboarding.md.j2)) and C(key-checks/<customer>.json) to
    O(artifacts_dir), in check mode too; writing them is not reported as a change.
  - Fails when a key's check or its IAM check did not pass, with the summaries of what did not pass, one a line.
  - Sets the fact C(byok_key_kops_additional_policies), the IAM statements the kops roles need on the customer's
    keys by role (C(node), C(master)), merged over the keys, only the roles that need any; the EBS step writes them into
    the cluster spec.
  - Runs only through its action; the module itself refuses to run.
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  config:
    description:
      - The customer's normalized configuration (M(mattermost.byok.customer_config)) with the provider's principals
        that use the keys (the role's C(byok_key_config)). Gives C(distinct_keys), C(services), C(service_keys) and
        C(key_source).
    type: dict
    required: true
  artifacts_dir:
    description: Where the onboarding document and the key-check report go.
    type: path
    required: true
  key_material:
    description: For an external key, the customer's key material, base64 of 32 bytes.
    type: str
  material_customer:
    description: The customer O(key_material) belongs to; the material is used for that customer only. Defaults to this one.
    type: str
  external_alias:
    description: Alias of the provider key that holds the customer's material. Required with O(key_material).
    type: str
  material_expiration_model:
    description: Whether imported material expires.
    type: str
    choices: [KEY_MATERIAL_EXPIRES, KEY_MATERIAL_DOES_NOT_EXPIRE]
    default: KEY_MATERIAL_EXPIRES
  material_valid_days:
    description: How long each import of expiring material is valid.
    type: int
    default: 365
  min_material_validity_days:
    description: Imported material expiring sooner than this is re-imported, and is a warning of the check.
    type: int
    default: 30
  policies:
    description: Key policy documents by key ARN, as the customer sent them.
    type: dict
    default: {}
  policy_dir:
    description: Directory of key policy documents named C(<key id>.json), used for the keys O(policies) does not give.
    type: path
  probe:
    description: Use each key as the calling identity (DryRun encrypt, data-key round trip, DryRun grant).
    type: bool
    default: true
  installations:
    description: The Mattermost installations (C(byok_mattermost_installations)); those with C(canary_credentials) are read.
    type: list
    elements: dict
    default: []
  server_identities:
    description: The Mattermost servers' own S3 identities, checked on the keys S3 uses.
    type: list
    elements: str
    default: []
  automation_role_arn:
    description: The automation role the run assumes; only checked.
    type: str
  iam_fix:
    description: Give the provider's principals the IAM permissions they lack on a key whose check passed.
    type: bool
    default: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: Imports and IAM fixes are predicted, not made; the documents are written all the same.
  diff_mode:
    support: full
    description: The IAM changes' diffs.
  idempotent:
    support: full
    description: A second run imports nothing (unless the material expires soon) and changes no IAM policy.
"""

EXAMPLES = r"""
- name: Verify the customer's keys and stop this customer before any change when a key is not ready
  mattermost.byok.key_step:
    config: "{{ byok_key_config }}"
    artifacts_dir: "{{ byok_key_artifacts_dir }}"
    policies: "{{ byok_key_policies }}"
    policy_dir: "{{ byok_key_policy_dir }}"
    installations: "{{ byok_key_installations }}"
    server_identities: "{{ byok_key_server_identities }}"
"""

RETURN = r"""
msg:
  description: The summaries of every key's checks, joined by C(; ); when a key is not ready, those that did not pass, one a line.
  returned: always
  type: str
key_checks:
  description: What the key-check report holds, one record per distinct key (C(key_arn), C(services), C(passed), C(summary),
    C(key), C(policy_source), C(findings), C(verdicts), C(probe), and C(iam), the IAM check's result).
  returned: success
  type: list
  elements: dict
"""

from ansible_collections.mattermost.byok.plugins.module_utils.aws.module import ByokModule

# The options above (the action adds amazon.aws's own).
ARGUMENT_SPEC = dict(
    config=dict(type="dict", required=True),
    artifacts_dir=dict(type="path", required=True),
    key_material=dict(type="str", no_log=True),
    material_customer=dict(type="str"),
    external_alias=dict(type="str"),
    material_expiration_model=dict(type="str", choices=["KEY_MATERIAL_EXPIRES", "KEY_MATERIAL_DOES_NOT_EXPIRE"], default="KEY_MATERIAL_EXPIRES"),
    material_valid_days=dict(type="int", default=365),
    min_material_validity_days=dict(type="int", default=30),
    policies=dict(type="dict", default={}),
    policy_dir=dict(type="path"),
    probe=dict(type="bool", default=True),
    installations=dict(type="list", elements="dict", default=[]),
    server_identities=dict(type="list", elements="str", default=[]),
    automation_role_arn=dict(type="str"),
    iam_fix=dict(type="bool", default=True),
)
REQUIRED_BY = {"key_material": "external_alias"}


def main():
    module = ByokModule(argument_spec=ARGUMENT_SPEC, required_by=REQUIRED_BY, supports_check_mode=True)
    module.fail_json(msg="mattermost.byok.key_step runs only through its action on the controller (it runs other modules)")


if __name__ == "__main__":
    main()
