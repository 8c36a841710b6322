"""The kops double's light S3 client (tests/local_aws/kops_double/s3_state.py) against a private local AWS over HTTP.

What it writes boto3 reads back and the other way round, its listing follows pagination as boto3's does, its
requests pass the local AWS's IAM enforcement (which re-computes SigV4 signatures with botocore), and the double's
`kops get` prints the same bytes through it as through boto3 without importing boto3 or botocore.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.integration import runner
from tests.local_aws.harness import REPO_ROOT, LocalAWS, free_port
from tests.local_aws.kops_double.s3_state import S3Client, S3ClientError, S3Error

from .support import PROVIDER
from .test_iam_auth import policy, set_enforcement  # the local AWS's IAM enforcement switch, as that file uses it

KOPS = str(REPO_ROOT / "tests" / "local_aws" / "bin" / "kops")
ODD_KEY = "odd dir/a key+with=odd chars ünïcødé €.yaml"
STATE_BUCKET = "mattermost-kops-state-demo"
CLUSTER = "lightco01-kops.k8s.local"


@pytest.fixture(name="server", scope="module")
def fixture_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAWS]:
    """A private local AWS for the module, with one kops cluster seeded by the demo fleet seeder."""
    directory = tmp_path_factory.mktemp("kops-state")
    with LocalAWS.start(extended=True, log_path=directory / "server.log") as aws:
        host_vars = runner.demo_host_vars("acme")
        host_vars.pop("byok_mattermost_installations", None)  # acme's installation writes acme's bucket
        host_vars.update({"byok_customer_account_id": "111111111190", "byok_vpc_id": "vpc-0f0f0000000000090", "byok_kops_cluster_id": "lightco01",
                          "byok_services": ["ebs"], "byok_keys": {"ebs": "arn:aws:kms:us-east-1:111111111190:key/0f0f0000-0000-4000-8000-000000000090"},
                          "byok_s3_buckets": [], "byok_rds_clusters": []})
        inventory = runner.write_inventory(str(directory / "inventory"), {"lightco": host_vars})
        runner.seed(aws.endpoint_url, os.path.dirname(inventory))
        yield aws


def light(aws: LocalAWS) -> S3Client:
    """The light client with the provider account's assumed-role credentials (so with a session token)."""
    creds = aws.credentials(PROVIDER)
    return S3Client(aws.endpoint_url, creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"], creds.get("AWS_SESSION_TOKEN"))


@pytest.fixture(name="bucket")
def fixture_bucket(server: LocalAWS, unique_name) -> str:
    name = unique_name("state")
    server.client("s3", PROVIDER).create_bucket(Bucket=name)
    return name


# -- the client against boto3 --------------------------------------------------------------------------------------

@pytest.mark.parametrize("key, body", [(ODD_KEY, "naïve: yes\n".encode()), ("plain/config", b"apiVersion: v1\n"), ("empty/object", b"")],
                         ids=["odd-key", "plain", "empty"])
def test_what_one_writes_the_other_reads(server, bucket, key, body):
    s3 = server.client("s3", PROVIDER)
    light(server).put_object(bucket, key, body)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body

    s3.put_object(Bucket=bucket, Key=key, Body=body[::-1])
    assert light(server).get_object(bucket, key) == body[::-1]


def test_listing_follows_pagination_as_boto3(server, bucket):
    client = light(server)
    keys = [f"cluster/instancegroup/ig-{i:04d}" for i in range(1001)] + [f"cluster/{ODD_KEY}"]
    for key in keys:
        client.put_object(bucket, key, b"")
    client.put_object(bucket, "other/not-listed", b"")
    pages = server.client("s3", PROVIDER).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="cluster/")
    expected = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert client.list_keys(bucket, "cluster/") == expected
    assert sorted(expected) == sorted(keys)
    assert client.list_keys(bucket, "nothing-here/") == []


def test_missing_key_is_none_and_missing_bucket_raises(server, bucket, unique_name):
    client = light(server)
    assert client.get_object(bucket, "no/such/key") is None
    missing = unique_name("no-such-bucket")
    for call in (lambda: client.get_object(missing, "config"), lambda: client.list_keys(missing, ""), lambda: client.put_object(missing, "k", b"")):
        with pytest.raises(S3Error) as excinfo:
            call()
        assert excinfo.value.code == "NoSuchBucket"
        assert excinfo.value.message == "The specified bucket does not exist"


