"""IAM ``SimulatePrincipalPolicy`` answered from the principal's real policies (moto 5.2.5 does not implement it).

AWS documents the call and the decision it returns:

- IAM API reference, SimulatePrincipalPolicy
  (https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html): "Simulate how a set of
  IAM policies attached to an IAM entity works with a list of API operations and AWS resources to determine the
  policies' effective permissions. The entity can be an IAM user, group, or role. If you specify a user, then the
  simulation also includes all of the policies that are attached to groups that the user belongs to." Each
  EvaluationResult carries EvalActionName, EvalResourceName, EvalDecision (``allowed`` | ``explicitDeny`` |
  ``implicitDeny``), MatchedStatements and MissingContextValues (condition keys the policies use that the
  request did not give in ContextEntries).
- IAM User Guide, "Policy evaluation logic"
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html): an explicit Deny
  in any policy wins; otherwise an Allow in an identity-based policy allows, and when a permissions boundary is
  set the boundary must allow it too; otherwise the request is implicitly denied.
- IAM User Guide, "IAM JSON policy elements: Condition operators"
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html):
  "If the key that you specify in a policy condition is not present in the request context, the values do not
  match" (the negated operators then match), ``...IfExists`` matches an absent key, and ``Null`` tests presence.

What is evaluated: the user's inline and attached managed policies and those of its groups, or the role's inline
and attached managed policies; the permissions boundary; PolicyInputList (extra policies given as strings);
``Action``/``NotAction`` (case-insensitive wildcards), ``Resource``/``NotResource`` (wildcards, ``${aws:username}``),
conditions with the String*, Arn*, Bool and Null operators (``IfExists`` and ``ForAnyValue:``/``ForAllValues:``
included). An operator this module does not know makes an Allow not apply and a Deny apply: stricter, never kinder,
than AWS. Resource policies (ResourcePolicy) and SCPs are not evaluated.
"""
from __future__ import annotations

import json
import re
from typing import Any

from moto.core.responses import ActionResult
from moto.iam import responses as iam_responses
from moto.iam.exceptions import NotFoundException
from moto.iam.models import iam_backends

from ._patching import add, require

DECISIONS = ("allowed", "explicitDeny", "implicitDeny")
_ARN = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):(user|role|group)/(?:.*/)?([\w+=,.@-]+)$")


def _glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def _listed(value: Any) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, (str, bool, int)) else list(value)


def _condition_holds(operator: str, key: str, expected: Any, context: dict[str, list[str]]) -> bool | None:
    """True / False; None for an operator this module does not model."""
    op = operator
    qualifier = ""
    if ":" in op:
        qualifier, op = op.split(":", 1)
        qualifier = qualifier.lower()
    if_exists = op.endswith("IfExists")
    if if_exists:
        op = op[: -len("IfExists")]
    op = op.lower()
    values = [str(v) for v in _listed(expected)]
    actual = context.get(key.lower())
    if op == "null":
        want_absent = str(values[0]).lower() == "true" if values else True
        return (actual is None) == want_absent
    negated = op in ("stringnotequals", "stringnotequalsignorecase", "stringnotlike", "arnnotequals", "arnnotlike")
    base = {"stringnotequals": "stringequals", "stringnotequalsignorecase": "stringequalsignorecase",
            "stringnotlike": "stringlike", "arnnotequals": "arnlike", "arnnotlike": "arnlike", "arnequals": "arnlike"}.get(op, op)
    if base not in ("stringequals", "stringequalsignorecase", "stringlike", "arnlike", "bool"):
        return None
    if actual is None:
        return True if if_exists else negated

    def one(value: str) -> bool:
        if base == "stringequals":
            return any(value == v for v in values)
        if base == "stringequalsignorecase":
            return any(value.lower() == v.lower() for v in values)
        if base == "stringlike":
            return any(_glob(v, value) for v in values)
        if base == "bool":
            return any(value.lower() == v.lower() for v in values)
        return any(_glob(v, value) for v in values)  # arnlike: * and ? within the ARN

    matches = [one(a) for a in actual]
    if qualifier == "forallvalues":
        hit = all(matches)
    else:
        hit = any(matches)
    return not hit if negated else hit


