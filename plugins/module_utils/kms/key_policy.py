# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Evaluate a KMS key policy for one principal and one action, with IAM evaluation semantics.

Pure: no AWS calls, importable without Ansible. A key policy is the resource policy of the key, so every
statement's resource is the key itself. What is modelled:

- An explicit Deny wins over any Allow wherever it stands; a Deny whose conditions the request context does not
  settle makes the answer "conditional", never "allowed".
- ``Action``/``NotAction`` with ``*``/``?`` wildcards, case-insensitive; ``Resource``/``NotResource`` against the key ARN.
- ``Principal``/``NotPrincipal``: ``"*"``, ``{"AWS": ...}`` (account ids, ``:root`` ARNs, user, role and assumed-role
  session ARNs, unique ids left behind by deleted principals), ``Service``/``Federated``/``CanonicalUser`` (which
  never match an IAM principal). An account principal delegates to that account's IAM policies ("delegated_to_iam"),
  as does ``"*"`` scoped to an account by ``kms:CallerAccount``/``aws:PrincipalAccount``/``aws:PrincipalOrgID``.
- ``NotPrincipal`` with Deny: AWS may check the account, then the role, then the session of a caller, so a principal
  escapes the Deny only when every one of those that applies is listed. A role's calls are made by its sessions,
  which NotPrincipal can only exempt by exact session name: a role listed with its account but without its
  sessions gets "conditional", with the NotPrincipal element as the unresolved condition.
- Conditions: String*, Arn*, Numeric*, Date*, Bool, BinaryEquals, IpAddress/NotIpAddress, Null; the ``IfExists``
  suffix; ``ForAnyValue:``/``ForAllValues:``. Operators AND, keys AND, values OR (NOR for negated operators).
  Policy variables (``${aws:PrincipalAccount}``) in condition values are filled from the context.

The request context: a key the context does not contain is *unknown* (the condition is unresolved), except for
``...IfExists`` and ``Null``, which treat it as absent. A key set to ``None`` is *known absent* (for example
``"kms:ViaService": None`` for a direct call). Filled in when not given: ``aws:PrincipalArn`` (a role's ARN for a
role; not for an assumed-role session, whose role path is unknown), ``aws:PrincipalAccount``, ``kms:CallerAccount``,
``aws:PrincipalType``, ``aws:PrincipalIsAWSService``, ``aws:username`` (IAM users), ``aws:ResourceAccount`` and
``aws:RequestedRegion`` (from the key ARN), and as known absent the grant keys (``kms:GrantIsForAWSResource``,
``kms:GrantOperations``, ``kms:GranteePrincipal``, ``kms:RetiringPrincipal``) for actions that carry none.
An unknown ``kms:ViaService`` is still decided when the policy names only services of other Regions than the key's:
a service calls KMS in the Region of its resources, which is the key's Region.

Principal ARNs match exactly, letter case included (IAM itself does not tell role names apart by case; a verdict that
turns on case says so). The root user of an account is allowed by an account principal itself; an account-wide
``"*"`` grant counts as allowing the root too.

A statement with neither ``Resource`` nor ``NotResource`` has no effect (KMS ignores it; the policy is not refused).
A principal of another account than the key's is never allowed an action outside CROSS_ACCOUNT_ACTIONS.

Not modelled: permission boundaries, SCPs/RCPs and the caller's own IAM policies (a cross-account caller also needs
an IAM policy in its account that allows the action on the key), grants, anonymous callers, and policy variables
outside condition values.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
from dataclasses import dataclass
from dataclasses import field
from functools import lru_cache

try:
    import botocore.exceptions
    import botocore.session
    HAS_BOTOCORE = True
except ImportError:
    HAS_BOTOCORE = False

# The KMS API operations of botocore 1.44, used when botocore is not installed.
_FALLBACK_OPERATIONS = (
    "CancelKeyDeletion", "ConnectCustomKeyStore", "CreateAlias", "CreateCustomKeyStore", "CreateGrant", "CreateKey", "Decapsulate",
    "Decrypt", "DeleteAlias", "DeleteCustomKeyStore", "DeleteImportedKeyMaterial", "DeriveSharedSecret", "DescribeCustomKeyStores",
    "DescribeKey", "DisableKey", "DisableKeyRotation", "DisconnectCustomKeyStore", "EnableKey", "EnableKeyRotation", "Encapsulate",
    "Encrypt", "GenerateDataKey", "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "GenerateDataKeyWithoutPlaintext",
    "GenerateMac", "GenerateRandom", "GetKeyLastUsage", "GetKeyPolicy", "GetKeyRotationStatus", "GetParametersForImport", "GetPublicKey",
    "ImportKeyMaterial", "ListAliases", "ListGrants", "ListKeyPolicies", "ListKeyRotations", "ListKeys", "ListResourceTags",
    "ListRetirableGrants", "PutKeyPolicy", "ReEncrypt", "ReplicateKey", "RetireGrant", "RevokeGrant", "RotateKeyOnDemand",
    "ScheduleKeyDeletion", "Sign", "TagResource", "UntagResource", "UpdateAlias", "UpdateCustomKeyStore", "UpdateKeyDescription",
    "UpdatePrimaryRegion", "Verify", "VerifyMac",
)


def _kms_operations() -> tuple:
    if HAS_BOTOCORE:
        try:
            return tuple(botocore.session.get_session().get_service_model("kms").operation_names)
        except (botocore.exceptions.BotoCoreError, OSError, ValueError):
            pass
    return _FALLBACK_OPERATIONS


def _iam_action_names(operations) -> tuple:
    """IAM action names are the API operation names, except that ReEncrypt is authorized as ReEncryptFrom + ReEncryptTo."""
    names = set()
    for op in operations:
        if op == "ReEncrypt":
            names.update(("ReEncryptFrom", "ReEncryptTo"))
        else:
            names.add(op)
    return tuple(sorted("kms:" + n for n in names))


