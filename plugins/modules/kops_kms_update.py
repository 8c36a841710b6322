#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kops_kms_update
short_description: Put a kops cluster's instance-group volumes on a customer's KMS key through the kops CLI
version_added: 0.1.0
description:
  - Reads the cluster and its instance groups with one C(kops get <cluster> -o yaml), sets the stable v1alpha2 fields
    C(rootVolumeEncryption) (always C(true) - kops ignores the key otherwise) and C(rootVolumeEncryptionKey), and each
    C(volumes[]) entry's C(encrypted) and C(key), leaving every other field as it was, and applies them with
    C(kops replace -f).
  - Then C(kops update cluster --yes) (O(update=direct)), or kops's terraform target followed by
    C(terraform plan), refused if it would replace any C(aws_ebs_volume), and C(terraform apply) (O(update=terraform)).
    kops writes a new launch template version with the key for each instance group.
  - With O(rolling_update) and O(allow_disruption), C(kops rolling-update cluster --yes) replaces every instance
    launched from an older version, so its root and extra volumes are created on the key. Existing volumes are never
    re-encrypted in place.
  - etcd volumes cannot change key in a running cluster. Each etcd member whose volume is not on the key is
    reported with the reason and the options; the spec's etcd members are never edited. O(etcd=fail) fails instead,
    before any change.
  - Verification reads AWS itself - the launch templates' default and latest versions, and the volumes of the
    instances of the Auto Scaling groups - and fails when kops did not put the key where it should be.
  - Fails before any change on a missing kops binary, an unreachable state store, an unknown cluster or
    instance group, or a key in another region than the cluster.
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  cluster_name:
    description: The kops cluster name, for Mattermost C(<cluster id>-kops.k8s.local).
    type: str
    required: true
  state:
    description: The kops state store, C(s3://<bucket>[/<prefix>]).
    type: str
    required: true
  key_arn:
    description: Full ARN of the customer's key, in the cluster's region. Aliases and bare key ids are refused.
    type: str
    required: true
  instance_groups:
    description:
      - Instance groups to put on the key. Default all, the control plane included (its root volumes are re-keyed by
        the roll like the others; its etcd volumes are not, see O(etcd)).
    type: list
    elements: str
  extra_volumes:
    description: Also set C(encrypted) and C(key) on every C(volumes[]) entry of the instance groups.
    type: bool
    default: true
  manage_storage_classes:
    description:
      - When C(false), sets C(spec.cloudConfig.manageStorageClasses=false) on the Cluster, so kops's channels stop
        re-applying their own default StorageClass over the keyed one (kops 1.20 and later). Unset leaves it alone.
    type: bool
  kops_binary:
    description: The kops executable, a name on PATH or a path.
    type: str
    default: kops
  update:
    description:
      - C(direct) runs C(kops update cluster --yes); C(terraform) renders kops's terraform target into
        O(terraform_dir) and plans and applies it with O(terraform_binary); C(none) only stages the spec.
    type: str
    choices: [none, direct, terraform]
    default: direct
  terraform_dir:
    description: Directory for kops's terraform output (O(update=terraform)); terraform's backend configuration is its business.
    type: path
  terraform_binary:
    description: The terraform executable (O(update=terraform)).
    type: str
    default: terraform
  rolling_update:
    description: Replace the instances that were launched from an older launch template version. Disruptive.
    type: bool
    default: false
  allow_disruption:
    description: Must be C(true) for O(rolling_update) - the permission and the maintenance window are the caller's to check.
    type: bool
    default: false
  etcd:
    description: C(report) etcd members whose volumes are not on the key, or C(fail) before any change.
    type: str
    choices: [report, fail]
    default: report
  verify:
    description: After the changes, read the launch templates and instance volumes from AWS and fail if they are not on the key.
    type: bool
    default: true
  additional_policies:
    description:
      - IAM statements the kops roles need on the key, a list per kops role (C(node), C(master)), as
        RV(mattermost.byok.iam_kms_access#module:kops_additional_policies) returns them, merged into the Cluster's
        C(spec.additionalPolicies) by C(Sid) (added or replaced, never removed). kops puts them on the node and
        control-plane roles at C(kops update cluster); it detaches managed policies it was not told about.
    type: dict
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: Reads the cluster with kops and AWS, and predicts the spec edits, the update and the roll; runs no mutating command.
  diff_mode:
    support: full
    description: The YAML of each edited document, before and after.
  idempotent:
    support: full
    description: A cluster already on the key, with its instances replaced, gives C(changed=false) and runs no mutating command.
notes:
  - The kops binary gets the module's AWS credentials, region and endpoint as C(AWS_*) environment variables.
  - The Auto Scaling service-linked role needs a grant on a customer key in another account, or instances fail to
    launch during the roll; see M(mattermost.byok.autoscaling_kms_grant).
"""

EXAMPLES = r"""
- name: Put acme's nodes and control plane on the customer's EBS key, roll in the maintenance window
  mattermost.byok.kops_kms_update:
    cluster_name: acme01-kops.k8s.local
    state: s3://mattermost-kops-state-prod
    key_arn: arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001
    manage_storage_classes: false
    rolling_update: true
    allow_disruption: true

- name: Stage and apply the spec, defer the roll
  mattermost.byok.kops_kms_update:
    cluster_name: acme01-kops.k8s.local
    state: s3://mattermost-kops-state-prod
    key_arn: arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001
    instance_groups: [nodes-us-east-1a, nodes-us-east-1b]
  register: ebs
"""

RETURN = r"""
spec_changes:
  description: Per edited document (C(kind), C(name)), the fields changed with C(path), C(before), C(after).
  returned: always
  type: list
  elements: dict
instance_groups:
  description: The instance groups put on the key.
  returned: always
  type: list
  elements: str
update_needed:
  description: Whether the spec or a launch template was not yet on the key (C(kops update cluster) runs, or would).
  returned: always
  type: bool
rolled:
  description: Instance ids replaced by the rolling update (in check mode, those that would be).
  returned: always
  type: list
  elements: str
roll_pending:
  description: Instances still run volumes off the key (the roll was not requested or not allowed).
  returned: always
  type: bool
etcd:
  description:
    - One entry per etcd member - C(etcd_cluster), C(member), C(instance_group), C(volume_id), C(kms_key_id), C(on_key),
      and, when not on the key, C(reason) and C(options).
  returned: always
  type: list
  elements: dict
launch_templates:
  description: Per instance group's launch template, from AWS - C(name), C(default_version), C(latest_version), C(mappings), C(on_key).
  returned: always
  type: list
  elements: dict
instances:
  description: Per instance of the groups, from AWS - C(instance_id), C(auto_scaling_group), C(volumes) with their C(kms_key_id), C(on_key).
  returned: always
  type: list
  elements: dict
verification:
  description: C(launch_templates_on_key), C(instances_on_key), C(passed) after the changes (skipped in check mode).
  returned: when verify
  type: dict
commands:
  description: The kops and terraform commands that ran.
  returned: always
  type: list
  elements: str
kops_retries:
  description:
    - kops commands that failed on a transient AWS error (throttling, HTTP 5xx, a dropped connection) and were run
      again. kops exits 1 for every error, so only failures whose message names such an error are retried, up to
      four attempts, and only commands that converge when repeated (get, replace, update cluster, rolling-update).
  returned: always
  type: list
  elements: dict
  contains:
    command:
      description: The kops command line (without the binary).
      type: str
    attempt:
      description: The attempt that failed (1 is the first run).
      type: int
    error:
      description: The error line kops printed.
      type: str
summary:
  description: One line for reports.
  returned: always
  type: str
"""

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # handled by ByokModule

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.mattermost.byok.plugins.module_utils.kops import ebs_verify
from ansible_collections.mattermost.byok.plugins.module_utils.kops import spec as kops_spec
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import InvalidIdentifier
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import parse_kms_key_arn
from ansible_collections.mattermost.byok.plugins.module_utils.aws.module import ByokModule
from ansible_collections.mattermost.byok.plugins.module_utils.kops.cli import KopsCli
from ansible_collections.mattermost.byok.plugins.module_utils.kops.cli import KopsCliError
from ansible_collections.mattermost.byok.plugins.module_utils.kops.cli import Terraform
from ansible_collections.mattermost.byok.plugins.module_utils.kops.cli import aws_environment
from ansible_collections.mattermost.byok.plugins.module_utils.kops.cli import check_state_store
from ansible_collections.mattermost.byok.plugins.module_utils.kops.cli import ebs_volume_replacements
from ansible_collections.mattermost.byok.plugins.module_utils.kops.cli import resolve_binary


def cluster_region(cluster: dict) -> str | None:
    zones = [s.get("zone") for s in cluster.get("spec", {}).get("subnets") or [] if isinstance(s, dict) and s.get("zone")]
    return zones[0][:-1] if zones else None


class Run:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.result = {"changed": False, "spec_changes": [], "instance_groups": [], "update_needed": False, "rolled": [],
                       "roll_pending": False, "etcd": [], "launch_templates": [], "instances": [], "commands": [], "kops_retries": [], "summary": ""}

    def fail(self, msg, **extra):
        self.result["commands"] = self.commands()
        self.result["kops_retries"] = list(self.kops.retried) if getattr(self, "kops", None) else []
        self.module.fail_json(msg=msg, **{**self.result, **extra})

    def commands(self):
        return list(self.kops.commands) + (list(self.terraform.commands) if getattr(self, "terraform", None) else []) \
            if getattr(self, "kops", None) else []

    def run_command(self, argv, env):
        return self.module.run_command(argv, environ_update=env)

    def preflight(self):
        p = self.params
        try:
            self.key_arn = str(parse_kms_key_arn(p["key_arn"], "key_arn"))
        except InvalidIdentifier as e:
            self.fail(str(e))
        key_region = parse_kms_key_arn(self.key_arn).region
        self.region = p["region"] or key_region
        if key_region != self.region:
            self.fail(f"key_arn: the key is in {key_region}, but the cluster's region is {self.region}; EBS volumes need "
                      f"a key in their own region: give the customer's key (or multi-Region replica) in {self.region}")
        if p["rolling_update"] and not p["allow_disruption"]:
            self.fail("rolling_update: replacing the cluster's instances is disruptive; set allow_disruption: true "
                      "(inside the customer's maintenance window) or leave rolling_update false to defer the roll")
        if p["update"] == "terraform" and not p["terraform_dir"]:
            self.fail("terraform_dir: required with update=terraform (where kops writes its terraform output)")
        try:
            binary = resolve_binary(p["kops_binary"])
            state = check_state_store(p["state"])
            if p["update"] == "terraform":
                self.terraform = Terraform(resolve_binary(p["terraform_binary"], "terraform_binary"), p["terraform_dir"],
                                           self.run_command, aws_environment(p, self.region))
        except KopsCliError as e:
            self.fail(str(e))
        self.kops = KopsCli(binary, state, self.run_command, aws_environment(p, self.region))

    def read(self):
        name = self.params["cluster_name"]
        try:
            self.cluster, self.groups = self.kops.get_cluster_and_instance_groups(name)
            selected = kops_spec.select_instance_groups(self.groups, self.params["instance_groups"], name)
        except (KopsCliError, kops_spec.KopsSpecError) as e:
            self.fail(str(e))
        region = cluster_region(self.cluster)
        if region and region != self.region:
            self.fail(f"key_arn: cluster {name} runs in {region}, but the key is in {self.region}; EBS volumes need a key "
                      f"in their own region: give the customer's key in {region}")
        self.result["instance_groups"] = [kops_spec.name_of(g) for g in selected]
        self.plan(selected)

    def plan(self, selected):
        p = self.params
        self.edited = []
        try:
            new_cluster, changes = kops_spec.plan_cluster(self.cluster, p["manage_storage_classes"], p["additional_policies"])
            if changes:
                self.edited.append((self.cluster, new_cluster, changes))
            for group in selected:
                for ignored in kops_spec.ignored_fields(group):
                    self.module.warn(ignored)
                new_group, changes = kops_spec.plan_instance_group(group, self.key_arn, p["extra_volumes"])
                if changes:
                    self.edited.append((group, new_group, changes))
            self.members = kops_spec.etcd_members(self.cluster)
        except kops_spec.KopsSpecError as e:
            self.fail(str(e))
        self.result["spec_changes"] = [{"kind": new["kind"], "name": kops_spec.name_of(new), "changes": changes}
                                       for _old, new, changes in self.edited]

    def read_aws(self):
        name = self.params["cluster_name"]
        ec2 = self.module.byok_client("ec2", region=self.region)
        autoscaling = self.module.byok_client("autoscaling", region=self.region)
        resources = [f"{g}.{name}" for g in self.result["instance_groups"]]
        try:
            self.result["launch_templates"] = ebs_verify.launch_templates(ec2, resources, self.key_arn)
            self.result["instances"] = ebs_verify.instances(autoscaling, ec2, resources, self.key_arn)
            if not hasattr(self, "etcd_read"):
                self.result["etcd"] = ebs_verify.etcd_report(ec2, name, self.members, self.key_arn)
                self.etcd_read = True
        except (ClientError, BotoCoreError) as e:
            self.module.fail_json_aws(e, msg=f"Cannot read the launch templates, instances and volumes of {name}")
        missing = [t["name"] for t in self.result["launch_templates"] if not t["found"]]
        return missing

    def diff(self):
        return [{"before_header": f"{old['kind']}/{kops_spec.name_of(old)}", "after_header": f"{new['kind']}/{kops_spec.name_of(new)}",
                 "before": kops_spec.dump_documents([old]), "after": kops_spec.dump_documents([new])} for old, new, _c in self.edited]

    def main(self):
        p, module, result = self.params, self.module, self.result
        self.preflight()
        self.read()
        missing = self.read_aws()
        off_etcd = [m for m in result["etcd"] if not m["on_key"]]
        if off_etcd and p["etcd"] == "fail":
            self.fail("etcd: " + "; ".join(f"{m['volume_name']} is on {m['kms_key_id'] or 'no key'}" for m in off_etcd)
                      + f" - {ebs_verify.ETCD_REASON}. Options: " + " | ".join(ebs_verify.ETCD_OPTIONS))
        if missing and p["update"] != "none":
            module.warn(f"launch templates not found (cluster not applied yet?): {', '.join(missing)}")
        templates_off = [t for t in result["launch_templates"] if t["found"] and not t["on_key"]]
        result["update_needed"] = bool(self.edited) or bool(templates_off)
        stale = [i["instance_id"] for i in result["instances"] if not i["on_key"]]
        will_update = p["update"] != "none" and result["update_needed"]
        will_roll = p["rolling_update"] and bool(stale)
        result["changed"] = bool(self.edited) or will_update or will_roll
        if module._diff and self.edited:
            result["diff"] = self.diff()
        if module.check_mode:
            result["rolled"] = stale if p["rolling_update"] else []
            result["roll_pending"] = bool(stale) and not p["rolling_update"]
            return self.finish(off_etcd, checked=False)

        name = p["cluster_name"]
        try:
            if self.edited:
                self.kops.replace([new for _old, new, _c in self.edited], f"replacing the spec of {name}")
            if will_update:
                self.apply_update(name)
            if will_roll:
                before = {i["instance_id"] for i in self.read_instances()}
                out = self.kops.rolling_update(name, p["instance_groups"])
                after = {i["instance_id"] for i in self.read_instances()}
                result["rolled"] = sorted(before - after)
                if result["rolled"]:
                    result["changed"] = True
                result["rolling_update_output"] = out.splitlines()[-20:]
        except KopsCliError as e:
            self.fail(str(e))
        self.read_aws()
        result["roll_pending"] = any(not i["on_key"] for i in result["instances"])
        return self.finish(off_etcd, checked=True)

    def read_instances(self):
        self.read_aws()
        return self.result["instances"]

    def apply_update(self, name):
        p = self.params
        if p["update"] == "direct":
            self.kops.update_cluster(name)
            return
        self.kops.update_cluster(name, target="terraform", out=p["terraform_dir"])
        plan = self.terraform.plan()
        replaced = ebs_volume_replacements(plan)
        if replaced:
            self.fail(f"update: the terraform plan in {p['terraform_dir']} would replace {', '.join(replaced)}; an etcd "
                      "volume's key cannot change in a running cluster (replacing it loses the member's data). Nothing was "
                      "applied: remove the kmsKeyId change from the etcd members, or migrate etcd deliberately (docs/ebs-kops.md)")
        self.terraform.apply()

    def finish(self, off_etcd, checked):
        p, result = self.params, self.result
        result["commands"] = self.commands()
        result["kops_retries"] = list(self.kops.retried)
        lts = result["launch_templates"]
        insts = result["instances"]
        if p["verify"] and checked:
            lt_ok = all(t["on_key"] for t in lts if t["found"])
            inst_ok = all(i["on_key"] for i in insts)
            result["verification"] = {"launch_templates_on_key": lt_ok, "instances_on_key": inst_ok,
                                      "passed": bool((lt_ok or p["update"] == "none") and (inst_ok or not p["rolling_update"]))}
            if not lt_ok and p["update"] != "none":
                self.fail("verification: after kops update, these launch templates still do not carry the key: "
                          + ", ".join(t["name"] for t in lts if t["found"] and not t["on_key"]))
            if p["rolling_update"] and not inst_ok:
                self.fail("verification: after the rolling update, these instances still have volumes off the key: "
                          + ", ".join(i["instance_id"] for i in insts if not i["on_key"]))
        on_lt = sum(1 for t in lts if t["on_key"])
        on_inst = sum(1 for i in insts if i["on_key"])
        verb = "would be" if not checked else "are"
        parts = [f"{on_lt}/{len(lts)} launch templates and {on_inst}/{len(insts)} instances on the key"
                 if checked else f"{len(result['spec_changes'])} documents to edit, update {'needed' if result['update_needed'] else 'not needed'}"]
        if result["rolled"]:
            parts.append(f"{len(result['rolled'])} instances {'replaced' if checked else 'to replace'}")
        if result["roll_pending"]:
            parts.append("roll deferred: instances still on the old key")
        if off_etcd:
            parts.append(f"{len(off_etcd)} etcd volumes off the key {verb} reported (a running cluster's etcd volumes cannot be re-keyed)")
        result["summary"] = f"{p['cluster_name']}: " + "; ".join(parts)
        self.module.exit_json(**result)


def main():
    module = ByokModule(
        argument_spec=dict(
            cluster_name=dict(type="str", required=True),
            state=dict(type="str", required=True),
            key_arn=dict(type="str", required=True, no_log=False),
            instance_groups=dict(type="list", elements="str"),
            extra_volumes=dict(type="bool", default=True),
            manage_storage_classes=dict(type="bool"),
            kops_binary=dict(type="str", default="kops"),
            update=dict(type="str", choices=["none", "direct", "terraform"], default="direct"),
            terraform_dir=dict(type="path"),
            terraform_binary=dict(type="str", default="terraform"),
            rolling_update=dict(type="bool", default=False),
            allow_disruption=dict(type="bool", default=False),
            etcd=dict(type="str", choices=["report", "fail"], default="report"),
            verify=dict(type="bool", default=True),
            additional_policies=dict(type="dict"),
        ),
        supports_check_mode=True,
    )
    if kops_spec.yaml is None:
        module.fail_json(msg=missing_required_lib("PyYAML"))
    Run(module).main()


if __name__ == "__main__":
    main()
