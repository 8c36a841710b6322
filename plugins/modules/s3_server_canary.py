#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_server_canary
short_description: Prove the Mattermost server's own identity can still read and write its bucket on the customer key
version_added: 0.1.0
description:
  - "With the server's credentials - an IAM access key read from a Secrets Manager secret (as the provisioner stores
    it, a JSON object with C(ID) and C(Secret)) or a role to assume - writes, reads, copies (server-side) and multipart-uploads
    objects under the reserved prefix C(.mattermost-byok-canary/<run id>/) with exactly the server's headers
    (C(x-amz-server-side-encryption: AES256) when O(sse_enabled), none otherwise), writes and reads one object
    explicitly on the customer key, reads one object already on the key, then deletes what it wrote."
  - Versions and delete markers left in a versioned bucket are removed with the run's own credentials. A bucket with a
    default object-lock retention gets the read-only steps only (a canary object there could not be deleted).
  - Without O(credentials_secret) or O(credentials_role_arn) nothing is tried and the result says C(static_only), so the
    report can say that only the static check (key policy and IAM simulation) vouches for the server.
  - A failed step names the operation, the error, and the KMS permissions it needs on both halves.
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  bucket:
    description: The installation's bucket.
    type: str
    required: true
  key_arn:
    description: Full ARN of the customer's key.
    type: str
    required: true
  identity:
    description: The server's S3 identity (C(s3_identity_arn)), named in messages.
    type: str
  credentials_secret:
    description: Secrets Manager secret (ARN or name, in the provider account) holding the server's access key.
    type: str
  credentials_role_arn:
    description: A role with the server's permissions to assume instead.
    type: str
  variable:
    description: The inventory variable the credentials come from, named in errors.
    type: str
    default: canary_credentials
  sse_enabled:
    description: Whether the server sends C(AES256) on its writes (its FileSettings.AmazonS3SSE; the provisioner forces it on for C(aws-s3)).
    type: bool
    default: true
  object_key:
    description: An object already on the key to read as the server; by default the newest of the first objects listed that is.
    type: str
  phase:
    description: A label for the report (before or after the objects are re-encrypted).
    type: str
    default: before
  run_id:
    description: Names the canary's folder under the reserved prefix.
    type: str
    default: canary
  credentials_only:
    description: Only read the credentials (fail naming O(variable) when they can't be read); try nothing as the server.
    type: bool
    default: false
  fail_on_error:
    description: Fail when a step fails.
    type: bool
    default: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: Only the read steps run; nothing is written.
  diff_mode:
    support: none
    description: Leaves nothing behind, so there is nothing to diff.
  idempotent:
    support: full
    description: Every object it writes is deleted with its versions; it reports C(changed=false).
"""

EXAMPLES = r"""
- name: Canary as the server before any object is re-encrypted
  mattermost.byok.s3_server_canary:
    bucket: mattermost-acme-filestore
    key_arn: "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"
    identity: "arn:aws:iam::222222222222:user/mattermost-acme01inst"
    credentials_secret: acme01inst-iam-access-key
    sse_enabled: false
"""

RETURN = r"""
passed:
  description: Every step that ran succeeded (true as well when RV(static_only)).
  returned: always
  type: bool
static_only:
  description: No credentials were given; nothing was tried as the server.
  returned: always
  type: bool
steps:
  description: Each step with C(step), C(ok), C(detail), C(error_code) and C(needs) (the KMS actions it needs).
  returned: always
  type: list
  elements: dict
summary:
  description: The outcome in one line, or what failed and what is missing.
  returned: always
  type: str
"""

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # handled by ByokModule

from ansible_collections.mattermost.byok.plugins.module_utils.s3 import canary as s3_canary
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import InvalidIdentifier
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import parse_kms_key_arn
from ansible_collections.mattermost.byok.plugins.module_utils.aws.module import ByokModule


def server_credentials(module):
    """boto3 credential parameters of the server, or None without any; fails naming the variable when unreadable."""
    p = module.params
    variable = p["variable"]
    if p["credentials_secret"]:
        where = f"{variable}.secret"
        try:
            value = module.byok_client("secretsmanager").get_secret_value(SecretId=p["credentials_secret"])
        except (ClientError, BotoCoreError) as e:
            module.fail_json(msg=f"{where}: cannot read the secret {p['credentials_secret']} ({s3_canary.error_code(e)}): "
                                 "give the name or ARN of the Secrets Manager secret holding the server's access key, readable by the run; nothing was changed")
        try:
            return s3_canary.access_key_from_secret(value.get("SecretString"), where)
        except s3_canary.CanaryCredentialsError as e:
            module.fail_json(msg=f"{e}; nothing was changed")
    if p["credentials_role_arn"]:
        where = f"{variable}.role_arn"
        try:
            creds = module.byok_client("sts").assume_role(RoleArn=p["credentials_role_arn"], RoleSessionName="mattermost-byok-canary")["Credentials"]
        except (ClientError, BotoCoreError) as e:
            module.fail_json(msg=f"{where}: cannot assume {p['credentials_role_arn']} ({s3_canary.error_code(e)}): give a role the run may "
                                 "assume that has the server's permissions; nothing was changed")
        return {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
                "aws_session_token": creds["SessionToken"]}
    return None


def main():
    module = ByokModule(
        argument_spec=dict(
            bucket=dict(type="str", required=True),
            key_arn=dict(type="str", required=True, no_log=False),
            identity=dict(type="str"),
            credentials_secret=dict(type="str", no_log=False),
            credentials_role_arn=dict(type="str"),
            variable=dict(type="str", default="canary_credentials"),
            sse_enabled=dict(type="bool", default=True),
            object_key=dict(type="str", no_log=False),
            phase=dict(type="str", default="before"),
            run_id=dict(type="str", default="canary"),
            credentials_only=dict(type="bool", default=False),
            fail_on_error=dict(type="bool", default=True),
        ),
        mutually_exclusive=[("credentials_secret", "credentials_role_arn")],
        supports_check_mode=True,
    )
    p = module.params
    try:
        key_arn = str(parse_kms_key_arn(p["key_arn"], "key_arn"))
    except InvalidIdentifier as e:
        module.fail_json(msg=str(e))
    identity = p["identity"] or "the Mattermost server"
    credentials = server_credentials(module)
    if credentials is None:
        module.exit_json(changed=False, passed=True, static_only=True, steps=[],
                         summary=f"{p['bucket']} ({p['phase']}): no canary credentials for {identity}; only the static check "
                                 "(key policy and IAM simulation) vouches for the server")
    if p["credentials_only"]:
        module.exit_json(changed=False, passed=True, static_only=False, steps=[],
                         summary=f"{p['variable']}: the credentials of {identity} are readable")
    server = module.client("s3", **credentials)
    run = module.byok_client("s3")
    canary = s3_canary.Canary(server, run, p["bucket"], key_arn, p["sse_enabled"], p["run_id"], identity)
    try:
        writes = not module.check_mode and not canary.retention_blocks_writes()
        steps = canary.execute(writes, p["object_key"])
    except (ClientError, BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"{p['bucket']}: the canary could not clean up under {canary.prefix} with the run's credentials")
    failed = s3_canary.failed_steps(steps)
    if failed:
        summary = (f"{p['bucket']} ({p['phase']}): the canary as {identity} failed: " + "; ".join(s["detail"] for s in failed))
    else:
        ran = ", ".join(s["step"] for s in steps)
        summary = f"{p['bucket']} ({p['phase']}): the canary as {identity} passed ({ran})" + ("" if writes else "; read-only")
    result = dict(changed=False, passed=not failed, static_only=False, steps=steps, summary=summary)
    if failed and p["fail_on_error"]:
        module.fail_json(msg=summary, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