@pytest.mark.parametrize("method, key, query, body, token", [
    ("GET", ODD_KEY, [], b"", None),
    ("PUT", "c/instancegroup/nodes", [], "spec: {}\n".encode(), "session/token+with=odd"),
    ("GET", "", [("list-type", "2"), ("prefix", "c d/ü+"), ("continuation-token", "a/b+c=="), ("encoding-type", "url")], b"", "t"),
], ids=["get", "put-with-token", "list"])
def test_signature_is_the_one_botocore_computes(method, key, query, body, token):
    """As the local AWS checks it: the request rebuilt from the headers it says it signed, signed by S3SigV4Auth."""
    client = S3Client("http://127.0.0.1:4566", "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token, region="eu-west-1")
    path = f"/bucket/{quote(key, safe='/~')}" if key else "/bucket"
    headers = client._signed_headers(method, path, query, body)  # pylint: disable=protected-access
    authorization = headers.pop("Authorization")
    sent_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in query)
    request = AWSRequest(method=method, url=f"{path}?{sent_query}" if sent_query else path, data=body, headers=headers)
    request.context["timestamp"] = headers["X-Amz-Date"]
    auth = S3SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token), "s3", "eu-west-1")
    signature = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    signed = "host;x-amz-content-sha256;x-amz-date" + (";x-amz-security-token" if token else "")
    assert authorization == (f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{headers['X-Amz-Date'][:8]}/eu-west-1/s3/aws4_request, "
                             f"SignedHeaders={signed}, Signature={signature}")
    assert headers["X-Amz-Content-SHA256"] == hashlib.sha256(body).hexdigest()


def test_unreachable_endpoint_reads_as_botocore():
    client = S3Client(f"http://127.0.0.1:{free_port()}", "AKIA", "secret")
    with pytest.raises(S3ClientError) as excinfo:
        client.get_object("bucket", "a b+c")
    assert str(excinfo.value) == f'Could not connect to the endpoint URL: "{client.origin}/bucket/a%20b%2Bc"'


# -- IAM enforcement -----------------------------------------------------------------------------------------------

