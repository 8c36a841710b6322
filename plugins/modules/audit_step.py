#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: audit_step
short_description: The byok_audit step of one customer in one task - audit, JSON report, where the customer stands
version_added: 0.1.0
description:
  - Runs on the controller (an action); the customer step of the C(mattermost.byok.byok_audit) role.
  - For a customer with S3 and no O(mattermost_findings) (the S3 step did not run, or was skipped or failed), reads
    what the Mattermost servers send with their uploads with M(mattermost.byok.mattermost_server_info)
    (C(on_unreadable=provisioner_rule)).
  - Reads which key encrypts each data store with M(mattermost.byok.encryption_audit_info) and returns what it found
    (RV(summary), RV(resources), RV(copies)), also when the step fails; the role registers it as C(byok_audit_result),
    which the fleet summary reads.
  - Writes C(<artifacts_dir>/customers/<inventory_hostname>.json) with M(mattermost.byok.write_report), in check mode
    too (the report is the point of a check-mode run); the same state gives the same file (C(changed=false)).
  - Says where the customer stands (RV(msg)) and, with O(fail_on_noncompliant), fails when a resource in scope is not
    on the customer's key (after the report is written).
  - Read-only besides the report.
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  config:
    description: The customer's normalized configuration (C(byok_config_customer)).
    type: dict
    required: true
  artifacts_dir:
    description: Where reports go (C(byok_audit_artifacts_dir)).
    type: path
    required: true
  s3_object_sample:
    description: Objects read per bucket; C(0) reads every object.
    type: int
    default: 20
  s3_newest:
    description: Besides the sample, how many of each bucket's newest objects are read.
    type: int
    default: 20
  s3_latest:
    description:
      - What the S3 step left per bucket (C(byok_s3_latest)); each bucket's C(cutoff) is when its default was put on the key.
    type: dict
    default: {}
  s3_checkpoint:
    description: Where the S3 step keeps its checkpoints (C(bucket), C(prefix)), for the cutoffs O(s3_latest) lacks.
    type: dict
    default: {}
  mattermost_findings:
    description:
      - The C(findings) of the S3 step's reading of the Mattermost servers (C(byok_s3_server.findings)). Without them,
        a customer with S3 has its servers read here.
    type: list
    elements: dict
  kubectl:
    description: The kubectl command used to read the servers' custom resources.
    type: str
    default: kubectl
  concurrency:
    description: AWS calls in flight at once.
    type: int
    default: 16
  residual_retention_days:
    description: The clean-up's retention; with it, each copy kept under the old key says when the clean-up removes it.
    type: int
  fail_on_noncompliant:
    description: Fail the customer when a resource in scope is not on its key (the report is written first).
    type: bool
    default: false
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: Reads only; the report is written in check mode too.
  diff_mode:
    support: none
    description: The report is a dated record of the run, not a managed file.
  idempotent:
    support: full
    description: The same state writes the same report (C(changed=false)).
notes:
  - Runs only through its action on the controller.
"""

EXAMPLES = r"""
- name: Audit the customer, write its report and say where it stands
  mattermost.byok.audit_step:
    config: "{{ byok_config_customer }}"
    artifacts_dir: "{{ byok_audit_artifacts_dir }}"
    s3_latest: "{{ byok_s3_latest | default({}) }}"
    mattermost_findings: "{{ byok_s3_server.findings | default(omit) }}"
    fail_on_noncompliant: true
"""

RETURN = r"""
msg:
  description:
    - Where the customer stands, the line the step prints - how many resources are on the customer's key, whether it
      is compliant, and what a revocation of the key would leave readable.
  returned: success
  type: str
report:
  description: The customer's JSON report.
  returned: when written
  type: str
summary:
  description: The audit's summary, as M(mattermost.byok.encryption_audit_info) returns it (C(compliant), C(revocable), counts).
  returned: when the audit ran
  type: dict
resources:
  description: One record per resource, as M(mattermost.byok.encryption_audit_info) returns them.
  returned: when the audit ran
  type: list
  elements: dict
copies:
  description: The copies kept under another key, as M(mattermost.byok.encryption_audit_info) returns them.
  returned: when the audit ran
  type: list
  elements: dict
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

# The step's own options; the action adds the AWS connection options (amazon.aws's, as AnsibleAWSModule does).
ARGUMENT_SPEC = dict(
    config=dict(type="dict", required=True),
    artifacts_dir=dict(type="path", required=True),
    s3_object_sample=dict(type="int", default=20),
    s3_newest=dict(type="int", default=20),
    s3_latest=dict(type="dict", default={}),
    s3_checkpoint=dict(type="dict", default={}),
    mattermost_findings=dict(type="list", elements="dict"),
    kubectl=dict(type="str", default="kubectl"),
    concurrency=dict(type="int", default=16),
    residual_retention_days=dict(type="int"),
    fail_on_noncompliant=dict(type="bool", default=False),
)


def main():
    module = AnsibleAWSModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.fail_json(msg="mattermost.byok.audit_step runs only through its action on the controller")


if __name__ == "__main__":
    main()
