# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/key_watch.yml over the demo fleet: what a customer does to its key is posted once, then resolved.

The customer's actions are made as the customer's account with boto3; the webhook posts are received by a local HTTP
listener; the kept state and the key states are read back with boto3, not with the code under test.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import uuid

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.fleet.customer_config import provider_principals
from ansible_collections.mattermost.byok.plugins.module_utils.kms.key_import import wrap_key_material
from ansible_collections.mattermost.byok.plugins.module_utils.kms.onboarding_policy import key_policy_statements
from tests.integration import runner
from tests.integration.test_announce import receiver  # noqa: F401 pylint: disable=unused-import
from tests.integration.test_audit import client

PLAYBOOK = "playbooks/key_watch.yml"
PROVIDER = "222222222222"
ACME = "111111111101"
ACME_KEY_ID = "0acbe000-0000-4000-8000-000000000001"  # the customer acts in its own account, by key id
ACME_KEY = f"arn:aws:kms:us-east-1:{ACME}:key/{ACME_KEY_ID}"
STATE_BUCKET = "mattermost-kops-state-demo"
AUTOSCALING_ROLE = f"arn:aws:iam::{PROVIDER}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
MOTO_SESSION_TOKEN = re.compile(r"FQoGZXIvYXdzE[\w/+=]{20,}")  # how the local AWS's STS session tokens start


@pytest.fixture(scope="module")
def demo(local_aws):
    runner.seed(local_aws.endpoint_url)
    return local_aws.endpoint_url


class Watch:
    """Runs the watch for one customer with its own kept-state prefix; remembers every output for the secret check."""

    def __init__(self, endpoint, tmp_path, hook, inventory=None, limit="acme"):
        self.endpoint, self.tmp_path, self.hook = endpoint, tmp_path, hook
        self.inventory = inventory or os.path.join(runner.DEMO_INVENTORY, "hosts.yml")
        self.limit = limit
        self.prefix = f"key-watch-test-{uuid.uuid4().hex[:8]}"
        self.runs, self.outputs = 0, []

    def __call__(self, *args):
        """One run; returns the posts it made."""
        self.runs += 1
        before = len(self.hook.posts)
        proc = runner.run_playbook(self.endpoint, self.inventory, str(self.tmp_path / f"run{self.runs}"), "-l", self.limit,
                                   "-e", f"byok_mattermost_webhook_url={self.hook.url}",
                                   "-e", f"byok_watch_state_store=s3://{STATE_BUCKET}/{self.prefix}", *args, playbook=PLAYBOOK)
        assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
        self.outputs.append(proc.stdout + proc.stderr)
        return [p["body"]["text"] for p in self.hook.posts[before:]]

    def report(self):
        return runner.read_json(str(self.tmp_path / f"run{self.runs}" / "key-watch.json"))

    def kept(self):
        s3 = client(self.endpoint, "s3")
        return s3.get_object(Bucket=STATE_BUCKET, Key=f"{self.prefix}/{self.limit}.json")["Body"].read().decode()

    def assert_no_secret(self, *secrets):
        artifacts = []
        for root, _dirs, files in os.walk(self.tmp_path):
            for name in files:
                with open(os.path.join(root, name), errors="replace") as f:
                    artifacts.append(f.read())
        for text in self.outputs + artifacts + [self.kept()]:
            for secret in (self.hook.url, "/hooks/", *secrets):
                assert secret not in text
            assert not MOTO_SESSION_TOKEN.search(text)


def restore_acme_key(endpoint):
    kms = client(endpoint, "kms", account=ACME)
    if kms.describe_key(KeyId=ACME_KEY)["KeyMetadata"]["KeyState"] == "PendingDeletion":
        kms.cancel_key_deletion(KeyId=ACME_KEY_ID)
    kms.enable_key(KeyId=ACME_KEY_ID)
    return kms


