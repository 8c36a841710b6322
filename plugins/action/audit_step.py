# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""mattermost.byok.audit_step: the byok_audit role's customer step as one task (plugins/modules/audit_step.py)."""
from __future__ import annotations

from ansible_collections.mattermost.byok.plugins.module_utils.fleet import audit_record
from ansible_collections.mattermost.byok.plugins.modules import audit_step
from ansible_collections.mattermost.byok.plugins.plugin_utils.step_action import StepAction
from ansible_collections.mattermost.byok.plugins.plugin_utils.step_action import StepFailed
from ansible_collections.mattermost.byok.plugins.plugin_utils.step_action import aws_option_spec


ARGUMENT_SPEC = dict(audit_step.ARGUMENT_SPEC, **aws_option_spec())


class ActionModule(StepAction):

    def step(self, task_vars, args):
        del args  # the validated ones below
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        customer = task_vars["inventory_hostname"]
        config = args["config"]
        aws = self.aws_args(args)

        findings = args["mattermost_findings"]
        if audit_record.server_read_needed(config.get("services"), findings):
            # The S3 step reads the servers when it runs; an audit on its own (--tags audit) reads them here.
            server = self.run_module("mattermost_server_info", {
                "installations": config.get("mattermost_installations") or [],
                "buckets": config.get("s3_buckets"),
                "kubectl": args["kubectl"],
                "on_unreadable": "provisioner_rule",
            }, task_vars)
            findings = server.get("findings")

        audit = self.run_module("encryption_audit_info", {
            "config": config,
            "s3_object_sample": args["s3_object_sample"],
            "s3_newest": args["s3_newest"],
            "s3_cutoffs": audit_record.s3_cutoffs(args["s3_latest"]),
            "mattermost_findings": findings or [],
            "s3_checkpoint": args["s3_checkpoint"],
            "concurrency": args["concurrency"],
            "residual_retention_days": args["residual_retention_days"],
            **aws,
        }, task_vars)
        # The step's result (the task's register, byok_audit_result) carries the audit: the fleet summary reads each
        # customer's summary, resources and copies from it, also when the step fails (a failed task's facts are not kept).
        found = {k: v for k, v in audit.items() if k not in ("invocation", "changed", "msg", "warnings", "failed")}

        # Written in check mode too: the report is the point of a check-mode run. No diff: a report, not a managed file.
        dest = f"{args['artifacts_dir']}/customers/{customer}.json"
        written = self.run_module("write_report", {
            "dest": dest,
            "content": audit_record.report_text(audit_record.customer_report(customer, config, audit)),
        }, task_vars, check_mode=False, diff=False)

        summary = audit.get("summary") or {}
        line = audit_record.standing_line(customer, summary)
        self.progress([line])
        failure = audit_record.noncompliant_failure(customer, summary, args["fail_on_noncompliant"], args["artifacts_dir"])
        result = dict(found, changed=bool(written.get("changed")), report=dest)
        if failure:
            raise StepFailed(failure, result)
        return dict(result, msg=line)
