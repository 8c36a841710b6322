"""Multi-Region keys decrypt what they encrypt, also through a replica in another Region.

https://docs.aws.amazon.com/kms/latest/developerguide/multi-region-keys-overview.html (replicas share key
material: "you can encrypt data in one AWS Region and decrypt it in a different AWS Region").
"""
from __future__ import annotations

from .support import CUSTOMER, OTHER_REGION, against_both, new_key
from botocore.exceptions import ClientError


@against_both("the mrk- key id is cut to 36 characters in the ciphertext, so Decrypt finds no key", raises=ClientError)
def test_multi_region_key_round_trip_and_replica(aws):
    kms = aws.client("kms", account=CUSTOMER)
    key = new_key(kms, MultiRegion=True)
    ciphertext = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"global")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=ciphertext)["Plaintext"] == b"global"

    kms.replicate_key(KeyId=key["KeyId"], ReplicaRegion=OTHER_REGION)
    replica = aws.client("kms", account=CUSTOMER, region=OTHER_REGION)
    assert replica.decrypt(CiphertextBlob=ciphertext)["Plaintext"] == b"global"
