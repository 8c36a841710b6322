"""S3 reads and writes of SSE-KMS objects need the caller's own KMS permissions, on both halves (IAM enforcement on).

AWS: https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html ("Permissions"): to upload an
object encrypted with an AWS KMS key the requester needs ``kms:GenerateDataKey`` on the key; to download it,
``kms:Decrypt``; a multipart upload needs ``kms:Decrypt`` and ``kms:GenerateDataKey`` (S3 decrypts the parts to
complete it); a copy reads its source (``kms:Decrypt`` on the source object's key) and writes its destination. The
requester is checked, not the bucket owner: S3 calls KMS on the requester's behalf.
https://docs.aws.amazon.com/kms/latest/developerguide/determining-access.html and
https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html: access to a key
is decided by its key policy together with the caller's IAM policies. An explicit Deny in either wins. In the key's
own account the key policy must allow the principal itself, or allow the account (``<account>:root``) and an IAM
policy of the principal then allows the action. From another account, the key policy must allow the principal (or
its account) AND the principal's IAM policy must allow the action on the key.

Plain moto never calls KMS for S3 and reads the key policy nowhere, so a server identity without any KMS
permission reads and writes SSE-KMS objects freely. Here, while IAM enforcement is on (``/moto-api/reset-auth``),
each of those S3 requests is refused with 403 AccessDenied naming the principal, the action and the key.
Stricter than AWS where it can't tell: a key-policy Allow with a Condition does not count (conditions are not
evaluated there), a Deny with a Condition does; an Allow with NotPrincipal grants nothing. Identity policies are
evaluated with their conditions, in the context S3 gives KMS (kms:ViaService, kms:CallerAccount).
"""
from __future__ import annotations

import inspect
import json
import re
import threading
from typing import Any

from moto.iam import access_control
from moto.s3.exceptions import S3ClientError
from moto.s3.models import FakeKey, S3Backend
from moto.s3.responses import S3Response
from moto.utilities.utils import get_partition

from . import iam_simulate
from ._patching import wrap
from .iam_auth import enforcing
from .kms_keys import find_key

KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
AWS_MANAGED_S3_KEY = "alias/aws/s3"
_CURRENT = threading.local()