def test_scheduled_deletion_is_posted_once_then_resolved(demo, tmp_path, receiver):  # noqa: F811
    hook = receiver()
    kms = restore_acme_key(demo)
    watch = Watch(demo, tmp_path, hook)
    assert watch() == []  # a healthy key: nothing to say
    assert json.loads(watch.kept())["findings"] == {}

    deletion = kms.schedule_key_deletion(KeyId=ACME_KEY_ID, PendingWindowInDays=12)["DeletionDate"]
    day = deletion.date().isoformat()
    [text] = watch()
    assert text.startswith(":rotating_light: [BYOK demo] acme key watch critical:")
    assert f"key {ACME_KEY} scheduled for deletion on {day} (1" in text  # 11 or 12 days, depending on the hour
    for dependent in ("the database (acme-db", "the file store (mattermost-acme-backups, mattermost-acme-filestore)",
                      "every node of the cluster", "the data is unrecoverable after", "aws kms cancel-key-deletion"):
        assert dependent in text
    [key] = [k for k in watch.report()["keys"] if k["key_arn"] == ACME_KEY]
    assert (key["state"], key["severity"], key["deadline_kind"]) == ("PendingDeletion", "critical", "deletion")
    assert key["deadline"].startswith(day) and key["days_to_deadline"] in (11, 12)
    assert f"{ACME_KEY}#KEY_PENDING_DELETION" in json.loads(watch.kept())["findings"]

    assert watch() == []  # nothing changed: nothing posted

    kms.cancel_key_deletion(KeyId=ACME_KEY_ID)  # KMS leaves a cancelled key Disabled
    kms.enable_key(KeyId=ACME_KEY_ID)
    assert client(demo, "kms").describe_key(KeyId=ACME_KEY)["KeyMetadata"]["KeyState"] == "Enabled"
    [text] = watch()
    assert text.startswith(":white_check_mark: [BYOK demo] acme key watch resolved:")
    assert f"RESOLVED: resolved: key {ACME_KEY} scheduled for deletion on {day}" in text
    assert json.loads(watch.kept())["findings"] == {}
    assert watch() == []
    watch.assert_no_secret()


def test_disabled_key_is_posted_once_then_resolved(demo, tmp_path, receiver):  # noqa: F811
    hook = receiver()
    kms = restore_acme_key(demo)
    watch = Watch(demo, tmp_path, hook)
    assert watch() == []
    kms.disable_key(KeyId=ACME_KEY_ID)
    [text] = watch()
    assert "acme key watch critical:" in text and f"CRITICAL: key {ACME_KEY} is disabled: KMS refuses every use now" in text
    assert "the database (acme-db" in text and f"aws kms enable-key --key-id {ACME_KEY}" in text
    assert watch() == []
    kms.enable_key(KeyId=ACME_KEY_ID)
    [text] = watch()
    assert "acme key watch resolved:" in text and f"resolved: key {ACME_KEY} is disabled" in text
    watch.assert_no_secret()


def acme_launch_templates_on_key(endpoint):
    """What the EBS step leaves: the cluster's launch templates' volumes on the customer's key (new default version).
    Returns how to put the previous default versions back (the local AWS is shared with the other tests)."""
    ec2 = client(endpoint, "ec2")
    templates = ec2.describe_launch_templates(Filters=[{"Name": "tag:KubernetesCluster", "Values": ["acme01-kops.k8s.local"]}])["LaunchTemplates"]
    assert templates
    for t in templates:
        data = ec2.describe_launch_template_versions(LaunchTemplateId=t["LaunchTemplateId"], Versions=["$Default"])["LaunchTemplateVersions"][0]
        mappings = [{**m, "Ebs": {**m["Ebs"], "Encrypted": True, "KmsKeyId": ACME_KEY}}
                    for m in data["LaunchTemplateData"]["BlockDeviceMappings"] if "Ebs" in m]
        version = ec2.create_launch_template_version(LaunchTemplateId=t["LaunchTemplateId"], SourceVersion=str(data["VersionNumber"]),
                                                     LaunchTemplateData={"BlockDeviceMappings": mappings})["LaunchTemplateVersion"]
        ec2.modify_launch_template(LaunchTemplateId=t["LaunchTemplateId"], DefaultVersion=str(version["VersionNumber"]))

    def restore():
        for t in templates:
            ec2.modify_launch_template(LaunchTemplateId=t["LaunchTemplateId"], DefaultVersion=str(t["DefaultVersionNumber"]))
    return restore


