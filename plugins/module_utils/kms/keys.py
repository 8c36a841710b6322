# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turning what a user wrote for a key into the key ARN that is safe to write to AWS."""

from __future__ import annotations

from typing import Callable

from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import ALIAS_NAME_RE
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import KEY_ID_RE
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import InvalidIdentifier
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import parse_arn
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import parse_kms_key_arn


def resolve_key_arn(ref, field: str, caller_account: str | None = None, owner_account: str | None = None,
                    describe_key: Callable[[str], dict] | None = None) -> str:
    """Return the full key ARN for `ref`, or raise InvalidIdentifier naming `field`.

    A key ARN is returned as it is (after validation). An alias or bare key id is resolved with `describe_key`
    only when the key is known to live in the caller's own account (`owner_account == caller_account`):
    elsewhere it would silently resolve to a key of the caller's account, the classic cross-account mistake.
    """
    if not isinstance(ref, str) or not ref:
        raise InvalidIdentifier(f"{field}: missing; give the full KMS key ARN")
    if ref.startswith("arn:"):
        arn = parse_arn(ref, field)
        if arn.service == "kms" and arn.resource_type == "alias":
            return _resolve_in_own_account(ref, field, arn.account_id, caller_account, describe_key)
        return str(parse_kms_key_arn(ref, field))
    if ALIAS_NAME_RE.match(ref) or KEY_ID_RE.match(ref):
        return _resolve_in_own_account(ref, field, owner_account, caller_account, describe_key)
    raise InvalidIdentifier(f"{field}: {ref!r} is neither a KMS key ARN, a key id nor an alias; give the full key ARN")


def _resolve_in_own_account(ref, field, owner_account, caller_account, describe_key):
    if describe_key is None or owner_account is None or owner_account != caller_account:
        parse_kms_key_arn(ref, field)  # raises with the message that explains why this form is refused
    metadata = describe_key(ref)
    return str(parse_kms_key_arn(metadata["Arn"], field))


def retirable_grants(kms, retiring_principal: str) -> list:
    """Every grant `retiring_principal` may retire (ListRetirableGrants, all pages): how a provider account finds the
    grants it made on a customer's key (ListGrants needs the key owner's permission; this needs none)."""
    pages = kms.get_paginator("list_retirable_grants").paginate(RetiringPrincipal=retiring_principal, PaginationConfig={"PageSize": 100})
    return [grant for page in pages for grant in page.get("Grants", [])]