KMS_ACTIONS: tuple = _iam_action_names(_kms_operations())

DECISIONS = ("allowed", "denied", "implicitly_denied", "conditional", "delegated_to_iam")

# What KMS lets a principal of another account do with a key at all, whatever the key policy says: the cryptographic
# operations, CreateGrant, DescribeKey, GetKeyRotationStatus, GetPublicKey, ListGrants, RetireGrant and RevokeGrant
# (AWS KMS developer guide, "Allowing users in other accounts to use a KMS key",
# https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html).
CROSS_ACCOUNT_ACTIONS = frozenset(a.lower() for a in (
    "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyPair", "kms:GenerateDataKeyPairWithoutPlaintext",
    "kms:GenerateDataKeyWithoutPlaintext", "kms:GenerateMac", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:Sign", "kms:Verify",
    "kms:VerifyMac", "kms:DeriveSharedSecret", "kms:Encapsulate", "kms:Decapsulate",
    "kms:CreateGrant", "kms:DescribeKey", "kms:GetKeyRotationStatus", "kms:GetPublicKey", "kms:ListGrants", "kms:RetireGrant",
    "kms:RevokeGrant"))

_GRANT_KEY_ACTIONS = {"kms:creategrant", "kms:listgrants", "kms:revokegrant"}  # carry kms:GrantIsForAWSResource
_CREATE_GRANT_ONLY_KEYS = ("kms:GrantOperations", "kms:GranteePrincipal", "kms:RetiringPrincipal")
_ACCOUNT_SCOPE_KEYS = {"kms:calleraccount", "aws:principalaccount", "aws:principalorgid", "aws:principalorgpaths"}
_PRINCIPAL_SCOPE_KEYS = {"aws:principalarn", "aws:userid", "aws:username"}

_ACCOUNT_RE = re.compile(r"^\d{12}$")
_PRINCIPAL_ARN_RE = re.compile(r"^arn:(aws[a-z-]*):(iam|sts)::(\d{12}):(.+)$")
_UNIQUE_ID_RE = re.compile(r"^A[A-Z0-9]{15,127}$")
_KEY_ARN_RE = re.compile(r"^arn:(aws[a-z-]*):kms:([a-z0-9-]+):(\d{12}):key/(.+)$")
_SERVICE_ENDPOINT_RE = re.compile(r"^[a-z0-9-]+\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
_VARIABLE_RE = re.compile(r"\$\{([^}]*)\}")
_VERSIONS = ("2012-10-17", "2008-10-17")
_STATEMENT_KEYS = ("Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition")

# operator (lower case) -> (positive counterpart, negated)
_OPERATORS = {
    "stringequals": ("stringequals", False), "stringnotequals": ("stringequals", True),
    "stringequalsignorecase": ("stringequalsignorecase", False), "stringnotequalsignorecase": ("stringequalsignorecase", True),
    "stringlike": ("stringlike", False), "stringnotlike": ("stringlike", True),
    "numericequals": ("numericequals", False), "numericnotequals": ("numericequals", True),
    "numericlessthan": ("numericlessthan", False), "numericlessthanequals": ("numericlessthanequals", False),
    "numericgreaterthan": ("numericgreaterthan", False), "numericgreaterthanequals": ("numericgreaterthanequals", False),
    "dateequals": ("dateequals", False), "datenotequals": ("dateequals", True),
    "datelessthan": ("datelessthan", False), "datelessthanequals": ("datelessthanequals", False),
    "dategreaterthan": ("dategreaterthan", False), "dategreaterthanequals": ("dategreaterthanequals", False),
    "bool": ("bool", False), "binaryequals": ("binaryequals", False),
    "ipaddress": ("ipaddress", False), "notipaddress": ("ipaddress", True),
    "arnequals": ("arnlike", False), "arnlike": ("arnlike", False), "arnnotequals": ("arnlike", True), "arnnotlike": ("arnlike", True),
    "null": ("null", False),
}
_COMPARISONS = {
    "equals": lambda a, b: a == b, "lessthan": lambda a, b: a < b, "lessthanequals": lambda a, b: a <= b,
    "greaterthan": lambda a, b: a > b, "greaterthanequals": lambda a, b: a >= b,
}

_MISSING = object()  # a context key the caller did not say anything about: unknown


class PolicyDocumentError(ValueError):
    """The key policy is not a valid policy document; the message says what is wrong and where."""


@dataclass(frozen=True)
class Requirement:
    """One principal that must be able to call one KMS action on the key, and what is known of its requests."""
    principal: str
    action: str
    context: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """What the key policy decides for one Requirement, and why."""
    principal: str
    action: str
    decision: str
    allow_statements: tuple = ()
    deny_statements: tuple = ()
    conditions: tuple = ()
    explanation: str = ""


# -- matching primitives -------------------------------------------------------------------------------------
@lru_cache(maxsize=2048)
def _glob(pattern: str, ignore_case: bool):
    parts = []
    for ch in pattern:
        if ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), (re.IGNORECASE | re.DOTALL) if ignore_case else re.DOTALL)


def _glob_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def _arn_like(pattern: str, value: str) -> bool:
    """IAM ARN matching: each of the six colon-separated parts is matched on its own, with * and ? wildcards."""
    p_parts = pattern.split(":", 5)
    v_parts = value.split(":", 5)
    if len(p_parts) != 6 or len(v_parts) != 6:
        return False
    return all(_glob_match(p, v) for p, v in zip(p_parts, v_parts))


def expand_actions(pattern: str) -> frozenset:
    """The KMS IAM actions an Action pattern matches ("kms:ReEncrypt*" -> kms:ReEncryptFrom, kms:ReEncryptTo).

    Case-insensitive, with * and ? wildcards; "*" matches every action; a pattern of another service matches none.
    """
    if not isinstance(pattern, str):
        raise ValueError(f"an action pattern is a string, not {type(pattern).__name__}")
    return frozenset(a for a in KMS_ACTIONS if _glob_match(pattern, a, ignore_case=True))


