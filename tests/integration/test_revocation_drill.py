# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The revocation drill on the demo fleet: acme after BYOK (nothing readable while its key is disabled), hooli stopped
at the key check (what stays readable); everything back afterwards. boto3 is the independent reader."""

from __future__ import annotations

import os

import pytest

from tests.integration import runner
from tests.integration.test_audit import client
from tests.local_aws.harness import LocalAWS

ACME_KEY = "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"


@pytest.fixture(scope="module")
def drilled(tmp_path_factory):
    with LocalAWS.start(extended=True, log_path=tmp_path_factory.mktemp("drill-aws") / "server.log") as aws:
        endpoint = aws.endpoint_url
        runner.seed(endpoint)
        artifacts = str(tmp_path_factory.mktemp("drill"))
        inventory = os.path.join(runner.DEMO_INVENTORY, "hosts.yml")
        done = runner.run_playbook(endpoint, inventory, artifacts, "-l", "acme", "-e", "byok_allow_disruption=true",
                                   "-e", "byok_residual_retention_days=0", "-e", "byok_audit_s3_object_sample=0")
        assert done.returncode == 0, done.stdout[-3000:]
        assert runner.read_json(os.path.join(artifacts, "customers", "acme.json"))["summary"]["revocable"] is True
        proc = runner.run_playbook(endpoint, inventory, artifacts, "-l", "acme,hooli", playbook="playbooks/revocation_drill.yml")
        assert proc.returncode == 0, proc.stdout[-4000:]
        yield aws, endpoint, artifacts, proc


def report(artifacts, customer):
    return runner.read_json(os.path.join(artifacts, "drill", f"{customer}.json"))


def test_nothing_of_acme_readable_while_its_key_is_disabled(drilled):
    rep = report(drilled[2], "acme")
    assert rep["nothing_readable"] is True and rep["readable_while_revoked"] == []
    by_what = {}
    for r in rep["while_revoked"]:
        by_what.setdefault(r["what"], []).append(r)
    assert len(by_what["s3 object"]) == 2 and all("KMS.DisabledException" in r["evidence"] for r in by_what["s3 object"])
    [db] = by_what["database"]
    assert db["id"] == "acme-db" and db["evidence"] == "status inaccessible-encryption-credentials-recoverable"
    [node] = by_what["kops node (encrypted root volume)"]
    assert "stays stopped" in node["evidence"] and "Client.InternalError" in node["evidence"]
    [snapshot] = by_what["snapshot of a node volume"]
    assert "the volume never came to be" in snapshot["evidence"]
    assert rep["all_readable_again"] is True
    assert all(r["outcome"] == "readable" for r in rep["after_reenable"])
    assert [s for s in rep["steps"] if "disabled as its owner" in s] == [f"{ACME_KEY} disabled as its owner (account 111111111101)"]


def test_hooli_stopped_at_the_key_check_stays_readable(drilled):
    rep = report(drilled[2], "hooli")
    assert rep["nothing_readable"] is False
    readable = {r["what"] for r in rep["readable_while_revoked"]}
    assert {"s3 object", "database", "kops node (encrypted root volume)", "snapshot of a node volume"} <= readable
    assert rep["stores_off_key"] and all(s["outcome"] == "readable" for s in rep["stores_off_key"])


def test_the_drill_leaves_everything_as_it_found_it(drilled):
    aws, endpoint = drilled[:2]
    kms = client(endpoint, "kms", account="111111111101")
    assert kms.describe_key(KeyId=ACME_KEY)["KeyMetadata"]["KeyState"] == "Enabled"
    rds = client(endpoint, "rds")
    assert rds.describe_db_clusters(DBClusterIdentifier="acme-db")["DBClusters"][0]["Status"] == "available"
    ec2 = client(endpoint, "ec2")
    nodes = [i for r in ec2.describe_instances(Filters=[{"Name": "tag:KubernetesCluster", "Values": ["acme01-kops.k8s.local"]}])["Reservations"]
             for i in r["Instances"] if i["State"]["Name"] != "terminated"]
    assert nodes and all(i["State"]["Name"] == "running" for i in nodes)
    leftovers = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag-key", "Values": ["byok:revocation-drill"]}])["Snapshots"]
    assert leftovers == []
    volumes = ec2.describe_volumes(Filters=[{"Name": "tag-key", "Values": ["byok:revocation-drill"]}])["Volumes"]
    assert volumes == []
    s3 = client(endpoint, "s3")
    assert s3.get_object(Bucket="mattermost-acme-filestore", Key=".mattermost-healthcheck")["ServerSideEncryption"] == "aws:kms"


def test_refuses_anything_but_the_local_aws(drilled, tmp_path):
    aws, endpoint = drilled[:2]
    inventory = os.path.join(runner.DEMO_INVENTORY, "hosts.yml")
    for elsewhere in ("https://kms.us-east-1.amazonaws.com", ""):
        proc = runner.run_playbook(endpoint, inventory, str(tmp_path), "-l", "acme", playbook="playbooks/revocation_drill.yml",
                                   extra_env={"AWS_ENDPOINT_URL": elsewhere})
        assert proc.returncode == 2 and "runs only against the local AWS" in proc.stdout, proc.stdout[-2000:]
    kms = client(endpoint, "kms", account="111111111101")
    assert kms.describe_key(KeyId=ACME_KEY)["KeyMetadata"]["KeyState"] == "Enabled"
