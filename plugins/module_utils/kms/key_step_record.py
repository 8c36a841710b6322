# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the key step (mattermost.byok.key_step) decides and records, without Ansible: which imports and canary reads
it runs and with what, the key-check report, the kops roles' additional policies, and the step's outcome.

The step runs kms_key_import, kms_policy_check, s3_server_canary and iam_kms_access; everything here works on their
result dicts as the modules return them."""

from __future__ import annotations

import json

# What the key-check report keeps of each iam_kms_access result (not the module invocation, which repeats the whole
# customer config).
IAM_REPORT_FIELDS = ("passed", "summary", "principals", "changes", "kops_additional_policies", "delegations", "findings")
# The kops roles that take additional policies, in the order the cluster spec lists them.
KOPS_ROLES = ("node", "master")


def material_import_wanted(config: dict, material, material_customer, customer: str) -> bool:
    """Import only for an external key, with material given, and material that belongs to this customer: an AWX
    credential's material is injected into every host of the job, but belongs to one named customer."""
    return (config.get("key_source") == "external" and material is not None
            and (material_customer if material_customer is not None else customer) == customer)


def import_args(key: dict, alias: str, material: str, expiration_model: str, valid_days: int, reimport_within_days: int) -> dict:
    """kms_key_import's arguments for one of the customer's keys (valid_days only for expiring material)."""
    return {
        "alias": alias,
        "key_material": material,
        "expiration_model": expiration_model,
        "valid_days": valid_days if expiration_model == "KEY_MATERIAL_EXPIRES" else None,
        "reimport_within_days": reimport_within_days,
        "region": key["region"],
    }


def alias_mismatches(alias: str, keys: list, imports: list) -> list:
    """Messages for each import whose alias leads to a key the inventory does not name (imports[i] is keys[i]'s)."""
    arns = [k["arn"] for k in keys]
    out = []
    for key, result in zip(keys, imports):
        found = (result.get("key") or {}).get("arn") if "key" in result else None
        if "key" in result and found not in arns:
            out.append(f"{alias} in {key['region']} is {found}, but byok_keys names {key['arn']}: "
                       "point the alias at the key in byok_keys, or correct byok_keys")
    return out


def policy_file(policy_dir: str, key_arn: str) -> str:
    """Where the customer's saved policy of this key is looked for: <policy_dir>/<key id>.json."""
    return f"{policy_dir}/{key_arn.split('/')[-1]}.json"


def check_args(key: dict, config: dict, policy, probe: bool, min_material_validity_days: int) -> dict:
    """kms_policy_check's arguments for one distinct key, for the union of the services that use it."""
    return {
        "key_arn": key["arn"],
        "expected_region": key["region"],
        "services": key["services"],
        "config": config,
        "policy": policy,
        "probe": probe,
        "min_material_validity_days": min_material_validity_days,
        "fail_on_error": False,
    }


def canary_reads(config: dict, installations: list) -> list:
    """(label, s3_server_canary arguments) reading each installation's canary credentials, only when S3 is enabled and
    only for the installations that have them."""
    if "s3" not in (config.get("services") or []):
        return []
    out = []
    for index, installation in enumerate(installations or []):
        credentials = installation.get("canary_credentials")
        if not credentials:
            continue
        out.append((str(installation.get("id", index)), {
            "bucket": installation["buckets"][0],
            "key_arn": config["service_keys"]["s3"],
            "identity": installation.get("s3_identity_arn"),
            "credentials_secret": credentials.get("secret"),
            "credentials_role_arn": credentials.get("role_arn"),
            "variable": f"byok_mattermost_installations[{index}].canary_credentials",
            "credentials_only": True,
        }))
    return out


def iam_args(key: dict, check: dict, config: dict, server_identities: list, automation_role_arn, fix: bool) -> dict:
    """iam_kms_access's arguments for one key: fixed only when the key's check passed (nothing changes for a key that
    is not ready), the Mattermost servers only for a key S3 uses."""
    return {
        "key_arn": key["arn"],
        "services": key["services"],
        "config": config,
        "server_identities": list(server_identities or []) if "s3" in key["services"] else [],
        "automation_role_arn": automation_role_arn,
        "fix": bool(fix) and bool(check.get("passed")),
        "key_verdicts": check.get("verdicts") or [],
        "fail_on_error": False,
    }


def failed_messages(results: list) -> list:
    """The messages of the failed runs, in order (a step tries every item before it stops)."""
    return [r.get("msg") or "failed" for r in results if r.get("failed")]


def iam_report(result: dict) -> dict:
    """The part of an iam_kms_access result the key-check report keeps, in the result's order."""
    return {k: v for k, v in result.items() if k in IAM_REPORT_FIELDS}


def key_check_records(keys: list, checks: list, iams: list) -> list:
    """One record per distinct key: what was checked and found, and the IAM half."""
    out = []
    for index, (key, check) in enumerate(zip(keys, checks)):
        out.append({
            "key_arn": key["arn"], "services": key["services"], "passed": check.get("passed"), "summary": check.get("summary"),
            "key": check.get("key"), "policy_source": check.get("policy_source"), "findings": check.get("findings"),
            "verdicts": check.get("verdicts"), "probe": check.get("probe"),
            "iam": iam_report(iams[index]) if index < len(iams) else {},
        })
    return out


def key_checks_json(records: list) -> str:
    """The key-check report's text: to_nice_json(sort_keys=false) and a final newline, as the role wrote it."""
    return json.dumps(records, indent=4, sort_keys=False, separators=(",", ": ")) + "\n"


def kops_additional_policies(iams: list) -> dict:
    """{role: [statements]} merged over the customer's keys, only the roles that get statements."""
    merged = {role: [] for role in KOPS_ROLES}
    for result in iams:
        for role, statements in (result.get("kops_additional_policies") or {}).items():
            merged.setdefault(role, []).extend(statements)
    return {role: statements for role, statements in merged.items() if statements}


def outcome(checks: list, iams: list) -> tuple:
    """(ready, message): the summaries of what did not pass, one a line, or every summary joined by '; '."""
    results = list(checks) + list(iams)
    failed = [r.get("summary") for r in results if not r.get("passed")]
    if failed:
        return False, "\n".join(str(s) for s in failed)
    return True, "; ".join(str(r.get("summary")) for r in results)


def progress_line(customer: str, what: str, label: str, result: dict) -> str:
    """One progress line: which customer's module ran on which key or installation, and its verdict (the summaries
    are in the report and, for what did not pass, in the failure message)."""
    if result.get("failed"):
        verdict = "failed"
    elif "passed" in result:
        verdict = "passed" if result["passed"] else "NOT passed"
    else:
        verdict = "changed" if result.get("changed") else "ok"
    return f"{customer}: {what} {label}: {verdict}"