# -- parsing -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _PrincipalRef:
    kind: str  # any | account | arn | service | federated | canonical | unique_id
    value: str
    partition: str = ""
    account: str = ""
    service: str = ""  # iam | sts for ARNs
    resource: str = ""  # root, user/.., role/path/name, assumed-role/role/session

    @property
    def role_name(self) -> str:
        if self.service == "iam" and self.resource.startswith("role/"):
            return self.resource.rsplit("/", 1)[-1]
        return ""


@dataclass(frozen=True)
class _Condition:
    operator: str  # as written
    base: str  # positive counterpart, lower case
    negated: bool
    if_exists: bool
    qualifier: str  # "", "foranyvalue", "forallvalues"
    key: str  # as written
    values: tuple
    raw_value: object


@dataclass(frozen=True)
class _Statement:
    index: int
    sid: str | None
    effect: str
    principals: tuple | None
    not_principals: tuple | None
    raw_principal: object
    actions: tuple | None
    not_actions: tuple | None
    resources: tuple | None
    not_resources: tuple | None
    conditions: tuple
    variables: bool  # policy variables are substituted (Version 2012-10-17)

    @property
    def label(self) -> str:
        return self.sid if self.sid else f"#{self.index}"

    @property
    def quoted(self) -> str:
        return f"'{self.sid}'" if self.sid else f"statement #{self.index}"


def _where(index: int, stmt: dict) -> str:
    sid = stmt.get("Sid") if isinstance(stmt, dict) else None
    return f"Statement[{index}]" + (f" (Sid {sid!r})" if isinstance(sid, str) and sid else "")


def _string_list(value, what: str, allow_empty: bool = False) -> tuple:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value) and (value or allow_empty):
        return tuple(value)
    raise PolicyDocumentError(f"{what} must be a string or a non-empty list of strings, not {json.dumps(value)}")


def _parse_principal(value, what: str) -> tuple:
    if value == "*":
        return (_PrincipalRef("any", "*"),)
    if not isinstance(value, dict) or not value:
        raise PolicyDocumentError(f"{what} must be \"*\" or an object such as {{\"AWS\": [...]}}, not {json.dumps(value)}")
    refs = []
    for ptype, entries in value.items():
        names = _string_list(entries, f"{what}.{ptype}")
        if ptype == "AWS":
            refs.extend(_parse_aws_principal(n, f"{what}.AWS") for n in names)
        elif ptype in ("Service", "Federated", "CanonicalUser"):
            kind = {"Service": "service", "Federated": "federated", "CanonicalUser": "canonical"}[ptype]
            refs.extend(_PrincipalRef(kind, n) for n in names)
        else:
            raise PolicyDocumentError(f"{what} has principal type {ptype!r}; the types are AWS, Service, Federated and CanonicalUser")
    return tuple(refs)


def _parse_aws_principal(name: str, what: str) -> _PrincipalRef:
    if name == "*":
        return _PrincipalRef("any", name)
    if _ACCOUNT_RE.match(name):
        return _PrincipalRef("account", name, account=name)
    m = _PRINCIPAL_ARN_RE.match(name)
    if m:
        partition, service, account, resource = m.groups()
        if "*" in name or "?" in name:
            raise PolicyDocumentError(f"{what} entry {name!r} has a wildcard: a principal ARN can't have one (use \"*\" with an "
                                      "aws:PrincipalArn ArnLike condition instead)")
        if service == "iam" and resource == "root":
            return _PrincipalRef("account", name, partition=partition, account=account)
        kinds = ("user", "role") if service == "iam" else ("assumed-role", "federated-user")
        if "/" in resource and resource.split("/", 1)[0] in kinds:
            return _PrincipalRef("arn", name, partition=partition, account=account, service=service, resource=resource)
    if _UNIQUE_ID_RE.match(name):
        return _PrincipalRef("unique_id", name)
    raise PolicyDocumentError(f"{what} entry {name!r} is not an AWS principal (an account id, arn:aws:iam::<account>:root, "
                              "a user, role or assumed-role ARN, or \"*\")")


def _parse_condition(value, what: str) -> tuple:
    if not isinstance(value, dict):
        raise PolicyDocumentError(f"{what} must be an object of operator -> {{key: value}}, not {json.dumps(value)}")
    out = []
    for operator, block in value.items():
        qualifier, base = "", operator
        if ":" in operator:
            qualifier, base = operator.split(":", 1)
            if qualifier.lower() not in ("foranyvalue", "forallvalues"):
                raise PolicyDocumentError(f"{what} has operator {operator!r}: the set qualifiers are ForAnyValue: and ForAllValues:")
        lower = base.lower()
        if_exists = lower.endswith("ifexists") and lower != "null"
        if if_exists:
            lower = lower[:-len("ifexists")]
        if lower not in _OPERATORS or (if_exists and lower == "null"):
            raise PolicyDocumentError(f"{what} has unknown condition operator {operator!r}")
        positive, negated = _OPERATORS[lower]
        if not isinstance(block, dict) or not block:
            raise PolicyDocumentError(f"{what}.{operator} must be a non-empty object of condition key -> value(s), not {json.dumps(block)}")
        for key, raw in block.items():
            values = _condition_values(raw, f"{what}.{operator}.{key}")
            _check_operand(positive, values, f"{what}.{operator}.{key}")
            out.append(_Condition(operator, positive, negated, if_exists, qualifier.lower(), key, values, raw))
    return tuple(out)


