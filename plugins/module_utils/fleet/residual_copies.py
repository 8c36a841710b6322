# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every copy of a customer's data besides the live stores, the key it is under and when it goes.

The live stores (buckets' current objects, databases, cluster volumes) are the audit's resources. Around them,
moving onto the customer's key leaves copies behind: the old database kept for rollback, its final snapshot,
manual and automated snapshots, retained automated backups, EBS snapshots and volumes set aside, and noncurrent
S3 object versions. Any of them still under another key stays readable after the customer revokes theirs.

Read-only. Names and tags are the ones rds_reencrypt and the etcd re-key leave (`<id>-old1`, `<id>-byok-old`,
`<id>-byok-new`, `<id>-byok-final`, `byok:set-aside-cluster`).
"""

from __future__ import annotations

import datetime

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # the module reports the missing SDK

from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import same_kms_key
from ansible_collections.mattermost.byok.plugins.module_utils.aws.errors import error_code
from ansible_collections.mattermost.byok.plugins.module_utils.aws.errors import error_text

# What the clean-up does with a copy (residual_cleanup acts on these).
DELETE = "delete"                  # kept aside for rollback: deleted after the retention period
REKEY = "rekey"                    # a manual snapshot worth keeping: copied onto the customer key, the original deleted
AGES_OUT = "ages_out"              # an automated backup: AWS deletes it when it leaves the backup retention period
WITH_SOURCE = "with_source"        # an automated snapshot of a database kept aside: goes when that database is deleted
NONE = "none"                      # on the customer key: nothing to do

# Names rds_reencrypt gives what it keeps aside (rds_plan.Names).
KEPT_ASIDE_SUFFIXES = ("-old1", "-byok-old", "-byok-new")
SET_ASIDE_TAG = "byok:set-aside-cluster"     # EBS volumes and snapshots the etcd re-key set aside, value = cluster name
SET_ASIDE_AT_TAG = "byok:set-aside-at"       # when (ISO 8601, UTC)
SET_ASIDE_MEMBER_TAG = "byok:set-aside-member"
RESIDUAL_SINCE_TAG = "byok:residual-since"  # when the clean-up first saw a database kept aside (its retention starts)
REKEYED_SUFFIX = "-rekeyed"                 # a manual snapshot's copy on the customer key


def iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.astimezone(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return str(value)


def parse_time(value) -> datetime.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    text = str(value).replace("Z", "+00:00")
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def add_days(value, days) -> str | None:
    start = parse_time(value)
    if start is None or days is None:
        return None
    return iso(start + datetime.timedelta(days=int(days)))


def copy_status(key_arn, encrypted, expected) -> str:
    """customer_key / other_key / unencrypted (a copy of an enabled service is always in scope)."""
    if not encrypted:
        return "unencrypted"
    return "customer_key" if expected and same_kms_key(key_arn, expected) else "other_key"


def copy_record(service, ctype, cid, region, key_arn, encrypted, expected, *, source, size_bytes=None, created=None,
                goes=None, goes_how="", action=NONE, detail="", **extra) -> dict:
    status = copy_status(key_arn, encrypted, expected)
    rec = {"service": service, "type": ctype, "id": cid, "region": region, "key_arn": key_arn, "encrypted": bool(encrypted),
           "expected_key_arn": expected, "status": status, "source": source, "size_bytes": size_bytes,
           "created": iso(created), "goes": goes, "goes_how": goes_how,
           "action": action if status != "customer_key" else NONE, "detail": detail}
    rec.update(extra)
    return rec


def problem_record(service, ctype, cid, region, expected, detail, source) -> dict:
    """A copy that could not be read: unknown is not 'gone', so it keeps the customer from being revocable."""
    return {"service": service, "type": ctype, "id": cid, "region": region, "key_arn": None, "encrypted": None,
            "expected_key_arn": expected, "status": "error", "source": source, "size_bytes": None, "created": None,
            "goes": None, "goes_how": "", "action": NONE, "detail": detail}


GIB = 1024 ** 3


class ResidualFinder:
    """Finds one customer's copies. `clients(service, region)` returns a thread-safe boto3 client."""

    def __init__(self, config: dict, clients, pool=None, retention_days: int | None = None):
        self.config = config
        self.clients = clients
        self.pool = pool
        self.retention_days = retention_days

    def _due(self, since):
        """When the clean-up removes a copy kept since `since` (None: retention or start unknown)."""
        return add_days(since, self.retention_days) if self.retention_days is not None else None

    def _map(self, fn, items):
        return list(self.pool.map(fn, items)) if self.pool else [fn(i) for i in items]

    # -- RDS ----------------------------------------------------------------------------------------------------
    def rds(self, database: dict, expected: str) -> list[dict]:
        """Kept-aside databases, snapshots and retained automated backups of one configured database."""
        region, ident, kind = database["region"], database["identifier"], database.get("kind", "cluster")
        rds = self.clients("rds", region)
        names = [ident] + [ident + s for s in KEPT_ASIDE_SUFFIXES]
        try:
            live = {n: self._describe_db(rds, kind, n) for n in names}
            records = []
            for name in names[1:]:
                found = live[name]
                if found is not None:
                    records.append(self._kept_aside(found, kind, region, expected, ident))
            retention = {n: (d or {}).get("BackupRetentionPeriod") for n, d in live.items()}
            records += self._snapshots(rds, kind, names, region, expected, ident, live, retention)
            records += self._retained_backups(rds, kind, names, region, expected, ident, live)
        except (ClientError, BotoCoreError) as e:
            return [problem_record("rds", "rds_copies", ident, region, expected, error_text(e), ident)]
        return records

    @staticmethod
    def _describe_db(rds, kind, name):
        try:
            if kind == "cluster":
                return rds.describe_db_clusters(aws_retry=True, DBClusterIdentifier=name)["DBClusters"][0]
            return rds.describe_db_instances(aws_retry=True, DBInstanceIdentifier=name)["DBInstances"][0]
        except ClientError as e:
            if error_code(e) in ("DBClusterNotFoundFault", "DBInstanceNotFound"):
                return None
            raise

    @staticmethod
    def _tags(resource):
        return {t["Key"]: t["Value"] for t in resource.get("TagList", [])}

    def _kept_aside(self, found, kind, region, expected, source):
        name = found.get("DBClusterIdentifier") or found.get("DBInstanceIdentifier")
        tags = self._tags(found)
        step = tags.get("byok:reencrypt-step", "")
        why = "re-keyed copy set aside by a rollback" if step == "rolled-back" else "old database kept for rollback"
        size = found.get("AllocatedStorage")
        since = tags.get(RESIDUAL_SINCE_TAG)
        return copy_record("rds", "rds_retained_database", name, region, found.get("KmsKeyId"), found.get("StorageEncrypted"),
                           expected, source=source, size_bytes=(size * GIB if size and kind == "instance" else None),
                           created=found.get("ClusterCreateTime") or found.get("InstanceCreateTime"),
                           goes=self._due(since), since=since,
                           goes_how=("deleted by the clean-up (final snapshot copied onto the customer key) once kept aside "
                                     "longer than the retention period, counted from " + (since or "the clean-up's first sight of it")),
                           action=DELETE,
                           detail=f"{why}; {found.get('Status')}, deletion protection {'on' if found.get('DeletionProtection') else 'off'}",
                           kind=kind, retained_since=tags.get("byok:reencrypt-started"),
                           arn=found.get("DBClusterArn") or found.get("DBInstanceArn"))

    def _snapshots(self, rds, kind, names, region, expected, source, live, retention):
        """Snapshots taken of any of the names; an automated one belongs to the database with its resource id now."""
        if kind == "cluster":
            op, key, filt, ident_field, ctype = ("describe_db_cluster_snapshots", "DBClusterSnapshots", "DBClusterIdentifier",
                                                 "DBClusterSnapshotIdentifier", "rds_cluster_snapshot")
            rid_field = "DbClusterResourceId"
        else:
            op, key, filt, ident_field, ctype = ("describe_db_snapshots", "DBSnapshots", "DBInstanceIdentifier",
                                                 "DBSnapshotIdentifier", "rds_db_snapshot")
            rid_field = "DbiResourceId"
        by_resource = {d.get(rid_field): n for n, d in live.items() if d and d.get(rid_field)}
        snaps = {}
        for name in names:
            for snap in _paginate(rds, op, key, **{filt: name}):
                if (snap.get(filt) or name) == name:  # some endpoints ignore the filter
                    snaps[snap[ident_field]] = snap
        records = []
        for sid, snap in sorted(snaps.items()):
            taken_of = snap.get(filt)
            owner = by_resource.get(snap.get(rid_field)) or (taken_of if live.get(taken_of) else None)
            stype = snap.get("SnapshotType", "manual")
            created = snap.get("SnapshotCreateTime")
            size = snap.get("AllocatedStorage")
            if stype == "automated":
                if owner == source:
                    goes, how, action = (add_days(created, retention.get(owner)),
                                         f"ages out of {owner}'s {retention.get(owner)}-day backup retention", AGES_OUT)
                elif owner is not None:
                    goes, how, action = None, f"deleted with {owner} (kept aside) by the clean-up", WITH_SOURCE
                else:
                    goes, how, action = None, f"its database {taken_of} is gone; AWS deletes it with that database's backups", AGES_OUT
            else:
                goes, how, action = None, "kept until deleted; the clean-up copies it onto the customer key, then deletes it", REKEY
            records.append(copy_record("rds", ctype, sid, region, snap.get("KmsKeyId"),
                                       snap.get("StorageEncrypted", snap.get("Encrypted")), expected, source=source,
                                       size_bytes=size * GIB if size else None, created=created, goes=goes, goes_how=how,
                                       action=action, detail=f"{stype} snapshot of {taken_of}", snapshot_type=stype, kind=kind,
                                       owner=owner, arn=snap.get("DBClusterSnapshotArn") or snap.get("DBSnapshotArn")))
        return records

    def _retained_backups(self, rds, kind, names, region, expected, source, live):
        """Automated backups AWS kept after their database was deleted (DeleteAutomatedBackups=false)."""
        if kind == "cluster":
            op, key, field = "describe_db_cluster_automated_backups", "DBClusterAutomatedBackups", "DBClusterIdentifier"
        else:
            op, key, field = "describe_db_instance_automated_backups", "DBInstanceAutomatedBackups", "DBInstanceIdentifier"
        records = []
        for name in names:
            if live.get(name) is not None:
                continue  # a live database's automated backups are its automated snapshots, listed above
            for backup in _paginate(rds, op, key, **{field: name}):
                if backup.get(field) != name or backup.get("Status") not in ("retained", None):
                    continue
                window = backup.get("RestoreWindow") or {}
                goes = add_days(window.get("LatestTime"), backup.get("BackupRetentionPeriod"))
                due = self._due(window.get("LatestTime"))
                goes = min(goes, due) if goes and due else goes or due
                rid = backup.get("DbClusterResourceId") or backup.get("DbiResourceId") or name
                records.append(copy_record("rds", "rds_retained_automated_backup", rid, region, backup.get("KmsKeyId"),
                                           backup.get("StorageEncrypted", backup.get("Encrypted")), expected, source=source,
                                           size_bytes=(backup.get("AllocatedStorage") or 0) * GIB or None,
                                           created=window.get("EarliestTime"), goes=goes,
                                           goes_how=f"ages out of its {backup.get('BackupRetentionPeriod')}-day retention; "
                                                    "the clean-up deletes it once older than the retention period",
                                           action=DELETE, detail=f"retained automated backup of deleted {name}", kind=kind,
                                           database=name, since=iso(window.get("LatestTime"))))
        return records

    # -- EBS ------------------------------------------------------------------------------------------------------
    def ebs(self, cluster_name: str, expected: str) -> list[dict]:
        """Snapshots of the cluster's volumes and the volumes the etcd re-key set aside."""
        region = self.config["region"]
        ec2 = self.clients("ec2", region)
        records = []
        try:
            snaps = {}
            for tag in ("KubernetesCluster", SET_ASIDE_TAG):
                for s in _paginate(ec2, "describe_snapshots", "Snapshots", OwnerIds=["self"],
                                   Filters=[{"Name": f"tag:{tag}", "Values": [cluster_name]}]):
                    snaps[s["SnapshotId"]] = s
            volumes = _paginate(ec2, "describe_volumes", "Volumes", Filters=[{"Name": f"tag:{SET_ASIDE_TAG}", "Values": [cluster_name]}])
        except (ClientError, BotoCoreError) as e:
            return [problem_record("ebs", "ebs_copies", cluster_name, region, expected, error_text(e), cluster_name)]
        for sid, s in sorted(snaps.items()):
            tags = {t["Key"]: t["Value"] for t in s.get("Tags", [])}
            ours = SET_ASIDE_TAG in tags  # taken by the etcd re-key: a step's by-product, deleted after the retention
            since = tags.get(SET_ASIDE_AT_TAG) or iso(s.get("StartTime"))
            records.append(copy_record("ebs", "ebs_snapshot", sid, region, s.get("KmsKeyId"), s.get("Encrypted"), expected,
                                       source=cluster_name, size_bytes=(s.get("VolumeSize") or 0) * GIB or None,
                                       created=s.get("StartTime"), goes=self._due(since) if ours else None, since=since,
                                       goes_how=("taken by the etcd re-key; the clean-up deletes it once older than the retention period"
                                                 if ours else "kept until deleted; the clean-up copies it onto the customer key, then deletes it"),
                                       action=DELETE if ours else REKEY,
                                       detail=f"snapshot of {s.get('VolumeId')} {tags.get('Name', '')}".strip(),
                                       set_aside_at=tags.get(SET_ASIDE_AT_TAG)))
        for v in sorted(volumes, key=lambda v: v["VolumeId"]):
            tags = {t["Key"]: t["Value"] for t in v.get("Tags", [])}
            records.append(copy_record("ebs", "ebs_volume_set_aside", v["VolumeId"], region, v.get("KmsKeyId"), v.get("Encrypted"),
                                       expected, source=cluster_name, size_bytes=(v.get("Size") or 0) * GIB or None,
                                       created=v.get("CreateTime"), goes=self._due(tags.get(SET_ASIDE_AT_TAG)),
                                       since=tags.get(SET_ASIDE_AT_TAG),
                                       goes_how="snapshotted onto the customer key and deleted by the clean-up once older than the retention period",
                                       action=DELETE,
                                       detail=f"set aside by the etcd re-key ({tags.get(SET_ASIDE_MEMBER_TAG, '?')}), {v.get('State')}",
                                       set_aside_at=tags.get(SET_ASIDE_AT_TAG),
                                       member=tags.get(SET_ASIDE_MEMBER_TAG)))
        return records

    # -- S3 -------------------------------------------------------------------------------------------------------
    def s3(self, bucket: str, expected: str) -> list[dict]:
        """Noncurrent object versions not on the customer key (read one by one: a version's key is in its head)."""
        region = self.config["region"]
        s3 = self.clients("s3", region)
        try:
            status = s3.get_bucket_versioning(aws_retry=True, Bucket=bucket).get("Status")
            if status not in ("Enabled", "Suspended"):
                return []
            versions = _paginate(s3, "list_object_versions", "Versions", Bucket=bucket)
            days = _noncurrent_expiration_days(s3, bucket)
        except (ClientError, BotoCoreError) as e:
            if isinstance(e, ClientError) and error_code(e) == "NoSuchBucket":
                return []
            return [problem_record("s3", "s3_noncurrent_version", bucket, region, expected, error_text(e), bucket)]
        # A version becomes noncurrent when the next one (or a delete marker) is written: that time is when it goes from.
        markers = _paginate(s3, "list_object_versions", "DeleteMarkers", Bucket=bucket)
        by_key, markers_by_key = {}, {}
        for item in versions:  # AWS lists a key's versions newest first
            by_key.setdefault(item["Key"], []).append(item)
        for item in markers:
            markers_by_key.setdefault(item["Key"], []).append(item)
        noncurrent = [v for v in versions if not v.get("IsLatest")]
        heads = self._map(lambda v: _head_version(s3, bucket, v), noncurrent)
        records = []
        for v, (algorithm, key, err) in zip(noncurrent, heads):
            vid = f"{v['Key']}?versionId={v['VersionId']}"
            if err:
                records.append(problem_record("s3", "s3_noncurrent_version", f"{bucket}/{vid}", region, expected, err, bucket))
                continue
            since = _became_noncurrent(by_key.get(v["Key"], []), markers_by_key.get(v["Key"], []), v)
            goes = add_days(since, days) if days is not None else None
            due = self._due(since)
            goes = min(goes, due) if goes and due else goes or due
            how = (f"expires {days} days after it became noncurrent (bucket lifecycle rule)" if days is not None
                   else "kept until deleted; the clean-up deletes it once noncurrent longer than the retention period")
            records.append(copy_record("s3", "s3_noncurrent_version", f"{bucket}/{vid}", region, key, bool(algorithm),
                                       expected, source=bucket,
                                       size_bytes=v.get("Size"), created=v.get("LastModified"), goes=goes, goes_how=how,
                                       action=DELETE, detail=f"noncurrent since {iso(since) or '?'}, {algorithm or 'unencrypted'}",
                                       bucket=bucket, key=v["Key"], version_id=v["VersionId"], noncurrent_since=iso(since), since=iso(since),
                                       algorithm=algorithm))
        return records


def _sortable(value):
    return parse_time(value) or datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)


