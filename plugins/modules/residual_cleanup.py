#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: residual_cleanup
short_description: Remove or re-key the copies of a customer's data left under another key, after a retention period
version_added: 0.2.0
description:
  - Finds every copy of one customer's data besides its live stores that is not on the customer's key - databases
    kept aside after a cut-over or switchover (C(<id>-old1), C(<id>-byok-old)) or set aside by a rollback
    (C(<id>-byok-new)), their final snapshots, manual and automated snapshots, retained automated backups, EBS
    snapshots and volumes the etcd re-key set aside, noncurrent S3 object versions - and deals with each.
  - B(Deleted after the retention) (O(retention_days)) - a database kept aside (counted from when this module first
    saw it, recorded in its C(byok:residual-since) tag), a retained automated backup (from the database's deletion),
    a snapshot the etcd re-key took, a set-aside volume (from its C(byok:set-aside-at) tag), a noncurrent S3 version
    (from when it became noncurrent). A database is deleted with a final snapshot C(<name>-final), which is then copied
    onto the customer key like any manual snapshot; its automated backups go with it (AWS's default).
  - B(Re-keyed at once) - a manual RDS or EBS snapshot is copied onto the customer key (C(<id>-rekeyed) for RDS,
    tagged C(byok:rekeyed-from) for EBS, tags kept) and the original deleted once the copy is available - the data
    stays, on the customer's key.
  - B(Reported only) - an automated snapshot of a live database ages out of its backup retention; its date is returned.
  - B(Never before the re-keyed side is verified) - a copy is touched only when the live store it belongs to is on
    the customer key (the database available on the key; the bucket's default encryption on the key and the object's
    current version too; every etcd volume of the cluster on the key and attached). Otherwise it is kept and the
    reason returned.
  - Nothing here stops or moves a live store - it causes no disruption. Each step is found again from AWS (names and
    tags), so an interrupted run is finished by the next; a run with nothing due changes nothing.
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  config:
    description: The customer's normalized configuration, as returned by M(mattermost.byok.customer_config).
    type: dict
    required: true
  retention_days:
    description:
      - Days a copy under the old key is kept for a way back before it is deleted. C(0) deletes at once (once the
        live side is verified).
    type: int
    required: true
  wait_timeout:
    description: Seconds to wait for one snapshot or copy before failing (a re-run resumes).
    type: int
    default: 3600
  poll_seconds:
    description: Seconds between two status reads while waiting.
    type: float
    default: 5
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: Returns what would be done to each copy and why; changes nothing.
  diff_mode:
    support: full
    description: The copies not on the customer key before and after.
  idempotent:
    support: full
    description: A second run finds nothing due and reports C(changed=false).
"""

EXAMPLES = r"""
- name: Remove what the re-key left under the old key, 30 days after
  mattermost.byok.residual_cleanup:
    config: "{{ byok_config_customer }}"
    retention_days: 30
  register: cleanup

- name: Show what stays and until when
  ansible.builtin.debug:
    msg: "{{ cleanup.actions | rejectattr('do') | map(attribute='why') | list }}"
"""

RETURN = r"""
actions:
  description: One entry per copy not on the customer key.
  returned: always
  type: list
  elements: dict
  contains:
    type:
      description:
        - C(rds_retained_database), C(rds_cluster_snapshot), C(rds_db_snapshot), C(rds_retained_automated_backup),
          C(ebs_snapshot), C(ebs_volume_set_aside) or C(s3_noncurrent_version).
      type: str
    id:
      description: The copy's identifier (a noncurrent version is C(<bucket>/<key>?versionId=<id>)).
      type: str
    do:
      description: C(rekey), C(delete), C(mark) (retention starts now), C(mark_delete), or null when nothing is done now.
      type: str
    why:
      description: Why, or why not yet, in words.
      type: str
    goes:
      description: When the copy goes, when known (ISO 8601, UTC).
      type: str
done:
  description: What was done, one line per step.
  returned: always
  type: list
  elements: str
remaining:
  description: The copies still not on the customer key after this run (predicted in check mode).
  returned: always
  type: list
  elements: str
retention_days:
  description: The retention applied.
  returned: always
  type: int
"""

from ansible_collections.mattermost.byok.plugins.module_utils.aws.module import ByokModule
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.residual_cleanup import Cleanup
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.residual_cleanup import CleanupError

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # AnsibleAWSModule reports the missing SDK


def main():
    module = ByokModule(
        argument_spec=dict(
            config=dict(type="dict", required=True),
            retention_days=dict(type="int", required=True),
            wait_timeout=dict(type="int", default=3600),
            poll_seconds=dict(type="float", default=5),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["retention_days"] < 0:
        module.fail_json(msg="retention_days: must be 0 (delete once the re-keyed side is verified) or more days; "
                             "set byok_residual_retention_days")
    module.require_config(p["config"], ("customer", "region", "services", "service_keys", "s3_buckets", "rds_clusters"))
    client = module.client_cache()

    cleanup = Cleanup(p["config"], client, p["retention_days"], poll=p["poll_seconds"], timeout=p["wait_timeout"])
    try:
        result = cleanup.run(module.check_mode)
    except CleanupError as e:
        module.fail_json(msg=str(e), done=cleanup.done)
    except (ClientError, BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"residual clean-up stopped after {len(cleanup.done)} step(s); run again to resume",
                             done=cleanup.done)
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = {"before_header": "copies not on the customer key", "after_header": "after the clean-up", **diff}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
