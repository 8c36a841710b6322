# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""mattermost.byok.s3_step: the S3 step of a customer as one task (plugins/modules/s3_step.py documents it).

In order: the optional stopgap (mattermost_server_setting), what the servers send (mattermost_server_info), a canary
as each server before any object changes (s3_server_canary, every installation/bucket pair tried), the batch rounds
of s3_bucket_kms for every bucket still pending (each bucket's progress line after each round), the canaries again,
then one record per bucket appended to byok_step_results. What is decided and recorded is module_utils/s3/step_record.py.
"""
from __future__ import annotations

from ansible_collections.mattermost.byok.plugins.module_utils.s3 import step_record
from ansible_collections.mattermost.byok.plugins.modules.s3_step import ARGUMENT_SPEC
from ansible_collections.mattermost.byok.plugins.plugin_utils.step_action import StepAction
from ansible_collections.mattermost.byok.plugins.plugin_utils.step_action import StepFailed
from ansible_collections.mattermost.byok.plugins.plugin_utils.step_action import aws_option_spec


AWS_SPEC = aws_option_spec()
SPEC = dict(ARGUMENT_SPEC, **AWS_SPEC)
# The s3_bucket_kms options the step gives itself.
STEP_SETS = {"bucket", "buckets", "key_arn", "max_seconds"} | set(AWS_SPEC) | {a for o in AWS_SPEC.values() for a in o.get("aliases", [])}


class ActionModule(StepAction):

    def step(self, task_vars, args):
        dummy, args = self.validate_argument_spec(argument_spec=SPEC)
        clash = sorted(set(args["bucket_options"]) & STEP_SETS)
        if clash:
            raise StepFailed(f"bucket_options: {', '.join(clash)} set by the step itself; leave them out")
        check_mode = bool(self._task.check_mode)
        aws = self.aws_args(args)
        host = task_vars.get("inventory_hostname")
        buckets = args["buckets"]
        diffs = []
        result = {"changed": False}

        stopgap = {}
        if args["server_setting_stopgap"]:
            stopgap = self.run_module("mattermost_server_setting", {
                "installations": args["installations"], "kubectl": args["kubectl"]}, task_vars)
            result["changed"] |= bool(stopgap.get("changed"))
            if stopgap.get("diff"):
                diffs.append(stopgap["diff"])

        server = self.run_module("mattermost_server_info", {
            "installations": args["installations"], "buckets": buckets, "kubectl": args["kubectl"],
            "on_unreadable": args["server_setting_unreadable"]}, task_vars)
        server = {k: server.get(k) for k in ("installations", "buckets", "findings")}
        self.keep(byok_s3_server=server)
        result["server"] = server

        canaries = []  # (bucket, result), before then after

        def canary(phase):
            failed = []
            for index, installation, bucket in step_record.canary_pairs(args["canary_installations"], buckets):
                credentials = installation.get("canary_credentials") or {}
                done = self.run_module("s3_server_canary", dict(
                    aws, bucket=bucket, key_arn=args["key_arn"], identity=installation.get("s3_identity_arn"),
                    credentials_secret=credentials.get("secret"), credentials_role_arn=credentials.get("role_arn"),
                    variable=f"byok_mattermost_installations[{index}].canary_credentials",
                    sse_enabled=step_record.server_sends_sse(installation, server, args["server_sse"]),
                    phase=phase, run_id=f"{host}-{phase}"), task_vars, fail=False)
                canaries.append((bucket, done))
                self.progress([done.get("summary") or f"{step_record.canary_label(installation, bucket)} ({phase}): {done.get('msg')}"])
                if done.get("failed"):
                    failed.append(done.get("msg") or done.get("summary") or "failed")
            result["canary"] = [dict(done, bucket=bucket) for bucket, done in canaries]
            if failed:
                # Every pair was tried: the failed ones' messages are the customer's failure message.
                raise StepFailed("\n".join(failed), {"changed": result["changed"], "canary": result["canary"]})

        if args["canary"]:
            canary("before")

        rounds = step_record.Rounds(buckets)
        try:
            while True:
                done = self.run_module("s3_bucket_kms", {
                    **args["bucket_options"], **aws, "key_arn": args["key_arn"],
                    "buckets": step_record.round_buckets(rounds.pending, server, args["server_setting_stopgap"]),
                    # Check mode counts every object in one call.
                    "max_seconds": None if check_mode else args["batch_seconds"]}, task_vars, fail=False)
                results = done.get("results") or []
                if done.get("diff"):
                    diffs.extend(done["diff"] if isinstance(done["diff"], list) else [done["diff"]])
                if done.get("failed"):
                    self.progress(step_record.progress_lines(results))
                    raise StepFailed(done.get("msg") or "mattermost.byok.s3_bucket_kms failed",
                                     {"bucket_results": {r.get("bucket"): r for r in results}})
                rounds.add(results)
                self.progress(step_record.progress_lines(results))
                if not rounds.another(args["max_rounds"], check_mode):
                    break
        finally:
            if rounds.number:
                self.keep(byok_s3_latest=rounds.latest)
            result.update(rounds=rounds.number, bucket_results=rounds.last, changed=result["changed"] or bool(rounds.changed))
            if diffs:
                result["diff"] = diffs

        if args["canary"]:
            canary("after")

        records = step_record.bucket_records(buckets, rounds, server, stopgap.get("changed_installations") or [],
                                             canaries, check_mode)
        before = self._templar.template(task_vars.get("byok_step_results", [])) or []
        self.keep(byok_step_results=list(before) + records)
        result["records"] = records
        return result
