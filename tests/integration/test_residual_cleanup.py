# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The residual clean-up through byok.yml: what the move onto the key left under the old key, found, kept for the
retention, then deleted or re-keyed; never before the re-keyed side is verified. boto3 is the independent reader."""

from __future__ import annotations

import datetime
import os
import re

import pytest

from tests.integration import runner
from tests.integration.test_audit import client
from tests.local_aws.harness import LocalAWS

ACCOUNT = "111111111192"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/0a0d17c0-0000-4000-8000-000000000092"
BUCKET = "mattermost-cleanco-filestore"
DB = "cleanco-db"
MANUAL = "cleanco-db-before-upgrade"
OLD = "cleanco-db-byok-old"          # the database the snapshot cut-over keeps aside
CUTOVER_SNAPSHOT = "cleanco-db-byok-final"
CLEANUP_TASK = "Delete or re-key what is left under the old key"


def task_status(stdout, task, host="cleanco"):
    """ok / changed / skipping of a task's line for the host in ansible-playbook's output."""
    section = stdout.split(task, 1)[1]
    return re.search(rf"^(ok|changed|skipping|failed|fatal): \[{host}", section, re.M).group(1)


@pytest.fixture(scope="module")
def private_aws(tmp_path_factory):
    """A private local AWS: the scenario deletes and renames, and its names are fixed."""
    with LocalAWS.start(extended=True, log_path=tmp_path_factory.mktemp("cleanup-aws") / "server.log") as server:
        yield server


@pytest.fixture(scope="module")
def fleet(private_aws, tmp_path_factory):
    endpoint = private_aws.endpoint_url
    tmp = tmp_path_factory.mktemp("cleanup")
    hv = runner.demo_host_vars("acme")
    hv.pop("byok_mattermost_installations", None)  # acme's installation writes acme's bucket, not this customer's
    hv.update({"byok_customer_account_id": ACCOUNT, "byok_vpc_id": "vpc-0a0d17c0000000092", "byok_kops_cluster_id": "cleanco01",
               "byok_keys": {"all": KEY}, "byok_services": ["s3", "rds"], "byok_s3_buckets": [BUCKET],
               "byok_rds_clusters": [{"identifier": DB, "region": "us-east-1"}],
               "byok_audit_s3_object_sample": 0, "byok_s3_all_versions": False,
               # Blue/Green needs logical replication, which this seeded customer lacks: the snapshot cut-over.
               "byok_rds_strategy": "snapshot_restore"})
    inventory = runner.write_inventory(str(tmp / "inventory"), {"cleanco": hv})
    runner.seed(endpoint, os.path.dirname(inventory))
    policy = client(endpoint, "kms", account=ACCOUNT).get_key_policy(KeyId=KEY, PolicyName="default")["Policy"]
    os.makedirs(tmp / "inventory" / "key-policies")
    (tmp / "inventory" / "key-policies" / f"{KEY.rsplit('/', 1)[1]}.json").write_text(policy)
    s3, rds = client(endpoint, "s3"), client(endpoint, "rds")
    # Versioned, so the re-encryption leaves the old versions behind; and a manual snapshot an SRE once took.
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    rds.create_db_cluster_snapshot(DBClusterIdentifier=DB, DBClusterSnapshotIdentifier=MANUAL)

    def run(name, *args, rc=0):
        proc = runner.run_playbook(endpoint, inventory, str(tmp / name), *args)
        assert proc.returncode == rc, proc.stdout[-4000:] + proc.stderr[-2000:]
        rep = runner.read_json(str(tmp / name / "customers" / "cleanco.json"))
        [customer] = runner.read_json(str(tmp / name / "fleet-summary.json"))["customers"]
        rep["steps"] = customer["steps"]
        rep["path"] = str(tmp / name / "customers" / "cleanco.json")
        return proc, rep

    return endpoint, run


def snapshot(rds, ident):
    try:
        return rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=ident)["DBClusterSnapshots"][0]
    except rds.exceptions.DBClusterSnapshotNotFoundFault:
        return None


def cluster(rds, ident):
    try:
        return rds.describe_db_clusters(DBClusterIdentifier=ident)["DBClusters"][0]
    except rds.exceptions.DBClusterNotFoundFault:
        return None


def old_versions(s3):
    out = []
    for v in s3.list_object_versions(Bucket=BUCKET).get("Versions", []):
        head = s3.head_object(Bucket=BUCKET, Key=v["Key"], VersionId=v["VersionId"])
        if head.get("SSEKMSKeyId") != KEY:
            out.append(v["VersionId"])
    return out


def test_cleanup_lifecycle(fleet):
    endpoint, run = fleet
    s3, rds = client(endpoint, "s3"), client(endpoint, "rds")
    provider_key = snapshot(rds, MANUAL)["KmsKeyId"]

    # 1. Check mode before anything moved: every copy is kept (nothing re-keyed yet), nothing changes.
    proc, rep = run("plan", "--check", "--diff", "-e", "byok_allow_disruption=true", "-e", "byok_residual_retention_days=0")
    assert snapshot(rds, MANUAL)["KmsKeyId"] == provider_key and snapshot(rds, MANUAL + "-rekeyed") is None
    [step] = [s for s in rep["steps"] if s["step"] == "cleanup"]
    assert step["changed"] is False and step["disruptive"] is False
    assert f"{MANUAL} - kept: cleanco-db is not on the customer key yet" in step["summary"]

    # 2. Only S3 moves, retention 0: the database is not re-keyed, so its snapshot is not touched ("never before the
    #    re-keyed side is verified"); the bucket is verified, so its old versions go.
    proc, rep = run("s3-only", "-e", "byok_services_only=s3", "-e", "byok_residual_retention_days=0")
    assert snapshot(rds, MANUAL)["KmsKeyId"] == provider_key and snapshot(rds, MANUAL + "-rekeyed") is None
    assert old_versions(s3) == []
    assert rep["summary"]["revocable"] is False

    # 3. The database moves (snapshot cut-over), default retention (30 days): the old database is kept, tagged with
    #    the start of its retention and dated in the report; manual snapshots (the cut-over's own final snapshot
    #    included) are re-keyed by copy at once.
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    proc, rep = run("moved", "-e", "byok_allow_disruption=true")
    old = cluster(rds, OLD)
    assert old is not None and old["DeletionProtection"] is True
    since = {t["Key"]: t["Value"] for t in old["TagList"]}["byok:residual-since"]
    assert datetime.datetime.fromisoformat(since.replace("Z", "+00:00")) >= before
    for manual in (MANUAL, CUTOVER_SNAPSHOT):
        assert snapshot(rds, manual) is None
        copied = snapshot(rds, manual + "-rekeyed")
        assert copied["KmsKeyId"] == KEY and copied["Status"] == "available"
    assert rep["summary"]["revocable"] is False
    kept = {r["id"]: r for r in rep["summary"]["readable_after_revocation"]}
    due = datetime.datetime.fromisoformat(since.replace("Z", "+00:00")) + datetime.timedelta(days=30)
    assert kept[OLD]["goes"] == due.isoformat().replace("+00:00", "Z")
    automated = [s for s in rds.describe_db_cluster_snapshots(SnapshotType="automated")["DBClusterSnapshots"]
                 if s["KmsKeyId"] == provider_key and s["DBClusterIdentifier"] in (DB, OLD)]
    assert automated and {s["DBClusterSnapshotIdentifier"] for s in automated} <= set(kept)

    # 4. Retention 0: the old database goes, its final snapshot is re-keyed, its automated backups go with it.
    proc, rep = run("cleaned", "--tags", "cleanup,audit", "--diff", "-e", "byok_residual_retention_days=0")
    assert task_status(proc.stdout, CLEANUP_TASK) == "changed"
    assert cluster(rds, OLD) is None
    assert snapshot(rds, f"{OLD}-final") is None
    assert snapshot(rds, f"{OLD}-final-rekeyed")["KmsKeyId"] == KEY
    left = [s for s in rds.describe_db_cluster_snapshots()["DBClusterSnapshots"] if s["KmsKeyId"] == provider_key
            and s["DBClusterIdentifier"].startswith(DB)]
    assert left == []
    assert cluster(rds, DB)["KmsKeyId"] == KEY  # the live database untouched
    assert rep["summary"]["revocable"] is True, rep["summary"]["readable_after_revocation"]

    # 5. Again: nothing due, nothing changes.
    proc, rep = run("again", "--tags", "cleanup,audit", "-e", "byok_residual_retention_days=0")
    assert task_status(proc.stdout, CLEANUP_TASK) == "ok"
    assert rep["summary"]["revocable"] is True


def test_bad_retention_is_refused_before_any_change(fleet):
    endpoint, run = fleet
    rds = client(endpoint, "rds")
    before = sorted(s["DBClusterSnapshotIdentifier"] for s in rds.describe_db_cluster_snapshots()["DBClusterSnapshots"])
    proc, rep = run("bad", "--tags", "cleanup,audit", "-e", "byok_residual_retention_days=-1", rc=2)
    fleet_summary = runner.read_json(os.path.join(os.path.dirname(os.path.dirname(rep["path"])), "fleet-summary.json"))
    [customer] = fleet_summary["customers"]
    assert customer["outcome"]["status"] == "failed"
    assert "retention_days: must be 0" in customer["outcome"]["message"] and "byok_residual_retention_days" in customer["outcome"]["message"]
    assert sorted(s["DBClusterSnapshotIdentifier"] for s in rds.describe_db_cluster_snapshots()["DBClusterSnapshots"]) == before