def _statement_applies(statement: dict, action: str, resource: str, context: dict[str, list[str]],
                       variables: dict[str, str], missing: set[str]) -> bool:
    if "Action" in statement:
        if not any(_glob(a, action, ignore_case=True) for a in _listed(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(_glob(a, action, ignore_case=True) for a in _listed(statement["NotAction"])):
            return False
    else:
        return False

    def expand(pattern: str) -> str:
        return re.sub(r"\$\{([^}]*)\}", lambda m: variables.get(m.group(1).lower(), m.group(0)), pattern)

    if "Resource" in statement:
        if not any(_glob(expand(r), resource) for r in _listed(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(_glob(expand(r), resource) for r in _listed(statement["NotResource"])):
            return False
    else:
        return False  # a statement without Resource has no effect
    for operator, block in (statement.get("Condition") or {}).items():
        for key, expected in (block or {}).items():
            if key.lower() not in context and not operator.endswith("IfExists") and not operator.lower().startswith("null"):
                missing.add(key)
            holds = _condition_holds(operator, key, expected, context)
            if holds is None:
                return statement.get("Effect") == "Deny"  # unknown operator: stricter than AWS either way
            if not holds:
                return False
    return True


def _evaluate(policies: list[tuple[str, str, Any]], boundary: Any, action: str, resource: str,
              context: dict[str, list[str]], variables: dict[str, str]) -> dict[str, Any]:
    missing: set[str] = set()
    allows, denies = [], []
    for source_id, source_type, document in policies:
        for statement in _listed((document or {}).get("Statement")):
            if isinstance(statement, dict) and _statement_applies(statement, action, resource, context, variables, missing):
                entry = {"SourcePolicyId": source_id, "SourcePolicyType": source_type}
                (denies if statement.get("Effect") == "Deny" else allows).append(entry)
    boundary_ok = True
    if boundary is not None:
        inside = [s for s in _listed(boundary.get("Statement")) if isinstance(s, dict)
                  and _statement_applies(s, action, resource, context, variables, missing)]
        boundary_ok = any(s.get("Effect") == "Allow" for s in inside) and not any(s.get("Effect") == "Deny" for s in inside)
    if denies:
        decision, matched = "explicitDeny", denies
    elif allows and boundary_ok:
        decision, matched = "allowed", allows
    else:
        decision, matched = "implicitDeny", []
    return {"EvalActionName": action, "EvalResourceName": resource, "EvalDecision": decision, "MatchedStatements": matched,
            "MissingContextValues": sorted(missing), "EvalDecisionDetails": {},
            "PermissionsBoundaryDecisionDetail": {"AllowedByPermissionsBoundary": boundary_ok}}


def _document(text: str) -> Any:
    from urllib.parse import unquote  # pylint: disable=import-outside-toplevel
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return json.loads(unquote(text))


def _default_document(policy: Any) -> Any:
    version = next((v for v in policy.versions if v.is_default), None)
    return _document(version.document) if version else {}


def principal_policies(backend: Any, source_arn: str) -> tuple[list[tuple[str, str, Any]], Any, dict[str, str], str]:
    """(policies as (id, type, document), boundary document or None, principal variables, principal type)."""
    match = _ARN.match(source_arn or "")
    if not match:
        raise NotFoundException(f"PolicySourceArn {source_arn} is not the ARN of an IAM user, group or role")
    kind, name = match.group(3), match.group(4)
    policies: list[tuple[str, str, Any]] = []
    boundary_arn = None
    variables = {"aws:principalarn": source_arn, "aws:principalaccount": match.group(2)}
    if kind == "user":
        entity = backend.get_user(name)
        variables["aws:username"] = name
        groups = backend.get_groups_for_user(name)
        boundary_arn = getattr(entity, "permissions_boundary_arn", None)
    elif kind == "role":
        entity = backend.get_role(name)
        groups = []
        boundary_arn = entity.permissions_boundary_arn
    else:
        entity = backend.get_group(name)
        groups = []
    for owner in [entity, *groups]:
        for policy_name, text in owner.policies.items():
            policies.append((policy_name, "group" if owner is not entity else kind, _document(text)))  # AWS's SourcePolicyType
        for policy in owner.managed_policies.values():
            managed = "aws-managed" if ":iam::aws:policy/" in policy.arn else "user-managed"
            policies.append((policy.arn, managed, _default_document(policy)))
    boundary = None
    if boundary_arn:
        boundary = _default_document(backend.get_policy(boundary_arn))
    return policies, boundary, variables, kind


def simulate(backend: Any, source_arn: str, actions: list[str], resources: list[str], inputs: list[str],
             context_entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    policies, boundary, variables, kind = principal_policies(backend, source_arn)
    policies += [(f"PolicyInputList.{i + 1}", "user", _document(text)) for i, text in enumerate(inputs)]
    context: dict[str, list[str]] = {k: [v] for k, v in variables.items()}
    context["aws:principaltype"] = ["User" if kind == "user" else "AssumedRole" if kind == "role" else "Group"]
    for entry in context_entries:
        context[str(entry.get("ContextKeyName", "")).lower()] = [str(v) for v in _listed(entry.get("ContextKeyValues"))]
    return [_evaluate(policies, boundary, action, resource, context, variables)
            for action in actions for resource in (resources or ["*"])]


def apply() -> None:
    require(iam_responses, "IamResponse")

    def simulate_principal_policy(self: Any) -> ActionResult:
        backend = iam_backends[self.current_account][self.partition]
        params = self._get_params()  # pylint: disable=protected-access
        results = simulate(backend, params.get("PolicySourceArn"), params.get("ActionNames") or [],
                           params.get("ResourceArns") or [], params.get("PolicyInputList") or [],
                           params.get("ContextEntries") or [])
        return ActionResult({"EvaluationResults": results, "IsTruncated": False})

    add(iam_responses.IamResponse, "simulate_principal_policy", simulate_principal_policy)