def _condition_values(raw, what: str) -> tuple:
    items = raw if isinstance(raw, list) else [raw]
    values = []
    for item in items:
        if isinstance(item, bool):
            values.append("true" if item else "false")
        elif isinstance(item, (int, float, str)):
            values.append(str(item))
        else:
            raise PolicyDocumentError(f"{what} must be a string, number, boolean or a list of them, not {json.dumps(raw)}")
    if not values:
        raise PolicyDocumentError(f"{what} has an empty list of values")
    return tuple(values)


def _check_operand(base: str, values: tuple, what: str) -> None:
    for v in values:
        if "${" in v:
            continue
        if base == "null" and v.lower() not in ("true", "false"):
            raise PolicyDocumentError(f"{what}: Null takes \"true\" or \"false\", not {v!r}")
        if base.startswith("numeric") and _number(v) is None:
            raise PolicyDocumentError(f"{what}: {v!r} is not a number")
        if base.startswith("date") and _date(v) is None:
            raise PolicyDocumentError(f"{what}: {v!r} is not a date (ISO 8601 or epoch seconds)")
        if base == "ipaddress" and _network(v) is None:
            raise PolicyDocumentError(f"{what}: {v!r} is not an IP address or CIDR range")


def _number(value: str):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _date(value: str):
    try:
        if re.match(r"^\d+$", value):
            return datetime.datetime.fromtimestamp(int(value), tz=datetime.timezone.utc)
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _network(value: str):
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def _load(policy) -> dict:
    if isinstance(policy, (bytes, bytearray)):
        policy = policy.decode("utf-8", errors="replace")
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError as e:
            raise PolicyDocumentError(f"the key policy is not JSON: {e}") from None
    if not isinstance(policy, dict):
        raise PolicyDocumentError(f"the key policy must be a JSON object with a Statement, not {type(policy).__name__}")
    return policy


def _statements(policy) -> tuple:
    doc = _load(policy)
    unknown = [k for k in doc if k not in ("Version", "Id", "Statement")]
    if unknown:
        raise PolicyDocumentError(f"the key policy has unknown top-level element(s) {', '.join(map(repr, unknown))}; "
                                  "a policy has Version, Id and Statement")
    version = doc.get("Version", "2008-10-17")
    if version not in _VERSIONS:
        raise PolicyDocumentError(f"the key policy has Version {version!r}; use \"2012-10-17\"")
    if "Statement" not in doc:
        raise PolicyDocumentError("the key policy has no Statement")
    raw = doc["Statement"]
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise PolicyDocumentError("the key policy's Statement must be a statement object or a non-empty list of them")
    return tuple(_statement(i, s, version == "2012-10-17") for i, s in enumerate(raw))


def _one_of(stmt: dict, where: str, names: tuple) -> str:
    present = [n for n in names if n in stmt]
    if len(present) != 1:
        if present:
            raise PolicyDocumentError(f"{where} has both {present[0]} and {present[1]}; a statement has exactly one of them")
        raise PolicyDocumentError(f"{where} has no {names[0]} (or {names[1]})")
    return present[0]


def _statement(index: int, stmt, variables: bool) -> _Statement:
    where = _where(index, stmt)
    if not isinstance(stmt, dict):
        raise PolicyDocumentError(f"{where} must be an object, not {json.dumps(stmt)}")
    unknown = [k for k in stmt if k not in _STATEMENT_KEYS]
    if unknown:
        raise PolicyDocumentError(f"{where} has unknown element(s) {', '.join(map(repr, unknown))}; "
                                  f"a statement has {', '.join(_STATEMENT_KEYS)}")
    sid = stmt.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicyDocumentError(f"{where}: Sid must be a string, not {json.dumps(sid)}")
    if "Effect" not in stmt:
        raise PolicyDocumentError(f"{where} has no Effect (\"Allow\" or \"Deny\")")
    effect = stmt["Effect"]
    if effect not in ("Allow", "Deny"):
        raise PolicyDocumentError(f"{where} has Effect {json.dumps(effect)}; it must be \"Allow\" or \"Deny\"")
    p_name = _one_of(stmt, where, ("Principal", "NotPrincipal"))
    a_name = _one_of(stmt, where, ("Action", "NotAction"))
    # KMS ignores a key-policy statement that has neither Resource nor NotResource: it has no effect, and the policy
    # is not refused for it (it stays as saved). An empty tuple of resources matches nothing.
    r_name = _one_of(stmt, where, ("Resource", "NotResource")) if ("Resource" in stmt or "NotResource" in stmt) else None
    refs = _parse_principal(stmt[p_name], f"{where}.{p_name}")
    actions = _string_list(stmt[a_name], f"{where}.{a_name}")
    for a in actions:
        if a != "*" and not re.match(r"^[A-Za-z0-9*?-]+:[A-Za-z0-9*?]+$", a):
            raise PolicyDocumentError(f"{where}.{a_name} entry {a!r} is not an action (\"kms:<Action>\", wildcards allowed, or \"*\")")
    resources = _string_list(stmt[r_name], f"{where}.{r_name}") if r_name else ()
    conditions = _parse_condition(stmt["Condition"], f"{where}.Condition") if "Condition" in stmt else ()
    return _Statement(
        index=index, sid=sid or None, effect=effect,
        principals=refs if p_name == "Principal" else None, not_principals=refs if p_name == "NotPrincipal" else None,
        raw_principal=stmt[p_name],
        actions=actions if a_name == "Action" else None, not_actions=actions if a_name == "NotAction" else None,
        resources=resources if r_name in ("Resource", None) else None, not_resources=resources if r_name == "NotResource" else None,
        conditions=conditions, variables=variables)


def _principal_json(refs: tuple):
    if len(refs) == 1 and refs[0].kind == "any" and refs[0].value == "*":
        return "*"
    out = {}
    names = {"service": "Service", "federated": "Federated", "canonical": "CanonicalUser"}
    for r in refs:
        out.setdefault(names.get(r.kind, "AWS"), []).append(r.value)
    return out


