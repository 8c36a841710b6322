#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ebs_step
short_description: The EBS step of a customer - Auto Scaling grant, kops spec, roll, etcd re-key, StorageClass, records and report
version_added: 0.1.0
description:
  - The C(mattermost.byok.byok_ebs) role's one task. An action on the controller that runs, one after another, the
    modules the role's tasks ran, so that a fleet run pays for one task per customer for the step.
  - 1. M(mattermost.byok.autoscaling_kms_grant) - the Auto Scaling service-linked role's grant on the EBS key.
  - 2. M(mattermost.byok.kops_kms_update) - the instance groups on the key in the kops spec, applied (O(kops_update)).
    In check mode, when disruption is allowed, the same call predicts the roll.
  - 3. Outside check mode, with instances off the key and disruption allowed (C(byok_disruption.allowed), else
    C(byok_allow_disruption)) - the decision taken again right before the roll (when C(byok_disruption) is set), and
    when still allowed the rolling update, announced before and after.
  - 4. With O(etcd_rekey) - the etcd re-key planned (M(mattermost.byok.kops_etcd_rekey) in check mode); outside check
    mode, with a member to move, the decision taken again when the move stops the control plane, the outage
    announced (only when allowed), the members moved, the end announced.
  - 5. With O(storage_class), outside check mode - the keyed default StorageClass (M(mattermost.byok.ebs_storage_class)),
    written to C(<artifacts_dir>/storage-classes/<customer>.yaml).
  - 6. Two records appended to the fact C(byok_step_results) (the cluster, and its etcd volumes), and the report
    C(<artifacts_dir>/ebs/<customer>.json), written in check mode too (the plan's report).
  - Reads the facts C(byok_config_customer), C(byok_disruption) and C(byok_allow_disruption) (and the announcement
    settings of C(mattermost.byok.byok_announce)); sets C(byok_step_results), C(byok_announcements) and, when it
    decides again, C(byok_disruption).
  - Runs only through its action on the controller; there is no module to run on a host.
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  cluster_name:
    description: The kops cluster name.
    type: str
    required: true
  state_store:
    description: The kops state store URL (C(s3://...)).
    type: str
    required: true
  key_arn:
    description: Full ARN of the customer's EBS key.
    type: str
    required: true
  grantee_principal:
    description: The role that launches the instances (the Auto Scaling service-linked role of the provider account).
    type: str
  kops_binary:
    description: The kops executable, on PATH or a path.
    type: str
    default: kops
  kops_update:
    description: How the spec reaches AWS - C(kops update cluster --yes), kops's terraform target, or not at all.
    type: str
    choices: [none, direct, terraform]
    default: direct
  terraform_dir:
    description: Directory for kops's terraform output (O(kops_update=terraform)); empty for none.
    type: str
  terraform_binary:
    description: The terraform executable.
    type: str
    default: terraform
  instance_groups:
    description: Instance groups to put on the key; empty means all of them, the control plane included.
    type: list
    elements: str
    default: []
  etcd:
    description: What M(mattermost.byok.kops_kms_update) does about etcd volumes off the key - report them, or fail.
    type: str
    choices: [report, fail]
    default: report
  additional_policies:
    description: IAM statements per kops role (C(node), C(master)) that the kops roles lack on the customer's keys.
    type: dict
    default: {}
  etcd_rekey:
    description: Move the etcd volumes onto the key, one control-plane member at a time; C(false) only reports them.
    type: bool
    default: true
  etcd_validate_seconds:
    description: How long C(kops validate cluster) may wait after an etcd member restarts.
    type: int
    default: 900
  etcd_outage_seconds:
    description: Expected control-plane outage while a single-member etcd moves, for the record and the announcement.
    type: int
    default: 600
  storage_class:
    description: Render (and with O(kubeconfig), apply) the keyed default StorageClass, and tell kops to stop managing its own.
    type: bool
    default: true
  storage_class_name:
    description: Name of the new StorageClass.
    type: str
    default: kops-csi-byok
  kubeconfig:
    description: kubeconfig of the customer's cluster; without it the class is rendered and validated only.
    type: str
  kubectl_binary:
    description: The kubectl executable.
    type: str
    default: kubectl
  seconds_per_instance:
    description: Estimated disruption per replaced instance, for the record and the announcement.
    type: int
    default: 300
  artifacts_dir:
    description: Where the StorageClass manifest (C(storage-classes/)) and the EBS report (C(ebs/)) go.
    type: path
    required: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description:
      - The grant and the spec are predicted, the roll too when disruption is allowed; the etcd re-key is planned;
        no StorageClass; the records and the report of the plan are written.
  diff_mode:
    support: full
    description: Shows the kops spec changes (and the etcd re-key's).
  idempotent:
    support: full
    description: A second run changes nothing (the report is written again, not counted as a change).
"""

EXAMPLES = r"""
- name: Put the kops cluster on the customer's EBS key
  mattermost.byok.ebs_step:
    cluster_name: "{{ byok_config_customer.kops_cluster_name }}"
    state_store: "{{ byok_config_customer.kops_state_store.url }}"
    key_arn: "{{ byok_config_customer.service_keys.ebs }}"
    grantee_principal: "{{ byok_config_customer.principals.autoscaling_role }}"
    kops_binary: kops
    artifacts_dir: "{{ playbook_dir }}/artifacts"
"""

RETURN = r"""
records:
  description: The records appended to C(byok_step_results) - the cluster, and its etcd volumes.
  returned: success
  type: list
  elements: dict
report:
  description: The EBS report's path.
  returned: success
  type: str
rolled:
  description: Whether this run rolled the instances onto the key.
  returned: success
  type: bool
"""

from ansible_collections.mattermost.byok.plugins.module_utils.aws.module import AnsibleAWSModule

ARGUMENT_SPEC = dict(
    cluster_name=dict(type="str", required=True),
    state_store=dict(type="str", required=True),
    key_arn=dict(type="str", required=True, no_log=False),
    grantee_principal=dict(type="str"),
    kops_binary=dict(type="str", default="kops"),
    kops_update=dict(type="str", choices=["none", "direct", "terraform"], default="direct"),
    terraform_dir=dict(type="str"),
    terraform_binary=dict(type="str", default="terraform"),
    instance_groups=dict(type="list", elements="str", default=[]),
    etcd=dict(type="str", choices=["report", "fail"], default="report"),
    additional_policies=dict(type="dict", default={}),
    etcd_rekey=dict(type="bool", default=True),
    etcd_validate_seconds=dict(type="int", default=900),
    etcd_outage_seconds=dict(type="int", default=600),
    storage_class=dict(type="bool", default=True),
    storage_class_name=dict(type="str", default="kops-csi-byok"),
    kubeconfig=dict(type="str"),
    kubectl_binary=dict(type="str", default="kubectl"),
    seconds_per_instance=dict(type="int", default=300),
    artifacts_dir=dict(type="path", required=True),
)


def main():
    module = AnsibleAWSModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.fail_json(msg="mattermost.byok.ebs_step runs only through its action on the controller (the byok_ebs role's task)")


if __name__ == "__main__":
    main()
