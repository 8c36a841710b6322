#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: encryption_audit_info
short_description: Report which KMS key encrypts every data store of a Mattermost Cloud Dedicated customer
version_added: 0.1.0
description:
  - Reads, for one customer, the S3 bucket defaults and a sample of objects, the RDS/Aurora clusters and their
    instances, the kops cluster's launch templates, EBS volumes (root, extra and etcd) and the kops instance group
    specs in the state store, and reports for each the key that encrypts it and whether that is the customer's key.
  - Read-only. All reads of one customer happen in this one call, concurrently.
  - Resources of services not enabled for the customer are listed with status C(not_enabled) and do not count.
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  config:
    description: The customer's normalized configuration, as returned by M(mattermost.byok.customer_config).
    type: dict
    required: true
  s3_object_sample:
    description:
      - How many objects per bucket to read the encryption of, spread over the first 1000 keys.
      - C(0) reads every object of every bucket (a full verification; slow for large buckets).
    type: int
    default: 20
  s3_newest:
    description:
      - Besides the sample, how many of each bucket's newest objects (by last-modified) to read. Every object is listed
        to find them (one request per 1,000 objects).
    type: int
    default: 20
  s3_cutoffs:
    description:
      - Per bucket, when its default was put on the key (epoch seconds, RV(resources) of M(mattermost.byok.s3_bucket_kms)'s
        C(cutoff)). Objects read that were written after it and are not on the key are listed with their key and time.
    type: dict
    default: {}
  s3_checkpoint:
    description:
      - Where M(mattermost.byok.s3_bucket_kms) keeps its checkpoints (C(bucket), C(prefix)); a bucket without an
        O(s3_cutoffs) entry takes its cutoff from there.
    type: dict
    default: {}
  mattermost_findings:
    description:
      - The C(findings) of M(mattermost.byok.mattermost_server_info). Each installation whose server sends C(AES256) is
        a resource of its own, with the status C(server_sends_sse_s3), never counted on the customer key.
    type: list
    elements: dict
    default: []
  concurrency:
    description: How many AWS calls run at once.
    type: int
    default: 16
  residual_retention_days:
    description:
      - The clean-up's retention (C(byok_residual_retention_days)); with it, each copy kept under the old key is
        reported with the date the clean-up removes it. Without it, only dates AWS sets (backup retention, lifecycle
        rules) are given.
    type: int
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to diff.
  idempotent:
    support: full
    description: The same input gives the same result.
"""

EXAMPLES = r"""
- name: Audit where the customer's data stands
  mattermost.byok.encryption_audit_info:
    config: "{{ byok_config.config }}"
    s3_object_sample: 50
  register: audit

- name: Show what is not on the customer's key
  ansible.builtin.debug:
    msg: "{{ audit.resources | rejectattr('status', 'in', ['customer_key', 'not_enabled']) | list }}"
"""

RETURN = r"""
resources:
  description: One record per resource (an S3 bucket's objects are one record per bucket).
  returned: always
  type: list
  elements: dict
  contains:
    service:
      description: C(s3), C(rds) or C(ebs).
      type: str
    type:
      description: C(s3_bucket), C(s3_objects), C(rds_cluster), C(rds_instance), C(launch_template), C(ebs_volume) or C(kops_instance_group).
      type: str
    id:
      description: Resource identifier.
      type: str
    region:
      description: Region of the resource.
      type: str
    key_arn:
      description: The key that encrypts it, as the service reports it.
      type: str
    expected_key_arn:
      description: The customer's key for this resource, or null when its service is not enabled.
      type: str
    status:
      description: C(customer_key), C(other_key), C(unencrypted), C(not_found), C(error) or C(not_enabled).
      type: str
    detail:
      description: What was read, in words.
      type: str
summary:
  description: Counts overall and per service.
  returned: always
  type: dict
  contains:
    in_scope:
      description: Resources of enabled services.
      type: int
    on_customer_key:
      description: In-scope resources on the customer's key.
      type: int
    compliant:
      description: Every in-scope resource is on the customer's key.
      type: bool
    etcd_not_on_customer_key:
      description: kops etcd volumes not on the customer's key (moved by the EBS step's etcd re-key; a single-member etcd waits for the maintenance window).
      type: int
    compliant_except_etcd:
      description: Every in-scope resource but the kops etcd volumes is on the customer's key.
      type: bool
    revocable:
      description:
        - Every in-scope store and every copy is on the customer's key (and every object was read), so revoking
          the key leaves nothing of the customer readable.
      type: bool
    readable_after_revocation:
      description: What would stay readable after a revocation (C(kind) store, copy or unverified), with its key and when it goes.
      type: list
      elements: dict
copies:
  description:
    - Every copy of the customer's data besides the live stores, for the enabled services - databases kept aside,
      their snapshots, retained automated backups, EBS snapshots and set-aside volumes, noncurrent S3 versions - with
      C(key_arn), C(status), C(size_bytes), C(created), C(goes) (when it goes, if known), C(goes_how) and C(action)
      (what the clean-up does with it).
  returned: always
  type: list
  elements: dict
seconds:
  description: Time the reads took.
  returned: always
  type: float
"""

from ansible_collections.mattermost.byok.plugins.module_utils.aws.module import ByokModule
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.encryption_audit import CustomerAudit


def main():
    module = ByokModule(
        argument_spec=dict(
            config=dict(type="dict", required=True),
            s3_object_sample=dict(type="int", default=20),
            concurrency=dict(type="int", default=16),
            residual_retention_days=dict(type="int"),
            s3_newest=dict(type="int", default=20),
            s3_cutoffs=dict(type="dict", default={}),
            s3_checkpoint=dict(type="dict", default={}),
            mattermost_findings=dict(type="list", elements="dict", default=[]),
        ),
        supports_check_mode=True,
    )
    if module.params["s3_object_sample"] < 0:
        module.fail_json(msg="s3_object_sample: must be 0 (every object) or a positive number")
    if module.params["concurrency"] < 1:
        module.fail_json(msg="concurrency: must be at least 1")
    config = module.params["config"]
    module.require_config(config, ("customer", "region", "services", "service_keys", "s3_buckets", "rds_clusters"))
    client = module.client_cache(max_pool_connections=module.params["concurrency"])

    if module.params["s3_newest"] < 0:
        module.fail_json(msg="s3_newest: must be 0 or more")
    cutoffs = {}
    for bucket, value in (module.params["s3_cutoffs"] or {}).items():
        try:
            cutoffs[bucket] = None if value is None else float(value)
        except (TypeError, ValueError):
            module.fail_json(msg=f"s3_cutoffs.{bucket}: {value!r} is not a time in epoch seconds")
    result = CustomerAudit(config, client, module.params["s3_object_sample"], module.params["concurrency"],
                           s3_cutoffs={b: c for b, c in cutoffs.items() if c is not None},
                           mattermost_findings=module.params["mattermost_findings"], s3_newest=module.params["s3_newest"],
                           s3_checkpoint=module.params["s3_checkpoint"],
                           residual_retention_days=module.params["residual_retention_days"]).run()
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
