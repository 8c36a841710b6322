# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import InvalidIdentifier
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import parse_arn
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import parse_kms_key_arn
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import same_kms_key
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import validate_account_id
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import validate_region
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import validate_vpc_id
from ansible_collections.mattermost.byok.plugins.module_utils.kms.keys import resolve_key_arn

KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
MRK = "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"


@pytest.mark.parametrize("value, parts", [
    (KEY, ("aws", "kms", "us-east-1", "111122223333", "key", "1234abcd-12ab-34cd-56ef-1234567890ab")),
    ("arn:aws:iam::222222222222:role/nodes.abc-kops.k8s.local", ("aws", "iam", "", "222222222222", "role", "nodes.abc-kops.k8s.local")),
    ("arn:aws:s3:::my-bucket", ("aws", "s3", "", "", "my-bucket", "")),
    ("arn:aws:rds:us-west-2:222222222222:cluster:acme-db", ("aws", "rds", "us-west-2", "222222222222", "cluster", "acme-db")),
    ("arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
     ("aws-us-gov", "kms", "us-gov-west-1", "111122223333", "key", "1234abcd-12ab-34cd-56ef-1234567890ab")),
    ("arn:aws-cn:kms:cn-north-1:111122223333:alias/x", ("aws-cn", "kms", "cn-north-1", "111122223333", "alias", "x")),
])
def test_parse_arn_parts(value, parts):
    arn = parse_arn(value)
    assert (arn.partition, arn.service, arn.region, arn.account_id, arn.resource_type, arn.resource_id) == parts
    assert str(arn) == value


@pytest.mark.parametrize("value, fragment", [
    ("", "is not an ARN"),
    ("arn:aws:kms", "is not an ARN"),
    ("nope:aws:kms:us-east-1:111122223333:key/x", "is not an ARN"),
    ("arn:amazon:kms:us-east-1:111122223333:key/x", "unknown partition"),
    ("arn:aws:kms:us-east-1:11112222333:key/x", "12 digits"),
    ("arn:aws:kms:us-east-1:11112222333a:key/x", "12 digits"),
    ("arn:aws:kms:useast1:111122223333:key/x", "not an AWS region"),
    (None, "is not an ARN"),
    (42, "is not an ARN"),
])
def test_parse_arn_rejects(value, fragment):
    with pytest.raises(InvalidIdentifier, match=fragment) as e:
        parse_arn(value, "byok_keys.all")
    assert str(e.value).startswith("byok_keys.all: ")


@pytest.mark.parametrize("value", [KEY, MRK])
def test_key_arn_accepted(value):
    assert str(parse_kms_key_arn(value)) == value


@pytest.mark.parametrize("value, fragment", [
    ("alias/customer-key", "is an alias; aliases resolve in the caller's account"),
    ("1234abcd-12ab-34cd-56ef-1234567890ab", "bare key id"),
    ("mrk-1234abcd12ab34cd56ef1234567890ab", "bare key id"),
    ("arn:aws:kms:us-east-1:111122223333:alias/customer-key", "alias ARN"),
    ("arn:aws:s3:::bucket", "s3 ARN, not a KMS key ARN"),
    ("arn:aws:kms:us-east-1:111122223333:key/not-a-key-id", "not a KMS key ARN"),
    ("arn:aws:kms:us-east-1:111122223333:key/1234ABCD-12AB-34CD-56EF-1234567890AB", "not a KMS key ARN"),
    ("arn:aws:kms::111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", "lacks a region or account"),
    ("arn:aws:kms:us-east-1::key/1234abcd-12ab-34cd-56ef-1234567890ab", "lacks a region or account"),
    ("arn:aws:kms:us-east-1:111122223333:grant/abc", "not a KMS key ARN"),
    ("customer-key", "is not an ARN"),
])
def test_key_arn_refused(value, fragment):
    with pytest.raises(InvalidIdentifier, match=fragment):
        parse_kms_key_arn(value, "key_arn")


