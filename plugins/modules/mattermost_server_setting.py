#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mattermost_server_setting
short_description: Stopgap - turn a Mattermost server's SSE setting off in its custom resource
version_added: 0.2.0
description:
  - Sets C(MM_FILESETTINGS_AMAZONS3SSE) to C(false) in C(spec.mattermostEnv) of each installation's C(Mattermost) custom
    resource (C(installation.mattermost.com/v1beta1)), with C(kubectl replace) through the installation's kubeconfig, so
    the server stops naming C(AES256) on its uploads and the bucket default (the customer key) applies.
  - B(A stopgap only.) The Mattermost Cloud provisioner forces the setting on for every C(aws-s3) installation and
    rewrites C(spec.mattermostEnv) on each update of the installation, so the change lasts only until then. Every
    result carries that warning; the lasting fix is a provisioner change.
  - The replace carries the resource version that was read, so it is refused if the resource changed meanwhile.
  - Installations without a kubeconfig are left alone and listed in RV(skipped).
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  installations:
    description: The installations to change, as M(mattermost.byok.customer_config) returns them (C(mattermost_installations)).
    type: list
    elements: dict
    required: true
  kubectl:
    description: The kubectl command (a name on C(PATH) or a path).
    type: str
    default: kubectl
attributes:
  check_mode:
    support: full
    description: Reads the custom resources and predicts the change without making it.
  diff_mode:
    support: full
    description: The setting's C(spec.mattermostEnv) entries before and after, per installation.
  idempotent:
    support: full
    description: A resource whose setting is already off is left alone.
"""

EXAMPLES = r"""
- name: Stopgap until the provisioner change - the servers send no AES256 header
  mattermost.byok.mattermost_server_setting:
    installations: "{{ byok_config_customer.mattermost_installations }}"
"""

RETURN = r"""
changed_installations:
  description: The installations whose custom resource was (in check mode, would be) changed.
  returned: always
  type: list
  elements: str
skipped:
  description: Installations left alone because no kubeconfig says where their cluster is.
  returned: always
  type: list
  elements: str
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mattermost.byok.plugins.module_utils.mattermost.server import SSE_VARIABLE
from ansible_collections.mattermost.byok.plugins.module_utils.mattermost.server import STOPGAP_WARNING
from ansible_collections.mattermost.byok.plugins.module_utils.mattermost.server import ClusterUnreadable
from ansible_collections.mattermost.byok.plugins.module_utils.mattermost.server import read_resource
from ansible_collections.mattermost.byok.plugins.module_utils.mattermost.server import replace_resource
from ansible_collections.mattermost.byok.plugins.module_utils.mattermost.server import with_setting_off


def setting_entries(resource: dict) -> list:
    return [e for e in (resource.get("spec") or {}).get("mattermostEnv") or [] if isinstance(e, dict) and e.get("name") == SSE_VARIABLE]


def main():
    module = AnsibleModule(
        argument_spec=dict(installations=dict(type="list", elements="dict", required=True),
                           kubectl=dict(type="str", default="kubectl")),
        supports_check_mode=True,
    )
    p = module.params
    kubectl = p["kubectl"] if os.path.sep in p["kubectl"] else shutil.which(p["kubectl"])
    if not kubectl or not os.access(kubectl, os.X_OK):
        module.fail_json(msg=f"kubectl: {p['kubectl']!r} was not found; install kubectl or give its path (byok_s3_kubectl)")
    changed, skipped, before, after = [], [], {}, {}
    for index, inst in enumerate(p["installations"]):
        where = inst.get("sse_setting") or {}
        if not where.get("kubeconfig"):
            skipped.append(inst["id"])
            continue
        field = f"byok_mattermost_installations[{index}].sse_setting"
        try:
            resource = read_resource(module.run_command, kubectl, where["kubeconfig"], where["namespace"], where["name"])
            new, differs = with_setting_off(resource)
            if differs and not module.check_mode:
                replace_resource(module.run_command, kubectl, where["kubeconfig"], new)
        except ClusterUnreadable as e:
            module.fail_json(msg=f"{field}: the Mattermost custom resource {where['namespace']}/{where['name']} of installation "
                                 f"{inst['id']} could not be read or replaced ({where.get('kubeconfig_variable') or field}): {e}",
                             changed_installations=changed, skipped=skipped)
        before[inst["id"]], after[inst["id"]] = setting_entries(resource), setting_entries(new)
        if differs:
            changed.append(inst["id"])
            module.warn(STOPGAP_WARNING.format(installation=inst["id"], variable=SSE_VARIABLE, namespace=where["namespace"],
                                               name=where["name"]))
    result = {"changed": bool(changed), "changed_installations": changed, "skipped": skipped}
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = {"before": before, "after": after}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
