"""A provider account uses a customer account's KMS key by full ARN.

AWS: "To specify a KMS key in a different AWS account, you must use its key ARN or alias ARN"; key ids and alias
names resolve in the caller's account; only cryptographic operations, DescribeKey, CreateGrant, ListGrants,
RetireGrant, RevokeGrant, GetKeyRotationStatus and GetPublicKey work cross-account.
https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html
https://docs.aws.amazon.com/kms/latest/developerguide/find-cmk-id-arn.html
"""
from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from .support import CUSTOMER, OTHER_REGION, PROVIDER, against_both, error_of, new_key

IGNORES_ARN_ACCOUNT = "the account in a key ARN is ignored; keys are looked up in the caller's account"


@against_both(IGNORES_ARN_ACCOUNT, raises=ClientError)
def test_provider_encrypts_and_decrypts_with_customer_key_arn(aws):
    customer_key = new_key(aws.client("kms", account=CUSTOMER))
    kms = aws.client("kms", account=PROVIDER)

    assert kms.describe_key(KeyId=customer_key["Arn"])["KeyMetadata"]["AWSAccountId"] == CUSTOMER
    encrypted = kms.encrypt(KeyId=customer_key["Arn"], Plaintext=b"secret")
    assert encrypted["KeyId"] == customer_key["Arn"]
    data_key = kms.generate_data_key(KeyId=customer_key["Arn"], KeySpec="AES_256")
    assert data_key["KeyId"] == customer_key["Arn"]

    # With and without KeyId: AWS ciphertexts name their key, so Decrypt finds it in the customer's account.
    assert kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"], KeyId=customer_key["Arn"])["Plaintext"] == b"secret"
    decrypted = kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])
    assert decrypted["Plaintext"] == data_key["Plaintext"]
    assert decrypted["KeyId"] == customer_key["Arn"]


@against_both(IGNORES_ARN_ACCOUNT, raises=AssertionError)
def test_alias_arn_resolves_in_its_account_and_alias_name_in_the_callers(aws):
    alias = f"alias/byok-{uuid.uuid4().hex[:8]}"
    customer_kms, provider_kms = aws.client("kms", account=CUSTOMER), aws.client("kms", account=PROVIDER)
    customer_key, provider_key = new_key(customer_kms), new_key(provider_kms)
    customer_kms.create_alias(AliasName=alias, TargetKeyId=customer_key["KeyId"])
    provider_kms.create_alias(AliasName=alias, TargetKeyId=provider_key["KeyId"])
    customer_alias_arn = f"arn:aws:kms:us-east-1:{CUSTOMER}:{alias}"

    assert provider_kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"] == provider_key["Arn"]
    assert provider_kms.describe_key(KeyId=customer_alias_arn)["KeyMetadata"]["Arn"] == customer_key["Arn"]
    assert provider_kms.encrypt(KeyId=customer_alias_arn, Plaintext=b"x")["KeyId"] == customer_key["Arn"]


@against_both(IGNORES_ARN_ACCOUNT, raises=ClientError)
def test_reencrypt_across_accounts(aws):
    customer_key = new_key(aws.client("kms", account=CUSTOMER))
    kms = aws.client("kms", account=PROVIDER)
    provider_key = new_key(kms)
    under_provider_key = kms.encrypt(KeyId=provider_key["KeyId"], Plaintext=b"payload")["CiphertextBlob"]

    to_customer = kms.re_encrypt(CiphertextBlob=under_provider_key, DestinationKeyId=customer_key["Arn"])
    assert (to_customer["SourceKeyId"], to_customer["KeyId"]) == (provider_key["Arn"], customer_key["Arn"])
    back = kms.re_encrypt(CiphertextBlob=to_customer["CiphertextBlob"], DestinationKeyId=provider_key["KeyId"])
    assert back["SourceKeyId"] == customer_key["Arn"]
    assert kms.decrypt(CiphertextBlob=back["CiphertextBlob"])["Plaintext"] == b"payload"


@against_both("grant operations on another account's key ARN fail with HTTP 500", raises=ClientError)
def test_grants_on_customer_key_by_arn(aws):
    """The EC2 Auto Scaling recipe: the provider creates a grant on the customer key for its service-linked role.
    https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html"""
    customer_kms = aws.client("kms", account=CUSTOMER)
    customer_key = new_key(customer_kms)
    kms = aws.client("kms", account=PROVIDER)
    grantee = f"arn:aws:iam::{PROVIDER}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"

    grant = kms.create_grant(KeyId=customer_key["Arn"], GranteePrincipal=grantee, RetiringPrincipal=grantee, Operations=["Encrypt", "Decrypt", "CreateGrant"])
    listed = kms.list_grants(KeyId=customer_key["Arn"])["Grants"]
    assert [(g["GrantId"], g["KeyId"], g["GranteePrincipal"]) for g in listed] == [(grant["GrantId"], customer_key["Arn"], grantee)]

    kms.retire_grant(GrantToken=grant["GrantToken"])
    assert customer_kms.list_grants(KeyId=customer_key["KeyId"])["Grants"] == []

    second = kms.create_grant(KeyId=customer_key["Arn"], GranteePrincipal=grantee, Operations=["Decrypt"])
    kms.revoke_grant(KeyId=customer_key["Arn"], GrantId=second["GrantId"])
    assert kms.list_grants(KeyId=customer_key["Arn"])["Grants"] == []


@against_both(IGNORES_ARN_ACCOUNT, raises=ClientError)
def test_bare_key_id_resolves_only_in_the_callers_account(aws):
    customer_key = new_key(aws.client("kms", account=CUSTOMER))
    kms = aws.client("kms", account=PROVIDER)
    with pytest.raises(ClientError) as excinfo:
        kms.encrypt(KeyId=customer_key["KeyId"], Plaintext=b"x")
    assert error_of(excinfo)[0] == "NotFoundException"
    assert kms.encrypt(KeyId=customer_key["Arn"], Plaintext=b"x")["KeyId"] == customer_key["Arn"]


@against_both("a key ARN naming another Region is looked up by key id, reported as a missing key", raises=AssertionError)
def test_key_arn_of_another_region_is_an_invalid_arn(aws):
    """KMS is regional: NotFoundException "Invalid arn <region of the ARN>"."""
    key = new_key(aws.client("kms", account=CUSTOMER))
    kms = aws.client("kms", account=PROVIDER, region=OTHER_REGION)
    with pytest.raises(ClientError) as excinfo:
        kms.encrypt(KeyId=key["Arn"], Plaintext=b"x")
    assert error_of(excinfo)[0::2] == ("NotFoundException", "Invalid arn us-east-1")
