# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""mattermost.byok.ebs_step: the byok_ebs role as one task (plugin_utils/step_action.py).

The grant, the kops spec, the roll, the etcd re-key, the StorageClass, then the records and the report
(module_utils/kops/ebs_step_record.py), in the order and under the conditions of the role's former tasks."""
from __future__ import annotations

import json
import os

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.mattermost.byok.plugins.module_utils.kops import ebs_step_record as record
from ansible_collections.mattermost.byok.plugins.modules.ebs_step import ARGUMENT_SPEC
from ansible_collections.mattermost.byok.plugins.plugin_utils.step_action import StepAction
from ansible_collections.mattermost.byok.plugins.plugin_utils.step_action import aws_option_spec


class ActionModule(StepAction):

    def step(self, task_vars, args):
        _validation, args = self.validate_argument_spec(argument_spec=dict(aws_option_spec(), **ARGUMENT_SPEC))
        aws = self.aws_args(dict(self._task.args))
        check_mode = bool(self._task.check_mode)

        def get(name, default=None):
            return self._templar.template(task_vars.get(name, default))

        host = task_vars.get("inventory_hostname")
        cluster, key = args["cluster_name"], args["key_arn"]
        self.diffs = []

        # byok_disruption.allowed when byok_config decided it, else the run's permission alone.
        decided = "byok_disruption" in task_vars
        permitted = boolean(get("byok_allow_disruption", False), strict=False)
        allowed = boolean((get("byok_disruption") or {}).get("allowed", False), strict=False) if decided else permitted

        kops_args = dict(
            cluster_name=cluster, state=args["state_store"], key_arn=key, kops_binary=args["kops_binary"],
            instance_groups=args["instance_groups"] or None,
            manage_storage_classes=False if args["storage_class"] else None,
            etcd=args["etcd"],
            **aws)

        # Before anything launches on the key: Auto Scaling cannot use another account's key without this grant.
        grant = self.run_module("autoscaling_kms_grant", dict(key_arn=key, grantee_principal=args["grantee_principal"], **aws), task_vars)
        self.progress([f"Auto Scaling grant: {grant.get('summary')}"])

        # In check mode the same call also predicts the roll when disruption is allowed (nothing disruptive runs).
        kops = self.run_kops("kops_kms_update", dict(
            kops_args, additional_policies=args["additional_policies"] or None, update=args["kops_update"],
            terraform_dir=args["terraform_dir"] or None, terraform_binary=args["terraform_binary"],
            rolling_update=check_mode and allowed, allow_disruption=check_mode and allowed), task_vars)
        self.progress([f"kops: {kops.get('summary')}"])

        # The roll, decided again right before it (a run that started inside the window may have left it). Without
        # the run's permission the window cannot allow it, so the decision is not taken again then.
        roll = None
        stale = len(record.off_key(kops.get("instances")))
        if not check_mode and stale > 0 and (allowed or permitted):
            if decided:
                allowed = bool(self.disruption_now(task_vars, get("byok_config_customer", {}) or {}).get("allowed"))
            if allowed:
                self.announce(task_vars, "before", "ebs", record.roll_announcement(cluster, stale, args["seconds_per_instance"]))
                roll = self.run_kops("kops_kms_update", dict(kops_args, update="none", rolling_update=True, allow_disruption=True), task_vars)
                self.announce(task_vars, "after", "ebs", roll.get("summary"))

        etcd = {}
        if args["etcd_rekey"]:
            etcd_args = dict(cluster_name=cluster, state=args["state_store"], key_arn=key, kops_binary=args["kops_binary"],
                             validate_wait_seconds=args["etcd_validate_seconds"], **aws)
            etcd = self.run_kops("kops_etcd_rekey", dict(etcd_args, allow_disruption=allowed), task_vars, check_mode=True)
            if not check_mode and record.members_to_move(etcd):
                outage = record.outage_members(etcd)
                if decided and outage:
                    allowed = bool(self.disruption_now(task_vars, get("byok_config_customer", {}) or {}).get("allowed"))
                if outage and allowed:
                    self.announce(task_vars, "before", "ebs", record.etcd_announcement_before(cluster, args["etcd_outage_seconds"]))
                etcd = self.run_kops("kops_etcd_rekey", dict(etcd_args, allow_disruption=allowed), task_vars)
                if outage and allowed:
                    self.announce(task_vars, "after", "ebs", record.etcd_announcement_after(cluster, etcd.get("outage_seconds")))
            etcd = record.as_registered(etcd)

        # Not in check mode: it would only render and validate a manifest that depends on nothing but the key.
        storage = None
        if args["storage_class"] and not check_mode:
            storage = self.run_module("ebs_storage_class", dict(
                key_arn=key, name=args["storage_class_name"],
                dest=os.path.join(args["artifacts_dir"], "storage-classes", f"{host}.yaml"),
                kubeconfig=args["kubeconfig"] or None, kubectl_binary=args["kubectl_binary"]), task_vars, diff=False)

        records = record.ebs_records(cluster, grant, kops, roll, etcd, allowed, check_mode, args["seconds_per_instance"],
                                     args["etcd_outage_seconds"])
        self.progress([f"{r['resource']}: {r['summary']}" for r in records[1:]])
        self.keep(byok_step_results=list(get("byok_step_results", []) or []) + records)

        # Written in check mode too (the plan's report); the report of this run, not a change to the customer.
        report = record.ebs_report(host, cluster, key, check_mode, grant, kops, roll, etcd, storage)
        dest = os.path.join(args["artifacts_dir"], "ebs", f"{host}.json")
        self.run_module("write_report", dict(dest=dest, content=json.dumps(report, indent=4, separators=(",", ": ")) + "\n",
                                             mode="0640"), task_vars, check_mode=False, diff=False)

        changed = any(r.get("changed") for r in (grant, kops, roll or {}, etcd, storage or {}))
        result = dict(changed=changed, records=records, report=dest, rolled=roll is not None)
        if self.diffs:
            result["diff"] = self.diffs
        return result

    def run_kops(self, name, module_args, task_vars, check_mode=None):
        """A kops module run whose diff (the spec changes) is the step's too."""
        result = self.run_module(name, module_args, task_vars, check_mode=check_mode)
        if result.get("diff"):
            self.diffs.extend(result["diff"] if isinstance(result["diff"], list) else [result["diff"]])
        return result
