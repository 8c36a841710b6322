# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""mattermost.byok.config_step: the byok_config role as one task (plugins/modules/config_step.py documents it).

Validates the roles' arguments and the customer's variables (no AWS call), assumes the automation role, and keeps
the facts every later step reads: byok_config_customer, byok_config_aws_credentials, byok_run_services, byok_disruption.
"""
from __future__ import annotations

import re

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.mattermost.byok.plugins.module_utils.fleet.customer_config import CustomerConfigError
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.customer_config import validate_customer
from ansible_collections.mattermost.byok.plugins.modules.config_step import ARGUMENT_SPEC
from ansible_collections.mattermost.byok.plugins.plugin_utils.step_action import StepAction
from ansible_collections.mattermost.byok.plugins.plugin_utils.step_action import StepFailed
from ansible_collections.mattermost.byok.plugins.plugin_utils.step_action import decide_disruption
from ansible_collections.mattermost.byok.plugins.plugin_utils.step_action import failure_text

ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")


class ActionModule(StepAction):
    _requires_connection = False

    def step(self, task_vars, args):
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        if args["assume_role_arn"] and not ROLE_ARN.match(args["assume_role_arn"]):
            raise StepFailed(f"byok_assume_role_arn: {args['assume_role_arn']!r} is not a role ARN (arn:aws:iam::<account>:role/<name>)")
        if args["role_arguments"]:
            self.validate_role_arguments(args["role_arguments"], task_vars)
        try:
            config = validate_customer(args["customer"], args["variables"])
        except CustomerConfigError as e:
            raise StepFailed(str(e), {"errors": e.errors}) from None
        credentials = {}
        if args["assume_role_arn"]:
            # amazon.aws's module, run in a fork of this worker like the collection's own (plugin_utils/step_action.py).
            # Not in check mode (it has none): issuing session credentials changes nothing, and the plan needs them.
            assumed = self.run_module("amazon.aws.sts_assume_role", dict(
                role_arn=args["assume_role_arn"], role_session_name=f"byok-{args['customer']}", duration_seconds=3600,
                external_id=args["assume_role_external_id"] or None, region=config["region"]), task_vars,
                check_mode=False, fail=False)
            if assumed.get("failed"):
                raise StepFailed(f"Cannot assume {args['assume_role_arn']}: its trust policy must allow the caller (and the "
                                 f"external id, if set): {failure_text(assumed)}")
            credentials = {k: assumed["sts_creds"][k] for k in ("access_key", "secret_key", "session_token", "expiration")}
        services = config["services"]
        if args["services_only"]:
            services = [s for s in services if s in args["services_only"]]
        decision = decide_disruption(config, args["allow_disruption"], args["disruption_needed_minutes"])
        self.keep(byok_config_customer=config, byok_config_aws_credentials=credentials, byok_run_services=services,
                  byok_disruption=decision)
        # The credentials are facts only: never in the task's result (no no_log needed, so failures keep their message;
        # the forked module's own result is not this task's).
        return dict(changed=False, msg=f"{args['customer']}: {', '.join(services) or 'no service'} in this run; "
                                       f"disruption {'allowed' if decision['allowed'] else 'not allowed'} ({decision['reason']})")

    def validate_role_arguments(self, spec, task_vars):
        """What ansible.builtin.validate_argument_spec does with the roles' specs, with its message."""
        provided = self._templar.template({name: task_vars[name] for name in spec if name in task_vars})
        errors = ArgumentSpecValidator(spec).validate(provided, validate_role_argument_spec=True).error_messages
        if errors:
            raise StepFailed("Validation of arguments failed:\n" + "\n".join(errors), {"argument_errors": errors})
