#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: iam_kms_access
short_description: Check, and give, the provider's IAM principals permission on a customer's KMS key
version_added: 0.1.0
description:
  - A principal of another account can use a KMS key only when the key policy allows it (checked by
    M(mattermost.byok.kms_policy_check)) B(and) an IAM policy in its own account allows it. This module checks the
    second half for every provider principal that uses the key - the provisioning user, the kops node and
    control-plane roles, the Mattermost servers' own S3 identities and the automation role - with
    C(iam:SimulatePrincipalPolicy) on the key ARN and the request context the service gives KMS.
  - Missing permissions of IAM users (and of roles kops does not manage) are fixed with one customer managed policy
    per key and purpose, C(mattermost-byok-<key id>-<purpose>) under path C(/mattermost-byok/), attached to the
    principal. The fix is simulated before it is made (check mode predicts with the same simulation) and verified after.
  - The kops node and control-plane roles are not changed here - kops detaches managed policies it was not told
    about - the statements they need are returned in RV(kops_additional_policies) for
    M(mattermost.byok.kops_kms_update) to write into C(spec.additionalPolicies).
  - The automation role is only checked; its policy is the shipped C(docs/iam/byok-automation-policy.json).
  - A C(delegated_to_iam) verdict of the key check (the key policy allows the principal's whole account) is confirmed
    or refuted by the same simulation when O(key_verdicts) is given.
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  key_arn:
    description: Full ARN of the customer's key.
    type: str
    required: true
  config:
    description: The customer's normalized configuration (M(mattermost.byok.customer_config)); gives the principals, the provider account and the region.
    type: dict
    required: true
  services:
    description: The services that use this key. Defaults to those of O(key_arn) in O(config).
    type: list
    elements: str
    choices: [s3, rds, ebs]
  server_identities:
    description: The Mattermost servers' own S3 identities (IAM user or role ARNs, C(s3_identity_arn) of each installation).
    type: list
    elements: str
    default: []
  automation_role_arn:
    description: The automation role the run assumes; checked, never changed.
    type: str
  fix:
    description: Create and attach the managed policies that IAM users and non-kops roles lack. Off, missing permissions are errors.
    type: bool
    default: true
  key_verdicts:
    description: The C(verdicts) of M(mattermost.byok.kms_policy_check) for this key; C(delegated_to_iam) ones are confirmed here.
    type: list
    elements: dict
    default: []
  fail_on_error:
    description: Fail when an error-level finding remains. Off, the result says C(passed=false).
    type: bool
    default: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: Changes nothing; predicts the fix by simulating the principal's policies with the new document added.
  diff_mode:
    support: full
    description: The managed policy documents and attachments before and after.
  idempotent:
    support: full
    description: A principal the simulation already allows is left alone.
"""

EXAMPLES = r"""
- name: Give the provider's principals IAM permission on the customer's key
  mattermost.byok.iam_kms_access:
    key_arn: "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"
    config: "{{ byok_config_customer }}"
    server_identities: ["arn:aws:iam::222222222222:user/mattermost-acme01inst"]
    automation_role_arn: "arn:aws:iam::222222222222:role/mattermost-byok-automation"
"""

RETURN = r"""
passed:
  description: No error-level finding remains.
  returned: always
  type: bool
summary:
  description: One line per problem, or what was done.
  returned: always
  type: str
principals:
  description:
    - Per principal - C(principal), C(name), C(route) (managed_policy, kops_spec, none), C(missing) (actions the IAM
      policies did not allow), C(missing_after) (after the fix), C(policy_arn).
  returned: always
  type: list
  elements: dict
changes:
  description: The IAM calls made (or, in check mode, to make) - C(create_policy), C(create_policy_version), C(attach).
  returned: always
  type: list
  elements: dict
kops_additional_policies:
  description: The statements the kops roles lack, per kops role (C(node), C(master)), for C(spec.additionalPolicies).
  returned: always
  type: dict
delegations:
  description: Each C(delegated_to_iam) verdict of the key check with C(confirmed) by the IAM simulation.
  returned: always
  type: list
  elements: dict
findings:
  description: Problems and notes like M(mattermost.byok.kms_policy_check)'s (severity, code, message, fix, principal, actions).
  returned: always
  type: list
  elements: dict
"""

import json

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # handled by ByokModule

from ansible_collections.mattermost.byok.plugins.module_utils.kms import key_check
from ansible_collections.mattermost.byok.plugins.module_utils.kms import provider_iam
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import InvalidIdentifier
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import parse_kms_key_arn
from ansible_collections.mattermost.byok.plugins.module_utils.aws.module import ByokModule

MAX_POLICY_VERSIONS = 5  # IAM keeps at most five versions of a managed policy


class Access:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.iam = module.byok_client("iam")
        self.findings, self.changes = [], []
        self.before, self.after = {}, {}

    def fail_aws(self, error, what):
        self.module.fail_json_aws(error, msg=f"{what}: {error}")

    def simulate(self, principal, reqs, extra_documents=()):
        """{action: (decision, missing context keys)} for one principal and one request context."""
        group_ctx = reqs[0]["context"]
        kwargs = {"PolicySourceArn": principal, "ActionNames": sorted({r["action"] for r in reqs}), "ResourceArns": [self.key_arn],
                  "ContextEntries": provider_iam.context_entries(group_ctx)}
        if extra_documents:
            kwargs["PolicyInputList"] = [json.dumps(d) for d in extra_documents]
        out = {}
        try:
            for page in self.iam.get_paginator("simulate_principal_policy").paginate(**kwargs):
                for r in page["EvaluationResults"]:
                    out[r["EvalActionName"].lower()] = (r["EvalDecision"], r.get("MissingContextValues") or [])
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "NoSuchEntity":
                return None
            self.fail_aws(e, f"Cannot simulate the IAM policies of {principal} (iam:SimulatePrincipalPolicy)")
        except BotoCoreError as e:
            self.fail_aws(e, f"Cannot simulate the IAM policies of {principal} (iam:SimulatePrincipalPolicy)")
        return out

    def missing(self, reqs, extra_documents=()):
        """The requirements the principal's IAM policies do not allow (None when the principal does not exist)."""
        out = []
        for group in provider_iam.simulation_groups(reqs):
            answer = self.simulate(group["principal"], group["requirements"], extra_documents)
            if answer is None:
                return None
            for r in group["requirements"]:
                decision, _ctx = answer.get(r["action"].lower(), ("implicitDeny", []))
                if decision != "allowed":
                    out.append({**r, "decision": decision})
        return out

    def read_policy(self, arn):
        try:
            policy = self.iam.get_policy(PolicyArn=arn)["Policy"]
            version = self.iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]
            return provider_iam.normalize_document(version["Document"])
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "NoSuchEntity":
                return None
            self.fail_aws(e, f"Cannot read the managed policy {arn}")
        except BotoCoreError as e:
            self.fail_aws(e, f"Cannot read the managed policy {arn}")

    def attached(self, kind, name):
        try:
            if kind == "user":
                pages = self.iam.get_paginator("list_attached_user_policies").paginate(UserName=name)
            else:
                pages = self.iam.get_paginator("list_attached_role_policies").paginate(RoleName=name)
            return {p["PolicyArn"] for page in pages for p in page["AttachedPolicies"]}
        except (ClientError, BotoCoreError) as e:
            self.fail_aws(e, f"Cannot list the policies attached to {kind} {name}")

    def plan_fix(self, entry, reqs):
        """Changes that give the principal its managed policy for the key; returns (document, changes)."""
        kind, name = provider_iam.principal_kind(entry["principal"])
        purpose = provider_iam.purpose_of(entry["name"])
        document = provider_iam.policy_document(provider_iam.statements_for(reqs, self.key_arn, purpose))
        arn = provider_iam.policy_arn(self.provider_account, self.key_arn, purpose, self.partition)
        entry["policy_arn"] = arn
        current = self.read_policy(arn)
        changes = []
        self.before[arn] = current
        if current is None:
            changes.append({"action": "create_policy", "policy_arn": arn, "principal": entry["principal"]})
        elif current != provider_iam.normalize_document(document):
            changes.append({"action": "create_policy_version", "policy_arn": arn, "principal": entry["principal"]})
        self.after[arn] = provider_iam.normalize_document(document)
        attached = self.attached(kind, name)
        key = f"attached to {kind} {name}"
        self.before[key] = sorted(attached)
        if arn not in attached:
            changes.append({"action": "attach", "policy_arn": arn, "principal": entry["principal"]})
            self.after[key] = sorted(attached | {arn})
        else:
            self.after[key] = sorted(attached)
        return document, changes, (kind, name, purpose, arn)

    def apply_fix(self, document, changes, target):
        kind, name, purpose, arn = target
        text = json.dumps(document, sort_keys=True)
        try:
            for change in changes:
                if change["action"] == "create_policy":
                    try:
                        self.iam.create_policy(PolicyName=provider_iam.policy_name(self.key_arn, purpose), Path=provider_iam.POLICY_PATH,
                                               PolicyDocument=text,
                                               Description=f"Mattermost BYOK: use of the customer key {self.key_arn} ({purpose})")
                    except ClientError as e:
                        if e.response.get("Error", {}).get("Code") != "EntityAlreadyExists":  # another run made it meanwhile
                            raise
                elif change["action"] == "create_policy_version":
                    versions = self.iam.list_policy_versions(PolicyArn=arn)["Versions"]
                    if len(versions) >= MAX_POLICY_VERSIONS:  # make room: the oldest version that is not the default
                        oldest = sorted((v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"])[0]
                        self.iam.delete_policy_version(PolicyArn=arn, VersionId=oldest["VersionId"])
                    self.iam.create_policy_version(PolicyArn=arn, PolicyDocument=text, SetAsDefault=True)
                elif kind == "user":
                    self.iam.attach_user_policy(UserName=name, PolicyArn=arn)
                else:
                    self.iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        except (ClientError, BotoCoreError) as e:
            self.fail_aws(e, f"Cannot give {kind} {name} its managed policy {arn}")

    def run(self):
        p = self.params
        try:
            self.key_arn = str(parse_kms_key_arn(p["key_arn"], "key_arn"))
        except InvalidIdentifier as e:
            self.module.fail_json(msg=str(e))
        config = p["config"] or {}
        for field in ("principals", "provider_account_id", "region"):
            if field not in config:
                self.module.fail_json(msg=f"config: lacks {field}; give the config of mattermost.byok.customer_config (byok_config_customer)")
        self.provider_account = config["provider_account_id"]
        self.partition = self.key_arn.split(":")[1]
        services = p["services"] or next((k["services"] for k in config.get("distinct_keys", []) if k["arn"] == self.key_arn),
                                         config.get("services") or [])
        principals = dict(config["principals"])
        for i, arn in enumerate(p["server_identities"]):
            try:
                provider_iam.principal_kind(arn)
            except provider_iam.ProviderIamError as e:
                self.module.fail_json(msg=f"server_identities[{i}]: {e}; set s3_identity_arn of the installation to the server's IAM user or role")
            if arn.split(":")[4] != self.provider_account:
                self.module.fail_json(msg=f"server_identities[{i}]: {arn} is not in the provider account {self.provider_account}")
        principals["server_identities"] = list(p["server_identities"])
        try:
            if p["automation_role_arn"]:
                provider_iam.principal_kind(p["automation_role_arn"])
            reqs = provider_iam.requirements(principals, services, self.provider_account, config["region"], p["automation_role_arn"])
        except (ValueError, provider_iam.ProviderIamError) as e:
            self.module.fail_json(msg=f"automation_role_arn / config: {e}")

        by_principal = {}
        for r in reqs:
            by_principal.setdefault(r["principal"], {"name": r["principal_name"], "reqs": []})["reqs"].append(r)
        entries, kops_missing = [], {}
        for principal, item in by_principal.items():
            name, preqs = item["name"], item["reqs"]
            entry = {"principal": principal, "name": name, "route": provider_iam.fix_route(name, principal), "missing": [],
                     "missing_after": [], "policy_arn": None, "exists": True}
            entries.append(entry)
            missing = self.missing(preqs)
            if missing is None:
                entry["exists"] = False
                self.findings.append(key_check.finding(
                    key_check.ERROR, "IAM_PRINCIPAL_NOT_FOUND", f"{principal} ({name}) does not exist in the provider account",
                    fix="Check the customer's variables (byok_vpc_id, byok_kops_cluster_id, s3_identity_arn of the installations)",
                    principal=principal))
                continue
            entry["missing"] = sorted({m["action"] for m in missing})
            entry["missing_after"] = list(entry["missing"])
            if not missing:
                continue
            if entry["route"] == "kops_spec":
                kops_missing[name] = missing
                self.findings.append(key_check.finding(
                    key_check.WARNING, "IAM_KOPS_ROLE_MISSING", provider_iam.describe_missing(principal, missing),
                    fix="The EBS step adds the statements in kops_additional_policies to the cluster's spec.additionalPolicies "
                        "(kops update applies them to the role); without byok_kops_state_store add them there by hand",
                    principal=principal, actions=entry["missing"]))
            elif entry["route"] == "none":
                self.findings.append(key_check.finding(
                    key_check.WARNING, "IAM_AUTOMATION_ROLE_MISSING", provider_iam.describe_missing(principal, missing),
                    fix="Give the automation role docs/iam/byok-automation-policy.json (scripts/least-privilege re-derives it)",
                    principal=principal, actions=entry["missing"]))
            else:
                self.fix_principal(entry, preqs, missing)
        self.confirm_delegations(entries, reqs)
        self.finish(entries, provider_iam.kops_additional_policies(kops_missing, self.key_arn))

    def fix_principal(self, entry, preqs, missing):
        principal = entry["principal"]
        document, changes, target = self.plan_fix(entry, preqs)
        if not self.params["fix"]:
            self.findings.append(key_check.finding(
                key_check.ERROR, "IAM_PERMISSION_MISSING", provider_iam.describe_missing(principal, missing),
                fix=f"Attach a policy with these statements to {principal} (the run does it with fix: true, as {entry['policy_arn']}):\n"
                    + json.dumps(document["Statement"], indent=2),
                principal=principal, actions=entry["missing"], statement=provider_iam.policy_name(self.key_arn, target[2])))
            return
        # Would the fix be enough? The same simulation with the new document added answers before anything changes.
        still = self.missing(missing, [document]) or []
        if not self.module.check_mode and changes:
            self.apply_fix(document, changes, target)
            still = self.missing(missing) or []
        self.changes.extend(changes)
        entry["missing_after"] = sorted({m["action"] for m in still})
        if still:
            denied = sorted({m["action"] for m in still if m.get("decision") == "explicitDeny"})
            self.findings.append(key_check.finding(
                key_check.ERROR, "IAM_FIX_INSUFFICIENT",
                provider_iam.describe_missing(principal, still) + (" even with the managed policy " + entry["policy_arn"])
                + (f": an explicit Deny in its policies wins for {', '.join(denied)}" if denied else
                   ": a permissions boundary or another policy type limits it"),
                fix=f"Remove the Deny or widen the permissions boundary of {principal}", principal=principal, actions=entry["missing_after"]))
        else:
            verb = "would give" if self.module.check_mode else "gave"
            self.findings.append(key_check.finding(
                key_check.INFO, "IAM_PERMISSION_FIXED",
                f"{provider_iam.describe_missing(principal, missing)}; the run {verb} it {entry['policy_arn']}",
                principal=principal, actions=entry["missing"]))

    def confirm_delegations(self, entries, reqs):
        after = {e["principal"]: set(e["missing_after"]) for e in entries}
        by_principal = {e["principal"]: e for e in entries}
        self.delegations = []
        for verdict in self.params["key_verdicts"] or []:
            if verdict.get("decision") != "delegated_to_iam" or verdict.get("principal") not in after:
                continue
            entry = by_principal[verdict["principal"]]
            confirmed = entry["exists"] and verdict.get("action") not in after[verdict["principal"]]
            self.delegations.append({"principal": verdict["principal"], "action": verdict.get("action"), "confirmed": confirmed})
        refuted = {}
        for d in self.delegations:
            if not d["confirmed"]:
                refuted.setdefault(d["principal"], []).append(d["action"])
        for principal, actions in refuted.items():
            # The kops roles get theirs through the cluster spec in the EBS step: pending there, not a stop here.
            kops = by_principal[principal]["route"] == "kops_spec"
            self.findings.append(key_check.finding(
                key_check.WARNING if kops else key_check.ERROR, "IAM_DELEGATION_REFUTED",
                f"the key policy leaves {', '.join(sorted(set(actions)))} of {principal} to its account's IAM policies, and they do not allow it",
                fix=("The EBS step adds the statements to the cluster's spec.additionalPolicies" if kops else
                     f"Allow these actions on {self.key_arn} in an IAM policy of {principal} (the run does it with fix: true)"),
                principal=principal, actions=sorted(set(actions))))

    def finish(self, entries, kops_policies):
        module = self.module
        passed = not any(f["severity"] == key_check.ERROR for f in self.findings)
        errors = [f for f in self.findings if f["severity"] == key_check.ERROR]
        if errors:
            summary = f"{self.key_arn}: {len(errors)} provider-side IAM problem(s):\n" + "\n".join(f"- [{f['code']}] {f['message']}" for f in errors)
        else:
            done = [f for f in self.findings if f["code"] == "IAM_PERMISSION_FIXED"]
            summary = f"{self.key_arn}: the provider's principals' IAM policies allow the key" + (
                f" ({len(done)} principal(s) {'to be ' if module.check_mode else ''}given a managed policy)" if done else "")
        result = {"changed": bool(self.changes), "passed": passed, "summary": summary, "principals": entries, "changes": self.changes,
                  "kops_additional_policies": kops_policies, "delegations": self.delegations, "findings": self.findings}
        if module._diff and self.changes:
            result["diff"] = {"before": json.dumps(self.before, indent=2, sort_keys=True) + "\n",
                              "after": json.dumps(self.after, indent=2, sort_keys=True) + "\n",
                              "before_header": f"IAM for {self.key_arn}", "after_header": f"IAM for {self.key_arn}"}
        if not passed and self.params["fail_on_error"]:
            module.fail_json(msg=summary, **result)
        module.exit_json(**result)


def main():
    module = ByokModule(
        argument_spec=dict(
            key_arn=dict(type="str", required=True, no_log=False),
            config=dict(type="dict", required=True),
            services=dict(type="list", elements="str", choices=["s3", "rds", "ebs"]),
            server_identities=dict(type="list", elements="str", default=[]),
            automation_role_arn=dict(type="str"),
            fix=dict(type="bool", default=True),
            key_verdicts=dict(type="list", elements="dict", default=[], no_log=False),
            fail_on_error=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    Access(module).run()


if __name__ == "__main__":
    main()
