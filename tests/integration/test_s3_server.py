# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""S3 as the Mattermost server sees it, through ansible-playbook against the local AWS, read back with boto3.

Two installations of one customer, each with its own bucket: the server of ``offinst`` has MM_FILESETTINGS_AMAZONS3SSE
off in its Mattermost custom resource, the one of ``oninst`` has it on (read by the collection with kubectl through
a kubeconfig, from the local AWS's Kubernetes double). Their files are written before the run by the server double
(tests/local_aws/mattermost_double.py), as the installation, with the headers the server sends. After the run:
- every object of both buckets is on the customer key (boto3);
- with IAM enforcement on, the server double of ``offinst`` (its identity holds kms:Decrypt and kms:GenerateDataKey
  on both halves, granted in the setup) reads every re-encrypted file, and its new uploads, large uploads and moves
  land on the customer key;
- the ``oninst`` bucket is not reported compliant: its step record has the status server_sends_sse_s3 with the
  installation, the setting and the fix, and the audit counts that server as a resource off the key; the uploads and
  moves of its server land on SSE-S3, and an audit afterwards lists each of them as written after the cutoff and not
  on the key, with its key and time.
Bad input (a shared file store, a bucket not in byok_s3_buckets, a cluster that can't be read) stops the customer
with a message naming the variable, and nothing is changed (boto3).
"""

from __future__ import annotations

import json
import os

import pytest

from tests.emulator.test_iam_auth import set_enforcement
from tests.integration import runner
from tests.local_aws import kube_double
from tests.local_aws.mattermost_double import MattermostServer

CUSTOMER = "111111111101"
PROVIDER = "222222222222"
REGION = "us-east-1"
PLAYBOOK = "tests/integration/playbooks/s3_server.yml"
STATE_STORE = "mattermost-kops-state-server-test"
CLUSTER = "acme01"
KMS_USE = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
FILES = {f"data/{i:02d}/file.txt": f"file {i} of the installation".encode() for i in range(6)}


def doc(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


class Deployment:
    """A customer key, and per installation an IAM user (the server's S3 identity), a bucket on SSE-S3 (as the
    provisioner makes it) with files the server wrote, and its Mattermost custom resource."""

    def __init__(self, aws, tmp_path, installations: dict[str, str | None]):
        self.aws = aws
        kms = aws.client("kms", CUSTOMER)
        self.key = kms.create_key(Description="acme BYOK key")["KeyMetadata"]["Arn"]
        iam, s3 = aws.client("iam", PROVIDER), aws.client("s3", PROVIDER)
        s3.create_bucket(Bucket=STATE_STORE)
        self.users, self.buckets, self.credentials = {}, {}, {}
        for inst, setting in installations.items():
            bucket = f"mattermost-{inst}-filestore"
            self.buckets[inst] = bucket
            iam.create_user(UserName=f"mattermost-{inst}")
            k = iam.create_access_key(UserName=f"mattermost-{inst}")["AccessKey"]
            self.credentials[inst] = {"aws_access_key_id": k["AccessKeyId"], "aws_secret_access_key": k["SecretAccessKey"]}
            self.users[inst] = f"arn:aws:iam::{PROVIDER}:user/mattermost-{inst}"
            # The provisioner's S3-only policy, plus the provider-side KMS half (granted here, see the module docstring).
            iam.put_user_policy(UserName=f"mattermost-{inst}", PolicyName="filestore", PolicyDocument=doc(
                {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:PutObjectAcl", "s3:DeleteObject"],
                 "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]},
                {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": self.key}))
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
            if setting is not None:
                kube_double.put_resource(aws.endpoint_url, CLUSTER, kube_double.mattermost_resource(
                    inst, {"MM_FILESCHEMA": "s3", "MM_FILESETTINGS_AMAZONS3SSE": setting}))
                server = self.server(inst)
                for path, body in FILES.items():
                    server.upload(path, body)
        # The customer's key policy names each server identity (the customer-side half).
        kms.put_key_policy(KeyId=self.key, PolicyName="default", Policy=doc(
            {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{CUSTOMER}:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "Mattermost servers", "Effect": "Allow", "Principal": {"AWS": sorted(self.users.values())},
             "Action": KMS_USE, "Resource": "*"}))
        self.kubeconfig = tmp_path / "acme.kubeconfig"
        self.kubeconfig.write_text(kube_double.kubeconfig(aws.endpoint_url, CLUSTER))

    def server(self, inst: str) -> MattermostServer:
        return MattermostServer.from_cluster(self.aws.endpoint_url, CLUSTER, inst, inst, self.buckets[inst], self.credentials[inst])

    def installation(self, inst: str, **changes) -> dict:
        entry = {"id": inst, "filestore": "aws-s3", "buckets": [self.buckets[inst]], "s3_identity_arn": self.users[inst]}
        entry.update(changes)
        return entry

    def host_vars(self, *installations: dict, buckets=None) -> dict:
        return {"byok_customer_account_id": CUSTOMER, "byok_region": REGION, "byok_vpc_id": "vpc-0ac0e000000000001",
                "byok_kops_cluster_id": CLUSTER, "byok_services": ["s3"], "byok_keys": {"all": self.key},
                "byok_s3_buckets": buckets or sorted(self.buckets.values()), "byok_ebs_kubeconfig": str(self.kubeconfig),
                "byok_mattermost_installations": list(installations)}

    def encryption(self, bucket: str, key: str) -> tuple:
        head = self.aws.client("s3", PROVIDER).head_object(Bucket=bucket, Key=key)
        return head.get("ServerSideEncryption"), head.get("SSEKMSKeyId")

    def every_object(self, bucket: str) -> dict:
        s3 = self.aws.client("s3", PROVIDER)
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page.get("Contents", [])]
        return {k: self.encryption(bucket, k) for k in keys}

    def default_encryption(self, bucket: str) -> dict:
        rules = self.aws.client("s3", PROVIDER).get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        return rules[0]["ApplyServerSideEncryptionByDefault"]


GROUP_VARS = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
              "byok_provider_account_id": PROVIDER, "byok_environment": "demo", "byok_kops_state_store": f"s3://{STATE_STORE}"}


def run(aws, tmp_path, customers: dict, *args):
    inventory = runner.write_inventory(str(tmp_path / "inventory"), customers, GROUP_VARS)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir(exist_ok=True)
    proc = runner.run_playbook(aws.endpoint_url, inventory, str(artifacts), *args, playbook=PLAYBOOK,
                               extra_env=runner.account_credentials(aws.endpoint_url, PROVIDER))
    return proc, artifacts


def report(artifacts, customer: str) -> dict:
    return runner.read_json(os.path.join(artifacts, "customers", f"{customer}.json"))


def test_the_server_reads_re_encrypted_files_and_its_setting_decides_where_new_files_land(fresh_local_aws, tmp_path):
    aws = fresh_local_aws
    world = Deployment(aws, tmp_path, {"offinst": "false", "oninst": "true"})
    off_bucket, on_bucket = world.buckets["offinst"], world.buckets["oninst"]
    assert set(world.every_object(off_bucket).values()) == {("AES256", None)}  # as the provisioner's default made them

    customers = {"acme": world.host_vars(world.installation("offinst"), world.installation("oninst"))}
    # Check mode first: it reads the settings and predicts the finding, and changes nothing.
    proc, artifacts = run(aws, tmp_path, customers, "--check", "--skip-tags", "audit")
    assert proc.returncode == 0, proc.stdout[-6000:]
    predicted = {s["resource"]: s for s in json.loads((artifacts / "steps-acme.json").read_text())["steps"]}
    assert predicted[on_bucket]["status"] == "server_sends_sse_s3" and predicted[off_bucket]["status"] == "done"
    assert all(s["changed"] for s in predicted.values())
    assert world.default_encryption(on_bucket) == {"SSEAlgorithm": "AES256"}
    assert set(world.every_object(on_bucket).values()) == {("AES256", None)}

    proc, artifacts = run(aws, tmp_path, customers)
    assert proc.returncode == 0, proc.stdout[-6000:]
    for bucket in (off_bucket, on_bucket):
        assert world.default_encryption(bucket) == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": world.key}
        assert set(world.every_object(bucket).values()) == {("aws:kms", world.key)}, bucket

    steps = {s["resource"]: s for s in json.loads((artifacts / "steps-acme.json").read_text())["steps"]}
    assert steps[off_bucket]["status"] == "done" and steps[off_bucket]["findings"] == []
    on_step = steps[on_bucket]
    assert on_step["status"] == "server_sends_sse_s3"
    assert on_step["summary"].startswith("NOT on the customer key for new files: installation oninst")
    assert "x-amz-server-side-encryption: AES256" in on_step["summary"]
    assert "turn MM_FILESETTINGS_AMAZONS3SSE off for installation oninst" in on_step["summary"]
    assert "provisioner change" in on_step["summary"]
    assert [f["installation"] for f in on_step["findings"]] == ["oninst"] and on_step["findings"][0]["source"] == "cluster"

    audit = report(artifacts, "acme")
    assert not audit["summary"]["compliant"]
    servers = [r for r in audit["resources"] if r["type"] == "mattermost_server"]
    assert [(r["id"], r["status"], r["setting"]) for r in servers] == [("oninst", "server_sends_sse_s3", "MM_FILESETTINGS_AMAZONS3SSE")]
    assert audit["summary"]["by_status"]["server_sends_sse_s3"] == 1

    # As the installations, with IAM enforcement on: the servers read, upload, upload large files and move files.
    off, on = world.server("offinst"), world.server("oninst")
    assert (off.sse_s3, on.sse_s3) == (False, True)
    set_enforcement(aws, "0")
    try:
        for path, body in FILES.items():
            assert off.read(path) == body
        off.upload("after/new.txt", b"a file uploaded after the run")
        off.upload_large("after/large.bin", b"L" * (6 * 1024 * 1024))
        off.move("data/00/file.txt", "moved/00/file.txt")
        assert off.read("moved/00/file.txt") == FILES["data/00/file.txt"]
        on.upload("after/sse.txt", b"uploaded with AES256")
        on.move("data/01/file.txt", "moved/01/file.txt")
    finally:
        set_enforcement(aws, "inf")
    for path in ("after/new.txt", "after/large.bin", "moved/00/file.txt"):
        assert world.encryption(off_bucket, path) == ("aws:kms", world.key), path
    for path in ("after/sse.txt", "moved/01/file.txt"):
        assert world.encryption(on_bucket, path) == ("AES256", None), path

    # An audit on its own (the cutoff from the S3 step's checkpoint) lists the server's late files, with key and time.
    proc, artifacts = run(aws, tmp_path, {"acme": world.host_vars(world.installation("offinst"), world.installation("oninst"))},
                          "--tags", "audit")
    assert proc.returncode == 0, proc.stdout[-6000:]
    objects = {r["id"]: r for r in report(artifacts, "acme")["resources"] if r["type"] == "s3_objects"}
    late = objects[on_bucket]["written_after_cutoff_not_on_key"]
    assert sorted(e["key"] for e in late) == ["after/sse.txt", "moved/01/file.txt"]
    assert all(e["algorithm"] == "AES256" and e["last_modified"] > objects[on_bucket]["cutoff"] for e in late)
    assert objects[on_bucket]["status"] == "other_key" and "written after the cutoff" in objects[on_bucket]["detail"]
    assert objects[off_bucket]["written_after_cutoff_not_on_key"] == [] and objects[off_bucket]["status"] == "customer_key"


def test_a_known_off_setting_lets_time_stand_in_for_reads(fresh_local_aws, tmp_path):
    """The shortcut is taken only when every writer is known to send no header: the re-run of the off bucket reads
    nothing past the margin, the on bucket's objects are read (HEAD) again."""
    aws = fresh_local_aws
    world = Deployment(aws, tmp_path, {"offinst": "false", "oninst": "true"})
    customers = {"acme": world.host_vars(world.installation("offinst"), world.installation("oninst"))}
    proc, _artifacts = run(aws, tmp_path, customers, "--skip-tags", "audit")
    assert proc.returncode == 0, proc.stdout[-6000:]
    proc, artifacts = run(aws, tmp_path, customers, "--skip-tags", "audit", "-e", "byok_s3_cutoff_margin=0")
    assert proc.returncode == 0, proc.stdout[-6000:]
    handed = json.loads((artifacts / "steps-acme.json").read_text())
    assert not any(s["changed"] for s in handed["steps"])
    # Each bucket's record says what happened to its objects, in the words the fleet summary shows.
    s3_steps = [s for s in handed["steps"] if s["step"] == "s3"]
    assert sorted(s["resource"] for s in s3_steps) == sorted(world.buckets.values())
    assert all(" objects: 0 re-encrypted, " in s["summary"] and " skipped, 0 failed" in s["summary"] for s in s3_steps), s3_steps
    # The engine's requests: the listing, plus one HEAD per object wherever time can't be trusted.
    requests = handed["requests"]
    assert requests[world.buckets["offinst"]] == 1, requests
    assert requests[world.buckets["oninst"]] == 1 + len(FILES), requests


@pytest.mark.parametrize("case", ["shared_file_store", "unknown_bucket", "unreadable_cluster", "unreachable_kubeconfig"])
def test_bad_input_names_the_variable_and_changes_nothing(fresh_local_aws, tmp_path, case):
    aws = fresh_local_aws
    world = Deployment(aws, tmp_path, {"acmeinst": "false"})
    bucket = world.buckets["acmeinst"]
    before = world.every_object(bucket)
    if case == "shared_file_store":
        host_vars = world.host_vars(world.installation("acmeinst", filestore="bifrost"))
        expected = ("byok_mattermost_installations[0].filestore: bifrost is refused for BYOK: a shared bucket "
                    "(every installation of the VPC under its own prefix) cannot carry one customer's key")
    elif case == "unknown_bucket":
        host_vars = world.host_vars(world.installation("acmeinst", buckets=[bucket, "mattermost-other-filestore"]))
        expected = "byok_mattermost_installations[0].buckets[1]: 'mattermost-other-filestore' is not in byok_s3_buckets"
    elif case == "unreadable_cluster":
        # A cluster whose custom resource is not there (another installation's namespace).
        host_vars = world.host_vars(world.installation("acmeinst", sse_setting={"namespace": "elsewhere"}))
        expected = ("byok_mattermost_installations[0].sse_setting: the Mattermost custom resource elsewhere/acmeinst of "
                    "installation acmeinst could not be read with the kubeconfig")
    else:
        host_vars = world.host_vars(world.installation("acmeinst", sse_setting={"kubeconfig": str(tmp_path / "missing.kubeconfig")}))
        expected = "(byok_mattermost_installations[0].sse_setting.kubeconfig)"
    proc, _artifacts = run(aws, tmp_path, {"acme": host_vars})
    assert proc.returncode != 0
    flat = proc.stdout.replace("\\n", "\n")
    assert expected in flat, proc.stdout[-4000:]
    assert world.default_encryption(bucket) == {"SSEAlgorithm": "AES256"}
    assert world.every_object(bucket) == before


def test_stopgap_turns_the_setting_off_with_check_mode_diff_and_a_warning(fresh_local_aws, tmp_path):
    aws = fresh_local_aws
    world = Deployment(aws, tmp_path, {"oninst": "true"})
    bucket = world.buckets["oninst"]
    customers = {"acme": world.host_vars(world.installation("oninst"))}
    stopgap = ("-e", "byok_s3_server_setting_stopgap=true", "--skip-tags", "audit")

    def setting():
        resource = kube_double.get_resource(aws.endpoint_url, CLUSTER, "oninst", "oninst")
        env = {e["name"]: e["value"] for e in resource["spec"]["mattermostEnv"]}
        return env["MM_FILESETTINGS_AMAZONS3SSE"], resource["metadata"]["resourceVersion"]

    value, version = setting()
    proc, _artifacts = run(aws, tmp_path, customers, "--check", "--diff", *stopgap)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert setting() == ("true", version)  # check mode changed nothing
    flat = " ".join((proc.stdout + proc.stderr).split())  # warnings go to stderr
    assert "the lasting fix is a provisioner change" in flat
    assert "-        value: 'true'" in proc.stdout and "+        value: 'false'" in proc.stdout  # the diff: before and after

    proc, artifacts = run(aws, tmp_path, customers, *stopgap)
    assert proc.returncode == 0, proc.stdout[-6000:]
    value, version = setting()
    assert value == "false"
    [step] = json.loads((artifacts / "steps-acme.json").read_text())["steps"]
    assert step["status"] == "done" and "set off by the stopgap for oninst" in step["summary"]
    assert set(world.every_object(bucket).values()) == {("aws:kms", world.key)}
    server = world.server("oninst")
    assert server.sse_s3 is False
    set_enforcement(aws, "0")
    try:
        server.upload("after/stopgap.txt", b"uploaded after the stopgap")
    finally:
        set_enforcement(aws, "inf")
    assert world.encryption(bucket, "after/stopgap.txt") == ("aws:kms", world.key)

    proc, artifacts = run(aws, tmp_path, customers, *stopgap)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert setting() == ("false", version)  # nothing to change the second time
    [step] = json.loads((artifacts / "steps-acme.json").read_text())["steps"]
    assert not step["changed"] and "stopgap" not in step["summary"]


def test_a_failed_canary_stops_the_customer_before_any_object_changes_after_every_pair_was_tried(fresh_local_aws, tmp_path):
    """The first installation's canary credentials can't be read, the second one's canary passes as its server: the
    customer stops with the first one's message only, after both were tried, and no bucket changed."""
    aws = fresh_local_aws
    world = Deployment(aws, tmp_path, {"offinst": "false", "oninst": "false"})
    keys = world.credentials["offinst"]
    aws.client("secretsmanager", PROVIDER).create_secret(Name="offinst-canary", SecretString=json.dumps(
        {"ID": keys["aws_access_key_id"], "Secret": keys["aws_secret_access_key"]}))
    before = {bucket: world.every_object(bucket) for bucket in world.buckets.values()}
    customers = {"acme": world.host_vars(world.installation("oninst", canary_credentials={"secret": "oninst-no-such-secret"}),
                                         world.installation("offinst", canary_credentials={"secret": "offinst-canary"}))}
    proc, _artifacts = run(aws, tmp_path, customers, "--skip-tags", "audit")
    assert proc.returncode != 0
    flat = proc.stdout.replace("\\n", "\n")
    assert ("byok_mattermost_installations[0].canary_credentials.secret: cannot read the secret oninst-no-such-secret"
            in flat), proc.stdout[-4000:]
    passed = f"{world.buckets['offinst']} (before): the canary as {world.users['offinst']} passed"
    assert passed in flat, proc.stdout[-4000:]  # the second pair was tried
    assert "(after)" not in flat
    for bucket, objects in before.items():
        assert world.default_encryption(bucket) == {"SSEAlgorithm": "AES256"}
        assert world.every_object(bucket) == objects
