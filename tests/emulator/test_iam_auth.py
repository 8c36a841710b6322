"""IAM enforcement that can test a resource-scoped policy (tests/local_aws/extensions/iam_auth.py).

AWS authorizes a KMS call on the key's ARN, an RDS call on the cluster's ARN, S3's GetBucketEncryption as
s3:GetEncryptionConfiguration, and lets every principal of an account assume a role whose trust policy names
``arn:aws:iam::<account>:root`` (when the principal's own policy allows it). Plain moto authorizes KMS and RDS on
``*``, names the S3 action s3:ListBucket and reads ``:root`` as one literal principal, so a least-privilege policy
can't be tested on it. Each test runs on a private server (enforcement is server-wide) with enforcement on.
"""
from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.local_aws.harness import LocalAWS

from .support import CUSTOMER, PROVIDER, REGION

USER = "byok-operator"
ROOT_TRUSTED_ROLE = "trusts-the-account"
AUTOMATION_ROLE = "automation"
BUCKET = "iam-auth-bucket"
CLUSTER = "iam-auth-db"


def set_enforcement(aws: LocalAWS, value: str) -> None:
    """value: "0" = every request is authorized from now on, "inf" = none is."""
    request = urllib.request.Request(f"{aws.endpoint_url}/moto-api/reset-auth", data=value.encode(), method="POST",
                                     headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any, resource: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


class World:
    """A provider account with a user, two roles and resources; a customer key; enforcement on."""

    def __init__(self, aws: LocalAWS, log: Path):
        self.aws, self.log = aws, log
        iam = aws.client("iam", PROVIDER)
        iam.create_user(UserName=USER)
        key = iam.create_access_key(UserName=USER)["AccessKey"]
        self.user_keys = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
        self.user_arn = f"arn:aws:iam::{PROVIDER}:user/{USER}"
        iam.put_user_policy(UserName=USER, PolicyName="assume", PolicyDocument=policy(
            allow("sts:AssumeRole", [f"arn:aws:iam::{PROVIDER}:role/{ROOT_TRUSTED_ROLE}", f"arn:aws:iam::{PROVIDER}:role/{AUTOMATION_ROLE}"])))
        root_trust = policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{PROVIDER}:root"}, "Action": "sts:AssumeRole"})
        user_trust = policy({"Effect": "Allow", "Principal": {"AWS": self.user_arn}, "Action": "sts:AssumeRole"})
        iam.create_role(RoleName=ROOT_TRUSTED_ROLE, AssumeRolePolicyDocument=root_trust)
        iam.create_role(RoleName=AUTOMATION_ROLE, AssumeRolePolicyDocument=user_trust)
        self.provider_key = aws.client("kms", PROVIDER).create_key(Description="provider key")["KeyMetadata"]["Arn"]
        self.other_key = aws.client("kms", PROVIDER).create_key(Description="key outside the policy")["KeyMetadata"]["Arn"]
        self.customer_key = aws.client("kms", CUSTOMER).create_key(Description="customer key")["KeyMetadata"]["Arn"]
        aws.client("s3", PROVIDER).create_bucket(Bucket=BUCKET)
        aws.client("rds", PROVIDER).create_db_cluster(DBClusterIdentifier=CLUSTER, Engine="aurora-postgresql",
                                                      MasterUsername="postgres", MasterUserPassword="not-a-secret-1")
        iam.put_role_policy(RoleName=AUTOMATION_ROLE, PolicyName="scoped", PolicyDocument=policy(
            allow(["kms:DescribeKey", "kms:Encrypt"], [self.provider_key, f"arn:aws:kms:*:{CUSTOMER}:key/*"]),
            allow("rds:DescribeDBClusters", "arn:aws:rds:*:*:cluster:*"), allow("tag:GetResources", "*"),
            allow("s3:GetEncryptionConfiguration", f"arn:aws:s3:::{BUCKET}")))
        iam.put_role_policy(RoleName=ROOT_TRUSTED_ROLE, PolicyName="any", PolicyDocument=policy(allow("kms:ListKeys", "*")))
        set_enforcement(aws, "0")

    def user(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=self.aws.endpoint_url, config=Config(retries={"total_max_attempts": 1}),
                            **self.user_keys)

    def role(self, service: str, role: str = AUTOMATION_ROLE) -> Any:
        creds = self.user("sts").assume_role(RoleArn=f"arn:aws:iam::{PROVIDER}:role/{role}", RoleSessionName="test")["Credentials"]
        return boto3.client(service, region_name=REGION, endpoint_url=self.aws.endpoint_url, config=Config(retries={"total_max_attempts": 1}),
                            aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["SessionToken"])

    def calls(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []


@pytest.fixture(scope="module", params=["extended", "plain"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One private server per kind for the module, enforcement on (the tests only read)."""
    directory = tmp_path_factory.mktemp(f"iam-auth-{request.param}")
    log = directory / "calls.jsonl"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BYOK_LOCAL_AWS_CALL_LOG", str(log))
        aws = LocalAWS.start(extended=request.param == "extended", log_path=directory / "server.log")
    with aws:
        yield World(aws, log)


def expect_gap_on_plain(request: pytest.FixtureRequest, gap: str, raises: type[BaseException]) -> None:
    """On plain moto the test must fail with ``raises`` (the gap), and with nothing else."""
    if "plain" in request.node.callspec.id:
        request.applymarker(pytest.mark.xfail(strict=True, raises=raises, reason=f"plain moto: {gap}"))


def denied(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as excinfo:
        call(**kwargs)
    error = excinfo.value.response["Error"]
    return f"{error.get('Code')} {excinfo.value.response['ResponseMetadata']['HTTPStatusCode']}"


def test_account_root_in_a_trust_policy_trusts_the_account(world: World, request: pytest.FixtureRequest) -> None:
    expect_gap_on_plain(request, "a trust policy's <account>:root principal matches no user of that account", raises=ClientError)
    assert world.role("kms", ROOT_TRUSTED_ROLE).list_keys()["Keys"]


def test_kms_is_authorized_on_the_key_arn(world: World, request: pytest.FixtureRequest) -> None:
    expect_gap_on_plain(request, "KMS is authorized on Resource '*', so a key-scoped statement never matches", raises=ClientError)
    kms = world.role("kms")
    assert kms.describe_key(KeyId=world.provider_key)["KeyMetadata"]["Arn"] == world.provider_key
    kms.encrypt(KeyId=world.provider_key, Plaintext=b"x")


def test_a_key_outside_the_policy_and_a_missing_action_are_denied(world: World) -> None:
    kms = world.role("kms")
    assert "403" in denied(kms.describe_key, KeyId=world.other_key)
    assert "403" in denied(kms.generate_data_key, KeyId=world.provider_key, KeySpec="AES_256")


def test_a_kms_denial_reads_as_in_aws(world: World, request: pytest.FixtureRequest) -> None:
    expect_gap_on_plain(request, "KMS denials are XML, which botocore reports as a bare 403 without the action", raises=AssertionError)
    with pytest.raises(ClientError) as excinfo:
        world.role("kms").describe_key(KeyId=world.other_key)
    error = excinfo.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"].endswith(f"is not authorized to perform: kms:DescribeKey on resource: {world.other_key}")


def test_a_customer_key_is_authorized_on_its_own_arn(world: World, request: pytest.FixtureRequest) -> None:
    expect_gap_on_plain(request, "KMS is authorized on '*' (and plain moto can't use another account's key)", raises=ClientError)
    metadata = world.role("kms").describe_key(KeyId=world.customer_key)["KeyMetadata"]
    assert metadata["Arn"] == world.customer_key


def test_rds_describe_is_authorized_on_the_cluster_type(world: World, request: pytest.FixtureRequest) -> None:
    expect_gap_on_plain(request, "RDS is authorized on Resource '*'", raises=ClientError)
    clusters = world.role("rds").describe_db_clusters(DBClusterIdentifier=CLUSTER)["DBClusters"]
    assert [c["DBClusterIdentifier"] for c in clusters] == [CLUSTER]
    assert world.role("rds").describe_db_clusters()["DBClusters"]


def test_s3_bucket_encryption_has_its_iam_action_name(world: World, request: pytest.FixtureRequest) -> None:
    expect_gap_on_plain(request, "GetBucketEncryption is authorized as s3:ListBucket", raises=AssertionError)
    s3 = world.role("s3")
    with pytest.raises(ClientError) as excinfo:
        s3.get_bucket_encryption(Bucket=BUCKET)
    assert excinfo.value.response["Error"]["Code"] != "AccessDenied"  # authorized; moto then says "no configuration"
    assert "403" in denied(s3.list_objects_v2, Bucket=BUCKET)


def test_the_tagging_api_is_authorized_with_its_iam_prefix(world: World, request: pytest.FixtureRequest) -> None:
    expect_gap_on_plain(request, "the tagging API is authorized as tagging:GetResources", raises=ClientError)
    found = world.role("resourcegroupstaggingapi").get_resources(ResourceTypeFilters=["rds:cluster"])
    assert isinstance(found["ResourceTagMappingList"], list)
    assert "403" in denied(world.role("resourcegroupstaggingapi", ROOT_TRUSTED_ROLE).get_resources)
    logged = [c for c in world.calls() if c["action"].endswith(":GetResources")]
    assert {(c["action"], c["allowed"]) for c in logged} == {("tag:GetResources", True), ("tag:GetResources", False)}


def test_the_call_log_names_principal_action_and_resources(world: World, request: pytest.FixtureRequest) -> None:
    expect_gap_on_plain(request, "no call log", raises=ClientError)
    kms = world.role("kms")
    kms.describe_key(KeyId=world.provider_key)
    denied(kms.describe_key, KeyId=world.other_key)
    calls = [c for c in world.calls() if c["action"] == "kms:DescribeKey"][-2:]
    session = f"arn:aws:sts::{PROVIDER}:assumed-role/{AUTOMATION_ROLE}/test"
    assert [(c["principal"], c["resources"], c["allowed"], c["enforced"]) for c in calls] == [
        (session, [world.provider_key], True, True), (session, [world.other_key], False, True)]
    assume = [c for c in world.calls() if c["action"] == "sts:AssumeRole"]
    assert assume and assume[-1]["principal"] == world.user_arn and assume[-1]["resources"] == [f"arn:aws:iam::{PROVIDER}:role/{AUTOMATION_ROLE}"]
