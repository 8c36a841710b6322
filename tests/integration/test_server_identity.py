# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Mattermost server's own S3 identity as a principal of the key, on both halves, with IAM enforcement on.

One customer with one installation whose server signs with an IAM user of the provider account holding only S3
permissions (as the provisioner makes it), and whose access key sits in Secrets Manager as the provisioner stores it.
byok.yml runs as the base user through the shipped automation policy (docs/iam/), with the local AWS enforcing IAM:

1. check mode predicts the managed policies (server identity, provisioning user) and creates none;
2. without the server's statement in the key policy, the customer stops before any object changes, naming it;
3. with byok_key_iam_fix=false, the customer stops before any object changes, naming what the server's IAM lacks;
4. a normal run gives the server its managed policy, the canary as the server passes before and after, and the server
   reads the re-encrypted objects with its own credentials;
5. a second run changes nothing.
Every outcome is read back with boto3 (IAM attachments, each object's encryption), enforcement off for the reader.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import boto3
import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.fleet.customer_config import provider_principals
from ansible_collections.mattermost.byok.plugins.module_utils.kms.onboarding_policy import key_policy_statements
from tests.integration import runner
from tests.tools import least_privilege as lp

PROVIDER = "222222222222"
CUSTOMER = "serverco"
ACCOUNT = "111111111131"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/0acbe000-0000-4000-8000-000000000031"
BUCKET = "mattermost-serverco-filestore"
SERVER_USER = "mattermost-serverco01inst"
SERVER_ARN = f"arn:aws:iam::{PROVIDER}:user/{SERVER_USER}"
SECRET = "serverco01inst-iam-access-key"
SERVER_SID = "Allow use of the key Mattermost server"
SERVER_POLICY = f"arn:aws:iam::{PROVIDER}:policy/mattermost-byok/mattermost-byok-{KEY.rsplit('/', 1)[1]}-server"
PROVISIONING_USER = "mattermost-cloud-demo-provisioning-vpc-0ac0e000000000031"
CLUSTER = "serverco01-kops.k8s.local"
NODES_ROLE, NODES_POLICY = f"nodes.{CLUSTER}", f"additional.nodes.{CLUSTER}"


def host_vars() -> dict:
    return {
        "byok_customer_account_id": ACCOUNT, "byok_region": "us-east-1", "byok_vpc_id": "vpc-0ac0e000000000031",
        "byok_kops_cluster_id": "serverco01", "byok_services": ["s3", "ebs"], "byok_keys": {"all": KEY}, "byok_s3_buckets": [BUCKET],
        "byok_mattermost_installations": [{
            "id": "serverco01inst", "filestore": "aws-s3", "buckets": [BUCKET], "s3_identity_arn": SERVER_ARN,
            "canary_credentials": {"secret": SECRET}}],
        "demo_expected_outcome": "ok",
    }


def saved_key_policy() -> dict:
    """What the customer saves: AWS's default statement and every statement of the onboarding document."""
    principals = {**provider_principals(PROVIDER, "demo", "vpc-0ac0e000000000031", "serverco01"), "server_identities": [SERVER_ARN],
                  "automation_role": f"arn:aws:iam::{PROVIDER}:role/mattermost-byok-automation"}
    statements = [{"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                   "Action": "kms:*", "Resource": "*"}]
    statements += [s["statement"] for s in key_policy_statements(principals, ["s3", "ebs"], PROVIDER, "us-east-1")]
    return {"Version": "2012-10-17", "Id": "key-default-1", "Statement": statements}


def server_statement_policy(document: dict, with_server: bool) -> dict:
    document = copy.deepcopy(document)
    document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != SERVER_SID]
    if with_server:
        document["Statement"].append({
            "Sid": SERVER_SID, "Effect": "Allow", "Principal": {"AWS": SERVER_ARN}, "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": KEY})
    return document


class World:
    def __init__(self, aws, inventory: Path, work: Path, credentials: dict):
        self.aws, self.inventory, self.work, self.credentials = aws, inventory, work, credentials
        self.runs = 0
        self.policy_file = inventory / "key-policies" / f"{KEY.rsplit('/', 1)[1]}.json"
        self.seeded_policy = saved_key_policy()

    def set_key_policy(self, with_server: bool) -> None:
        """The customer's saved policy, in the inventory (what the key check reads) and on the key itself."""
        document = server_statement_policy(self.seeded_policy, with_server)
        self.policy_file.write_text(json.dumps(document, indent=2))
        with self.reader():
            self.aws.client("kms", ACCOUNT).put_key_policy(KeyId=KEY, PolicyName="default", Policy=json.dumps(document))

    def reader(self):
        return Enforcement(self.aws.endpoint_url)

    def play(self, *args: str):
        self.runs += 1
        artifacts = self.work / f"artifacts-{self.runs}"
        lp.set_enforcement(self.aws.endpoint_url, True)
        try:
            result = lp.run(self.aws.endpoint_url, str(self.inventory / "hosts.yml"), "playbooks/byok.yml", artifacts, self.credentials,
                            self.work / f"resource-actions-{self.runs}.jsonl", "--tags", "key_check,s3,ebs", *args)
        finally:
            lp.set_enforcement(self.aws.endpoint_url, False)
        summary = json.loads((artifacts / "fleet-summary.json").read_text())
        [customer] = [c for c in summary["customers"] if c["customer"] == CUSTOMER]
        checks = artifacts / "key-checks" / f"{CUSTOMER}.json"
        check = json.loads(checks.read_text())[0] if checks.exists() else None  # none when stopped before the report
        return result, customer, check, artifacts

    def objects(self) -> dict:
        """key -> (ETag, encryption, KMS key) of every object, read with boto3 as the customer-independent reader."""
        s3 = self.aws.client("s3", PROVIDER)
        out = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for obj in page.get("Contents", []):
                head = s3.head_object(Bucket=BUCKET, Key=obj["Key"])
                out[obj["Key"]] = (head["ETag"], head.get("ServerSideEncryption"), head.get("SSEKMSKeyId"))
        return out

    def nodes_policy(self):
        iam = self.aws.client("iam", PROVIDER)
        if NODES_POLICY not in iam.list_role_policies(RoleName=NODES_ROLE)["PolicyNames"]:
            return None
        return iam.get_role_policy(RoleName=NODES_ROLE, PolicyName=NODES_POLICY)["PolicyDocument"]

    def nodes_decide(self, action: str, via: str) -> str:
        [result] = self.aws.client("iam", PROVIDER).simulate_principal_policy(
            PolicySourceArn=f"arn:aws:iam::{PROVIDER}:role/{NODES_ROLE}", ActionNames=[action], ResourceArns=[KEY],
            ContextEntries=[{"ContextKeyName": "kms:ViaService", "ContextKeyValues": [via], "ContextKeyType": "string"}])["EvaluationResults"]
        return result["EvalDecision"]

    def attached(self, user: str) -> set:
        return {p["PolicyArn"] for p in self.aws.client("iam", PROVIDER).list_attached_user_policies(UserName=user)["AttachedPolicies"]}


class Enforcement:
    """Enforcement off for the independent reader (it uses the harness's own role)."""

    def __init__(self, endpoint_url: str):
        self.endpoint_url = endpoint_url

    def __enter__(self):
        lp.set_enforcement(self.endpoint_url, False)

    def __exit__(self, *exc):
        return False


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("server-identity")
    inventory = work / "inventory"
    runner.write_inventory(str(inventory), {CUSTOMER: host_vars()})
    (inventory / "key-policies").mkdir()
    (inventory / "key-policies" / f"{KEY.rsplit('/', 1)[1]}.json").write_text(json.dumps(saved_key_policy(), indent=2))
    with lp.start_local_aws(work / "calls.jsonl", work / "local-aws.log") as aws:
        runner.seed(aws.endpoint_url, str(inventory))
        settings = lp.inventory_settings(str(inventory / "hosts.yml"))
        credentials = lp.install_identities(aws, settings["role_arn"], json.loads((lp.DOCS_IAM / lp.AUTOMATION_POLICY).read_text()),
                                            json.loads((lp.DOCS_IAM / lp.BASE_POLICY).read_text()))
        # The seeder made the installation's identity as the provisioner makes it (S3 actions on its bucket; KMS only on
        # the provider key its bucket starts on, nothing on the customer key) and stored its access key in the secret;
        # the test reads it there to act as the server afterwards.
        iam = aws.client("iam", PROVIDER)
        assert iam.list_attached_user_policies(UserName=SERVER_USER)["AttachedPolicies"] == []
        documents = [json.dumps(iam.get_user_policy(UserName=SERVER_USER, PolicyName=name)["PolicyDocument"])
                     for name in iam.list_user_policies(UserName=SERVER_USER)["PolicyNames"]]
        assert not any(KEY in d or ":key/*" in d or '"*"' in d for d in documents)
        key = json.loads(aws.client("secretsmanager", PROVIDER).get_secret_value(SecretId=SECRET)["SecretString"])
        world = World(aws, inventory, work, credentials)
        world.server_keys = {"aws_access_key_id": key["ID"], "aws_secret_access_key": key["Secret"]}
        yield world


def test_check_mode_predicts_the_iam_changes_and_makes_none(world):
    world.set_key_policy(with_server=True)
    before = world.objects()
    result, customer, check, artifacts = world.play("--check", "--diff")
    assert customer["outcome"]["status"] == "ok", result.stdout[-3000:]
    changes = {(c["action"], c["principal"].rsplit("/", 1)[1]) for c in check["iam"]["changes"]}
    assert ("create_policy", SERVER_USER) in changes and ("attach", SERVER_USER) in changes
    assert ("attach", PROVISIONING_USER) in changes
    assert SERVER_POLICY in result.stdout  # the diff names the policy to create
    onboarding = (artifacts / "onboarding" / f"{CUSTOMER}.md").read_text()
    assert SERVER_ARN in onboarding and SERVER_SID in onboarding
    assert any(v["principal"] == SERVER_ARN and v["decision"] == "allowed" for v in check["verdicts"])
    assert world.attached(SERVER_USER) == set() and world.attached(PROVISIONING_USER) == set()
    assert world.objects() == before
    # The kops roles: predicted for the cluster spec, nothing applied.
    assert "node" in check["iam"]["kops_additional_policies"]
    assert world.nodes_policy() is None and world.nodes_decide("kms:Decrypt", "ec2.us-east-1.amazonaws.com") == "implicitDeny"


def test_unreadable_canary_credentials_stop_the_customer_naming_the_variable(world):
    installations = host_vars()["byok_mattermost_installations"]
    installations[0]["canary_credentials"]["secret"] = "serverco01inst-no-such-secret"
    extra = world.work / "bad-secret.json"
    extra.write_text(json.dumps({"byok_mattermost_installations": installations}))
    before = world.objects()
    result, customer, _check, _artifacts = world.play("-e", f"@{extra}")
    assert customer["outcome"]["status"] == "failed", result.stdout[-3000:]
    message = customer["outcome"]["message"]
    assert "byok_mattermost_installations[0].canary_credentials.secret" in message and "nothing was changed" in message
    assert world.attached(SERVER_USER) == set() and world.attached(PROVISIONING_USER) == set()  # stopped before the IAM fix
    assert world.objects() == before and world.nodes_policy() is None


def test_a_key_policy_without_the_server_statement_stops_the_customer_naming_it(world):
    world.set_key_policy(with_server=False)
    before = world.objects()
    result, customer, check, _artifacts = world.play()
    assert customer["outcome"]["status"] == "failed", result.stdout[-3000:]
    assert SERVER_SID in customer["outcome"]["message"] and SERVER_ARN in customer["outcome"]["message"]
    missing = [f for f in check["findings"] if f["severity"] == "error" and f["principal"] == SERVER_ARN]
    assert missing and missing[0]["statement"]["Sid"] == SERVER_SID
    assert world.attached(SERVER_USER) == set()  # a key that is not ready changes nothing, IAM included
    assert world.objects() == before
    world.set_key_policy(with_server=True)


def test_without_the_iam_fix_the_customer_stops_naming_what_the_server_lacks(world):
    before = world.objects()
    result, customer, check, _artifacts = world.play("-e", "byok_key_iam_fix=false")
    assert customer["outcome"]["status"] == "failed", result.stdout[-3000:]
    message = customer["outcome"]["message"]
    assert "IAM_PERMISSION_MISSING" in message and SERVER_ARN in message and "kms:Decrypt" in message
    [server] = [p for p in check["iam"]["principals"] if p["principal"] == SERVER_ARN]
    assert server["missing"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert world.attached(SERVER_USER) == set()
    assert world.objects() == before


def test_the_run_gives_the_server_its_policy_and_the_canary_passes_before_and_after(world):
    result, customer, check, artifacts = world.play()
    assert customer["outcome"]["status"] == "ok", result.stdout[-4000:]
    assert world.attached(SERVER_USER) == {SERVER_POLICY}
    document = world.aws.client("iam", PROVIDER).get_policy_version(PolicyArn=SERVER_POLICY, VersionId="v1")["PolicyVersion"]["Document"]
    assert document["Statement"] == [{"Sid": "MattermostByokServerKey0", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                                      "Resource": KEY, "Condition": {"StringEquals": {"kms:ViaService": ["s3.us-east-1.amazonaws.com"]}}}]
    [step] = [s for s in customer["steps"] if s["resource"] == BUCKET]
    assert [("(before)" in c, "(after)" in c, "passed" in c) for c in step["canary"]] == [(True, False, True), (False, True, True)], step
    assert "Server canary:" in step["summary"]
    objects = world.objects()
    assert objects and all(enc == "aws:kms" and key == KEY for _etag, enc, key in objects.values())
    # The server, with its own access key, reads what was re-encrypted; nothing is left under the canary's prefix.
    server = boto3.client("s3", endpoint_url=world.aws.endpoint_url, region_name="us-east-1", **world.server_keys)
    sample = sorted(objects)[0]
    assert server.get_object(Bucket=BUCKET, Key=sample)["Body"].read() is not None
    leftovers = world.aws.client("s3", PROVIDER).list_object_versions(Bucket=BUCKET, Prefix=".mattermost-byok-canary/")
    assert not leftovers.get("Versions") and not leftovers.get("DeleteMarkers")
    # The kops node role got its statements through the cluster spec (kops update writes additional.nodes.<cluster>).
    document = world.nodes_policy()
    assert document and all(s["Resource"] == KEY for s in document["Statement"])
    assert world.nodes_decide("kms:Decrypt", "ec2.us-east-1.amazonaws.com") == "allowed"
    assert world.nodes_decide("kms:Decrypt", "rds.us-east-1.amazonaws.com") == "implicitDeny"  # only what it needs


def test_a_second_run_changes_nothing(world):
    result, customer, check, _artifacts = world.play()
    assert customer["outcome"]["status"] == "ok", result.stdout[-3000:]
    assert check["iam"]["changes"] == [] and all(not p["missing"] for p in check["iam"]["principals"])
    assert check["iam"]["kops_additional_policies"] == {}
    assert not any(s["changed"] for s in customer["steps"]), customer["steps"]
