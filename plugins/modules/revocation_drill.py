#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: revocation_drill
short_description: Prove on the local AWS that revoking a customer's key leaves nothing of theirs readable
version_added: 0.2.0
description:
  - B(Local AWS only) - refuses, before any call, an O(endpoint_url) that is not a loopback address serving the local
    AWS's C(/moto-api/). It disables keys and stops an instance.
  - Lists the customer's stores and copies (as M(mattermost.byok.encryption_audit_info) does, every object read), then
    disables each of the customer's keys as its owner (acting as the key's account), makes every store need its key
    again (KMS developer guide, "How unusable KMS keys affect data keys" - a resource keeps its data key until it needs
    the KMS key again) and records what each answers - an object read (S3 refuses with C(KMS.DisabledException)), each
    database (RDS puts it in C(inaccessible-encryption-credentials-recoverable)), a kops node stopped and started (EC2
    cannot attach its encrypted volumes, the node stays stopped), a volume made from a snapshot of a node volume (EBS
    cannot decrypt it) - and every copy (noncurrent versions read, databases kept aside looked at, snapshots restored
    or their key's state read).
  - Then enables the keys again, starts what the revocation stopped (the databases, the node), and probes everything
    again, which must all be readable. The probe snapshot and volumes are deleted.
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  config:
    description: The customer's normalized configuration, as returned by M(mattermost.byok.customer_config).
    type: dict
    required: true
  customer_role_name:
    description: Role assumed in each key's account to disable and enable the key as the customer would.
    type: str
    default: byok-revocation-drill
  wait_timeout:
    description: Seconds to wait for an instance, a database or a volume.
    type: int
    default: 120
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: Returns the probes it would run; disables nothing.
  diff_mode:
    support: none
    description: Leaves the customer as it found it (keys enabled, databases and node running).
  idempotent:
    support: none
    description: Each run disables and enables the keys again; it ends in the state it started from.
"""

EXAMPLES = r"""
- name: Drill a revocation of acme's key on the local AWS
  mattermost.byok.revocation_drill:
    config: "{{ byok_config_customer }}"
    endpoint_url: "{{ lookup('ansible.builtin.env', 'AWS_ENDPOINT_URL') }}"
  register: drill
"""

RETURN = r"""
nothing_readable:
  description: Every probed store and copy refused access while the keys were disabled.
  returned: success
  type: bool
while_revoked:
  description: Per probe - C(kind) (store or copy), C(what), C(id), C(outcome) (C(refused) or C(readable)) and C(evidence) (what AWS answered).
  returned: success
  type: list
  elements: dict
readable_while_revoked:
  description: The probes that could still read the customer's data with its keys disabled.
  returned: success
  type: list
  elements: dict
after_reenable:
  description: The same probes after the keys were enabled again and the stopped resources started.
  returned: success
  type: list
  elements: dict
all_readable_again:
  description: Every probe read the data again after the keys were enabled.
  returned: success
  type: bool
stores_off_key:
  description: In-scope stores not on the customer's key (readable whatever the customer does with its key).
  returned: always
  type: list
  elements: dict
steps:
  description: What the drill did, in order.
  returned: always
  type: list
  elements: str
"""

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # handled by ByokModule

from ansible_collections.mattermost.byok.plugins.module_utils.aws.module import ByokModule
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.encryption_audit import CustomerAudit
from ansible_collections.mattermost.byok.plugins.module_utils.fleet import revocation_drill as rd


def main():
    module = ByokModule(
        argument_spec=dict(
            config=dict(type="dict", required=True),
            customer_role_name=dict(type="str", default="byok-revocation-drill"),
            wait_timeout=dict(type="int", default=120),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        rd.local_endpoint(p.get("endpoint_url"))
    except rd.DrillError as e:
        module.fail_json(msg=str(e), steps=[], stores_off_key=[])
    config = p["config"]

    def make(service, region, account=None):
        if account is None:
            return module.byok_client(service, region=region)
        creds = module.byok_client("sts", region=region).assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/{p['customer_role_name']}", RoleSessionName="byok-revocation-drill")["Credentials"]
        return module.client(service, region=region, aws_access_key_id=creds["AccessKeyId"],
                             aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])

    cached = module.client_cache(make=make)

    def client(service, region, account=None):
        return cached(service, region, account)

    try:
        audit = CustomerAudit(config, client, s3_object_sample=0).run()
        drill = rd.Drill(config, client, config.get("customer_account_id"), timeout=p["wait_timeout"])
        off_key = rd.off_key_stores(audit["resources"])
        if module.check_mode:
            probes = drill.probes(audit["resources"], audit["copies"], plan_only=True)
            module.exit_json(changed=True, probes=probes, keys=drill.keys(), stores_off_key=off_key, steps=[])
        result = drill.run(audit["resources"], audit["copies"])
    except rd.DrillError as e:
        module.fail_json(msg=str(e), steps=drill.steps if "drill" in locals() else [], stores_off_key=[])
    except (ClientError, BotoCoreError) as e:
        module.fail_json_aws(e, msg="revocation drill stopped; the keys were enabled again if they had been disabled",
                             steps=drill.steps if "drill" in locals() else [])
    module.exit_json(changed=True, stores_off_key=off_key, **result)


if __name__ == "__main__":
    main()