def user_keys(iam: Any, name: str, document: str | None) -> dict[str, str]:
    iam.create_user(UserName=name)
    if document:
        iam.put_user_policy(UserName=name, PolicyName="scoped", PolicyDocument=document)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def test_signatures_pass_iam_enforcement(fresh_local_aws):
    """A private server: enforcement is server-wide. Set up as the harness's role, then only the users' keys work."""
    aws = fresh_local_aws
    bucket, role = "enforced-state", f"arn:aws:iam::{PROVIDER}:role/state-reader"
    aws.client("s3", PROVIDER).create_bucket(Bucket=bucket)
    aws.client("s3", PROVIDER).put_object(Bucket=bucket, Key=f"c/{ODD_KEY}", Body=b"spec: {}\n")
    read = [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"}]
    iam = aws.client("iam", PROVIDER)
    reader = user_keys(iam, "state-reader", policy(*read, {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role}))
    stranger = user_keys(iam, "stranger", None)
    iam.create_role(RoleName="state-reader", AssumeRolePolicyDocument=policy(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{PROVIDER}:user/state-reader"}, "Action": "sts:AssumeRole"}))
    iam.put_role_policy(RoleName="state-reader", PolicyName="read", PolicyDocument=policy(*read))
    set_enforcement(aws, "0")
    try:
        def client(keys: dict[str, str]) -> S3Client:
            return S3Client(aws.endpoint_url, keys["AWS_ACCESS_KEY_ID"], keys["AWS_SECRET_ACCESS_KEY"], keys.get("AWS_SESSION_TOKEN"))

        def code_of(call) -> str:
            with pytest.raises(S3Error) as excinfo:
                call()
            return excinfo.value.code

        assert client(reader).get_object(bucket, f"c/{ODD_KEY}") == b"spec: {}\n"
        assert client(reader).list_keys(bucket, "c/") == [f"c/{ODD_KEY}"]
        assert code_of(lambda: client(reader).put_object(bucket, "c/config", b"")) == "AccessDenied"
        wrong_secret = {**reader, "AWS_SECRET_ACCESS_KEY": reader["AWS_SECRET_ACCESS_KEY"][:-1] + "x"}
        assert code_of(lambda: client(wrong_secret).get_object(bucket, f"c/{ODD_KEY}")) == "SignatureDoesNotMatch"
        assert code_of(lambda: client(stranger).list_keys(bucket, "c/")) == "AccessDenied"

        # Assumed-role credentials: the session token is sent and signed.
        sts = boto3.client("sts", region_name="us-east-1", endpoint_url=aws.endpoint_url,
                           aws_access_key_id=reader["AWS_ACCESS_KEY_ID"], aws_secret_access_key=reader["AWS_SECRET_ACCESS_KEY"])
        creds = sts.assume_role(RoleArn=role, RoleSessionName="kops")["Credentials"]
        session = {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"], "AWS_SESSION_TOKEN": creds["SessionToken"]}
        assert client(session).list_keys(bucket, "c/") == [f"c/{ODD_KEY}"]
        assert client(session).get_object(bucket, f"c/{ODD_KEY}") == b"spec: {}\n"
    finally:
        set_enforcement(aws, "inf")


# -- the double's `kops get` ---------------------------------------------------------------------------------------

def kops(aws: LocalAWS, *argv: str, **env: str) -> subprocess.CompletedProcess:
    """The double as BYOK runs it (the bin/kops shim), acting as the provider account."""
    environ = {k: v for k, v in aws.subprocess_env(PROVIDER).items() if k not in ("AWS_ENDPOINT_URL_S3", "KOPS_DOUBLE_STATE_CLIENT", "KOPS_DOUBLE_LOG")}
    return subprocess.run([KOPS, *argv], env={**environ, **env}, capture_output=True, text=True, timeout=120, check=False)


def imported(stderr: str) -> set[str]:
    """Top-level packages named in Python's -X importtime report."""
    return {line.rpartition("|")[2].strip().split(".")[0] for line in stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("argv", [("get", CLUSTER, "-o", "yaml"), ("get", "instancegroups", "--name", CLUSTER, "-o", "json"),
                                  ("get", "cluster", "--name", CLUSTER, "-o", "yaml"), ("get", "nope01-kops.k8s.local", "-o", "yaml")],
                         ids=["cluster-and-groups", "groups-json", "cluster", "unknown-cluster"])
def test_kops_get_is_the_same_through_either_client(server, argv):
    state = f"--state=s3://{STATE_BUCKET}"
    through_boto3 = kops(server, *argv, state, KOPS_DOUBLE_STATE_CLIENT="boto3", PYTHONPROFILEIMPORTTIME="1")
    through_light = kops(server, *argv, state, PYTHONPROFILEIMPORTTIME="1")
    assert {"boto3", "botocore"} <= imported(through_boto3.stderr)  # the report is read right, and the switch works
    assert not {"boto3", "botocore"} & imported(through_light.stderr)
    assert (through_light.returncode, through_light.stdout) == (through_boto3.returncode, through_boto3.stdout)
    errors = [[line for line in r.stderr.splitlines() if not line.startswith("import time:")] for r in (through_light, through_boto3)]
    assert errors[0] == errors[1]
    if argv[1] == CLUSTER:
        assert through_light.returncode == 0 and "kind: Cluster" in through_light.stdout and "kind: InstanceGroup" in through_light.stdout


@pytest.mark.parametrize("case", ["missing-bucket", "unreachable"])
def test_kops_errors_are_the_same_through_either_client(server, unique_name, case):
    state, env = f"s3://{STATE_BUCKET}", {"AWS_MAX_ATTEMPTS": "1"}  # boto3 would otherwise retry an unreachable endpoint
    if case == "missing-bucket":
        state = f"s3://{unique_name('no-such-state')}"
    else:
        env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"
    through_boto3 = kops(server, "get", CLUSTER, "--state", state, "-o", "yaml", KOPS_DOUBLE_STATE_CLIENT="boto3", **env)
    through_light = kops(server, "get", CLUSTER, "--state", state, "-o", "yaml", **env)
    assert through_light.returncode == through_boto3.returncode == 1
    assert through_light.stderr == through_boto3.stderr
    reason = "NoSuchBucket: The specified bucket does not exist" if case == "missing-bucket" else "Could not connect to the endpoint URL"
    assert through_light.stderr.startswith(f"Error: error reading {state}/{CLUSTER}/config: {reason}")


def test_kops_replace_writes_what_boto3_reads(server, tmp_path):
    state = f"--state=s3://{STATE_BUCKET}"
    group = json.loads(kops(server, "get", "instancegroups", "nodes-us-east-1a", "--name", CLUSTER, "-o", "json", state).stdout)
    group["spec"]["maxSize"] = group["spec"].get("maxSize", 1) + 1
    (tmp_path / "group.yaml").write_text(json.dumps(group))
    done = kops(server, "replace", "-f", str(tmp_path / "group.yaml"), state)
    assert done.returncode == 0, done.stderr
    through_boto3 = kops(server, "get", CLUSTER, "-o", "yaml", state, KOPS_DOUBLE_STATE_CLIENT="boto3")
    assert through_boto3.stdout == kops(server, "get", CLUSTER, "-o", "yaml", state).stdout
    assert f"maxSize: {group['spec']['maxSize']}" in through_boto3.stdout


# -- the double decodes and retries as kops does -------------------------------------------------------------------

def test_a_v1alpha2_root_volume_map_is_dropped_unread(server, tmp_path):
    """kops.k8s.io/v1alpha2 has no `rootVolume` field (pkg/apis/kops/v1alpha2/instancegroup.go: `RootVolume ...
    json:"-"`): a map given there neither reaches the launch template nor is stored."""
    state = f"--state=s3://{STATE_BUCKET}"
    key = "arn:aws:kms:us-east-1:111111111190:key/0f0f0000-0000-4000-8000-000000000091"
    group = json.loads(kops(server, "get", "instancegroups", "nodes-us-east-1a", "--name", CLUSTER, "-o", "json", state).stdout)
    assert group["apiVersion"] == "kops.k8s.io/v1alpha2"
    for field in ("rootVolumeEncryption", "rootVolumeEncryptionKey"):
        group["spec"].pop(field, None)
    group["spec"]["rootVolume"] = {"encryption": True, "encryptionKey": key}
    (tmp_path / "group.yaml").write_text(json.dumps(group))
    done = kops(server, "replace", "-f", str(tmp_path / "group.yaml"), state)
    assert done.returncode == 0, done.stderr
    stored = json.loads(kops(server, "get", "instancegroups", "nodes-us-east-1a", "--name", CLUSTER, "-o", "json", state).stdout)
    assert "rootVolume" not in stored["spec"] and "rootVolumeEncryptionKey" not in stored["spec"]
    updated = kops(server, "update", "cluster", "--name", CLUSTER, "--yes", state)
    assert updated.returncode == 0, updated.stderr
    ec2 = server.client("ec2", PROVIDER)
    versions = ec2.describe_launch_template_versions(LaunchTemplateName=f"nodes-us-east-1a.{CLUSTER}", Versions=["$Default"])
    mappings = versions["LaunchTemplateVersions"][0]["LaunchTemplateData"].get("BlockDeviceMappings", [])
    assert mappings and all((m.get("Ebs") or {}).get("KmsKeyId") != key for m in mappings)


def test_v1alpha3_root_volume_is_stored_as_the_v1alpha2_fields(server, tmp_path):
    state = f"--state=s3://{STATE_BUCKET}"
    key = "arn:aws:kms:us-east-1:111111111190:key/0f0f0000-0000-4000-8000-000000000092"
    group = json.loads(kops(server, "get", "instancegroups", "nodes-us-east-1a", "--name", CLUSTER, "-o", "json", state).stdout)
    group["apiVersion"] = "kops.k8s.io/v1alpha3"
    for field in ("rootVolumeEncryption", "rootVolumeEncryptionKey"):
        group["spec"].pop(field, None)
    group["spec"]["rootVolume"] = {"encryption": True, "encryptionKey": key}
    (tmp_path / "group.yaml").write_text(json.dumps(group))
    done = kops(server, "replace", "-f", str(tmp_path / "group.yaml"), state)
    assert done.returncode == 0, done.stderr
    stored = json.loads(kops(server, "get", "instancegroups", "nodes-us-east-1a", "--name", CLUSTER, "-o", "json", state).stdout)
    assert stored["apiVersion"] == "kops.k8s.io/v1alpha2" and "rootVolume" not in stored["spec"]
    assert (stored["spec"]["rootVolumeEncryption"], stored["spec"]["rootVolumeEncryptionKey"]) == (True, key)


def test_state_store_reads_retry_throttles_and_drops(server):
    """kops reads its state store with the SDK's standard retryer (3 attempts, AWS_MAX_ATTEMPTS honoured): through the
    fault proxy (a heavy 30 % of faults, so 6 attempts) every `kops get` prints what it prints straight, with either
    client; with one attempt allowed, a throttle is kops's error."""
    from tests.local_aws import fault_proxy  # pylint: disable=import-outside-toplevel
    state = f"--state=s3://{STATE_BUCKET}"
    straight = kops(server, "get", CLUSTER, "-o", "yaml", state)
    proxy = fault_proxy.start(server.endpoint_url, fault_proxy.FaultSpec.parse("throttle:0.2,drop:0.1,seed:5"))
    always = fault_proxy.start(server.endpoint_url, fault_proxy.FaultSpec.parse("throttle:1"))
    try:
        for client in ("light", "boto3"):
            for run in range(4):
                through = kops(server, "get", CLUSTER, "-o", "yaml", state, AWS_ENDPOINT_URL=proxy.endpoint_url,
                               KOPS_DOUBLE_STATE_CLIENT=client, AWS_MAX_ATTEMPTS="6")
                assert (through.returncode, through.stdout) == (0, straight.stdout), f"run {run}: {through.stderr}"
        stats = proxy.stats()["totals"]
        assert stats["throttle"] > 0 and stats["drop"] > 0, stats
        once = kops(server, "get", CLUSTER, "-o", "yaml", state, AWS_ENDPOINT_URL=always.endpoint_url, AWS_MAX_ATTEMPTS="1")
        assert once.returncode == 1 and "SlowDown: Please reduce your request rate." in once.stderr, once.stderr
    finally:
        for p in (proxy, always):
            p.shutdown()
            p.server_close()
