#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ebs_storage_class
short_description: A default EBS CSI StorageClass on the customer's KMS key, rendered, validated offline, applied with kubectl
version_added: 0.1.0
description:
  - Renders a StorageClass for the EBS CSI driver (C(ebs.csi.aws.com)) with C(encrypted="true") and C(kmsKeyId) set to
    the key ARN, annotated as the cluster's default. Parameters of a StorageClass cannot change, so this is a new
    class; persistent volumes that exist keep their key.
  - Validates it without a cluster - the fields in Python, and C(kubectl create --dry-run=client --validate=false)
    against an offline discovery cache, which resolves the kind and parses the document (kubectl's field validation
    needs the API server's OpenAPI, which is not available offline).
  - Writes the manifest to O(dest) when given. With O(kubeconfig), creates the class and removes the default
    annotation from the previous default class (C(kops-csi-1-21) on kops clusters). Keep kops from re-applying its own
    default with M(mattermost.byok.kops_kms_update) O(mattermost.byok.kops_kms_update#module:manage_storage_classes=false).
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  key_arn:
    description: Full ARN of the customer's key.
    type: str
    required: true
  name:
    description: Name of the new class.
    type: str
    default: kops-csi-byok
  volume_type:
    description: EBS volume type.
    type: str
    default: gp3
  make_default:
    description: Annotate the class as the default and un-default the others.
    type: bool
    default: true
  dest:
    description: Write the rendered manifest here.
    type: path
  kubeconfig:
    description: Apply to the cluster of this kubeconfig. Without it, only render and validate.
    type: path
  context:
    description: Context of O(kubeconfig) to use.
    type: str
  kubectl_binary:
    description: The kubectl executable.
    type: str
    default: kubectl
attributes:
  check_mode:
    support: full
    description: Renders and validates; reads the cluster's classes; writes and applies nothing.
  diff_mode:
    support: full
    description: The manifest file, before and after.
  idempotent:
    support: full
    description: The same class on the same cluster gives C(changed=false).
"""

EXAMPLES = r"""
- name: Render and validate the keyed class, apply it when the cluster's kubeconfig is at hand
  mattermost.byok.ebs_storage_class:
    key_arn: arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001
    dest: /tmp/acme-storageclass.yaml
    kubeconfig: "{{ byok_ebs_kubeconfig | default(omit) }}"
"""

RETURN = r"""
manifest:
  description: The StorageClass.
  returned: always
  type: dict
validated:
  description: How the manifest was validated (C(python) fields, C(kubectl) offline dry run).
  returned: always
  type: list
  elements: str
applied:
  description: Whether the class was applied to a cluster (or, in check mode, would be).
  returned: always
  type: bool
undefaulted:
  description: Classes whose default annotation was (or would be) removed.
  returned: always
  type: list
  elements: str
"""

import json
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.basic import missing_required_lib

from ansible_collections.mattermost.byok.plugins.module_utils.kops import storage_class as sc
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import InvalidIdentifier
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import parse_kms_key_arn


def main():
    module = AnsibleModule(
        argument_spec=dict(
            key_arn=dict(type="str", required=True, no_log=False),
            name=dict(type="str", default="kops-csi-byok"),
            volume_type=dict(type="str", default="gp3"),
            make_default=dict(type="bool", default=True),
            dest=dict(type="path"),
            kubeconfig=dict(type="path"),
            context=dict(type="str"),
            kubectl_binary=dict(type="str", default="kubectl"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if sc.yaml is None:
        module.fail_json(msg=missing_required_lib("PyYAML"))
    try:
        key_arn = str(parse_kms_key_arn(p["key_arn"], "key_arn"))
        manifest = sc.render(p["name"], key_arn, p["volume_type"], p["make_default"])
        sc.validate(manifest)
    except (InvalidIdentifier, sc.StorageClassError) as e:
        module.fail_json(msg=str(e))
    kubectl = p["kubectl_binary"] if os.path.sep in p["kubectl_binary"] else shutil.which(p["kubectl_binary"])
    if not kubectl or not os.access(kubectl, os.X_OK):
        module.fail_json(msg=f"kubectl_binary: {p['kubectl_binary']!r} was not found; install kubectl or give its path")
    text = sc.dump(manifest)
    result = {"changed": False, "manifest": manifest, "validated": ["python"], "applied": False, "undefaulted": []}

    work = tempfile.mkdtemp(prefix="byok-sc-")
    try:
        path = os.path.join(work, "storageclass.yaml")
        with open(path, "w") as f:
            f.write(text)
        offline_config, cache = sc.write_offline_kubectl_config(work)
        rc, out, err = module.run_command([kubectl, "--kubeconfig", offline_config, "--cache-dir", cache, "create",
                                           "--dry-run=client", "--validate=false", "-o", "json", "-f", path])
        if rc != 0:
            module.fail_json(msg=f"kubectl rejected the StorageClass manifest (offline dry run): {(err or out).strip()}", **result)
        echoed = json.loads(out)
        if echoed.get("kind") != "StorageClass" or echoed.get("parameters") != manifest["parameters"]:
            module.fail_json(msg="kubectl's offline dry run did not read the manifest back as written", **result)
        result["validated"].append("kubectl create --dry-run=client --validate=false (offline discovery)")

        if p["dest"]:
            before = open(p["dest"]).read() if os.path.exists(p["dest"]) else ""
            if before != text:
                result["changed"] = True
                if module._diff:
                    result["diff"] = {"before_header": p["dest"], "after_header": p["dest"], "before": before, "after": text}
                if not module.check_mode:
                    os.makedirs(os.path.dirname(p["dest"]) or ".", exist_ok=True)
                    with open(p["dest"], "w") as f:
                        f.write(text)

        if p["kubeconfig"]:
            base = [kubectl, "--kubeconfig", p["kubeconfig"]] + (["--context", p["context"]] if p["context"] else [])
            rc, out, err = module.run_command(base + ["get", "storageclass", "-o", "json"])
            if rc != 0:
                module.fail_json(msg=f"kubectl get storageclass with {p['kubeconfig']} failed: {(err or out).strip()}", **result)
            try:
                plan = sc.plan_cluster_classes(json.loads(out).get("items") or [], manifest)
            except sc.StorageClassError as e:
                module.fail_json(msg=str(e), **result)
            result["undefaulted"] = plan["undefault"]
            result["applied"] = plan["create"] or plan["set_default"] or bool(plan["undefault"])
            result["changed"] = result["changed"] or result["applied"]
            if not module.check_mode:
                commands = []
                if plan["create"]:
                    commands.append(base + ["create", "-f", path])
                if plan["set_default"]:
                    commands.append(base + ["annotate", "storageclass", p["name"], "--overwrite",
                                            f"{sc.DEFAULT_ANNOTATION}={manifest['metadata']['annotations'][sc.DEFAULT_ANNOTATION]}"])
                for other in plan["undefault"]:
                    commands.append(base + ["annotate", "storageclass", other, "--overwrite", f"{sc.DEFAULT_ANNOTATION}=false"])
                for command in commands:
                    rc, out, err = module.run_command(command)
                    if rc != 0:
                        module.fail_json(msg=f"{' '.join(command[3:])} failed: {(err or out).strip()}", **result)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
