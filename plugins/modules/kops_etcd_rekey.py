#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kops_etcd_rekey
short_description: Move a kops cluster's etcd volumes onto the customer's KMS key, one member at a time
version_added: 0.2.0
description:
  - An EBS volume's key cannot change, and kops refuses a new C(kmsKeyId) on an existing etcd volume. etcd-manager
    finds its volume by tags (C(kubernetes.io/cluster/<cluster>=owned), C(k8s.io/etcd/<etcd cluster>) = C(<member>/<members>),
    C(k8s.io/role/control-plane=1), in its own zone). This module moves each member onto the key by giving those tags
    to a copy of its volume made on the key, while the member is stopped.
  - Per control-plane instance group, one at a time - C(stop_member) (the group scaled to 0, its sizes kept in a
    C(byok:etcd-rekey-sizes) tag), C(snapshot) each of its etcd volumes, C(create_volume) from the snapshot on the key
    (same zone, type, size, IOPS, throughput), C(swap_tags) (the old volume loses etcd-manager's and kops's tags, kept in
    C(byok:set-aside-tags), and is marked set aside; the new one gets them - never both at once), C(start_member) (sizes
    restored; the new node's etcd-manager attaches the new volume), C(validate) (C(kops validate cluster) and the new
    volumes attached to the group's running node) - then the next member.
  - With every member on the key, the Cluster spec's etcd members get C(encryptedVolume=true) and C(kmsKeyId), so
    volumes kops creates later are on the key (C(kops replace), C(kops update cluster --yes)).
  - A member of a 3-member etcd stops only when every other member runs on its volume (quorum kept). A single-member
    etcd is a control-plane outage while its member is stopped - it runs only with O(allow_disruption), otherwise the
    member is returned as C(deferred).
  - Resumable after any step - each step is chosen from what AWS shows (tags on the snapshot, the new volume, the
    set-aside volume and the group). The old volume and the snapshot stay, tagged C(byok:set-aside-*), for the residual
    clean-up (M(mattermost.byok.residual_cleanup)) and its retention.
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  cluster_name:
    description: The kops cluster name, for Mattermost C(<cluster id>-kops.k8s.local).
    type: str
    required: true
  state:
    description: The kops state store, C(s3://<bucket>[/<prefix>]).
    type: str
    required: true
  key_arn:
    description: Full ARN of the customer's key, in the cluster's region. Aliases and bare key ids are refused.
    type: str
    required: true
  kops_binary:
    description: The kops executable (name on PATH or path).
    type: str
    default: kops
  allow_disruption:
    description: Whether a single-member etcd (a control-plane outage while it moves) may move now.
    type: bool
    default: false
  update_spec:
    description: Set C(encryptedVolume) and C(kmsKeyId) on the Cluster's etcd members once every member is on the key.
    type: bool
    default: true
  max_steps:
    description: Return after this many steps with C(complete=false) (the next call goes on from there).
    type: int
  validate_wait_seconds:
    description: How long C(kops validate cluster --wait) may wait for the cluster after a member restarts.
    type: int
    default: 900
  wait_timeout:
    description: Seconds to wait for one snapshot, volume or member before failing (a re-run resumes).
    type: int
    default: 1800
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
    description: Returns the plan per member (next step, outage or quorum kept) and the spec changes; changes nothing.
  diff_mode:
    support: full
    description: The etcd members' volumes and spec fields before and after.
  idempotent:
    support: full
    description: With every member on the key and the spec set, reports C(changed=false).
"""

EXAMPLES = r"""
- name: Put the etcd volumes on the customer's key (a single-member etcd only inside the window)
  mattermost.byok.kops_etcd_rekey:
    cluster_name: acme01-kops.k8s.local
    state: s3://mattermost-kops-state-demo
    key_arn: arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001
    allow_disruption: "{{ byok_disruption.allowed }}"
  register: etcd
"""

RETURN = r"""
members:
  description:
    - Per control-plane instance group, after the call - C(instance_group), C(members), C(next_step) (C(done) when on
      the key), C(outage), C(quorum_kept), C(volumes).
  returned: always
  type: list
  elements: dict
complete:
  description: Every member is on the key (and the spec set, with O(update_spec)).
  returned: always
  type: bool
deferred:
  description: Instance groups whose single-member etcd waits for O(allow_disruption).
  returned: always
  type: list
  elements: str
steps:
  description: What was done, one line per action.
  returned: always
  type: list
  elements: str
spec_changes:
  description: The Cluster spec fields set (or to be set, in check mode).
  returned: always
  type: list
  elements: dict
outage_seconds:
  description: Seconds single-member etcds were stopped during this call (from stop to the member validated).
  returned: always
  type: float
commands:
  description: The kops commands run.
  returned: always
  type: list
  elements: str
"""

import datetime
import time

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # handled by ByokModule

from ansible_collections.mattermost.byok.plugins.module_utils.kops import etcd_rekey
from ansible_collections.mattermost.byok.plugins.module_utils.kops import spec as kops_spec
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import InvalidIdentifier
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import parse_kms_key_arn
from ansible_collections.mattermost.byok.plugins.module_utils.aws.module import ByokModule
from ansible_collections.mattermost.byok.plugins.module_utils.kops.cli import KopsCli
from ansible_collections.mattermost.byok.plugins.module_utils.kops.cli import KopsCliError
from ansible_collections.mattermost.byok.plugins.module_utils.kops.cli import aws_environment
from ansible_collections.mattermost.byok.plugins.module_utils.kops.cli import check_state_store
from ansible_collections.mattermost.byok.plugins.module_utils.kops.cli import resolve_binary


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def main():
    module = ByokModule(
        argument_spec=dict(
            cluster_name=dict(type="str", required=True),
            state=dict(type="str", required=True),
            key_arn=dict(type="str", required=True, no_log=False),
            kops_binary=dict(type="str", default="kops"),
            allow_disruption=dict(type="bool", default=False),
            update_spec=dict(type="bool", default=True),
            max_steps=dict(type="int"),
            validate_wait_seconds=dict(type="int", default=900),
            wait_timeout=dict(type="int", default=1800),
            poll_seconds=dict(type="float", default=5),
        ),
        supports_check_mode=True,
    )
    p = module.params
    result = {"changed": False, "complete": False, "deferred": [], "steps": [], "spec_changes": [], "members": [],
              "outage_seconds": 0.0, "commands": []}
    try:
        key = str(parse_kms_key_arn(p["key_arn"], "key_arn"))
    except InvalidIdentifier as e:
        module.fail_json(msg=str(e), **result)
    region = p["region"] or parse_kms_key_arn(key).region
    if parse_kms_key_arn(key).region != region:
        module.fail_json(msg=f"key_arn: the key is in {parse_kms_key_arn(key).region}, but the cluster's region is {region}; "
                             "EBS volumes need a key in their own region", **result)
    if p["max_steps"] is not None and p["max_steps"] < 1:
        module.fail_json(msg="max_steps: at least 1 (or leave it out to go to the end)", **result)
    try:
        kops = KopsCli(resolve_binary(p["kops_binary"]), check_state_store(p["state"]),
                       lambda argv, env: module.run_command(argv, environ_update=env), aws_environment(p, region))
        cluster = kops.get_cluster(p["cluster_name"])
        members = kops_spec.etcd_members(cluster)
    except (KopsCliError, kops_spec.KopsSpecError) as e:
        module.fail_json(msg=str(e), **result)
    if not members:
        module.fail_json(msg=f"cluster_name: {p['cluster_name']} has no etcd members in its spec", **result)

    def validate():
        kops.run("validate", "cluster", "--name", p["cluster_name"], "--wait", f"{p['validate_wait_seconds']}s",
                 what=f"validating {p['cluster_name']} after an etcd member restarted")

    rekey = etcd_rekey.EtcdRekey(module.byok_client("ec2", region=region), module.byok_client("autoscaling", region=region),
                                 p["cluster_name"], members, key, validate, now_iso,
                                 poll=p["poll_seconds"], timeout=p["wait_timeout"])
    try:
        plan = rekey.plan()
        before = plan
        steps = 0
        stopped_at = None
        if not module.check_mode:
            for entry in plan:
                ig = entry["instance_group"]
                if entry["next_step"] == etcd_rekey.DONE:
                    continue
                if entry["outage"] and not p["allow_disruption"]:
                    result["deferred"].append(ig)
                    continue
                started = time.monotonic()
                while p["max_steps"] is None or steps < p["max_steps"]:
                    done = rekey.step(ig)
                    if done == etcd_rekey.DONE:
                        break
                    steps += 1
                    result["changed"] = True
                if entry["outage"]:
                    result["outage_seconds"] += round(time.monotonic() - started, 1)
                if p["max_steps"] is not None and steps >= p["max_steps"]:
                    stopped_at = ig
                    break
            plan = rekey.plan()
        result["members"] = plan
        result["steps"] = rekey.log
        all_done = all(m["next_step"] == etcd_rekey.DONE for m in plan)
        if p["update_spec"] and (all_done or module.check_mode) and stopped_at is None:
            current = kops.get_cluster(p["cluster_name"]) if not module.check_mode else cluster
            new, changes = etcd_rekey.spec_with_keys(current, key)
            result["spec_changes"] = changes
            if changes and all_done and not module.check_mode:
                kops.replace([new], what=f"setting the etcd members' key in {p['cluster_name']}")
                kops.update_cluster(p["cluster_name"])
                result["steps"].append(f"{p['cluster_name']}: etcd members encryptedVolume=true, kmsKeyId={key} in the spec")
            if changes:
                result["changed"] = True
        if module.check_mode:
            result["changed"] = any(m["next_step"] != etcd_rekey.DONE for m in plan) or bool(result["spec_changes"])
        result["complete"] = all_done and stopped_at is None and not (module.check_mode and result["spec_changes"])
    except etcd_rekey.EtcdRekeyError as e:
        module.fail_json(msg=str(e), **{**result, "steps": rekey.log, "commands": kops.commands})
    except KopsCliError as e:
        module.fail_json(msg=str(e), **{**result, "steps": rekey.log, "commands": kops.commands})
    except (ClientError, BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"etcd re-key of {p['cluster_name']} stopped after {len(rekey.log)} action(s); run again to resume",
                             steps=rekey.log, commands=kops.commands)
    result["commands"] = kops.commands
    if module._diff:
        result["diff"] = {"before": _describe(before, []), "after": _describe(result["members"], result["spec_changes"], predicted=module.check_mode, key=key)}
    module.exit_json(**result)


def _describe(plan, spec_changes, predicted=False, key=None):
    lines = []
    for m in plan:
        for etcd, v in sorted(m["volumes"].items()):
            if predicted and m["next_step"] != etcd_rekey.DONE:
                lines.append(f"etcd {etcd} member of {m['instance_group']}: a new volume on {key}")
            else:
                lines.append(f"etcd {etcd} member of {m['instance_group']}: {v['live'] or v['new']} on {v['live_key']}")
    lines += [f"{c['path']}: {c['after']}" for c in spec_changes]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