def _became_noncurrent(versions, markers, version):
    """When `version` stopped being current: the next newer version or delete marker of its key was written."""
    newer = []
    index = next((i for i, v in enumerate(versions) if v["VersionId"] == version["VersionId"]), None)
    if index:
        newer.append(versions[index - 1]["LastModified"])
    if index == 0:  # the newest data version is noncurrent only under a delete marker
        newer += [m["LastModified"] for m in markers if _sortable(m["LastModified"]) >= _sortable(version["LastModified"])]
    else:
        newer += [m["LastModified"] for m in markers if _sortable(m["LastModified"]) > _sortable(version["LastModified"])]
    return min(newer, key=_sortable) if newer else None


def _noncurrent_expiration_days(s3, bucket):
    """The shortest NoncurrentVersionExpiration of an enabled whole-bucket lifecycle rule, or None."""
    try:
        rules = s3.get_bucket_lifecycle_configuration(aws_retry=True, Bucket=bucket).get("Rules", [])
    except ClientError as e:
        if error_code(e) == "NoSuchLifecycleConfiguration":
            return None
        raise
    days = [r["NoncurrentVersionExpiration"].get("NoncurrentDays") for r in rules
            if r.get("Status") == "Enabled" and r.get("NoncurrentVersionExpiration")
            and not (r.get("Filter") or {}).get("Prefix") and not r.get("Prefix")]
    days = [d for d in days if d is not None]
    return min(days) if days else None