def test_deleted_autoscaling_grant_is_posted_once_then_resolved(demo, tmp_path, receiver):  # noqa: F811
    hook = receiver()
    restore_acme_key(demo)
    put_back = acme_launch_templates_on_key(demo)
    provider_kms = client(demo, "kms")
    try:
        for g in provider_kms.list_retirable_grants(RetiringPrincipal=f"arn:aws:iam::{PROVIDER}:root")["Grants"]:
            if g["KeyId"] == ACME_KEY:
                provider_kms.retire_grant(KeyId=ACME_KEY, GrantId=g["GrantId"])

        def grant():  # as the autoscaling_kms_grant module makes it (the EBS step)
            return provider_kms.create_grant(KeyId=ACME_KEY, GranteePrincipal=AUTOSCALING_ROLE, Name="mattermost-byok-autoscaling",
                                             RetiringPrincipal=f"arn:aws:iam::{PROVIDER}:root",
                                             Operations=["Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKey",
                                                         "GenerateDataKeyWithoutPlaintext", "DescribeKey", "CreateGrant"])["GrantId"]

        grant_id = grant()
        watch = Watch(demo, tmp_path, hook)
        assert watch() == []
        [key] = [k for k in watch.report()["keys"] if k["key_arn"] == ACME_KEY]
        assert key["autoscaling_grant"]["required"] and key["autoscaling_grant"]["present"]
        assert [d["on_key"] for d in key["dependents"] if d["type"] == "launch_template"] and \
            all(d["on_key"] for d in key["dependents"] if d["type"] == "launch_template")

        client(demo, "kms", account=ACME).revoke_grant(KeyId=ACME_KEY, GrantId=grant_id)  # the customer revokes it
        [text] = watch()
        assert f"CRITICAL: the Auto Scaling grant on key {ACME_KEY} is gone: new nodes of the cluster fail to launch" in text
        assert watch() == []
        grant()
        [text] = watch()
        assert "acme key watch resolved:" in text and "the Auto Scaling grant" in text
        watch.assert_no_secret()
    finally:
        put_back()
        for g in provider_kms.list_retirable_grants(RetiringPrincipal=f"arn:aws:iam::{PROVIDER}:root")["Grants"]:
            if g["KeyId"] == ACME_KEY:
                provider_kms.retire_grant(KeyId=ACME_KEY, GrantId=g["GrantId"])


# A new key per session: imported material can only ever be the same material again.
EXTERNAL_KEY = f"arn:aws:kms:us-east-1:{PROVIDER}:key/0e0e0000-0000-4000-8000-{uuid.uuid4().hex[:12]}"
EXT = f"ext{uuid.uuid4().hex[:6]}"  # the seeder gives each customer an alias of its name


