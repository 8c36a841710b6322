# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""mattermost.byok.key_step: the key check of one customer as one task (plugins/modules/key_step.py documents it).

It runs the collection's modules one after another, as the byok_key role's tasks did: the external key's import,
the key policy check of each distinct key, the canary credentials' read, the provider-side IAM check (and fix), then
writes the onboarding document and the key-check report and stops the customer when a key is not ready. What it
decides and records is plugins/module_utils/kms/key_step_record.py."""
from __future__ import annotations

import os

from ansible_collections.mattermost.byok.plugins.module_utils.kms import key_step_record as record
from ansible_collections.mattermost.byok.plugins.modules.key_step import ARGUMENT_SPEC
from ansible_collections.mattermost.byok.plugins.modules.key_step import REQUIRED_BY
from ansible_collections.mattermost.byok.plugins.plugin_utils.role_template import render_role_template
from ansible_collections.mattermost.byok.plugins.plugin_utils.step_action import StepAction
from ansible_collections.mattermost.byok.plugins.plugin_utils.step_action import StepFailed
from ansible_collections.mattermost.byok.plugins.plugin_utils.step_action import aws_option_spec


class ActionModule(StepAction):

    def step(self, task_vars, args):
        dummy, args = self.validate_argument_spec(argument_spec=dict(ARGUMENT_SPEC, **aws_option_spec()), required_by=REQUIRED_BY)
        aws = self.aws_args(args)
        config = args["config"]
        keys = config.get("distinct_keys") or []
        customer = task_vars.get("inventory_hostname")
        changed, diffs = False, []

        def run_each(module, runs, check_mode=None):
            """Every run of the module (label, arguments), a progress line each; then the failed ones' messages stop the step."""
            nonlocal changed
            results = []
            for label, module_args in runs:
                # The run's connection options, under the module's own (an import names its key's region).
                result = self.run_module(module, dict(aws, **module_args), task_vars, check_mode=check_mode, fail=False)
                changed = changed or bool(result.get("changed"))
                if result.get("diff"):
                    diffs.extend(result["diff"] if isinstance(result["diff"], list) else [result["diff"]])
                self.progress([record.progress_line(customer, module, label, result)])
                results.append(result)
            failed = record.failed_messages(results)
            if failed:
                raise StepFailed("\n".join(failed), {"changed": changed})
            return results

        # External key: the customer's material imported (again when it expires soon) before the check.
        if record.material_import_wanted(config, args["key_material"], args["material_customer"], customer):
            imports = run_each("kms_key_import", [(k["arn"], record.import_args(
                k, args["external_alias"], args["key_material"], args["material_expiration_model"], args["material_valid_days"],
                args["min_material_validity_days"])) for k in keys])
            if not self._task.check_mode:
                mismatches = record.alias_mismatches(args["external_alias"], keys, imports)
                if mismatches:
                    raise StepFailed("\n".join(mismatches))

        # Each distinct key once, for the union of the services that use it.
        checks = run_each("kms_policy_check", [(f"{k['arn']} ({', '.join(k['services'])})", record.check_args(
            k, config, self._policy(args, k["arn"]), args["probe"], args["min_material_validity_days"])) for k in keys])

        # Unreadable canary credentials stop the customer here, before the IAM fix or any other change.
        run_each("s3_server_canary", record.canary_reads(config, args["installations"]))

        iams = run_each("iam_kms_access", [(k["arn"], record.iam_args(
            k, check, config, args["server_identities"], args["automation_role_arn"], args["iam_fix"])) for k, check in zip(keys, checks)])
        # What the kops roles' IAM policies lack on the customer's keys: the EBS step gives it to kops (kops owns them).
        self.keep(byok_key_kops_additional_policies=record.kops_additional_policies(iams))

        # Both documents are the point of a check-mode run too: written in check mode as well, and a record of this
        # run rather than a change to anything the step manages (changed stays what the modules said).
        records = record.key_check_records(keys, checks, iams)
        onboarding = render_role_template(self, "onboarding.md.j2", task_vars, {"byok_key_onboarding_customer": customer})
        for directory, ext, content in (("onboarding", "md", onboarding), ("key-checks", "json", record.key_checks_json(records))):
            self.run_module("write_report", {"dest": os.path.join(args["artifacts_dir"], directory, f"{customer}.{ext}"),
                                             "content": content}, task_vars, check_mode=False)

        ready, msg = record.outcome(checks, iams)
        result = {"changed": changed, "msg": msg}
        if diffs:
            result["diff"] = diffs
        if not ready:
            raise StepFailed(msg, result)  # what was found is in the key-check report
        return dict(result, key_checks=records)

    def _policy(self, args, key_arn):
        """The customer's saved policy of the key: from `policies`, else its file in `policy_dir` (read here, on the
        controller), else none (the check reads the policy from AWS)."""
        if key_arn in (args["policies"] or {}):
            return args["policies"][key_arn]
        if args["policy_dir"]:
            path = record.policy_file(args["policy_dir"], key_arn)
            if os.path.isfile(path):
                return self._loader.get_text_file_contents(path).rstrip()  # as the file lookup reads it
        return None
