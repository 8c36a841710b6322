#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kms_policy_check
short_description: Verify a customer's KMS key before anything is encrypted with it
version_added: 0.1.0
description:
  - Checks that a customer's KMS key can serve BYOK for the services enabled for that customer, and names the fix
    for every problem.
  - B(Key metadata) - exists, enabled, symmetric C(ENCRYPT_DECRYPT), in the resources' region (or names the
    multi-Region replica there), not pending deletion or import, imported key material not about to expire, not
    AWS managed; rotation status.
  - B(Key policy) - for every principal and action the services need (the provisioning user, the kops node and
    control-plane roles, the Mattermost servers' own S3 identities listed in C(principals.server_identities) of
    O(config), grants for AWS resources, the Auto Scaling grant), the verdict under IAM evaluation rules
    (explicit Deny wins; C(Action)/C(NotAction), C(Principal)/C(NotPrincipal), wildcards, account principals,
    conditions) - C(allowed), C(denied), C(implicitly_denied), C(conditional) or C(delegated_to_iam). A policy that
    cannot be read (C(GetKeyPolicy) is not a cross-account operation) is reported as such, never as a pass; give the
    customer's document in O(policy) instead.
  - B(Live probe) as the calling identity - C(Encrypt) with C(DryRun), a data-key round trip
    (C(GenerateDataKey) then C(Decrypt)), and C(CreateGrant) with C(DryRun) (a grant that an endpoint creates
    anyway is retired at once, so none is left behind).
  - Read-only. With O(offline), no AWS call is made at all.
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  key_arn:
    description:
      - Full ARN of the key. Aliases and bare key ids are refused, since they resolve in the caller's account.
    type: str
    required: true
  expected_region:
    description: Region of the resources the key must encrypt. Defaults to the region of O(config), else the key's own.
    type: str
  config:
    description:
      - The customer's normalized configuration from M(mattermost.byok.customer_config). Gives the principals, the
        provider account and, unless O(services) is set, the services that use this key.
    type: dict
  services:
    description: Services whose needs to check (C(s3), C(rds), C(ebs)). Defaults to the services that use this key in O(config).
    type: list
    elements: str
    choices: [s3, rds, ebs]
  required:
    description:
      - Explicit requirements instead of those derived from O(config) - each C(principal) (IAM ARN), C(action)
        (IAM action name) and optionally C(context) (request context such as C(kms:GrantIsForAWSResource)).
    type: list
    elements: dict
  policy:
    description:
      - A key policy document to check instead of reading the key's policy. KMS does not let another account read a
        key policy (C(GetKeyPolicy) is not a cross-account operation), so for a customer's key this is the document
        the customer saved, or is about to save.
    type: json
  offline:
    description:
      - Check only O(policy) (and the key's region from its ARN), with no AWS call at all - for a policy the customer
        has not applied yet.
    type: bool
    default: false
  probe:
    description: Run the live probe (only when the policy is read from AWS).
    type: bool
    default: true
  min_material_validity_days:
    description: Imported key material that expires sooner than this many days is a warning.
    type: int
    default: 30
  fail_on_error:
    description: Fail with a readable summary when an error-level finding is found. Off, the result still says C(passed=false).
    type: bool
    default: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode (the grant probe uses DryRun).
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to diff.
  idempotent:
    support: full
    description: Leaves nothing behind; the same key gives the same result.
"""

EXAMPLES = r"""
- name: Verify the customer's key for every service that uses it
  mattermost.byok.kms_policy_check:
    key_arn: "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"
    config: "{{ byok_config_customer }}"

- name: Check the policy the customer is about to save, without calling AWS
  mattermost.byok.kms_policy_check:
    key_arn: "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"
    config: "{{ byok_config_customer }}"
    policy: "{{ lookup('ansible.builtin.file', 'customer-policy.json') }}"
    offline: true
    fail_on_error: false
  register: check
"""

RETURN = r"""
passed:
  description: No error-level finding.
  returned: always
  type: bool
summary:
  description: The verdict in words, one line per problem.
  returned: always
  type: str
key:
  description: Key metadata (state, key_spec, key_usage, origin, multi_region, region, region_matches, rotation_enabled, expiration_model, valid_to).
  returned: when the key was read
  type: dict
policy_source:
  description: C(aws) (read with GetKeyPolicy), C(document) (given in O(policy)) or C(unreadable) (a finding says so; never a pass).
  returned: always
  type: str
verdicts:
  description: One entry per required principal and action, with the decision and the statements that decided it.
  returned: always
  type: list
  elements: dict
probe:
  description: The live probe's steps, each with C(operation), C(ok) and C(detail).
  returned: always
  type: list
  elements: dict
findings:
  description: Problems and notes, each with C(severity) (error, warning, info), a stable C(code), C(message), C(principal), C(actions) and C(fix).
  returned: always
  type: list
  elements: dict
"""

import datetime

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # handled by ByokModule

from ansible_collections.mattermost.byok.plugins.module_utils.kms import key_check
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import InvalidIdentifier
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import parse_kms_key_arn
from ansible_collections.mattermost.byok.plugins.module_utils.aws.module import ByokModule
from ansible_collections.mattermost.byok.plugins.module_utils.kms.onboarding_policy import key_policy_statements
from ansible_collections.mattermost.byok.plugins.module_utils.kms.onboarding_policy import required_access


def plan(module, key_arn, region):
    """Requirements and the statements that satisfy them, from the customer's config (or given explicitly)."""
    params, config = module.params, module.params["config"] or {}
    services = params["services"]
    if services is None:
        services = next((k["services"] for k in config.get("distinct_keys", []) if k["arn"] == key_arn), config.get("services"))
    if params["required"] is not None:
        for i, req in enumerate(params["required"]):
            if not req.get("principal") or not req.get("action"):
                module.fail_json(msg=f"required[{i}]: needs principal and action")
        return params["required"], {}
    if not config.get("principals"):
        module.fail_json(msg="config: give the customer's config (mattermost.byok.customer_config) or list the requirements in 'required'")
    services = services or ["s3", "rds", "ebs"]
    provider = config["provider_account_id"]
    requirements = required_access(config["principals"], services, provider, region)
    statements = {s["sid"]: s["statement"] for s in key_policy_statements(config["principals"], services, provider, region, key_arn)}
    return requirements, statements


def main():
    module = ByokModule(
        argument_spec=dict(
            key_arn=dict(type="str", required=True, no_log=False),
            expected_region=dict(type="str"),
            config=dict(type="dict"),
            services=dict(type="list", elements="str", choices=["s3", "rds", "ebs"]),
            required=dict(type="list", elements="dict"),
            policy=dict(type="json"),
            offline=dict(type="bool", default=False),
            probe=dict(type="bool", default=True),
            min_material_validity_days=dict(type="int", default=30),
            fail_on_error=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        arn = parse_kms_key_arn(params["key_arn"], "key_arn")
    except InvalidIdentifier as e:
        module.fail_json(msg=str(e))
    key_arn = str(arn)
    expected_region = params["expected_region"] or (params["config"] or {}).get("region") or arn.region
    requirements, statements = plan(module, key_arn, expected_region)

    result = {"key": None, "policy_source": "document", "verdicts": [], "probe": [], "findings": []}
    if params["offline"]:
        if params["policy"] is None:
            module.fail_json(msg="offline: needs the policy document in 'policy'")
        if arn.region != expected_region:
            result["findings"].append(key_check.finding(
                key_check.ERROR, "KEY_WRONG_REGION", f"{key_arn} is in {arn.region}, but the resources it must encrypt are in {expected_region}",
                fix=f"Give a key in {expected_region}"))
        verdicts, found = key_check.policy_findings(params["policy"], requirements, key_arn, statements)
        result["verdicts"], result["findings"] = verdicts, result["findings"] + found
        finish(module, key_arn, result)

    kms = module.byok_client("kms", region=arn.region)
    try:
        meta = kms.describe_key(aws_retry=True, KeyId=key_arn)["KeyMetadata"]
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code")
        if code in ("NotFoundException", "AccessDeniedException"):
            result["policy_source"] = "unreadable"
            result["findings"].append(key_check.finding(
                key_check.ERROR, "KEY_NOT_FOUND" if code == "NotFoundException" else "KEY_ACCESS_DENIED",
                f"{key_arn}: {code} - the key does not exist, or its policy does not let the provider account describe it",
                fix="Check the ARN with the customer, and that the key policy allows kms:DescribeKey to the provisioning user"))
            finish(module, key_arn, result)
        module.fail_json_aws(e, msg=f"Cannot describe {key_arn}")
    except BotoCoreError as e:
        module.fail_json_aws(e, msg=f"Cannot describe {key_arn}")

    try:
        rotation = kms.get_key_rotation_status(aws_retry=True, KeyId=key_arn).get("KeyRotationEnabled")
    except (ClientError, BotoCoreError):
        rotation = None  # not readable cross-account unless the policy allows it; not a BYOK requirement
    now = datetime.datetime.now(datetime.timezone.utc)
    result["key"] = key_check.key_summary(meta, key_arn, expected_region, rotation)
    result["findings"] += key_check.metadata_findings(meta, key_arn, expected_region, now, params["min_material_validity_days"])

    policy = params["policy"]
    if policy is None:
        try:
            policy = kms.get_key_policy(aws_retry=True, KeyId=key_arn, PolicyName="default")["Policy"]
            result["policy_source"] = "aws"
        except (ClientError, BotoCoreError) as e:
            result["policy_source"] = "unreadable"
            result["findings"].append(key_check.finding(
                key_check.ERROR, "POLICY_UNREADABLE",
                f"the key policy of {key_arn} cannot be read ({e}): KMS lets no other account read a key policy, so the "
                "principals other than the caller are not verified",
                fix=f"Ask the customer for the key policy (aws kms get-key-policy --key-id {key_arn} --policy-name default) and save it "
                    f"in the inventory as key-policies/{arn.resource_id}.json"))
    if policy is not None:
        result["verdicts"], found = key_check.policy_findings(policy, requirements, key_arn, statements)
        result["findings"] += found

    state_ok = meta.get("KeyState") == "Enabled"
    if params["probe"] and state_ok:
        try:
            caller = module.byok_client("sts", region=arn.region).get_caller_identity(aws_retry=True)["Arn"]
        except (ClientError, BotoCoreError) as e:
            module.fail_json_aws(e, msg="Cannot tell who the caller is (sts:GetCallerIdentity)")
        principal = key_check.caller_principal(caller)
        grantee = (params["config"] or {}).get("principals", {}).get("autoscaling_role") or principal
        result["probe"], found = key_check.probe(kms, key_arn, principal, grantee)
        result["findings"] += found
    elif params["probe"]:
        result["probe"] = [{"operation": "all", "ok": False, "detail": f"skipped: the key is {meta.get('KeyState')}"}]
    finish(module, key_arn, result)


def finish(module, key_arn, result):
    result["passed"] = not any(f["severity"] == key_check.ERROR for f in result["findings"])
    result["summary"] = key_check.summarize(key_arn, result["findings"])
    if not result["passed"] and module.params["fail_on_error"]:
        module.fail_json(msg=result["summary"], **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
