# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""mattermost.byok.customer_config on the controller, in the worker process.

The validation is pure Python and makes no AWS call, so running it as a module only paid for a Python process
and the module's payload (about 0.5 CPU-second per customer, docs/fleet.md). The module
(plugins/modules/customer_config.py) keeps the documentation and the same logic; both call validate_customer.
"""
from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.mattermost.byok.plugins.module_utils.fleet.customer_config import CustomerConfigError
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.customer_config import validate_customer

# The module's argument_spec.
ARGUMENT_SPEC = dict(customer=dict(type="str", required=True), variables=dict(type="dict", required=True))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            config = validate_customer(args["customer"], args["variables"])
        except CustomerConfigError as e:
            result.update(failed=True, msg=str(e), errors=e.errors)
            return result
        result.update(changed=False, config=config)
        return result
