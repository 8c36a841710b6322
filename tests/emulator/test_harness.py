"""The harness: clients act as the requested account, also from subprocesses, and survive resets.

Moto maps assumed-role credentials to the role's account until ``/moto-api/reset``; after a reset the same
credentials silently act as the default account 123456789012 (moto-fidelity §12). The harness re-assumes.
"""
from __future__ import annotations

import subprocess
import sys
import urllib.request

import pytest

from tests.local_aws.extensions import MotoInternalsChanged
from tests.local_aws.extensions._patching import add, require
from tests.local_aws.harness import MOTO_DEFAULT_ACCOUNT, LocalAWS

from .support import CUSTOMER, PROVIDER, on_both


@on_both
def test_clients_act_as_the_requested_account(aws):
    for account in (CUSTOMER, PROVIDER):
        assert aws.client("sts", account=account).get_caller_identity()["Account"] == account
    kms = aws.client("kms", account=CUSTOMER, region="eu-west-1")
    assert kms.create_key()["KeyMetadata"]["Arn"].startswith(f"arn:aws:kms:eu-west-1:{CUSTOMER}:key/")


def test_subprocess_environment_acts_as_the_account(local_aws):
    """What Ansible or the AWS CLI get: endpoint, region and credentials in the environment."""
    script = "import boto3; print(boto3.client('sts').get_caller_identity()['Account'], boto3.session.Session().region_name)"
    result = subprocess.run([sys.executable, "-c", script], env=local_aws.subprocess_env(CUSTOMER), capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.split() == [CUSTOMER, "us-east-1"]


@pytest.mark.parametrize("extended", [True, False], ids=["extended", "plain"])
def test_reset_forgets_accounts_and_the_harness_reassumes(tmp_path, extended):
    with LocalAWS.start(extended=extended, log_path=tmp_path / "server.log") as aws:  # private: a reset wipes every account
        kms = aws.client("kms", account=CUSTOMER)
        kms.create_key()
        stale_sts = aws.client("sts", account=CUSTOMER)

        with urllib.request.urlopen(urllib.request.Request(f"{aws.endpoint_url}/moto-api/reset", data=b"", method="POST"), timeout=10):
            pass
        assert stale_sts.get_caller_identity()["Account"] == MOTO_DEFAULT_ACCOUNT  # the trap: no error, wrong account
        assert aws.client("sts", account=CUSTOMER).get_caller_identity()["Account"] == CUSTOMER  # re-checked, re-assumed

        aws.client("kms", account=CUSTOMER).create_key()
        aws.reset()
        fresh = aws.client("kms", account=CUSTOMER)
        assert fresh.list_keys()["Keys"] == []
        assert aws.client("sts", account=CUSTOMER).get_caller_identity()["Account"] == CUSTOMER


def test_missing_moto_internal_fails_loudly():
    class Backend:
        def existing(self):
            return None

    with pytest.raises(MotoInternalsChanged, match=r"moto 5\..*Backend\.encrypt_everything is missing"):
        require(Backend, "encrypt_everything")
    with pytest.raises(MotoInternalsChanged, match="now exists upstream"):
        add(Backend, "existing", lambda self: None)


def test_fresh_local_aws_is_private_and_empty(fresh_local_aws, local_aws):
    assert fresh_local_aws.endpoint_url != local_aws.endpoint_url
    assert fresh_local_aws.client("s3").list_buckets()["Buckets"] == []
