#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: autoscaling_kms_grant
short_description: Grant the Auto Scaling service-linked role the use of a customer's KMS key, from the provider account
version_added: 0.1.0
description:
  - EC2 Auto Scaling launches instances with its service-linked role. For a key in another account the key policy
    alone does not let that role use the key; AWS requires a grant created from the account that owns the Auto
    Scaling groups (EC2 Auto Scaling user guide, key policy requirements for EBS encryption). Without it, instances
    fail to launch (C(Client.InternalError)) and a kops rolling update stalls.
  - Creates that grant, from the calling (provider) account, once per key (a key lives in one region), with the
    operations AWS documents - C(Encrypt), C(Decrypt), C(ReEncryptFrom), C(ReEncryptTo), C(GenerateDataKey),
    C(GenerateDataKeyWithoutPlaintext), C(DescribeKey), C(CreateGrant).
  - Re-runs find the grant with C(ListRetirableGrants) for the retiring principal (an account may list the grants
    it can retire on other accounts' keys, where it usually may not call C(ListGrants)), and the grant's C(Name)
    makes a retried C(CreateGrant) return the same grant instead of a second one.
  - O(state=absent) retires the grants of that name, the way back.
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  key_arn:
    description: Full ARN of the customer's key. Aliases and bare key ids are refused (they resolve in the caller's account).
    type: str
    required: true
  grantee_principal:
    description: The role that launches instances. Default the caller account's C(AWSServiceRoleForAutoScaling).
    type: str
  retiring_principal:
    description: Principal of the caller's account that can retire the grant, and by which re-runs find it. Default the caller's account root.
    type: str
  name:
    description: Grant name; identifies the grant on re-runs.
    type: str
    default: mattermost-byok-autoscaling
  operations:
    description: Grant operations.
    type: list
    elements: str
    default: [Encrypt, Decrypt, ReEncryptFrom, ReEncryptTo, GenerateDataKey, GenerateDataKeyWithoutPlaintext, DescribeKey, CreateGrant]
  state:
    description: C(present) creates the grant when missing; C(absent) retires it.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: Looks the grant up and says whether it would be created or retired, without doing it.
  diff_mode:
    support: none
    description: A grant has no document to diff; RV(grant) shows it.
  idempotent:
    support: full
    description: An existing grant with the operations is found again; a second run reports C(changed=false).
"""

EXAMPLES = r"""
- name: Let Auto Scaling launch nodes on the customer's EBS key
  mattermost.byok.autoscaling_kms_grant:
    key_arn: arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001

- name: Retire it again
  mattermost.byok.autoscaling_kms_grant:
    key_arn: arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001
    state: absent
"""

RETURN = r"""
grant:
  description: The grant - C(grant_id), C(key_id), C(name), C(grantee_principal), C(retiring_principal), C(operations).
  returned: when present (in check mode, when it already exists)
  type: dict
grants_found:
  description: How many grants of this name, key and grantee existed before the run.
  returned: always
  type: int
summary:
  description: One line for reports.
  returned: always
  type: str
