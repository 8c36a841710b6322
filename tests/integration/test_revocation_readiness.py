# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Revocation readiness and residual copies in the audit, through byok.yml, checked with boto3 as the reader."""

from __future__ import annotations

import datetime
import json
import os

import pytest

from tests.integration import runner
from tests.integration.test_audit import AUDIT_ONLY, DEMO, client

STATS = {"ANSIBLE_SHOW_CUSTOM_STATS": "true", "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}


@pytest.fixture(scope="module")
def seeded_audit(local_aws, tmp_path_factory):
    endpoint = local_aws.endpoint_url
    runner.seed(endpoint)
    artifacts = str(tmp_path_factory.mktemp("revocation-artifacts"))
    proc = runner.run_playbook(endpoint, os.path.join(runner.DEMO_INVENTORY, "hosts.yml"), artifacts, *AUDIT_ONLY,
                               extra_env=STATS)
    assert proc.returncode == 2, proc.stdout[-4000:] + proc.stderr[-2000:]  # hooli fails its key check
    return endpoint, artifacts, proc


def report(artifacts, customer):
    return runner.read_json(os.path.join(artifacts, "customers", f"{customer}.json"))


def custom_stats(stdout):
    """The set_stats data ansible-playbook prints with ANSIBLE_SHOW_CUSTOM_STATS."""
    text = stdout.split("CUSTOM STATS:", 1)[1].split("RUN:", 1)[1]
    return json.JSONDecoder().raw_decode(text.strip())[0]


@pytest.mark.parametrize("customer", DEMO)
def test_nobody_is_revocable_before_byok_and_every_store_is_listed(seeded_audit, customer):
    rep = report(seeded_audit[1], customer)
    summary = rep["summary"]
    assert summary["revocable"] is False
    readable = {(r["type"], r["id"]) for r in summary["readable_after_revocation"] if r["kind"] == "store"}
    off_key = {(r["type"], r["id"]) for r in rep["resources"] if r["status"] not in ("customer_key", "not_enabled")}
    assert off_key and readable == off_key
    copies = {(r["type"], r["id"]) for r in summary["readable_after_revocation"] if r["kind"] == "copy"}
    assert copies == {(c["type"], c["id"]) for c in rep["copies"] if c["status"] != "customer_key"}
    assert summary["readable_count"] == len(summary["readable_after_revocation"])


def test_noncurrent_versions_listed_with_their_key_size_and_date(seeded_audit):
    endpoint, artifacts = seeded_audit[:2]
    bucket = "mattermost-acme-filestore"  # the demo's versioned bucket
    s3 = client(endpoint, "s3")
    listed = s3.list_object_versions(Bucket=bucket)
    expected = {}
    for v in listed["Versions"]:
        if not v["IsLatest"]:
            head = s3.head_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
            expected[f"{bucket}/{v['Key']}?versionId={v['VersionId']}"] = (head["SSEKMSKeyId"], v["Size"])
    assert expected, "the demo's versioned bucket has a noncurrent version"
    copies = {c["id"]: c for c in report(artifacts, "acme")["copies"] if c["type"] == "s3_noncurrent_version"}
    assert {cid: (c["key_arn"], c["size_bytes"]) for cid, c in copies.items()} == expected
    for c in copies.values():
        assert c["status"] == "other_key" and c["action"] == "delete" and c["created"] and c["noncurrent_since"]


@pytest.mark.parametrize("customer, database", [("acme", "acme-db"), ("initech", "initech-db")])
def test_automated_snapshots_listed_with_the_date_they_age_out(seeded_audit, customer, database):
    endpoint, artifacts = seeded_audit[:2]
    region = runner.demo_host_vars(customer)["byok_region"]
    rds = client(endpoint, "rds", region=region)
    retention = rds.describe_db_clusters(DBClusterIdentifier=database)["DBClusters"][0]["BackupRetentionPeriod"]
    snaps = {s["DBClusterSnapshotIdentifier"]: s for s in rds.describe_db_cluster_snapshots(DBClusterIdentifier=database)["DBClusterSnapshots"]}
    assert snaps
    copies = {c["id"]: c for c in report(artifacts, customer)["copies"] if c["type"] == "rds_cluster_snapshot"}
    assert set(copies) == set(snaps)
    for sid, snap in snaps.items():
        c = copies[sid]
        goes = (snap["SnapshotCreateTime"].astimezone(datetime.timezone.utc) + datetime.timedelta(days=retention))
        assert c["key_arn"] == snap["KmsKeyId"] and c["status"] == "other_key"
        assert c["goes"] == goes.isoformat(timespec="seconds").replace("+00:00", "Z")
        assert c["action"] == "ages_out" and f"{retention}-day backup retention" in c["goes_how"]


def test_fleet_summary_and_set_stats_say_who_is_revocable(seeded_audit):
    artifacts, proc = seeded_audit[1:]
    fleet = runner.read_json(os.path.join(artifacts, "fleet-summary.json"))
    assert {c["customer"]: c["summary"]["revocable"] for c in fleet["customers"]} == {name: False for name in DEMO}
    assert all("copies" in c for c in fleet["customers"])
    stats = custom_stats(proc.stdout)
    assert stats["byok_revocable"] == {name: False for name in DEMO}
    assert stats["byok_audit"]["acme"]["readable_count"] == report(artifacts, "acme")["summary"]["readable_count"]
    md = open(os.path.join(artifacts, "fleet-summary.md")).read()
    html = open(os.path.join(artifacts, "fleet-summary.html")).read()
    assert "| Compliant | Revocable |" in md and "<th>Revocable</th>" in html
    assert "**Revocation:** not revocable" in md and "Readable after revocation" in html


def test_failed_row_says_why_not_which_task(seeded_audit):
    artifacts = seeded_audit[1]
    md = open(os.path.join(artifacts, "fleet-summary.md")).read()
    html = open(os.path.join(artifacts, "fleet-summary.html")).read()
    [row] = [line for line in md.splitlines() if line.startswith("| hooli |")]
    # The finding: the node role's statement is missing from the key policy.
    assert "POLICY_MISSING_PERMISSION" in row and "role/nodes.hooli01-kops.k8s.local" in row
    assert "Stop this customer" not in row
    [html_row] = [line for line in html.splitlines() if 'href="#hooli"' in line]
    html_row += html.split(html_row, 1)[1].split("</tr>", 1)[0]
    assert "role/nodes.hooli01-kops.k8s.local" in html_row and "Stop this customer" not in html_row


def test_revocable_once_every_store_and_version_is_on_the_key(local_aws, tmp_path):
    """An S3-only customer: its objects moved onto its key leave the old versions readable until they are gone."""
    endpoint = local_aws.endpoint_url
    hv = runner.demo_host_vars("acme")
    hv.pop("byok_mattermost_installations", None)  # acme's installation writes acme's bucket, not this customer's
    hv.update({
        "byok_customer_account_id": "111111111191",
        "byok_vpc_id": "vpc-0a0d17c0000000091",
        "byok_kops_cluster_id": "revokeco01",
        "byok_keys": {"all": "arn:aws:kms:us-east-1:111111111191:key/0a0d17c0-0000-4000-8000-000000000091"},
        "byok_services": ["s3"],
        "byok_s3_buckets": ["mattermost-revokeco-filestore"],
        "byok_rds_clusters": [{"identifier": "revokeco-db", "region": "us-east-1"}],
    })
    inventory = runner.write_inventory(str(tmp_path / "inventory"), {"revokeco": hv})
    runner.seed(endpoint, os.path.dirname(inventory))
    key = hv["byok_keys"]["all"]
    policy = client(endpoint, "kms", account="111111111191").get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    os.makedirs(tmp_path / "inventory" / "key-policies")
    (tmp_path / "inventory" / "key-policies" / f"{key.rsplit('/', 1)[1]}.json").write_text(policy)
    s3 = client(endpoint, "s3")
    bucket = "mattermost-revokeco-filestore"
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}, "BucketKeyEnabled": True}]})
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page.get("Contents", [])]
    for k in keys:
        s3.copy_object(Bucket=bucket, Key=k, CopySource={"Bucket": bucket, "Key": k},
                       ServerSideEncryption="aws:kms", SSEKMSKeyId=key, MetadataDirective="COPY")

    def audit(name):
        proc = runner.run_playbook(endpoint, inventory, str(tmp_path / name), *AUDIT_ONLY, "-e", "byok_audit_s3_object_sample=0")
        assert proc.returncode == 0, proc.stdout[-3000:]
        return runner.read_json(str(tmp_path / name / "customers" / "revokeco.json"))

    rep = audit("before")
    old = [v for v in s3.list_object_versions(Bucket=bucket)["Versions"] if not v["IsLatest"]]
    assert len(old) == len(keys)
    assert rep["summary"]["compliant"] is True and rep["summary"]["revocable"] is False
    readable = {r["id"] for r in rep["summary"]["readable_after_revocation"]}
    assert readable == {f"{bucket}/{v['Key']}?versionId={v['VersionId']}" for v in old}
    for v in old:
        s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
    rep = audit("after")
    assert rep["summary"]["revocable"] is True and rep["summary"]["readable_after_revocation"] == []