class KmsAccessDenied(S3ClientError):
    code = 403

    def __init__(self, message: str):
        super().__init__("AccessDenied", message)


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _matches(pattern: str, value: str, ignore_case: bool = False) -> bool:
    regex = "^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$"
    return re.match(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def role_arn_of(principal: str) -> str:
    """A role session (arn:aws:sts::<account>:assumed-role/<role>/<session>) is matched by its role's ARN."""
    m = re.match(r"^arn:([\w-]+):sts::(\d{12}):assumed-role/([^/]+)/", principal)
    return f"arn:{m.group(1)}:iam::{m.group(2)}:role/{m.group(3)}" if m else principal


def account_of(principal: str) -> str:
    return principal.split(":")[4]


def _principal_matches(statement: dict, principal: str) -> tuple[bool, bool]:
    """(matches, through the account): whether the statement's Principal names this principal, and whether only
    as its account (root or bare account id), which delegates the decision to the account's IAM policies."""
    named = statement.get("Principal")
    if named == "*":
        return True, False
    entries = _as_list(named.get("AWS")) if isinstance(named, dict) else []
    account = account_of(principal)
    for entry in entries:
        if entry == "*" or entry == role_arn_of(principal) or entry == principal:
            return True, False
    for entry in entries:
        if entry in (account, f"arn:aws:iam::{account}:root"):
            return True, True
    return False, False


def key_policy_decision(policy: str, principal: str, action: str, key_arn: str) -> str:
    """deny | allow | allow_account (the key policy allows the principal's account: IAM decides) | neutral."""
    try:
        statements = _as_list(json.loads(policy).get("Statement"))
    except (TypeError, ValueError, AttributeError):
        return "neutral"
    result = "neutral"
    for st in statements:
        if not isinstance(st, dict) or not st.get("Resource"):
            continue  # a statement without Resource has no effect in a key policy
        actions = _as_list(st.get("Action"))
        if "NotAction" in st:
            concerned = not any(_matches(a, action, ignore_case=True) for a in _as_list(st["NotAction"]))
        else:
            concerned = any(_matches(a, action, ignore_case=True) for a in actions)
        if not concerned or not any(_matches(r, key_arn) for r in _as_list(st.get("Resource"))):
            continue
        if st.get("Effect") == "Deny":
            if "NotPrincipal" in st:
                matched = not any(e in (principal, role_arn_of(principal))
                                  for e in _as_list((st["NotPrincipal"] or {}).get("AWS")))
            else:
                matched = _principal_matches(st, principal)[0]
            if matched:
                return "deny"  # with or without a Condition: stricter where conditions can't be evaluated
            continue
        if st.get("Effect") != "Allow" or "NotPrincipal" in st or st.get("Condition"):
            continue
        matched, through_account = _principal_matches(st, principal)
        if matched:
            if not through_account:
                result = "allow"
            elif result == "neutral":
                result = "allow_account"
    return result


def iam_decision(access_key: Any, action: str, key_arn: str) -> str:
    """deny | allow | neutral over the principal's identity policies, in the request context S3 gives KMS.

    S3 calls KMS on the requester's behalf, so the request carries kms:ViaService s3.<region>.amazonaws.com and the
    caller's account (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service):
    an identity policy narrowed to requests through S3 allows them. Conditions are evaluated as SimulatePrincipalPolicy
    evaluates them (iam_simulate); moto's own evaluation denies any conditioned statement it has no value for.
    """
    region, account = key_arn.split(":")[3], account_of(access_key.arn)
    policies = [(f"policy{i}", "user", access_control.IAMPolicy(document)._policy_json)  # pylint: disable=protected-access
                for i, document in enumerate(access_key.collect_policies())]
    context = {"kms:viaservice": [f"s3.{region}.amazonaws.com"], "kms:calleraccount": [account]}
    decision = iam_simulate._evaluate(policies, None, action, key_arn, context, {})["EvalDecision"]  # pylint: disable=protected-access
    return {"explicitDeny": "deny", "allowed": "allow"}.get(decision, "neutral")


def decide(key_policy: str, key_arn: str, principal: str, access_key: Any, action: str) -> str | None:
    """None when allowed, else why not."""
    in_key_account = account_of(principal) == account_of(key_arn)
    by_key = key_policy_decision(key_policy, principal, action, key_arn)
    by_iam = iam_decision(access_key, action, key_arn)
    if by_key == "deny":
        return "an explicit deny in the key policy"
    if by_iam == "deny":
        return "an explicit deny in an identity-based policy"
    if by_key == "neutral":
        return "the key policy does not allow it"
    if in_key_account and by_key == "allow":
        return None
    if by_iam != "allow":
        return "no identity-based policy allows it"
    return None


def _caller(response: Any) -> tuple[str, Any] | None:
    headers = getattr(response, "headers", {}) or {}
    access_key = getattr(response, "access_key", None)
    if not access_key or "Authorization" not in headers:
        return None
    try:
        key = access_control.create_access_key(account_id=response.current_account, partition=get_partition(response.region),
                                               access_key_id=access_key, headers=headers)
    except Exception:  # pylint: disable=broad-except
        return None  # not an IAM principal (e.g. the "testing" key): moto's own enforcement answers for it
    return key.arn, key


def require_kms(account_id: str, region: str, key_ref: str | None, action: str) -> None:
    """Raise 403 unless the current request's caller may perform `action` on the key (no-op without enforcement)."""
    response = getattr(_CURRENT, "response", None)
    if response is None or not enforcing():
        return
    caller = _caller(response)
    if caller is None:
        return
    key = find_key(account_id, region, key_ref or AWS_MANAGED_S3_KEY)
    if key is None:
        return  # the write or read fails on its own (KMS.NotFoundException)
    principal, access_key = caller
    if getattr(key, "key_manager", "CUSTOMER") == "AWS":
        return  # aws/s3: its policy lets every principal of the account use it through S3
    why = decide(key.policy, key.arn, principal, access_key, action)
    if why:
        raise KmsAccessDenied(f"User: {principal} is not authorized to perform: {action} on resource: {key.arn} because {why}")


def _bucket_default(backend: S3Backend, bucket_name: str) -> dict:
    bucket = backend.get_bucket(bucket_name)
    return (bucket.encryption or {}).get("Rule", {}).get("ApplyServerSideEncryptionByDefault", {})


def apply() -> None:
    @wrap(S3Response, "_key_response")
    def key_response(original, self, request, full_url):
        _CURRENT.response = self
        try:
            return original(self, request, full_url)
        finally:
            _CURRENT.response = None

    put_signature = inspect.signature(S3Backend.put_object)

    @wrap(S3Backend, "put_object")
    def put_object(original, self, *args, **kwargs):
        # Every write of an object's bytes: PutObject, the destination of CopyObject, CompleteMultipartUpload.
        arguments = put_signature.bind(self, *args, **kwargs).arguments
        default = _bucket_default(self, arguments["bucket_name"])
        encryption = arguments.get("encryption") or default.get("SSEAlgorithm")
        if encryption in KMS_ALGORITHMS:
            region = self.get_bucket(arguments["bucket_name"]).region_name
            key_ref = arguments.get("kms_key_id") or (default.get("KMSMasterKeyID") if not arguments.get("encryption") else None)
            require_kms(self.account_id, region, key_ref, "kms:GenerateDataKey")
        return original(self, *args, **kwargs)

    copy_signature = inspect.signature(S3Backend.copy_object)

    @wrap(S3Backend, "copy_object")
    def copy_object(original, self, *args, **kwargs):
        source: FakeKey = copy_signature.bind(self, *args, **kwargs).arguments["src_key"]
        if source.encryption in KMS_ALGORITHMS:
            require_kms(self.account_id, self.get_bucket(source.bucket_name).region_name, source.kms_key_id, "kms:Decrypt")
        return original(self, *args, **kwargs)

    part_copy_signature = inspect.signature(S3Backend.upload_part_copy)

    @wrap(S3Backend, "upload_part_copy")
    def upload_part_copy(original, self, *args, **kwargs):
        arguments = part_copy_signature.bind(self, *args, **kwargs).arguments
        source = self.get_object(arguments["src_bucket_name"], arguments["src_key_name"], version_id=arguments.get("src_version_id"))
        if source is not None and source.encryption in KMS_ALGORITHMS:
            require_kms(self.account_id, self.get_bucket(source.bucket_name).region_name, source.kms_key_id, "kms:Decrypt")
        return original(self, *args, **kwargs)

    multipart_signature = inspect.signature(S3Backend.create_multipart_upload)

    @wrap(S3Backend, "create_multipart_upload")
    def create_multipart_upload(original, self, *args, **kwargs):
        arguments = multipart_signature.bind(self, *args, **kwargs).arguments
        default = _bucket_default(self, arguments["bucket_name"])
        encryption = arguments.get("sse_encryption") or default.get("SSEAlgorithm")
        if encryption in KMS_ALGORITHMS:
            region = self.get_bucket(arguments["bucket_name"]).region_name
            key_ref = arguments.get("kms_key_id") or (default.get("KMSMasterKeyID") if not arguments.get("sse_encryption") else None)
            for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                require_kms(self.account_id, region, key_ref, action)
        return original(self, *args, **kwargs)

    @wrap(S3Response, "get_object")
    def get_object_response(original, self):
        key = self._get_key()[0]  # pylint: disable=protected-access
        if key is not None and key.encryption in KMS_ALGORITHMS:
            require_kms(self.current_account, self.backend.get_bucket(self.bucket_name).region_name, key.kms_key_id, "kms:Decrypt")
        return original(self)