"""

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # handled by ByokModule

from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import InvalidIdentifier
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import parse_arn
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import parse_kms_key_arn
from ansible_collections.mattermost.byok.plugins.module_utils.aws.module import ByokModule
from ansible_collections.mattermost.byok.plugins.module_utils.kms.keys import retirable_grants

SLR_NAME = "AWSServiceRoleForAutoScaling"
SLR_PATH = "aws-service-role/autoscaling.amazonaws.com/"


def snake(grant: dict) -> dict:
    return {"grant_id": grant.get("GrantId"), "key_id": grant.get("KeyId"), "name": grant.get("Name"),
            "grantee_principal": grant.get("GranteePrincipal"), "retiring_principal": grant.get("RetiringPrincipal"),
            "operations": sorted(grant.get("Operations") or [])}


def main():
    module = ByokModule(
        argument_spec=dict(
            key_arn=dict(type="str", required=True, no_log=False),
            grantee_principal=dict(type="str"),
            retiring_principal=dict(type="str"),
            name=dict(type="str", default="mattermost-byok-autoscaling"),
            operations=dict(type="list", elements="str", default=[
                "Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
                "DescribeKey", "CreateGrant"]),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        key = parse_kms_key_arn(p["key_arn"], "key_arn")
        for option in ("grantee_principal", "retiring_principal"):
            if p[option]:
                parse_arn(p[option], option)
    except InvalidIdentifier as e:
        module.fail_json(msg=str(e))
    key_arn = str(key)
    if p["region"] and p["region"] != key.region:
        module.fail_json(msg=f"key_arn: the key is in {key.region}, but the Auto Scaling groups are in {p['region']}; "
                             f"instances there need a key of {p['region']}: give the customer's key (or replica) in that region")
    try:
        account = module.byok_client("sts", region=key.region).get_caller_identity(aws_retry=True)["Account"]
    except (ClientError, BotoCoreError) as e:
        module.fail_json_aws(e, msg="Cannot tell which account this run acts as (sts:GetCallerIdentity)")
    grantee = p["grantee_principal"] or f"arn:aws:iam::{account}:role/{SLR_PATH}{SLR_NAME}"
    retiring = p["retiring_principal"] or f"arn:aws:iam::{account}:root"
    if parse_arn(retiring).account_id != account:
        module.fail_json(msg=f"retiring_principal: {retiring} is not in the calling account {account}; re-runs find the grant "
                             "through ListRetirableGrants, which only answers for principals of the caller's account")

    kms = module.byok_client("kms", region=key.region)
    try:
        if p["grantee_principal"] is None and p["state"] == "present":
            try:
                module.byok_client("iam").get_role(aws_retry=True, RoleName=SLR_NAME)
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") == "NoSuchEntity":
                    module.fail_json(msg=f"grantee_principal: {grantee} does not exist; AWS requires an existing role. Create it "
                                         "with aws iam create-service-linked-role --aws-service-name autoscaling.amazonaws.com")
                # Not allowed to read IAM: the grant call itself will tell.
        found = [g for g in retirable_grants(kms, retiring)
                 if g.get("KeyId") == key_arn and g.get("GranteePrincipal") == grantee and g.get("Name") == p["name"]]
        wanted = set(p["operations"])
        usable = [g for g in found if wanted <= set(g.get("Operations") or [])]
        result = {"changed": False, "grants_found": len(found)}
        if p["state"] == "absent":
            result["changed"] = bool(found)
            if found and not module.check_mode:
                for grant in found:
                    kms.retire_grant(aws_retry=True, KeyId=key_arn, GrantId=grant["GrantId"])
            verb = "would be retired" if module.check_mode else "retired"
            result["summary"] = f"{len(found)} Auto Scaling grants on {key_arn} {verb}" if found else f"no Auto Scaling grant on {key_arn}"
            module.exit_json(**result)
        if usable:
            result.update(grant=snake(usable[0]), summary=f"Auto Scaling grant {usable[0]['GrantId']} on {key_arn} present")
            module.exit_json(**result)
        result["changed"] = True
        if module.check_mode:
            result["summary"] = f"Auto Scaling grant on {key_arn} for {grantee} would be created"
            module.exit_json(**result)
        created = kms.create_grant(aws_retry=True, KeyId=key_arn, GranteePrincipal=grantee, Operations=p["operations"],
                                   Name=p["name"], RetiringPrincipal=retiring)
    except (ClientError, BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Cannot create the Auto Scaling grant on {key_arn} from account {account}: the customer's "
                                    "key policy must allow this account kms:CreateGrant without the kms:GrantIsForAWSResource "
                                    "condition (docs/key-policy.md)")
    grant = {"GrantId": created["GrantId"], "KeyId": key_arn, "Name": p["name"], "GranteePrincipal": grantee,
             "RetiringPrincipal": retiring, "Operations": p["operations"]}
    result.update(grant=snake(grant), summary=f"Auto Scaling grant {created['GrantId']} on {key_arn} created for {grantee}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
