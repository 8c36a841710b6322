# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Clean up the copies of a customer's data left under another key once the retention period has passed.

What happens to each copy (residual_copies tells which):
- a database kept aside (rollback) - deleted once kept aside longer than the retention; AWS takes a final snapshot
  (`<name>-final`, old key), which is then re-keyed like any manual snapshot; its automated backups go with it.
- a manual snapshot (RDS or EBS) - copied onto the customer key (`<id>-rekeyed`, tags kept), the original deleted
  once the copy is available. Not held back by the retention: the data stays, on the customer's key.
- a retained automated backup, a snapshot the etcd re-key took, a noncurrent S3 version - deleted after the retention.
- a volume the etcd re-key set aside - snapshotted, the snapshot copied onto the customer key, then the volume and the
  old-key snapshot deleted, after the retention.
- an automated snapshot of a live database - nothing to do: reported with the date it ages out.

Never before the re-keyed side is verified: a copy is touched only when the live store it belongs to is on the
customer's key (the database available on the key; the bucket's default and the object's current version on the
key; the etcd member's volume on the key and attached). Every step is found again from AWS (names and tags), so an
interrupted run is finished by the next one; a second run with nothing due changes nothing.
"""

from __future__ import annotations

import datetime
import time

try:
    from botocore.exceptions import ClientError
except ImportError:
    pass  # the module reports the missing SDK

from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import same_kms_key
from ansible_collections.mattermost.byok.plugins.module_utils.aws.errors import error_code
from ansible_collections.mattermost.byok.plugins.module_utils.fleet import residual_copies as rc


class CleanupError(Exception):
    pass


def now_utc() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def is_due(since, retention_days: int, now: datetime.datetime) -> bool:
    """Kept at least `retention_days` since `since`; an unknown start is never due (its clock starts now)."""
    start = rc.parse_time(since)
    return start is not None and now >= start + datetime.timedelta(days=retention_days)


def plan(copies: list[dict], retention_days: int, now: datetime.datetime, verified: dict) -> list[dict]:
    """One entry per copy not on the customer key: what the clean-up does now, or why not (pure).

    `verified` maps a copy's source (database, bucket, cluster) to None when its live side is verified on the
    customer key, else to the reason it is not.
    """
    entries = []
    for c in copies:
        if c["status"] == "customer_key":
            continue
        entry = {"type": c["type"], "id": c["id"], "region": c["region"], "key_arn": c.get("key_arn"), "source": c["source"],
                 "since": c.get("since"), "goes": c.get("goes"), "action": c["action"], "do": None, "why": ""}
        blocked = verified.get(c["source"], "its live side was not checked")
        if c["status"] == "error":
            entry["why"] = f"could not be read: {c.get('detail')}"
        elif c["action"] in (rc.AGES_OUT, rc.WITH_SOURCE, rc.NONE):
            entry["why"] = c.get("goes_how") or "nothing to do"
        elif blocked:
            entry["why"] = f"kept: {blocked}"
        elif c["action"] == rc.REKEY:
            entry["do"] = "rekey"
            entry["why"] = "copied onto the customer key, then the original deleted"
        elif c["type"] == "rds_retained_database" and not c.get("since"):
            entry["do"] = "mark"
            entry["why"] = f"retention of {retention_days} day(s) starts now (tagged {rc.RESIDUAL_SINCE_TAG})"
            entry["goes"] = rc.add_days(now, retention_days)
            if retention_days == 0:
                entry["do"] = "mark_delete"
        elif is_due(c.get("since"), retention_days, now):
            entry["do"] = "delete"
            entry["why"] = f"kept since {c.get('since')}, longer than the {retention_days}-day retention"
        else:
            entry["why"] = (f"kept until {c.get('goes') or rc.add_days(c.get('since'), retention_days) or '?'} "
                            f"({retention_days}-day retention from {c.get('since') or 'an unknown time'})")
        entries.append(entry)
    return entries


class Cleanup:
    """Runs a plan for one customer. `clients(service, region)` gives boto3 clients; waits poll every `poll` s."""

    def __init__(self, config: dict, clients, retention_days: int, poll: float = 5, timeout: float = 3600):
        self.config = config
        self.clients = clients
        self.retention_days = retention_days
        self.poll = poll
        self.timeout = timeout
        self.done: list[str] = []

    # -- reading ----------------------------------------------------------------------------------------------------
    def find(self) -> list[dict]:
        finder = rc.ResidualFinder(self.config, self.clients, retention_days=self.retention_days)
        cfg = self.config
        copies = []
        if "s3" in cfg["services"]:
            for bucket in cfg["s3_buckets"]:
                copies += finder.s3(bucket, cfg["service_keys"]["s3"])
        if "rds" in cfg["services"]:
            for db in cfg["rds_clusters"]:
                copies += finder.rds(db, db.get("key_arn") or cfg["service_keys"]["rds"])
        if "ebs" in cfg["services"] and cfg.get("kops_cluster_name"):
            copies += finder.ebs(cfg["kops_cluster_name"], cfg["service_keys"]["ebs"])
        return copies

    def verify(self, copies: list[dict]) -> dict:
        """source -> None when its live side is on the customer key, else why not."""
        cfg = self.config
        result = {}
        for db in cfg.get("rds_clusters", []) if "rds" in cfg["services"] else []:
            result[db["identifier"]] = self._verify_database(db, db.get("key_arn") or cfg["service_keys"]["rds"])
        for bucket in cfg.get("s3_buckets", []) if "s3" in cfg["services"] else []:
            result[bucket] = self._verify_bucket(bucket, cfg["service_keys"]["s3"])
        if "ebs" in cfg["services"] and cfg.get("kops_cluster_name"):
            result[cfg["kops_cluster_name"]] = self._verify_etcd(cfg["kops_cluster_name"], cfg["service_keys"]["ebs"])
        return result

    def _verify_database(self, db, key):
        rds = self.clients("rds", db["region"])
        try:
            if db.get("kind", "cluster") == "cluster":
                found = rds.describe_db_clusters(DBClusterIdentifier=db["identifier"])["DBClusters"][0]
            else:
                found = rds.describe_db_instances(DBInstanceIdentifier=db["identifier"])["DBInstances"][0]
        except ClientError as e:
            return f"{db['identifier']} could not be read ({error_code(e)})"
        if not (found.get("StorageEncrypted") and same_kms_key(found.get("KmsKeyId"), key)):
            return f"{db['identifier']} is not on the customer key yet ({found.get('KmsKeyId')})"
        status = found.get("Status") or found.get("DBInstanceStatus")
        if status != "available":
            return f"{db['identifier']} is {status}, not available"
        return None

    def _verify_bucket(self, bucket, key):
        s3 = self.clients("s3", self.config["region"])
        try:
            rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        except ClientError as e:
            return f"{bucket}'s default encryption could not be read ({error_code(e)})"
        default = (rules[0].get("ApplyServerSideEncryptionByDefault") or {}) if rules else {}
        if default.get("SSEAlgorithm") != "aws:kms" or not same_kms_key(default.get("KMSMasterKeyID"), key):
            return f"{bucket}'s default encryption is not the customer key yet"
        return None

    def _verify_etcd(self, cluster, key):
        ec2 = self.clients("ec2", self.config["region"])
        volumes = ec2.describe_volumes(Filters=[{"Name": "tag:KubernetesCluster", "Values": [cluster]}])["Volumes"]
        etcd = [v for v in volumes if any(t["Key"].startswith("k8s.io/etcd/") for t in v.get("Tags", []))]
        off = [v["VolumeId"] for v in etcd if not (v.get("Encrypted") and same_kms_key(v.get("KmsKeyId"), key))]
        detached = [v["VolumeId"] for v in etcd if v.get("State") != "in-use"]
        if off:
            return f"etcd volume(s) {', '.join(off)} not on the customer key yet"
        if detached:
            return f"etcd volume(s) {', '.join(detached)} not attached (member not verified)"
        return None

    # -- acting -----------------------------------------------------------------------------------------------------
    def run(self, check_mode: bool, now: datetime.datetime | None = None) -> dict:
        now = now or now_utc()
        copies = self.find()
        verified = self.verify(copies)
        entries = plan(copies, self.retention_days, now, verified)
        by_id = {c["id"]: c for c in copies}
        before = sorted(e["id"] for e in entries)
        if not check_mode:
            for entry in entries:
                if entry["do"]:
                    self.act(entry, by_id[entry["id"]], now)
            # A database deleted now leaves its final snapshot: re-keyed in the same run (the data stays, on the key).
            if any(e["do"] in ("delete", "mark_delete") and e["type"] == "rds_retained_database" for e in entries):
                again = self.find()
                for entry in plan(again, self.retention_days, now, verified):
                    if entry["do"] == "rekey" and entry["id"].endswith("-final"):
                        self.act(entry, next(c for c in again if c["id"] == entry["id"]), now)
                        entries.append(entry)
        removed = {e["id"] for e in entries if e["do"] in ("rekey", "delete", "mark_delete")}
        # An automated snapshot goes with its database (AWS's default on delete).
        gone_with = {c["id"]: c["owner"] for c in copies if c["action"] == rc.WITH_SOURCE and c.get("owner") in removed}
        removed |= set(gone_with)
        for entry in entries:
            if entry["id"] in gone_with:
                entry["gone"] = True
                entry["why"] = f"deleted with {gone_with[entry['id']]}" + (" (predicted)" if check_mode else "")
        after = sorted(set(before) - removed)
        changed = any(e["do"] for e in entries)
        return {"changed": changed, "actions": entries, "done": self.done,
                "diff": {"before": "\n".join(before) + ("\n" if before else ""), "after": "\n".join(after) + ("\n" if after else "")},
                "remaining": after, "retention_days": self.retention_days}

    def act(self, entry, copy, now):
        handler = {
            "rds_retained_database": self._database,
            "rds_cluster_snapshot": self._rds_snapshot,
            "rds_db_snapshot": self._rds_snapshot,
            "rds_retained_automated_backup": self._retained_backup,
            "ebs_snapshot": self._ebs_snapshot,
            "ebs_volume_set_aside": self._ebs_volume,
            "s3_noncurrent_version": self._s3_version,
        }[copy["type"]]
        handler(entry, copy, now)

    def _wait(self, what, probe):
        deadline = time.monotonic() + self.timeout
        while True:
            done, status = probe()
            if done:
                return
            if time.monotonic() > deadline:
                raise CleanupError(f"{what}: still {status} after {self.timeout} s; run again to resume")
            time.sleep(self.poll)

    # RDS
    def _database(self, entry, copy, now):
        rds = self.clients("rds", copy["region"])
        name = copy["id"]
        if entry["do"] in ("mark", "mark_delete"):
            rds.add_tags_to_resource(ResourceName=copy["arn"], Tags=[{"Key": rc.RESIDUAL_SINCE_TAG, "Value": rc.iso(now)}])
            self.done.append(f"{name}: kept aside since {rc.iso(now)} ({rc.RESIDUAL_SINCE_TAG})")
            if entry["do"] == "mark":
                return
        final = f"{name}-final"
        if copy.get("kind", "cluster") == "cluster":
            rds.modify_db_cluster(DBClusterIdentifier=name, DeletionProtection=False, ApplyImmediately=True)
            cluster = rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]
            for member in cluster.get("DBClusterMembers", []):
                rds.delete_db_instance(DBInstanceIdentifier=member["DBInstanceIdentifier"], SkipFinalSnapshot=True)
            self._wait(f"the deletion of {name}'s instances", lambda: (
                not rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0].get("DBClusterMembers"), "deleting"))
            rds.delete_db_cluster(DBClusterIdentifier=name, FinalDBSnapshotIdentifier=final)
        else:
            rds.modify_db_instance(DBInstanceIdentifier=name, DeletionProtection=False, ApplyImmediately=True)
            rds.delete_db_instance(DBInstanceIdentifier=name, FinalDBSnapshotIdentifier=final)
        self.done.append(f"{name}: deleted, final snapshot {final}")

    def _rds_snapshot(self, entry, copy, now):
        rds = self.clients("rds", copy["region"])
        source, target = copy["id"], copy["id"] + rc.REKEYED_SUFFIX
        cluster = copy["type"] == "rds_cluster_snapshot"
        key = copy["expected_key_arn"]
        describe = (lambda i: rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=i)["DBClusterSnapshots"]) if cluster \
            else (lambda i: rds.describe_db_snapshots(DBSnapshotIdentifier=i)["DBSnapshots"])

        def status(ident):
            try:
                found = describe(ident)
            except ClientError as e:
                if error_code(e) in ("DBClusterSnapshotNotFoundFault", "DBSnapshotNotFound"):
                    return None
                raise
            return found[0]["Status"] if found else None

        self._wait(f"snapshot {source}", lambda: (status(source) == "available", status(source)))
        if status(target) is None:
            if cluster:
                rds.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=source, TargetDBClusterSnapshotIdentifier=target,
                                             KmsKeyId=key, CopyTags=True)
            else:
                rds.copy_db_snapshot(SourceDBSnapshotIdentifier=source, TargetDBSnapshotIdentifier=target, KmsKeyId=key, CopyTags=True)
        self._wait(f"the copy {target}", lambda: (status(target) == "available", status(target)))
        copied = describe(target)[0]
        if not same_kms_key(copied.get("KmsKeyId"), key):
            raise CleanupError(f"{target} is on {copied.get('KmsKeyId')}, not the customer key; {source} is kept")
        if cluster:
            rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=source)
        else:
            rds.delete_db_snapshot(DBSnapshotIdentifier=source)
        self.done.append(f"{source}: copied onto the customer key as {target}, original deleted")

    def _retained_backup(self, entry, copy, now):
        rds = self.clients("rds", copy["region"])
        if copy.get("kind", "cluster") == "cluster":
            rds.delete_db_cluster_automated_backup(DbClusterResourceId=copy["id"])
        else:
            rds.delete_db_instance_automated_backup(DbiResourceId=copy["id"])
        self.done.append(f"{copy['id']}: retained automated backup of {copy.get('database')} deleted")

    # EBS
    def _copy_snapshot_onto_key(self, ec2, snapshot_id, key, region, tags):
        existing = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag:byok:rekeyed-from", "Values": [snapshot_id]}])["Snapshots"]
        if existing:
            copy_id = existing[0]["SnapshotId"]
        else:
            tags = [t for t in tags if not t["Key"].startswith("aws:")] + [{"Key": "byok:rekeyed-from", "Value": snapshot_id}]
            copy_id = ec2.copy_snapshot(SourceSnapshotId=snapshot_id, SourceRegion=region, Encrypted=True, KmsKeyId=key,
                                        Description=f"{snapshot_id} on the customer key",
                                        TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])["SnapshotId"]

        def state():
            found = ec2.describe_snapshots(SnapshotIds=[copy_id])["Snapshots"][0]
            return found["State"] == "completed", found["State"]
        self._wait(f"the copy {copy_id} of {snapshot_id}", state)
        copied = ec2.describe_snapshots(SnapshotIds=[copy_id])["Snapshots"][0]
        if not same_kms_key(copied.get("KmsKeyId"), key):
            raise CleanupError(f"{copy_id} is on {copied.get('KmsKeyId')}, not the customer key; {snapshot_id} is kept")
        return copy_id

    def _ebs_snapshot(self, entry, copy, now):
        ec2 = self.clients("ec2", copy["region"])
        if entry["do"] == "rekey":
            tags = ec2.describe_snapshots(SnapshotIds=[copy["id"]])["Snapshots"][0].get("Tags", [])
            copy_id = self._copy_snapshot_onto_key(ec2, copy["id"], copy["expected_key_arn"], copy["region"], tags)
            ec2.delete_snapshot(SnapshotId=copy["id"])
            self.done.append(f"{copy['id']}: copied onto the customer key as {copy_id}, original deleted")
        else:
            ec2.delete_snapshot(SnapshotId=copy["id"])
            self.done.append(f"{copy['id']}: deleted")

    def _ebs_volume(self, entry, copy, now):
        """Snapshot (old key) -> copy onto the customer key -> delete the volume and the old-key snapshot."""
        ec2 = self.clients("ec2", copy["region"])
        vid = copy["id"]
        volume = ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]
        if volume.get("Attachments"):
            raise CleanupError(f"{vid} is attached to {volume['Attachments'][0].get('InstanceId')}; a set-aside volume must be detached")
        tags = [t for t in volume.get("Tags", []) if t["Key"] != rc.SET_ASIDE_TAG]
        found = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag:byok:final-of", "Values": [vid]}])["Snapshots"]
        if found:
            snap_id = found[0]["SnapshotId"]
        else:
            snap_id = ec2.create_snapshot(VolumeId=vid, Description=f"final snapshot of set-aside {vid}", TagSpecifications=[
                {"ResourceType": "snapshot", "Tags": tags + [{"Key": "byok:final-of", "Value": vid}]}])["SnapshotId"]

        def state():
            s = ec2.describe_snapshots(SnapshotIds=[snap_id])["Snapshots"][0]
            return s["State"] == "completed", s["State"]
        self._wait(f"the final snapshot {snap_id} of {vid}", state)
        copy_id = self._copy_snapshot_onto_key(ec2, snap_id, copy["expected_key_arn"], copy["region"],
                                               tags + [{"Key": "byok:final-of", "Value": vid}])
        ec2.delete_volume(VolumeId=vid)
        ec2.delete_snapshot(SnapshotId=snap_id)
        self.done.append(f"{vid}: deleted; its data kept as {copy_id} on the customer key")

    # S3
    def _s3_version(self, entry, copy, now):
        s3 = self.clients("s3", copy["region"])
        # The object's current version (if any) must be on the key: the newest data stays readable with it.
        try:
            head = s3.head_object(Bucket=copy["bucket"], Key=copy["key"])
        except ClientError as e:
            if error_code(e) not in ("404", "NoSuchKey", "405", "MethodNotAllowed"):
                raise
            head = None  # deleted object (a delete marker is current): its old versions are deleted data
        if head is not None and not same_kms_key(head.get("SSEKMSKeyId"), copy["expected_key_arn"]):
            entry["do"] = None
            entry["why"] = "kept: the object's current version is not on the customer key yet"
            return
        s3.delete_object(Bucket=copy["bucket"], Key=copy["key"], VersionId=copy["version_id"])
        self.done.append(f"{copy['id']}: noncurrent version deleted")
