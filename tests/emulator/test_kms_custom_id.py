"""Seeders choose key ids: CreateKey with the tag ``_custom_id_`` (moto's convention for other resources).

Not an AWS behaviour: it lets the demo inventory name fixed key ARNs. The tag is consumed, not kept on the key.
"""
from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from .support import CUSTOMER, DID_NOT_RAISE, against_both, error_of

NO_CUSTOM_KEY_IDS = "CreateKey ignores the _custom_id_ tag (random key id, tag kept)"


@against_both(NO_CUSTOM_KEY_IDS, raises=AssertionError)
def test_custom_id_tag_sets_the_key_id(aws):
    kms = aws.client("kms", account=CUSTOMER)
    key_id = str(uuid.uuid4())
    key = kms.create_key(Tags=[{"TagKey": "_custom_id_", "TagValue": key_id}, {"TagKey": "customer", "TagValue": "acme"}])["KeyMetadata"]
    assert (key["KeyId"], key["Arn"]) == (key_id, f"arn:aws:kms:us-east-1:{CUSTOMER}:key/{key_id}")
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "customer", "TagValue": "acme"}]
    assert kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=key["Arn"], Plaintext=b"x")["CiphertextBlob"])["Plaintext"] == b"x"


@against_both(NO_CUSTOM_KEY_IDS, raises=DID_NOT_RAISE)
def test_custom_id_already_taken_is_refused(aws):
    kms = aws.client("kms", account=CUSTOMER)
    tags = [{"TagKey": "_custom_id_", "TagValue": str(uuid.uuid4())}]
    kms.create_key(Tags=tags)
    with pytest.raises(ClientError) as excinfo:
        kms.create_key(Tags=tags)
    assert error_of(excinfo)[0] == "AlreadyExistsException"
