#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: assume_role
short_description: Assume the BYOK automation role and return its session credentials
version_added: 0.1.0
description:
  - Calls STS C(AssumeRole) for the role the automation uses in the provider account, once per customer run, and
    returns the temporary credentials for the later steps (the playbook passes them through C(module_defaults)).
  - The same call as M(amazon.aws.sts_assume_role), as a module of this collection so that it runs in the worker
    process on the controller with the others (see docs/fleet.md); a fleet run makes it once per customer.
  - Issuing session credentials changes nothing in AWS, so the result is never C(changed) and check mode makes the
    call too (the plan needs the credentials).
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  role_arn:
    description: ARN of the role to assume.
    type: str
    required: true
  role_session_name:
    description: Session name, seen in CloudTrail (for example C(byok-<customer>)).
    type: str
    required: true
  external_id:
    description: External id the role's trust policy requires, if any.
    type: str
  duration_seconds:
    description: Lifetime of the credentials (900 to the role's maximum session duration).
    type: int
    default: 3600
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: Assumes the role in check mode too; nothing in AWS changes either way.
  diff_mode:
    support: none
    description: Nothing is edited.
  idempotent:
    support: full
    description: Always C(changed=false).
notes:
  - Run the task with C(no_log=true), since the result holds secrets.
"""

EXAMPLES = r"""
- name: Assume the automation role in the provider account
  mattermost.byok.assume_role:
    role_arn: arn:aws:iam::222222222222:role/mattermost-byok-automation
    role_session_name: byok-acme
  register: assumed
  no_log: true
"""

RETURN = r"""
credentials:
  description: The session's C(access_key), C(secret_key), C(session_token) and C(expiration) (ISO 8601).
  returned: success
  type: dict
assumed_role_arn:
  description: ARN of the assumed-role session.
  returned: success
  type: str
"""

import re

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # ByokModule reports the missing SDK

from ansible_collections.mattermost.byok.plugins.module_utils.aws.module import ByokModule

ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")


def main():
    module = ByokModule(
        argument_spec=dict(
            role_arn=dict(type="str", required=True),
            role_session_name=dict(type="str", required=True),
            external_id=dict(type="str", no_log=True),
            duration_seconds=dict(type="int", default=3600),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not ROLE_ARN.match(p["role_arn"]):
        module.fail_json(msg=f"role_arn: {p['role_arn']!r} is not a role ARN (arn:aws:iam::<account>:role/<name>)")
    if not re.match(r"^[\w+=,.@-]{2,64}$", p["role_session_name"]):
        module.fail_json(msg=f"role_session_name: {p['role_session_name']!r} must be 2 to 64 of letters, digits and +=,.@_-")
    call = dict(RoleArn=p["role_arn"], RoleSessionName=p["role_session_name"], DurationSeconds=p["duration_seconds"])
    if p["external_id"]:
        call["ExternalId"] = p["external_id"]
    try:
        answer = module.byok_client("sts").assume_role(aws_retry=True, **call)
    except (ClientError, BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Cannot assume {p['role_arn']}: its trust policy must allow the caller (and the external id, if set)")
    creds = answer["Credentials"]
    module.exit_json(
        changed=False,
        assumed_role_arn=answer["AssumedRoleUser"]["Arn"],
        credentials=dict(access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"], session_token=creds["SessionToken"],
                         expiration=creds["Expiration"].isoformat()),
    )


if __name__ == "__main__":
    main()