def parse_policy(policy) -> dict:
    """Validate a key policy (JSON text or dict) and return it normalized: every single-string form as a list,
    Version set, statements always a list, condition values as lists of strings. Raises PolicyDocumentError."""
    doc = _load(policy)
    statements = _statements(doc)
    out = {"Version": doc.get("Version", "2008-10-17")}
    if "Id" in doc:
        out["Id"] = doc["Id"]
    out["Statement"] = []
    for s in statements:
        n = {}
        if s.sid:
            n["Sid"] = s.sid
        n["Effect"] = s.effect
        if s.principals is not None:
            n["Principal"] = _principal_json(s.principals)
        else:
            n["NotPrincipal"] = _principal_json(s.not_principals)
        if s.actions is not None:
            n["Action"] = list(s.actions)
        else:
            n["NotAction"] = list(s.not_actions)
        if s.resources:
            n["Resource"] = list(s.resources)
        elif s.not_resources is not None:
            n["NotResource"] = list(s.not_resources)
        if s.conditions:
            cond = {}
            for c in s.conditions:
                cond.setdefault(c.operator, {})[c.key] = list(c.values)
            n["Condition"] = cond
        out["Statement"].append(n)
    return out


# -- the caller and the request context -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Caller:
    arn: str
    partition: str
    account: str
    kind: str  # root | user | role | session | other
    name: str  # user name, or the role's name for a role or a session


def _caller(principal) -> _Caller:
    if not isinstance(principal, str):
        raise ValueError(f"principal must be an IAM ARN string, not {type(principal).__name__}")
    if _ACCOUNT_RE.match(principal):
        return _Caller(f"arn:aws:iam::{principal}:root", "aws", principal, "root", "")
    m = _PRINCIPAL_ARN_RE.match(principal)
    if m and "*" not in principal:
        partition, service, account, resource = m.groups()
        head, _sep, tail = resource.partition("/")
        if service == "iam" and resource == "root":
            return _Caller(principal, partition, account, "root", "")
        if service == "iam" and head in ("user", "role") and tail:
            return _Caller(principal, partition, account, head, tail.rsplit("/", 1)[-1])
        if service == "sts" and head == "assumed-role" and tail.count("/") == 1:
            return _Caller(principal, partition, account, "session", tail.split("/")[0])
        if service == "sts" and head == "federated-user" and tail:
            return _Caller(principal, partition, account, "other", tail)
    raise ValueError(f"principal {principal!r} is not an IAM principal ARN (arn:aws:iam::<account>:user/<name>, :role/<name>, :root, "
                     "or arn:aws:sts::<account>:assumed-role/<role>/<session>)")


def _key(key_arn) -> tuple:
    m = _KEY_ARN_RE.match(key_arn) if isinstance(key_arn, str) else None
    if not m:
        raise ValueError(f"key_arn {key_arn!r} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>)")
    return m.group(2), m.group(3)  # region, account