@pytest.mark.parametrize("value, ok", [
    ("111122223333", True), ("000000000001", True), ("11112222333", False), ("1111222233334", False),
    ("abcdefghijkl", False), (111122223333, False), (None, False), ("", False), (True, False),
])
def test_account_id(value, ok):
    if ok:
        assert validate_account_id(value, "f") == value
    else:
        with pytest.raises(InvalidIdentifier, match="^f: "):
            validate_account_id(value, "f")


def test_unquoted_account_id_explains_quoting():
    with pytest.raises(InvalidIdentifier, match='quote it \\("011122223333"\\)'):
        validate_account_id(11122223333, "byok_customer_account_id")


@pytest.mark.parametrize("value, ok", [
    ("us-east-1", True), ("eu-central-2", True), ("us-gov-west-1", True), ("ap-southeast-4", True),
    ("us-east", False), ("US-EAST-1", False), ("xx", False), (None, False),
])
def test_region(value, ok):
    if ok:
        assert validate_region(value, "r") == value
    else:
        with pytest.raises(InvalidIdentifier):
            validate_region(value, "r")


@pytest.mark.parametrize("value, ok", [
    ("vpc-0123abcd", True), ("vpc-0123456789abcdef0", True), ("vpc-0123abc", False), ("vpc-0123456789ABCDEF0", False),
    ("subnet-0123abcd", False), ("vpc-0acme00000000001", False),
])
def test_vpc_id(value, ok):
    if ok:
        assert validate_vpc_id(value, "v") == value
    else:
        with pytest.raises(InvalidIdentifier):
            validate_vpc_id(value, "v")


@pytest.mark.parametrize("actual, expected, same", [
    (KEY, KEY, True),
    ("1234abcd-12ab-34cd-56ef-1234567890ab", KEY, True),
    (KEY.replace("111122223333", "444455556666"), KEY, False),  # same id, other account: another key
    (KEY.replace("us-east-1", "us-west-2"), KEY, False),
    ("alias/aws/ebs", KEY, False),
    (None, KEY, False),
    ("", KEY, False),
])
def test_same_kms_key(actual, expected, same):
    assert same_kms_key(actual, expected) is same


class TestResolveKeyArn:
    def describe(self, ref):
        self.calls.append(ref)
        return {"Arn": "arn:aws:kms:us-east-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"}

    def setup_method(self):
        self.calls = []

    def test_arn_is_returned_without_a_call(self):
        assert resolve_key_arn(KEY, "k", "222222222222", "111122223333", self.describe) == KEY
        assert not self.calls

    def test_alias_in_the_callers_own_account_is_resolved(self):
        arn = resolve_key_arn("alias/byok-external", "k", "222222222222", "222222222222", self.describe)
        assert arn.endswith(":222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab")
        assert self.calls == ["alias/byok-external"]

    @pytest.mark.parametrize("ref", ["alias/customer", "1234abcd-12ab-34cd-56ef-1234567890ab"])
    def test_alias_or_id_of_another_account_is_refused_without_a_call(self, ref):
        with pytest.raises(InvalidIdentifier, match="caller's account"):
            resolve_key_arn(ref, "k", "222222222222", "111122223333", self.describe)
        assert not self.calls

    def test_alias_arn_of_another_account_is_refused(self):
        with pytest.raises(InvalidIdentifier, match="alias ARN"):
            resolve_key_arn("arn:aws:kms:us-east-1:111122223333:alias/x", "k", "222222222222", None, self.describe)

    def test_alias_arn_of_own_account_is_resolved(self):
        resolve_key_arn("arn:aws:kms:us-east-1:222222222222:alias/x", "k", "222222222222", None, self.describe)
        assert self.calls == ["arn:aws:kms:us-east-1:222222222222:alias/x"]

    @pytest.mark.parametrize("ref", ["", None, "not a key"])
    def test_garbage(self, ref):
        with pytest.raises(InvalidIdentifier, match="^k: "):
            resolve_key_arn(ref, "k")
