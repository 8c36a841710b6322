# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verify a customer's KMS key before anything is encrypted with it: metadata, key policy, live probe.

The AWS calls are made through `kms` and `sts` clients passed in; the decisions are pure functions, so every
finding can be unit-tested. Findings carry a stable code, a severity, the principal/action concerned and the fix.
"""

from __future__ import annotations

import base64
import datetime
import json

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # the module reports the missing SDK

from ansible_collections.amazon.aws.plugins.module_utils.arn import parse_aws_arn

from ansible_collections.mattermost.byok.plugins.module_utils.aws.errors import error_code
from ansible_collections.mattermost.byok.plugins.module_utils.aws.errors import error_text
from ansible_collections.mattermost.byok.plugins.module_utils.kms.key_policy import PolicyDocumentError
from ansible_collections.mattermost.byok.plugins.module_utils.kms.key_policy import Requirement
from ansible_collections.mattermost.byok.plugins.module_utils.kms.key_policy import evaluate_all

ERROR = "error"
WARNING = "warning"
INFO = "info"

# KeyState -> (code, what it means for BYOK)
BAD_STATES = {
    "Disabled": ("KEY_DISABLED", "the key is disabled: AWS refuses every cryptographic use (DisabledException). The customer must enable it"),
    "PendingDeletion": ("KEY_PENDING_DELETION", "the key is scheduled for deletion: it refuses use now and will be gone. "
                        "The customer must cancel the deletion (and then enable the key)"),
    "PendingImport": ("KEY_PENDING_IMPORT", "the key has no key material (Origin EXTERNAL, not imported or expired): import the material first"),
    "PendingReplicaDeletion": ("KEY_PENDING_DELETION", "the replica key is scheduled for deletion"),
    "Unavailable": ("KEY_UNAVAILABLE", "the key's custom key store is disconnected"),
    "Creating": ("KEY_NOT_READY", "the key is still being created"),
    "Updating": ("KEY_NOT_READY", "the key is being updated (multi-Region primary change)"),
}
PROBE_CONTEXT = {"purpose": "mattermost-byok-key-check"}


def finding(severity, code, message, fix="", principal=None, actions=None, statement=None):
    return {"severity": severity, "code": code, "message": message, "fix": fix, "principal": principal,
            "actions": list(actions or []), "statement": statement}


# -- metadata -----------------------------------------------------------------------------------------------
def metadata_findings(meta: dict, key_arn: str, expected_region: str | None, now: datetime.datetime,
                      min_validity_days: int) -> list[dict]:
    """What DescribeKey says about the key's fitness for BYOK."""
    out = []
    state = meta.get("KeyState")
    if state in BAD_STATES:
        code, why = BAD_STATES[state]
        extra = f" (deletion date {meta['DeletionDate']})" if meta.get("DeletionDate") else ""
        out.append(finding(ERROR, code, f"{key_arn}: {why}{extra}", fix=_state_fix(state, key_arn)))
    if meta.get("KeyManager") == "AWS":
        out.append(finding(ERROR, "KEY_AWS_MANAGED", f"{key_arn} is an AWS managed key; it cannot be used from another account",
                           fix="Give a customer managed key"))
    if meta.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT":
        out.append(finding(ERROR, "KEY_NOT_SYMMETRIC",
                           f"{key_arn} is {meta.get('KeySpec')}; EBS, RDS and S3 encrypt only with symmetric keys (SYMMETRIC_DEFAULT)",
                           fix="Create a symmetric encryption key (key spec SYMMETRIC_DEFAULT, usage ENCRYPT_DECRYPT)"))
    if meta.get("KeyUsage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT":
        out.append(finding(ERROR, "KEY_WRONG_USAGE", f"{key_arn} has key usage {meta.get('KeyUsage')}; encryption needs ENCRYPT_DECRYPT",
                           fix="Create a key with key usage ENCRYPT_DECRYPT"))
    region = parse_aws_arn(key_arn)["region"]
    if expected_region and region != expected_region:
        replicas = [r["Arn"] for r in (meta.get("MultiRegionConfiguration") or {}).get("ReplicaKeys", []) if r.get("Region") == expected_region]
        fix = (f"Use the multi-Region replica in {expected_region}: {replicas[0]}" if replicas
               else f"Give a key in {expected_region} (a KMS key only serves its own region; a multi-Region key needs a replica there)")
        out.append(finding(ERROR, "KEY_WRONG_REGION", f"{key_arn} is in {region}, but the resources it must encrypt are in {expected_region}", fix=fix))
    if meta.get("Origin") == "EXTERNAL" and meta.get("ExpirationModel") == "KEY_MATERIAL_EXPIRES" and meta.get("ValidTo"):
        valid_to = _as_datetime(meta["ValidTo"])
        days = (valid_to - now).total_seconds() / 86400
        if days <= 0:
            out.append(finding(ERROR, "KEY_MATERIAL_EXPIRED", f"{key_arn}: imported key material expired on {valid_to.isoformat()}",
                               fix="Re-import the same key material (mattermost.byok.kms_key_import)"))
        elif days < min_validity_days:
            out.append(finding(WARNING, "KEY_MATERIAL_EXPIRES_SOON",
                               f"{key_arn}: imported key material expires in {days:.1f} days ({valid_to.isoformat()}); "
                               "everything encrypted under it becomes unreadable until re-import",
                               fix="Re-import the same key material with a later ValidTo (mattermost.byok.kms_key_import)"))
    return out


def _state_fix(state, key_arn):
    return {
        "Disabled": f"aws kms enable-key --key-id {key_arn} (in the customer's account)",
        "PendingDeletion": f"aws kms cancel-key-deletion --key-id {key_arn} && aws kms enable-key --key-id {key_arn} (in the customer's account)",
        "PendingImport": "Import the key material (mattermost.byok.kms_key_import)",
    }.get(state, "Wait until the key is Enabled, or give another key")


def _as_datetime(value) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def key_summary(meta: dict, key_arn: str, expected_region: str | None, rotation: bool | None) -> dict:
    region = parse_aws_arn(key_arn)["region"]
    valid_to = meta.get("ValidTo")
    return {
        "arn": meta.get("Arn", key_arn), "key_id": meta.get("KeyId"), "state": meta.get("KeyState"), "enabled": meta.get("Enabled"),
        "key_spec": meta.get("KeySpec"), "key_usage": meta.get("KeyUsage"), "origin": meta.get("Origin"), "key_manager": meta.get("KeyManager"),
        "multi_region": bool(meta.get("MultiRegion")), "region": region, "expected_region": expected_region,
        "region_matches": expected_region in (None, region), "rotation_enabled": rotation,
        "expiration_model": meta.get("ExpirationModel"), "valid_to": _as_datetime(valid_to).isoformat() if valid_to else None,
        "deletion_date": _as_datetime(meta["DeletionDate"]).isoformat() if meta.get("DeletionDate") else None,
    }


# -- policy -------------------------------------------------------------------------------------------------
def policy_findings(policy, requirements: list[dict], key_arn: str, statements: dict[str, dict]) -> tuple[list[dict], list[dict]]:
    """Evaluate the policy for every requirement; one finding per principal and missing statement, naming the fix.

    `statements` maps a Sid to the statement the customer should add (as key_policy_statements renders it).
    """
    try:
        verdicts = evaluate_all(policy, [Requirement(r["principal"], r["action"], dict(r.get("context") or {})) for r in requirements], key_arn)
    except PolicyDocumentError as e:
        return [], [finding(ERROR, "POLICY_MALFORMED", f"the key policy of {key_arn} is not a valid policy: {e}",
                            fix="Ask the customer for the key policy exactly as saved (aws kms get-key-policy --policy-name default)")]
    rows, grouped = [], {}
    for req, v in zip(requirements, verdicts):
        rows.append({"principal": v.principal, "action": v.action, "decision": v.decision, "context": req.get("context") or {},
                     "allow_statements": list(v.allow_statements), "deny_statements": list(v.deny_statements),
                     "conditions": list(v.conditions), "explanation": v.explanation, "services": req.get("services", []),
                     "statement_sid": req.get("sid")})
        if v.decision == "allowed":
            continue
        key = (v.decision, v.principal, req.get("sid"), tuple(v.deny_statements))
        grouped.setdefault(key, []).append((req, v))
    out = []
    for (decision, principal, sid, denies), items in grouped.items():
        actions = sorted({v.action for _req, v in items})
        services = sorted({s for req, _v in items for s in req.get("services", [])})
        reason = items[0][0].get("reason", "")
        stmt = statements.get(sid)
        paste = json.dumps(stmt, indent=2) if stmt else ""
        who = f"{principal} ({', '.join(services)})" if services else principal
        if decision == "implicitly_denied":
            add = f'; add statement "{sid}"' if stmt else ""
            out.append(finding(ERROR, "POLICY_MISSING_PERMISSION",
                               f"the key policy does not allow {who} {', '.join(actions)}" + (f" ({reason})" if reason else "") + add,
                               fix=f"Add this statement to the key policy:\n{paste}" if paste else "Allow these actions to this principal",
                               principal=principal, actions=actions, statement=stmt))
        elif decision == "denied":
            out.append(finding(ERROR, "POLICY_EXPLICIT_DENY",
                               f"statement {', '.join(denies)} of the key policy denies {who} {', '.join(actions)}; an explicit Deny wins over any Allow",
                               fix=f"Remove or narrow statement {', '.join(denies)} so it does not match {principal}",
                               principal=principal, actions=actions, statement=stmt))
        elif decision == "conditional":
            conds = json.dumps([c for _req, v in items for c in v.conditions][:3])
            out.append(finding(WARNING, "POLICY_CONDITIONAL",
                               f"the key policy allows {who} {', '.join(actions)} only under conditions this check cannot settle: {conds}",
                               fix="Make sure the conditions hold for how the service calls KMS, or add:\n" + paste if paste else "",
                               principal=principal, actions=actions, statement=stmt))
        elif decision == "delegated_to_iam":
            out.append(finding(INFO, "POLICY_DELEGATED_TO_IAM",
                               f"the key policy lets the account of {principal} decide ({', '.join(actions)}): allowed if that account's IAM policies allow it",
                               fix=f"Make sure the IAM policy of {principal} allows {', '.join(actions)} on this key",
                               principal=principal, actions=actions, statement=stmt))
    return rows, out


# -- live probe ---------------------------------------------------------------------------------------------
def probe(kms, key_arn: str, caller_arn: str, grantee: str | None) -> tuple[list[dict], list[dict]]:
    """Use the key as the calling identity: DryRun where KMS supports it, a data-key round trip, and a grant
    that is retired at once (DryRun creates none; a service that ignores DryRun gets its grant retired)."""
    steps, out = [], []

    def step(name, call):
        try:
            detail = call() or "ok"
            steps.append({"operation": name, "ok": True, "detail": detail})
            return True
        except ClientError as e:
            if error_code(e) == "DryRunOperationException":
                steps.append({"operation": name, "ok": True, "detail": "DryRun: would succeed"})
                return True
            steps.append({"operation": name, "ok": False, "detail": error_text(e)})
            out.append(finding(ERROR, "PROBE_FAILED", f"{caller_arn} cannot {name} with {key_arn}: {error_text(e)}",
                               fix=_probe_fix(error_code(e), name, caller_arn), principal=caller_arn, actions=[f"kms:{name}"]))
        except BotoCoreError as e:
            steps.append({"operation": name, "ok": False, "detail": str(e)})
            out.append(finding(ERROR, "PROBE_FAILED", f"{name} with {key_arn} failed: {e}", principal=caller_arn, actions=[f"kms:{name}"]))
        return False

    def encrypt_dry_run():
        kms.encrypt(aws_retry=True, KeyId=key_arn, Plaintext=b"byok", EncryptionContext=PROBE_CONTEXT, DryRun=True)
        return "would succeed"

    def round_trip():
        data_key = kms.generate_data_key(aws_retry=True, KeyId=key_arn, KeySpec="AES_256", EncryptionContext=PROBE_CONTEXT)
        plain = kms.decrypt(aws_retry=True, KeyId=key_arn, CiphertextBlob=data_key["CiphertextBlob"], EncryptionContext=PROBE_CONTEXT)
        if plain["Plaintext"] != data_key["Plaintext"]:
            raise BotoCoreError(msg="decrypt returned other bytes than the data key")  # pragma: no cover - a broken KMS
        return f"data key generated and decrypted ({len(base64.b64encode(data_key['CiphertextBlob']))} bytes of ciphertext)"

    def grant():
        granted = kms.create_grant(aws_retry=True, KeyId=key_arn, GranteePrincipal=grantee or caller_arn, RetiringPrincipal=caller_arn,
                                   Operations=["Decrypt", "Encrypt", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo",
                                               "CreateGrant", "DescribeKey"], DryRun=True)
        # Only a KMS that ignores DryRun returns a grant; take it back at once so no grant is left behind.
        kms.retire_grant(aws_retry=True, KeyId=key_arn, GrantId=granted["GrantId"])
        return "grant created and retired at once (the endpoint ignored DryRun)"

    step("Encrypt", encrypt_dry_run)
    step("GenerateDataKey+Decrypt", round_trip)
    step("CreateGrant", grant)
    return steps, out


def _probe_fix(code, operation, caller):
    if code in ("AccessDeniedException", "AccessDenied"):
        return f"The key policy (and {caller}'s IAM policy) must allow {operation} for {caller}"
    if code == "DisabledException":
        return "The customer must enable the key"
    if code == "KMSInvalidStateException":
        return "The key is pending deletion or import: cancel the deletion / import the material"
    if code == "NotFoundException":
        return "Check the key ARN, and that the key policy lets the provider account use it"
    return ""


def caller_principal(caller_arn: str) -> str:
    """The IAM principal behind a caller ARN: arn:aws:sts::A:assumed-role/R/s -> arn:aws:iam::A:role/R."""
    if ":assumed-role/" in caller_arn:
        prefix, rest = caller_arn.split(":assumed-role/", 1)
        return prefix.replace(":sts:", ":iam:") + ":role/" + rest.split("/")[0]
    return caller_arn


def summarize(key_arn: str, findings: list[dict]) -> str:
    errors = [f for f in findings if f["severity"] == ERROR]
    if not errors:
        return f"{key_arn}: ok" + (f" ({len(findings)} note(s))" if findings else "")
    lines = [f"{key_arn}: {len(errors)} problem(s) to fix before the key is used:"]
    lines += [f"- [{f['code']}] {f['message']}" for f in errors]
    return "\n".join(lines)