def _head_version(s3, bucket, version):
    try:
        h = s3.head_object(aws_retry=True, Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
        return h.get("ServerSideEncryption"), h.get("SSEKMSKeyId"), None
    except (ClientError, BotoCoreError) as e:
        return None, None, error_text(e)


def _paginate(client, operation, result_key, **kwargs) -> list:
    if client.can_paginate(operation):
        items = []
        for page in client.get_paginator(operation).paginate(**kwargs):
            items.extend(page.get(result_key, []))
        return items
    return getattr(client, operation)(**kwargs).get(result_key, [])


def revocation_readiness(resources: list[dict], copies: list[dict]) -> dict:
    """Would revoking the customer's key leave anything of theirs readable?

    `revocable` only when every in-scope store and every copy is on the customer's key; otherwise what would stay
    readable, each with where it is, its key and when it goes. A store or copy that could not be read counts as
    readable: not knowing is not proof.
    """
    readable = []
    for r in resources:
        unread = (r.get("listed") or 0) - (r.get("sampled") or 0)
        if r["type"] == "s3_objects" and r["status"] == "customer_key" and (unread > 0 or r.get("listing_truncated")):
            # A sample on the key says nothing of the objects not read: revocable needs every object read.
            readable.append({"kind": "unverified", "service": r["service"], "type": r["type"], "id": r["id"], "region": r["region"],
                             "key_arn": None, "status": "not_read", "goes": None,
                             "why": f"{unread}{'+' if r.get('listing_truncated') else ''} object(s) not read (the audit read a sample); "
                                    "byok_audit_s3_object_sample=0 reads every object"})
            continue
        if r["status"] in ("customer_key", "not_enabled", "info"):
            continue
        if r["status"] == "not_found":
            continue  # nothing there to read (the audit counts it against compliance on its own)
        readable.append({"kind": "store", "service": r["service"], "type": r["type"], "id": r["id"], "region": r["region"],
                         "key_arn": r.get("key_arn"), "status": r["status"], "goes": None,
                         "why": r.get("detail") or r["status"]})
    for c in copies:
        if c["status"] == "customer_key":
            continue
        readable.append({"kind": "copy", "service": c["service"], "type": c["type"], "id": c["id"], "region": c["region"],
                         "key_arn": c.get("key_arn"), "status": c["status"], "goes": c.get("goes"),
                         "why": c.get("goes_how") or c.get("detail") or c["status"]})
    in_scope = [r for r in resources if r["status"] != "not_enabled"]
    goes = [r["goes"] for r in readable if r.get("goes")]
    return {"revocable": bool(in_scope) and not readable,
            "readable_after_revocation": readable,
            "readable_count": len(readable),
            "copies": len(copies),
            "copies_not_on_customer_key": sum(1 for c in copies if c["status"] != "customer_key"),
            "last_copy_goes": max(goes) if goes and all(r.get("goes") for r in readable if r["kind"] == "copy") else None}