def import_material(kms, material, valid_to):
    params = kms.get_parameters_for_import(KeyId=EXTERNAL_KEY, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048")
    wrapped = wrap_key_material(material, params["PublicKey"], "RSA_2048")
    kms.import_key_material(KeyId=EXTERNAL_KEY, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
                            ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to)


@pytest.fixture
def external_customer(demo, tmp_path):
    hv = runner.demo_host_vars("acme")
    hv.pop("byok_mattermost_installations", None)  # acme's installation writes acme's bucket, not this customer's
    hv.update({
        "byok_customer_account_id": "111111111171", "byok_vpc_id": "vpc-0e0e0000000000071", "byok_kops_cluster_id": f"{EXT}01",
        "byok_key_source": "external", "byok_keys": {"all": EXTERNAL_KEY}, "byok_services": ["s3", "rds"],
        "byok_s3_buckets": [f"mattermost-{EXT}-filestore"], "byok_rds_clusters": [{"identifier": f"{EXT}-db", "region": "us-east-1"}],
    })
    inventory = runner.write_inventory(str(tmp_path / "inventory"), {EXT: hv})
    runner.seed(demo, os.path.dirname(inventory))
    return inventory


def test_expiring_material_and_policy_edit_of_an_external_key(demo, tmp_path, receiver, external_customer):  # noqa: F811
    hook = receiver()
    kms = client(demo, "kms")  # the provider holds the imported key
    material = os.urandom(32)
    now = datetime.datetime.now(datetime.timezone.utc)
    import_material(kms, material, now + datetime.timedelta(days=360))
    watch = Watch(demo, tmp_path / "w", hook, inventory=external_customer, limit=EXT)
    assert watch() == []
    [key] = watch.report()["keys"]
    assert (key["severity"], key["deadline_kind"], key["policy_source"]) == ("info", "material expiry", "aws")
    assert 358 <= key["material_days_left"] <= 360

    # The same material again, expiring in 9 days: a warning, once.
    expiry = now + datetime.timedelta(days=9, hours=12)
    import_material(kms, material, expiry)
    [text] = watch()
    assert text.startswith(f":warning: [BYOK demo] {EXT} key watch warning:")
    assert f"WARNING: imported key material of {EXTERNAL_KEY} expires on {expiry.date().isoformat()} (9 days)" in text
    assert f"the database ({EXT}-db" in text and f"the file store (mattermost-{EXT}-filestore)" in text
    assert watch() == []
    import_material(kms, material, now + datetime.timedelta(days=300))
    [text] = watch()
    assert f"{EXT} key watch resolved:" in text and "expires on" in text

    # A least-privilege policy (administration for the account, use for the provider principals), then the node
    # role's statements removed: the provider reads its own key's policy, so the watch sees it.
    principals = provider_principals(PROVIDER, "demo", "vpc-0e0e0000000000071", f"{EXT}01")
    node_role = principals["nodes_role"]
    admin = {"Sid": "Key administration", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{PROVIDER}:root"}, "Resource": "*",
             "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*",
                        "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion",
                        "kms:CancelKeyDeletion", "kms:ImportKeyMaterial"]}
    use = [s["statement"] for s in key_policy_statements(principals, ["s3", "rds"], PROVIDER, "us-east-1", EXTERNAL_KEY)]
    policy = {"Version": "2012-10-17", "Statement": [admin, *use]}
    kms.put_key_policy(KeyId=EXTERNAL_KEY, PolicyName="default", Policy=json.dumps(policy))
    assert watch() == []
    edited = {**policy, "Statement": [s for s in policy["Statement"] if node_role not in json.dumps(s.get("Principal"))]}
    assert len(edited["Statement"]) < len(policy["Statement"])
    kms.put_key_policy(KeyId=EXTERNAL_KEY, PolicyName="default", Policy=json.dumps(edited))
    try:
        [text] = watch()
        assert f"{EXT} key watch critical:" in text and node_role in text and "does not allow" in text
        assert watch() == []
    finally:
        kms.put_key_policy(KeyId=EXTERNAL_KEY, PolicyName="default", Policy=json.dumps(policy))
    [text] = watch()
    assert f"{EXT} key watch resolved:" in text and node_role in text
    watch.assert_no_secret(base64.b64encode(material).decode(), material.hex())


def test_unreadable_state_alerts_as_new(demo, tmp_path, receiver):  # noqa: F811
    hook = receiver()
    kms = restore_acme_key(demo)
    watch = Watch(demo, tmp_path, hook)
    kms.disable_key(KeyId=ACME_KEY_ID)
    try:
        assert len(watch()) == 1
        assert watch() == []
        # The kept state is lost (here: not JSON any more): the next run alerts again rather than stay silent.
        client(demo, "s3").put_object(Bucket=STATE_BUCKET, Key=f"{watch.prefix}/{watch.limit}.json", Body=b"{not json")
        [text] = watch()
        assert f"CRITICAL: key {ACME_KEY} is disabled" in text
        assert json.loads(watch.kept())["findings"][f"{ACME_KEY}#KEY_DISABLED"]["severity"] == "critical"
    finally:
        kms.enable_key(KeyId=ACME_KEY_ID)