def _ctx_value(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [v for v in (_ctx_value(x) for x in value) if v is not None]
        flat = [x for v in items for x in v]
        return flat or None
    if isinstance(value, (datetime.datetime, datetime.date)):
        return [value.isoformat()]
    return [str(value)]


def _context(req: Requirement, caller: _Caller, action: str, key_region: str, key_account: str) -> dict:
    auto = {
        "aws:PrincipalAccount": caller.account, "kms:CallerAccount": caller.account,
        "aws:PrincipalType": {"root": "Account", "user": "User", "role": "AssumedRole", "session": "AssumedRole"}.get(caller.kind, "FederatedUser"),
        "aws:PrincipalIsAWSService": False, "aws:ResourceAccount": key_account, "aws:RequestedRegion": key_region,
    }
    if caller.kind != "session":
        auto["aws:PrincipalArn"] = caller.arn
    if caller.kind == "user":
        auto["aws:username"] = caller.name
    if action.lower() not in _GRANT_KEY_ACTIONS:
        auto["kms:GrantIsForAWSResource"] = None
    if action.lower() != "kms:creategrant":
        auto.update({k: None for k in _CREATE_GRANT_ONLY_KEYS})
    ctx = {k.lower(): _ctx_value(v) for k, v in auto.items()}
    given = req.context or {}
    if not isinstance(given, dict):
        raise ValueError(f"context of {req.principal} {req.action} must be a dict of condition key -> value")
    ctx.update({str(k).lower(): _ctx_value(v) for k, v in given.items()})
    return ctx


# -- conditions ----------------------------------------------------------------------------------------------
def _compare(base: str, actual: str, expected: str) -> bool:
    if base == "stringequals":
        return actual == expected
    if base == "stringequalsignorecase":
        return actual.casefold() == expected.casefold()
    if base == "stringlike":
        return _glob_match(expected, actual)
    if base == "bool":
        return actual.lower() == expected.lower()
    if base == "binaryequals":
        return actual == expected
    if base == "arnlike":
        return _arn_like(expected, actual)
    if base == "ipaddress":
        net = _network(expected)
        try:
            return net is not None and ipaddress.ip_address(actual) in net
        except ValueError:
            return False
    family, parse = ("numeric", _number) if base.startswith("numeric") else ("date", _date)
    left, right = parse(actual), parse(expected)
    if left is None or right is None:
        return False
    return _COMPARISONS[base[len(family):]](left, right)


def _substitute(value: str, ctx: dict):
    """Fill policy variables from the context; None when one of them is unknown."""
    unknown = []

    def fill(m):
        name = m.group(1)
        if name in ("*", "?", "$"):
            return name
        if "," in name:  # ${key, 'default'}
            name, default = name.split(",", 1)
            got = ctx.get(name.strip().lower(), _MISSING)
            if got is _MISSING or got is None:
                return default.strip().strip("'")
            return got[0]
        got = ctx.get(name.strip().lower(), _MISSING)
        if got is _MISSING or got is None:
            unknown.append(name)
            return ""
        return got[0]

    filled = _VARIABLE_RE.sub(fill, value)
    return None if unknown else filled


def _via_service_elsewhere(cond: _Condition, key_region: str) -> bool:
    """An unknown kms:ViaService cannot match a positive condition that names only other Regions' services."""
    if cond.key.lower() != "kms:viaservice" or cond.negated or cond.qualifier or cond.base not in ("stringequals", "stringequalsignorecase", "stringlike"):
        return False
    for v in cond.values:
        m = _SERVICE_ENDPOINT_RE.match(v.lower())
        if not m or "*" in v or "?" in v or m.group(1) == key_region:
            return False
    return True


def _eval_condition(cond: _Condition, ctx: dict, key_region: str, variables: bool):
    """True, False, or None (the context does not settle it)."""
    raw = ctx.get(cond.key.lower(), _MISSING)
    if cond.base == "null":
        present = raw is not _MISSING and raw is not None
        return any((v.lower() == "true") != present for v in cond.values)
    if raw is _MISSING:
        if cond.if_exists:
            return True
        if _via_service_elsewhere(cond, key_region):
            return False
        return None
    if raw is None:
        if cond.if_exists or cond.qualifier == "forallvalues":
            return True
        if cond.qualifier == "foranyvalue":
            return False
        return cond.negated
    expected = []
    for v in cond.values:
        filled = _substitute(v, ctx) if variables and "${" in v else v
        if filled is None:
            return None
        expected.append(filled)

    def matches(actual):
        hit = any(_compare(cond.base, actual, e) for e in expected)
        return not hit if cond.negated else hit

    if cond.qualifier == "forallvalues" or (cond.negated and not cond.qualifier):
        return all(matches(a) for a in raw)
    return any(matches(a) for a in raw)


def _describe(cond: _Condition) -> str:
    values = cond.values[0] if len(cond.values) == 1 else "[" + ", ".join(cond.values) + "]"
    return f"{cond.operator} {cond.key} {values}"


# -- one statement -------------------------------------------------------------------------------------------
@dataclass
class _Outcome:
    stmt: _Statement
    action_ok: bool = False
    resource_ok: bool = False
    via: str | None = None  # direct | public | account | None (principal does not match)
    principal_state: bool | None = True  # None: NotPrincipal can't be settled (role sessions)
    principal_note: str = ""
    cond_state: bool | None = True
    unresolved: dict = field(default_factory=dict)
    failed: list = field(default_factory=list)  # (condition, actual) that evaluated to false

    @property
    def applies(self):
        """True / False / None (depends on something the context does not settle)."""
        if not (self.action_ok and self.resource_ok and self.via) or self.cond_state is False or self.principal_state is False:
            return False
        if self.cond_state is None or self.principal_state is None:
            return None
        return True

    @property
    def misses(self) -> list:
        out = []
        if not self.via:
            out.append("principal")
        if not self.action_ok:
            out.append("action")
        if not self.resource_ok:
            out.append("resource")
        if self.cond_state is False:
            out.append("condition")
        return out


def _ref_matches(ref: _PrincipalRef, caller: _Caller) -> str | None:
    """direct | any | account | None."""
    if ref.kind == "any":
        return "any"
    if ref.kind == "account":
        if ref.account == caller.account and (not ref.partition or ref.partition == caller.partition):
            return "direct" if caller.kind == "root" else "account"
        return None
    if ref.kind != "arn" or ref.account != caller.account or ref.partition != caller.partition:
        return None
    if ref.value == caller.arn:
        return "direct"
    if caller.kind == "session" and ref.role_name and ref.role_name == caller.name:
        return "direct"
    return None


def _notprincipal_deny(stmt: _Statement, caller: _Caller):
    """For Deny + NotPrincipal: (applies True/False/None, note). AWS may check the account, the role or user, and the
    session of a caller in turn, so the Deny spares a caller only when every one of them is listed."""
    refs = stmt.not_principals
    if any(r.kind == "any" for r in refs):
        return False, "its NotPrincipal is \"*\", which exempts everyone"
    account_listed = any(r.kind == "account" and _ref_matches(r, caller) for r in refs)
    account_arn = f"arn:{caller.partition}:iam::{caller.account}:root"
    if caller.kind == "root":
        return (False, "its NotPrincipal lists the account") if account_listed else (True, f"its NotPrincipal does not list {account_arn}")
    arn_refs = [r for r in refs if r.kind == "arn" and r.account == caller.account and r.partition == caller.partition]
    if caller.kind == "session":
        own = f"arn:{caller.partition}:iam::{caller.account}:role/{caller.name}"
        own_listed = any(r.role_name == caller.name for r in arn_refs)
    else:
        own = caller.arn
        own_listed = any(r.value == caller.arn for r in arn_refs)
    if not own_listed:
        return True, f"its NotPrincipal does not list {own}"
    if not account_listed:
        return True, f"its NotPrincipal lists {own} but not its account {account_arn}, which AWS checks too"
    if caller.kind == "session" and not any(r.value == caller.arn for r in arn_refs):
        return True, f"its NotPrincipal lists the role and its account but not this session {caller.arn}, which AWS checks too"
    if caller.kind == "role":
        return None, (f"AWS also checks the role's session (arn:{caller.partition}:sts::{caller.account}:assumed-role/{caller.name}/<session>), "
                      "which its NotPrincipal does not list (NotPrincipal exempts a session only by its exact name)")
    return False, "its NotPrincipal lists the principal and its account"


def _principal(stmt: _Statement, caller: _Caller, out: _Outcome) -> None:
    if stmt.not_principals is not None:
        if stmt.effect == "Deny":
            state, out.principal_note = _notprincipal_deny(stmt, caller)
            out.via = "direct" if state is not False else None
            out.principal_state = state
            return
        excluded = [r for r in stmt.not_principals if r.kind != "any" and _ref_matches(r, caller)]
        if excluded or any(r.kind == "any" for r in stmt.not_principals):
            out.principal_note = f"excludes {excluded[0].value if excluded else 'everyone'} by its NotPrincipal"
            return
        out.via, out.principal_note = "any", "it allows every principal not listed in its NotPrincipal (NotPrincipal with Allow)"
    else:
        vias = [_ref_matches(r, caller) for r in stmt.principals]
        for best in ("direct", "any", "account"):
            if best in vias:
                out.via = best
                break
        if not out.via:
            out.principal_note = _principal_miss(stmt.principals, caller)
            return
    if out.via == "any":
        keys = {c.key.lower() for c in stmt.conditions if not c.negated}
        if caller.kind == "root":
            keys -= _ACCOUNT_SCOPE_KEYS
        if keys & _PRINCIPAL_SCOPE_KEYS:
            out.via = "direct"
        elif keys & _ACCOUNT_SCOPE_KEYS:
            out.via = "account"
        else:
            out.via = "public"


def _principal_miss(refs: tuple, caller: _Caller) -> str:
    kinds = {r.kind for r in refs}
    named = ", ".join(r.value for r in refs[:3]) + (", ..." if len(refs) > 3 else "")
    for r in refs:
        if r.kind == "arn" and r.value.lower() == caller.arn.lower():
            return f"names {r.value}, which differs from {caller.arn} only in letter case (principal ARNs match exactly)"
        if r.kind == "arn" and r.role_name and caller.kind == "role" and r.role_name == caller.name and r.account == caller.account:
            return f"names {r.value}, a role of that name with another path than {caller.arn}"
    if kinds <= {"service"}:
        return f"names the service {named}, which never matches an IAM user or role"
    if "unique_id" in kinds:
        return (f"names {named}, with a unique id where an ARN belongs: a key policy shows that once the user or role it named is deleted "
                "(a re-created one with the same name is another principal)")
    others = {r.account for r in refs if r.account and r.account != caller.account}
    if others and not any(r.account == caller.account for r in refs if r.account):
        return f"names principals of account {', '.join(sorted(others))}, not of {caller.account}"
    return f"names {named}, not {caller.arn}"


def _assess(stmt: _Statement, caller: _Caller, action: str, key_arn: str, ctx: dict, key_region: str) -> _Outcome:
    out = _Outcome(stmt)
    if stmt.actions is not None:
        out.action_ok = any(_glob_match(a, action, ignore_case=True) for a in stmt.actions)
    else:
        out.action_ok = not any(_glob_match(a, action, ignore_case=True) for a in stmt.not_actions)
    if stmt.resources is not None:
        out.resource_ok = any(_glob_match(r, key_arn) for r in stmt.resources)
    else:
        out.resource_ok = not any(_glob_match(r, key_arn) for r in stmt.not_resources)
    _principal(stmt, caller, out)
    if out.principal_state is None:
        out.unresolved.setdefault("NotPrincipal", stmt.raw_principal)
    for cond in stmt.conditions:
        state = _eval_condition(cond, ctx, key_region, stmt.variables)
        if state is False:
            out.cond_state = False
            actual = ctx.get(cond.key.lower(), _MISSING)
            if actual is _MISSING and cond.base != "null" and not cond.if_exists:
                got = f"a {key_region} service, the key's Region"
            elif actual is _MISSING or actual is None:
                got = f"no {cond.key}"
            else:
                got = ", ".join(actual)
            out.failed.append((cond, got))
        elif state is None:
            if out.cond_state is not False:
                out.cond_state = None
            out.unresolved.setdefault(cond.operator, {})[cond.key] = cond.raw_value
    return out


# -- the verdict ---------------------------------------------------------------------------------------------
def _names(outcomes) -> str:
    quoted = [o.stmt.quoted for o in outcomes]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _unresolved_text(o: _Outcome) -> str:
    """What a statement that may apply depends on, as a clause: 'if <conditions>' and/or 'because <NotPrincipal note>'."""
    conds = [f"{op} {k} {json.dumps(v)}" for op, keys in o.unresolved.items() if op != "NotPrincipal" for k, v in keys.items()]
    parts = []
    if conds:
        parts.append("if " + " and ".join(conds) + ", which the request context does not settle")
    if "NotPrincipal" in o.unresolved:
        parts.append(f"because {o.principal_note}")
    return f"{o.stmt.quoted} applies only " + ", and ".join(parts) if conds else f"{o.stmt.quoted} may apply " + ", and ".join(parts)


def _miss_text(o: _Outcome, action: str, key_arn: str) -> str:
    miss = o.misses
    reasons = []
    if "principal" in miss:
        reasons.append(o.principal_note or "does not name this principal")
    if "action" in miss:
        if o.stmt.actions is not None:
            listed = ", ".join(o.stmt.actions)
            hint = " (kms:ReEncrypt is not an IAM action: use kms:ReEncrypt*)" if any(a.lower() == "kms:reencrypt" for a in o.stmt.actions) else ""
            reasons.append(f"does not include {action} in its Action ({listed}){hint}")
        else:
            reasons.append(f"excludes {action} by its NotAction")
    if "resource" in miss and o.stmt.resources == ():
        reasons.append("has no Resource element, so it has no effect (KMS ignores such a statement); add \"Resource\": \"*\"")
    elif "resource" in miss:
        listed = ", ".join(o.stmt.resources if o.stmt.resources is not None else o.stmt.not_resources)
        reasons.append(f"does not cover {key_arn} with its {'Resource' if o.stmt.resources is not None else 'NotResource'} ({listed}); "
                       "in a key policy use \"*\" or the key ARN")
    if "condition" in miss:
        for cond, got in o.failed[:2]:
            reasons.append(f"requires {_describe(cond)}, which does not hold (the request has {got})")
    return f"{o.stmt.quoted} " + " and ".join(reasons) if reasons else ""


def _near_misses(outcomes, action: str, key_arn: str) -> str:
    ranked = [o for o in outcomes if o.stmt.effect == "Allow" and o.misses]
    order = {"action": 0, "condition": 1, "resource": 2, "principal": 3}
    ranked.sort(key=lambda o: (len(o.misses), min(order[m] for m in o.misses), o.stmt.index))
    close = [o for o in ranked if len(o.misses) == 1][:2] or ranked[:1]
    return "; ".join(t for t in (_miss_text(o, action, key_arn) for o in close) if t)


def _verdict(req: Requirement, outcomes: list, key_arn: str, key_account: str) -> Verdict:
    who, action = req.principal, req.action
    allows = [o for o in outcomes if o.stmt.effect == "Allow" and o.applies is not False]
    denies = [o for o in outcomes if o.stmt.effect == "Deny" and o.applies is not False]
    sure_denies = [o for o in denies if o.applies]
    maybe_denies = [o for o in denies if o.applies is None]
    sure_direct = [o for o in allows if o.applies and o.via in ("direct", "public")]
    sure_account = [o for o in allows if o.applies and o.via == "account"]
    maybe_allows = [o for o in allows if o.applies is None]
    allow_labels = tuple(o.stmt.label for o in allows)

    if sure_denies:
        notes = [o.principal_note for o in sure_denies if o.stmt.not_principals is not None]
        because = f" ({notes[0]})" if notes else ""
        over = f", overriding the Allow in {_names(allows)}" if allows else ""
        return Verdict(who, action, "denied", allow_labels, tuple(o.stmt.label for o in sure_denies), (),
                       f"{_names(sure_denies)} explicitly denies {who} {action}{because}{over}: an explicit Deny wins over any Allow.")

    if sure_direct:
        base = "allowed"
        if all(o.via == "public" for o in sure_direct):
            everyone = "every principal not listed in its NotPrincipal" if sure_direct[0].stmt.not_principals is not None else "every principal (\"*\")"
            text = f"{_names(sure_direct)} allows {everyone}, so also {who}, {action} on this key"
        else:
            text = f"{_names(sure_direct)} allows {who} {action} on this key"
        if _account_of(who) != key_account:
            text += f" (from account {_account_of(who)} it also needs an IAM policy there that allows it)"
    elif sure_account:
        base = "delegated_to_iam"
        text = (f"{_names(sure_account)} allows {action} to account {_account_of(who)} as a whole, not to {who} by name, "
                f"so {who} may call it if an IAM policy in that account allows it")
    elif maybe_allows:
        base = "conditional"
        whole = ""
        if all(o.via == "account" for o in maybe_allows):
            whole = f" (to account {_account_of(who)} as a whole, so an IAM policy there must allow it too)"
        text = f"The key policy allows {who} {action}{whole} only under conditions: " + "; ".join(_unresolved_text(o) for o in maybe_allows)
    else:
        near = _near_misses(outcomes, action, key_arn)
        text = f"No statement allows {who} {action} on this key" + (f": {near}" if near else "") + "."
        return Verdict(who, action, "implicitly_denied", (), (), (), text)

    conditions = []
    if base == "conditional":
        conditions.extend(o.unresolved for o in maybe_allows)
    if maybe_denies:
        conditions.extend(o.unresolved for o in maybe_denies)
        text += ", but a Deny may apply, so it is conditional at most: " + "; ".join(_unresolved_text(o) for o in maybe_denies)
        base = "conditional"
    elif base != "conditional":
        text += ", and no statement denies it"
    return Verdict(who, action, base, allow_labels, tuple(o.stmt.label for o in maybe_denies), tuple(conditions), text + ".")


def _account_of(principal: str) -> str:
    return _caller(principal).account


def _evaluate(statements: tuple, requirement: Requirement, key_arn: str) -> Verdict:
    if not isinstance(requirement, Requirement):
        raise ValueError(f"expected a Requirement, not {type(requirement).__name__}")
    caller = _caller(requirement.principal)
    action = requirement.action
    if not isinstance(action, str) or not re.match(r"^[A-Za-z0-9-]+:[A-Za-z0-9]+$", action):
        raise ValueError(f"action {action!r} of {requirement.principal} must be one IAM action name such as \"kms:Decrypt\" (no wildcards)")
    key_region, key_account = _key(key_arn)
    if caller.account != key_account and action.lower() not in CROSS_ACCOUNT_ACTIONS:
        return Verdict(requirement.principal, action, "implicitly_denied", explanation=(
            f"KMS never lets a principal of another account ({caller.account}) call {action} on a key of {key_account}, whatever "
            "the key policy says: across accounts only the cryptographic operations, CreateGrant, DescribeKey, "
            "GetKeyRotationStatus, GetPublicKey, ListGrants, RetireGrant and RevokeGrant work."))
    ctx = _context(requirement, caller, action, key_region, key_account)
    outcomes = [_assess(s, caller, action, key_arn, ctx, key_region) for s in statements]
    return _verdict(requirement, outcomes, key_arn, key_account)


def evaluate(policy, requirement: Requirement, key_arn: str) -> Verdict:
    """Decide whether the key policy lets requirement.principal call requirement.action on the key `key_arn`.

    Raises PolicyDocumentError for a malformed policy, ValueError for a malformed requirement or key ARN.
    """
    return _evaluate(_statements(policy), requirement, key_arn)


def evaluate_all(policy, requirements: list, key_arn: str) -> list:
    """evaluate() for every requirement, parsing the policy once."""
    statements = _statements(policy)
    return [_evaluate(statements, r, key_arn) for r in requirements]
