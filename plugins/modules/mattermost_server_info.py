#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mattermost_server_info
short_description: Read what each Mattermost server sends with its uploads (its SSE setting) from its custom resource
version_added: 0.2.0
description:
  - For each installation of the customer, reads C(MM_FILESETTINGS_AMAZONS3SSE) from C(spec.mattermostEnv) of the running
    C(Mattermost) custom resource (C(installation.mattermost.com/v1beta1)) in the customer's cluster, with
    C(kubectl get) and the installation's kubeconfig.
  - With the setting on, the server sends the header C(x-amz-server-side-encryption) with C(AES256) on every upload, multipart upload and
    server-side copy, which overrides the bucket default - its new and moved files land on SSE-S3, not on the customer key.
    Such an installation is returned in RV(findings) with the status C(server_sends_sse_s3) and the fix.
  - Without a kubeconfig the provisioner's rule stands in (it forces the setting on for every S3 file store but
    C(bifrost)), and the result says so. A kubeconfig that can't read the resource fails the module naming the
    variable (O(on_unreadable=fail)), or falls back to the provisioner's rule (O(on_unreadable=provisioner_rule)).
  - Per bucket, RV(buckets) says whether every writer follows the bucket default (C(writers_follow_default)), which
    M(mattermost.byok.s3_bucket_kms) needs before it trusts an object's time.
  - Reads only; changes nothing.
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  installations:
    description: The customer's installations, as M(mattermost.byok.customer_config) returns them (C(mattermost_installations)).
    type: list
    elements: dict
    required: true
  buckets:
    description: The customer's buckets (C(s3_buckets)); each gets an entry in RV(buckets).
    type: list
    elements: str
    default: []
  kubectl:
    description: The kubectl command (a name on C(PATH) or a path).
    type: str
    default: kubectl
  on_unreadable:
    description:
      - What to do when a kubeconfig is given but the custom resource can't be read.
      - V(fail) stops with the reason, naming the variable. V(provisioner_rule) goes on with the provisioner's rule
        (the setting taken as on for C(aws-s3)) and says so.
    type: str
    choices: [fail, provisioner_rule]
    default: fail
attributes:
  check_mode:
    support: full
    description: Reads only, in both modes.
  diff_mode:
    support: none
    description: Changes nothing.
  idempotent:
    support: full
    description: Reads only.
"""

EXAMPLES = r"""
- name: Read what the Mattermost servers send with their uploads
  mattermost.byok.mattermost_server_info:
    installations: "{{ byok_config_customer.mattermost_installations }}"
    buckets: "{{ byok_config_customer.s3_buckets }}"
  register: byok_s3_server
"""

RETURN = r"""
installations:
  description: Per installation, C(id), C(buckets), C(sends_sse_s3), C(source) (C(cluster) or C(provisioner_rule)) and C(detail).
  returned: always
  type: list
  elements: dict
buckets:
  description: Per bucket, C(writers_follow_default), C(installations), C(server_sends_sse_s3) (installation ids) and C(why).
  returned: always
  type: dict
problems:
  description: On failure, why each installation's setting could not be read, naming the variable.
  returned: failure
  type: list
  elements: str
findings:
  description: One per installation whose server sends AES256 - C(status) (C(server_sends_sse_s3)), C(installation),
    C(setting), C(buckets), C(message) and C(fix).
  returned: always
  type: list
  elements: dict
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mattermost.byok.plugins.module_utils.mattermost.server import UNREADABLE_CHOICES
from ansible_collections.mattermost.byok.plugins.module_utils.mattermost.server import read_resource
from ansible_collections.mattermost.byok.plugins.module_utils.mattermost.server import server_settings


def main():
    module = AnsibleModule(
        argument_spec=dict(
            installations=dict(type="list", elements="dict", required=True),
            buckets=dict(type="list", elements="str", default=[]),
            kubectl=dict(type="str", default="kubectl"),
            on_unreadable=dict(type="str", choices=list(UNREADABLE_CHOICES), default="fail"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    needs_cluster = any((i.get("sse_setting") or {}).get("kubeconfig") for i in p["installations"])
    kubectl = p["kubectl"] if os.path.sep in p["kubectl"] else shutil.which(p["kubectl"])
    if needs_cluster and (not kubectl or not os.access(kubectl, os.X_OK)):
        module.fail_json(msg=f"kubectl: {p['kubectl']!r} was not found; install kubectl or give its path (byok_s3_kubectl)")

    def read(kubeconfig, namespace, name):
        return read_resource(module.run_command, kubectl, kubeconfig, namespace, name)

    result = server_settings(p["installations"], p["buckets"], read, p["on_unreadable"])
    problems = result.pop("errors")
    if problems:
        module.fail_json(msg="; ".join(problems), problems=problems, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
