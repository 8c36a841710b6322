# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""mattermost.byok.rds_step: the byok_rds role's step as one task (plugins/plugin_utils/step_action.py).

Rounds of one time-boxed rds_reencrypt call for all of the customer's pending databases, a progress line per
database after each round, announced before and after when the cut-over may disrupt now; then one record per
database appended to byok_step_results. What it decides and records is plugins/module_utils/rds/step_record.py.
"""
from __future__ import annotations

from ansible_collections.mattermost.byok.plugins.module_utils.rds import step_record
from ansible_collections.mattermost.byok.plugins.modules.rds_step import ARGUMENT_SPEC
from ansible_collections.mattermost.byok.plugins.plugin_utils.step_action import StepAction
from ansible_collections.mattermost.byok.plugins.plugin_utils.step_action import aws_option_spec


class ActionModule(StepAction):

    def step(self, task_vars, args):
        # The task's options checked, with their defaults (the args given are the same, unchecked).
        args = self.validate_argument_spec(argument_spec={**aws_option_spec(), **ARGUMENT_SPEC})[1]
        customer, strategy, allowed = args["customer"], args["strategy"], args["allow_disruption"]
        check_mode = bool(self._task.check_mode)
        targets = step_record.targets(customer)
        plan_only = step_record.plan_only(allowed, strategy, customer)
        # The cut-over that may disrupt now is announced before the first call and after the last round.
        announced = allowed and not check_mode and len(targets) > 0
        if announced:
            self.announce(task_vars, "before", "rds", step_record.announcement_before(targets, customer, strategy))
        state, calls, diff = self.rounds(task_vars, args, targets, plan_only, check_mode)
        if announced:
            self.announce(task_vars, "after", "rds", step_record.announcement_after(targets))
        records = step_record.records(targets, state, plan_only, check_mode, strategy)
        results = self._templar.template(task_vars.get("byok_step_results", [])) or []
        self.keep(byok_step_results=list(results) + records)
        return {"changed": any(s["changed"] for s in state.values()), "records": records, "databases": state,
                "calls": calls, "plan_only": plan_only, "diff": diff}

    def rounds(self, task_vars, args, targets, plan_only, check_mode):
        """One call for every database still pending, its progress lines, again until none is pending or the calls
        are spent; a plan (check mode, or plan only) is one round. Returns (state, calls, the first call's diffs)."""
        state, calls, diff, pending = {}, 0, [], targets
        planning = check_mode or plan_only
        common = dict(strategy=args["strategy"], allow_downtime=args["allow_disruption"],
                      allow_switchover=args["allow_disruption"], max_seconds=args["time_box_seconds"],
                      poll_seconds=args["poll_seconds"], switchover_timeout=args["switchover_timeout"],
                      wait_timeout=args["wait_timeout"], **self.aws_args(args))
        while pending:
            databases = step_record.databases_argument(pending, args["customer"])
            answer = self.run_module("rds_reencrypt", dict(common, databases=databases), task_vars, check_mode=planning)
            calls += 1
            results = answer.get("results") or []
            diff = diff or answer.get("diff") or []
            state = step_record.fold_round(state, results, deferred_plan=plan_only and not check_mode)
            pending = step_record.still_pending(pending, results)
            self.progress(step_record.progress_lines(results, state, planning))
            if planning or calls >= args["max_calls"]:
                break
        return state, calls, diff
