# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ARN and identifier parsing with messages that name the field and the fix.

Pure functions: no AWS calls, importable without Ansible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PARTITIONS = ("aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc")
ACCOUNT_ID_RE = re.compile(r"^\d{12}$")
REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
KEY_ID_RE = re.compile(r"^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$")
ALIAS_NAME_RE = re.compile(r"^alias/[a-zA-Z0-9:/_-]{1,250}$")
VPC_ID_RE = re.compile(r"^vpc-(?:[0-9a-f]{8}|[0-9a-f]{17})$")


class InvalidIdentifier(ValueError):
    """A value that is not a well-formed AWS identifier; the message names the field and the fix."""


@dataclass(frozen=True)
class Arn:
    partition: str
    service: str
    region: str
    account_id: str
    resource: str

    @property
    def resource_type(self) -> str:
        return re.split(r"[/:]", self.resource, maxsplit=1)[0]

    @property
    def resource_id(self) -> str:
        parts = re.split(r"[/:]", self.resource, maxsplit=1)
        return parts[1] if len(parts) > 1 else ""

    def __str__(self) -> str:
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account_id}:{self.resource}"


def parse_arn(value: str, field: str = "arn") -> Arn:
    """Split an ARN into its parts; raises InvalidIdentifier naming `field` when it is not one."""
    # Not amazon.aws's parse_aws_arn: it searches rather than matches (text before "arn:" passes), accepts "aws" as an
    # account, and answers None without saying which part is wrong, where the error must name the field and the fix.
    if not isinstance(value, str) or not value.startswith("arn:"):
        raise InvalidIdentifier(f"{field}: {value!r} is not an ARN (expected arn:<partition>:<service>:<region>:<account>:<resource>)")
    parts = value.split(":", 5)
    if len(parts) != 6 or not parts[2] or not parts[5]:
        raise InvalidIdentifier(f"{field}: {value!r} is not an ARN (expected arn:<partition>:<service>:<region>:<account>:<resource>)")
    partition, service, region, account_id, resource = parts[1:]
    if partition not in PARTITIONS:
        raise InvalidIdentifier(f"{field}: {value!r} has unknown partition {partition!r} (one of {', '.join(PARTITIONS)})")
    if account_id and not ACCOUNT_ID_RE.match(account_id):
        raise InvalidIdentifier(f"{field}: {value!r} has account {account_id!r}; an AWS account id is 12 digits")
    if region and not REGION_RE.match(region):
        raise InvalidIdentifier(f"{field}: {value!r} has region {region!r}, which is not an AWS region name")
    return Arn(partition, service, region, account_id, resource)


def validate_account_id(value, field: str) -> str:
    """Account ids are strings of 12 digits; YAML turns unquoted ones into ints, which lose leading zeros."""
    if isinstance(value, bool) or value is None or value == "":
        raise InvalidIdentifier(f"{field}: missing; set it to the 12-digit AWS account id (quoted)")
    if isinstance(value, int):
        raise InvalidIdentifier(f"{field}: {value} is a number; quote it (\"{value:012d}\") so leading zeros survive")
    if not isinstance(value, str) or not ACCOUNT_ID_RE.match(value):
        raise InvalidIdentifier(f"{field}: {value!r} is not a 12-digit AWS account id")
    return value


def validate_region(value, field: str) -> str:
    if not isinstance(value, str) or not REGION_RE.match(value):
        raise InvalidIdentifier(f"{field}: {value!r} is not an AWS region name (like us-east-1)")
    return value


def validate_vpc_id(value, field: str) -> str:
    if not isinstance(value, str) or not VPC_ID_RE.match(value):
        raise InvalidIdentifier(f"{field}: {value!r} is not a VPC id (vpc- and 8 or 17 hex digits)")
    return value


def parse_kms_key_arn(value, field: str = "key_arn") -> Arn:
    """A full KMS key ARN (arn:...:kms:<region>:<account>:key/<id>); aliases and bare ids are refused.

    An alias or a bare key id resolves in the caller's account and region. For a customer's key used from the
    provider account that is the wrong key (or none), so anything written to AWS must name the key by ARN.
    """
    if isinstance(value, str) and not value.startswith("arn:"):
        if ALIAS_NAME_RE.match(value):
            raise InvalidIdentifier(
                f"{field}: {value!r} is an alias; aliases resolve in the caller's account, which is the wrong key "
                "across accounts. Give the key ARN (aws kms describe-key --key-id <alias> in the key's account prints it)"
            )
        if KEY_ID_RE.match(value):
            raise InvalidIdentifier(
                f"{field}: {value!r} is a bare key id; it resolves in the caller's account. Give the full key ARN "
                f"arn:aws:kms:<region>:<customer account>:key/{value}"
            )
    arn = parse_arn(value, field)
    if arn.service != "kms":
        raise InvalidIdentifier(f"{field}: {value!r} is a {arn.service} ARN, not a KMS key ARN")
    if arn.resource_type == "alias":
        raise InvalidIdentifier(
            f"{field}: {value!r} is an alias ARN; an alias can be re-pointed at another key at any time. Give the key ARN it points to"
        )
    if arn.resource_type != "key" or not KEY_ID_RE.match(arn.resource_id):
        raise InvalidIdentifier(f"{field}: {value!r} is not a KMS key ARN (expected ...:key/<key id>)")
    if not arn.region or not arn.account_id:
        raise InvalidIdentifier(f"{field}: {value!r} lacks a region or account; a KMS key ARN has both")
    return arn


def key_id_of(value: str) -> str:
    """The key id of a key ARN or of a bare key id; anything else is returned unchanged."""
    if isinstance(value, str) and value.startswith("arn:") and ":key/" in value:
        return value.rsplit("/", 1)[1]
    return value


def same_kms_key(actual, expected_arn: str) -> bool:
    """Whether a key reference read back from a resource is the expected key.

    Services store the key ARN; some (and older resources) store the bare id. A bare id matches on the id,
    an ARN must match exactly: the same id in another account or region is another key.
    """
    if not actual:
        return False
    if actual.startswith("arn:"):
        return actual == expected_arn
    return KEY_ID_RE.match(actual) is not None and actual == key_id_of(expected_arn)
