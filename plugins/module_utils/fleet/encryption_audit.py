# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only audit: which KMS key encrypts each data store of one customer, and is it the customer's key.

One call reads everything of a customer, fanned out over a thread pool: Ansible costs far more per task than
AWS costs per call, so a task per resource would make a fleet audit take hours.
"""

from __future__ import annotations

import heapq
import time
from concurrent.futures import ThreadPoolExecutor

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # the module reports the missing SDK

try:
    import yaml
    # libyaml's parser when PyYAML has it: the pure-Python one costs a CPU-second per customer for three small specs.
    SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
except ImportError:
    yaml = None

from ansible_collections.mattermost.byok.plugins.module_utils.aws.errors import error_code
from ansible_collections.mattermost.byok.plugins.module_utils.aws.errors import error_text
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import same_kms_key
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.residual_copies import ResidualFinder
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.residual_copies import revocation_readiness
from ansible_collections.mattermost.byok.plugins.module_utils.s3.checkpoint import S3Checkpoint
from ansible_collections.mattermost.byok.plugins.module_utils.s3.checkpoint import checkpoint_name

# Record statuses. Only in-scope records count towards compliance.
ON_CUSTOMER_KEY = "customer_key"
OTHER_KEY = "other_key"
UNENCRYPTED = "unencrypted"
NOT_FOUND = "not_found"
ERROR = "error"
NOT_ENABLED = "not_enabled"
INFO = "info"
SERVER_SENDS_SSE_S3 = "server_sends_sse_s3"  # a Mattermost server names AES256 on its uploads: new files miss the key
NEWEST = 20  # objects read per bucket from the newest by last-modified, besides the spread sample
IN_SCOPE_STATUSES = (ON_CUSTOMER_KEY, OTHER_KEY, UNENCRYPTED, NOT_FOUND, ERROR)


class CustomerAudit:
    """Collects records for one customer. `clients(service, region)` returns a (thread-safe) boto3 client."""

    def __init__(self, config: dict, clients, s3_object_sample: int = 20, concurrency: int = 16,
                 s3_cutoffs: dict | None = None, mattermost_findings: list | None = None, s3_newest: int = NEWEST,
                 s3_checkpoint: dict | None = None, residual_retention_days=None):
        self.config = config
        self.clients = clients
        self.sample = s3_object_sample
        self.cutoffs = s3_cutoffs or {}
        self.server_findings = mattermost_findings or []
        self.newest = max(0, s3_newest)
        self.checkpoint = s3_checkpoint or {}
        self.concurrency = max(1, concurrency)
        self.records: list[dict] = []
        self.copies: list[dict] = []
        self.retention_days = residual_retention_days

    # -- records -----------------------------------------------------------------------------------------
    def _expected(self, service: str, key_arn: str | None = None):
        if service not in self.config["services"]:
            return None
        return key_arn or self.config["service_keys"].get(service)

    def _record(self, service, rtype, rid, region, key_arn, encrypted, expected, detail=None, **extra):
        if expected is None:
            status = NOT_ENABLED
        elif not encrypted:
            status = UNENCRYPTED
        elif same_kms_key(key_arn, expected):
            status = ON_CUSTOMER_KEY
        else:
            status = OTHER_KEY
        rec = {"service": service, "type": rtype, "id": rid, "region": region, "encrypted": bool(encrypted),
               "key_arn": key_arn, "expected_key_arn": expected, "status": status, "detail": detail or ""}
        rec.update(extra)
        return rec

    def _problem(self, service, rtype, rid, region, status, detail, expected):
        return {"service": service, "type": rtype, "id": rid, "region": region, "encrypted": None, "key_arn": None,
                "expected_key_arn": expected, "status": status if expected else NOT_ENABLED, "detail": detail}

    # -- run -----------------------------------------------------------------------------------------------
    def run(self) -> dict:
        started = time.monotonic()
        jobs = []
        cfg = self.config
        for bucket in cfg["s3_buckets"]:
            jobs.append((self.audit_bucket, bucket))
        jobs.append((self.audit_mattermost_servers,))
        for cluster in cfg["rds_clusters"]:
            jobs.append((self.audit_rds, cluster))
        if cfg.get("kops_cluster_name"):
            jobs.append((self.audit_launch_templates,))
            jobs.append((self.audit_volumes,))
            if cfg.get("kops_state_store"):
                jobs.append((self.audit_kops_spec,))
        # Copies besides the live stores (kept-aside databases, snapshots, set-aside volumes, noncurrent versions),
        # for the services on the customer's key: they decide whether revoking the key leaves anything readable.
        copy_jobs = []
        finder = ResidualFinder(cfg, self.clients, retention_days=self.retention_days)
        if "s3" in cfg["services"]:
            copy_jobs += [(finder.s3, bucket, self._expected("s3")) for bucket in cfg["s3_buckets"]]
        if "rds" in cfg["services"]:
            copy_jobs += [(finder.rds, cluster, self._expected("rds", cluster.get("key_arn"))) for cluster in cfg["rds_clusters"]]
        if "ebs" in cfg["services"] and cfg.get("kops_cluster_name"):
            copy_jobs.append((finder.ebs, cfg["kops_cluster_name"], self._expected("ebs")))
        # Two pools: jobs wait on their leaf calls (object heads, template versions), and a leaf never waits,
        # so a job can't starve the calls it waits for.
        with ThreadPoolExecutor(max_workers=self.concurrency) as leaves, \
                ThreadPoolExecutor(max_workers=min(self.concurrency, max(1, len(jobs) + len(copy_jobs)))) as outer:
            self.pool = leaves
            finder.pool = leaves
            futures = [outer.submit(*job) for job in jobs]
            copy_futures = [outer.submit(*job) for job in copy_jobs]
            for f in futures:
                self.records.extend(f.result())
            for f in copy_futures:
                self.copies.extend(f.result())
        order = {"s3": 0, "rds": 1, "ebs": 2}
        self.records.sort(key=lambda r: (order.get(r["service"], 9), r["type"], r["id"]))
        self.copies.sort(key=lambda r: (order.get(r["service"], 9), r["type"], r["id"]))
        summary = summarize(self.records)
        summary.update(revocation_readiness(self.records, self.copies))
        return {"resources": self.records, "copies": self.copies, "summary": summary,
                "seconds": round(time.monotonic() - started, 3)}

    # -- S3 ------------------------------------------------------------------------------------------------
    def audit_bucket(self, bucket: str) -> list[dict]:
        record = self.audit_bucket_default(bucket)
        if record["encrypted"] is None:  # the bucket could not be read: nothing to sample
            return [record]
        return [record, self.audit_objects(self.clients("s3", self.config["region"]), bucket, record["expected_key_arn"])]

    def audit_bucket_default(self, bucket: str) -> dict:
        """The bucket's default encryption only (the key watch reads this without the objects)."""
        s3 = self.clients("s3", self.config["region"])
        region = self.config["region"]
        expected = self._expected("s3")
        try:
            rules = s3.get_bucket_encryption(aws_retry=True, Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
            default = rules[0].get("ApplyServerSideEncryptionByDefault", {}) if rules else {}
            bucket_key = bool(rules and rules[0].get("BucketKeyEnabled"))
        except ClientError as e:
            code = error_code(e)
            if code == "NoSuchBucket":
                return self._problem("s3", "s3_bucket", bucket, region, NOT_FOUND, "bucket does not exist", expected)
            if code != "ServerSideEncryptionConfigurationNotFoundError":
                return self._problem("s3", "s3_bucket", bucket, region, ERROR, error_text(e), expected)
            default, bucket_key = {}, False
        except BotoCoreError as e:
            return self._problem("s3", "s3_bucket", bucket, region, ERROR, error_text(e), expected)
        algorithm = default.get("SSEAlgorithm", "AES256")  # AWS applies SSE-S3 when nothing is configured
        key = default.get("KMSMasterKeyID")
        detail = f"default {algorithm}" + (", bucket key" if bucket_key else "")
        return self._record("s3", "s3_bucket", bucket, region, key, algorithm.startswith("aws:kms"), expected, detail,
                            algorithm=algorithm, bucket_key_enabled=bucket_key)

    def audit_objects(self, s3, bucket: str, expected) -> dict:
        """Head a sample of objects spread over the listing plus the newest by last-modified (every object when the
        sample is 0), count the keys they are under, and name each one written after the cutoff that is not on the key."""
        region = self.config["region"]
        try:
            keys, newest, listed = self._list_keys(s3, bucket)
        except (ClientError, BotoCoreError) as e:
            return self._problem("s3", "s3_objects", bucket, region, ERROR, error_text(e), expected)
        times = dict(newest)
        if self.sample:
            sample = _spread([k for k, _t in keys], self.sample)
            spread = len(sample)
            sample += [k for k, _t in newest if k not in set(sample)]
            times.update((k, t) for k, t in keys)
        else:
            sample = [k for k, _t in keys]
            spread = len(sample)
            times = dict(keys)
        heads = list(self.pool.map(lambda k: self._head(s3, bucket, k), sample)) if sample else []
        counts: dict[str, int] = {}
        off_key = []
        cutoff = self.cutoffs.get(bucket)
        if cutoff is None:
            cutoff = self._checkpoint_cutoff(bucket, expected)
        after_cutoff = []
        for key, (algorithm, kms_key, err) in zip(sample, heads):
            label = err or kms_key or algorithm or "none"
            counts[label] = counts.get(label, 0) + 1
            if err or not (algorithm == "aws:kms" and expected and same_kms_key(kms_key, expected)):
                entry = {"key": key, "algorithm": algorithm, "kms_key_id": kms_key, "error": err,
                         "last_modified": _iso(times.get(key))}
                off_key.append(entry)
                if cutoff is not None and times.get(key) is not None and times[key] > cutoff:
                    after_cutoff.append(entry)
        on_key = len(sample) - len(off_key)
        scope = f"{len(sample)} of {listed} objects: {spread} spread over the listing, {len(sample) - spread} more of the newest"
        if expected is None:
            status = NOT_ENABLED
        elif not sample:
            status = ON_CUSTOMER_KEY
        else:
            status = ON_CUSTOMER_KEY if not off_key else OTHER_KEY
        detail = f"{on_key} on the customer key, {len(off_key)} not ({scope} read)"
        if after_cutoff:
            detail += (f"; {len(after_cutoff)} written after the cutoff ({_iso(cutoff)}) are not on the key, newest "
                       f"{after_cutoff[0]['key']} at {after_cutoff[0]['last_modified']} ({after_cutoff[0]['algorithm'] or 'none'})")
        after_cutoff.sort(key=lambda e: e["last_modified"] or "", reverse=True)
        return {"service": "s3", "type": "s3_objects", "id": bucket, "region": region, "encrypted": None,
                "key_arn": None, "expected_key_arn": expected, "status": status, "detail": detail,
                "sampled": spread, "newest_read": len(sample) - spread, "listed": listed, "listing_truncated": False,
                "on_key": on_key, "keys_seen": counts, "not_on_key": off_key[:20],
                "cutoff": _iso(cutoff), "written_after_cutoff_not_on_key": after_cutoff[:50],
                "written_after_cutoff_not_on_key_count": len(after_cutoff)}

    def _checkpoint_cutoff(self, bucket: str, expected) -> float | None:
        """The cutoff the S3 step kept in its checkpoint (an audit run on its own has no other way to know it)."""
        store = self.checkpoint.get("bucket")
        if not store or not expected:
            return None
        s3 = self.clients("s3", self.config["region"])
        for all_versions in (False, True):
            name = checkpoint_name(bucket, expected, "", all_versions)
            try:
                record = S3Checkpoint(s3, store, self.checkpoint.get("prefix") or "", name).load() or {}
            except (ClientError, BotoCoreError, ValueError):
                continue
            if record.get("key_arn") == expected and record.get("cutoff") is not None:
                return float(record["cutoff"])
        return None

    def _list_keys(self, s3, bucket):
        """Every object is listed (one request per 1,000): S3 lists by key only, and the newest objects - where an
        upload that named another encryption would be - can be anywhere. Kept: the first 1,000 (key, time) for the
        spread sample, or all of them for a full read, and the newest ones by last-modified."""
        keys, newest, listed = [], [], 0
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": 1000}):
            contents = [(o["Key"], o["LastModified"].timestamp()) for o in page.get("Contents", [])]
            listed += len(contents)
            if not self.sample or len(keys) < 1000:
                keys.extend(contents if not self.sample else contents[:1000 - len(keys)])
            if self.newest:
                newest = heapq.nlargest(self.newest, newest + contents, key=lambda kt: kt[1])
        return keys, newest, listed

    # -- the Mattermost servers -------------------------------------------------------------------------------
    def audit_mattermost_servers(self) -> list[dict]:
        """A server that names AES256 on its uploads keeps the bucket off the key for every new file: one record per
        such installation, never counted on the customer key."""
        expected = self._expected("s3")
        records = []
        for finding in self.server_findings:
            records.append({"service": "s3", "type": "mattermost_server", "id": finding.get("installation"),
                            "region": self.config["region"], "encrypted": None, "key_arn": None,
                            "expected_key_arn": expected, "status": SERVER_SENDS_SSE_S3 if expected else NOT_ENABLED,
                            "detail": f"{finding.get('message')}. Fix: {finding.get('fix')}",
                            "setting": finding.get("setting"), "buckets": finding.get("buckets"),
                            "source": finding.get("source")})
        return records

    @staticmethod
    def _head(s3, bucket, key):
        try:
            h = s3.head_object(aws_retry=True, Bucket=bucket, Key=key)
            return h.get("ServerSideEncryption"), h.get("SSEKMSKeyId"), None
        except (ClientError, BotoCoreError) as e:
            return None, None, error_text(e)

    # -- RDS -----------------------------------------------------------------------------------------------
    def audit_rds(self, cluster: dict) -> list[dict]:
        region, ident = cluster["region"], cluster["identifier"]
        rds = self.clients("rds", region)
        expected = self._expected("rds", cluster.get("key_arn"))
        rtype = "rds_cluster" if cluster["kind"] == "cluster" else "rds_instance"
        try:
            if cluster["kind"] == "cluster":
                found = rds.describe_db_clusters(aws_retry=True, DBClusterIdentifier=ident)["DBClusters"][0]
            else:
                found = rds.describe_db_instances(aws_retry=True, DBInstanceIdentifier=ident)["DBInstances"][0]
        except ClientError as e:
            status = NOT_FOUND if error_code(e) in ("DBClusterNotFoundFault", "DBInstanceNotFound") else ERROR
            return [self._problem("rds", rtype, ident, region, status, error_text(e), expected)]
        except BotoCoreError as e:
            return [self._problem("rds", rtype, ident, region, ERROR, error_text(e), expected)]
        detail = f"{found.get('Engine')} {found.get('EngineVersion', '')}".strip()
        if found.get("GlobalClusterIdentifier"):
            detail += f", global cluster {found['GlobalClusterIdentifier']}"
        records = [self._record("rds", rtype, ident, region, found.get("KmsKeyId"), found.get("StorageEncrypted"), expected,
                                detail, arn=found.get("DBClusterArn") or found.get("DBInstanceArn"), engine=found.get("Engine"),
                                db_status=found.get("Status") or found.get("DBInstanceStatus"))]
        members = [m["DBInstanceIdentifier"] for m in found.get("DBClusterMembers", [])]
        if members:
            try:
                instances = rds.describe_db_instances(aws_retry=True, Filters=[{"Name": "db-cluster-id", "Values": [ident]}])["DBInstances"]
            except (ClientError, BotoCoreError) as e:
                return records + [self._problem("rds", "rds_instance", m, region, ERROR, error_text(e), expected) for m in members]
            writers = {m["DBInstanceIdentifier"] for m in found["DBClusterMembers"] if m.get("IsClusterWriter")}
            for inst in instances:
                iid = inst["DBInstanceIdentifier"]
                role = "writer" if iid in writers else "reader"
                records.append(self._record("rds", "rds_instance", iid, region, inst.get("KmsKeyId"), inst.get("StorageEncrypted"),
                                            expected, f"{role} of {ident}, {inst.get('DBInstanceClass')}", cluster=ident,
                                            db_status=inst.get("DBInstanceStatus")))
        return records

    # -- EBS / kops ----------------------------------------------------------------------------------------
    def _cluster_filter(self):
        return [{"Name": "tag:KubernetesCluster", "Values": [self.config["kops_cluster_name"]]}]

    def audit_launch_templates(self) -> list[dict]:
        region = self.config["region"]
        ec2 = self.clients("ec2", region)
        expected = self._expected("ebs")
        try:
            templates = _paginate(ec2, "describe_launch_templates", "LaunchTemplates", Filters=self._cluster_filter())
        except (ClientError, BotoCoreError) as e:
            return [self._problem("ebs", "launch_template", self.config["kops_cluster_name"], region, ERROR, error_text(e), expected)]
        if not templates:
            return [self._problem("ebs", "launch_template", self.config["kops_cluster_name"], region, NOT_FOUND,
                                  "no launch template tagged KubernetesCluster with the cluster name", expected)]
        return [r for rs in self.pool.map(lambda t: self._audit_template(ec2, t, expected), templates) for r in rs]

    def _audit_template(self, ec2, template, expected):
        region, name = self.config["region"], template["LaunchTemplateName"]
        try:
            versions = ec2.describe_launch_template_versions(aws_retry=True, LaunchTemplateId=template["LaunchTemplateId"],
                                                             Versions=["$Default"])["LaunchTemplateVersions"]
        except (ClientError, BotoCoreError) as e:
            return [self._problem("ebs", "launch_template", name, region, ERROR, error_text(e), expected)]
        data = versions[0]["LaunchTemplateData"] if versions else {}
        records = []
        for bdm in data.get("BlockDeviceMappings", []):
            ebs = bdm.get("Ebs")
            if not ebs:
                continue
            records.append(self._record("ebs", "launch_template", f"{name} {bdm.get('DeviceName')}", region, ebs.get("KmsKeyId"),
                                        ebs.get("Encrypted"), expected, f"version {versions[0]['VersionNumber']} (default)",
                                        launch_template_id=template["LaunchTemplateId"]))
        if not records:
            records.append(self._record("ebs", "launch_template", name, region, None, False, expected,
                                        "no EBS block device mapping: instances use the AMI's, unencrypted unless the account default says so"))
        return records

    def audit_volumes(self) -> list[dict]:
        """Volumes tagged for the cluster (etcd) and every volume attached to the cluster's instances."""
        region = self.config["region"]
        ec2 = self.clients("ec2", region)
        expected = self._expected("ebs")
        try:
            volumes = {v["VolumeId"]: v for v in _paginate(ec2, "describe_volumes", "Volumes", Filters=self._cluster_filter())}
            attached = []
            for reservation in _paginate(ec2, "describe_instances", "Reservations", Filters=self._cluster_filter()
                                         + [{"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]):
                for inst in reservation["Instances"]:
                    attached += [m["Ebs"]["VolumeId"] for m in inst.get("BlockDeviceMappings", []) if m.get("Ebs")]
            missing = [v for v in attached if v not in volumes]
            if missing:
                volumes.update({v["VolumeId"]: v for v in _paginate(ec2, "describe_volumes", "Volumes", VolumeIds=missing)})
        except (ClientError, BotoCoreError) as e:
            return [self._problem("ebs", "ebs_volume", self.config["kops_cluster_name"], region, ERROR, error_text(e), expected)]
        if not volumes:
            return [self._problem("ebs", "ebs_volume", self.config["kops_cluster_name"], region, NOT_FOUND,
                                  "no EBS volume tagged for the cluster or attached to its instances", expected)]
        records = []
        for vid, vol in sorted(volumes.items()):
            tags = {t["Key"]: t["Value"] for t in vol.get("Tags", [])}
            etcd = any(k.startswith("k8s.io/etcd/") for k in tags)
            users = ", ".join(a.get("InstanceId", "") for a in vol.get("Attachments", [])) or "not attached"
            what = "etcd volume " + tags.get("Name", "") if etcd else f"{vol.get('Size')} GiB {vol.get('VolumeType')}, {users}"
            rec = self._record("ebs", "ebs_volume", vid, region, vol.get("KmsKeyId"), vol.get("Encrypted"), expected, what.strip(),
                               etcd=etcd, name=tags.get("Name"))
            if etcd and rec["status"] in (OTHER_KEY, UNENCRYPTED):
                rec["detail"] += "; moved onto the key one member at a time by the EBS step's etcd re-key (byok_ebs_etcd_rekey)"
            records.append(rec)
        return records

    def audit_kops_spec(self) -> list[dict]:
        """What the kops state store asks for: instance groups' root/extra volume encryption and etcd members."""
        store, name, region = self.config["kops_state_store"], self.config["kops_cluster_name"], self.config["region"]
        expected = self._expected("ebs")
        s3 = self.clients("s3", region)
        base = "/".join(p for p in (store["prefix"], name) if p)
        try:
            listing = _paginate(s3, "list_objects_v2", "Contents", Bucket=store["bucket"], Prefix=f"{base}/instancegroup/")
            docs = [(o["Key"].rsplit("/", 1)[1], s3.get_object(aws_retry=True, Bucket=store["bucket"], Key=o["Key"])["Body"].read())
                    for o in listing]
        except (ClientError, BotoCoreError) as e:
            return [self._problem("ebs", "kops_instance_group", name, region, ERROR, f"{store['url']}: {error_text(e)}", expected)]
        if yaml is None:
            return [self._problem("ebs", "kops_instance_group", name, region, ERROR, "PyYAML is needed to read the kops spec", expected)]
        records = []
        for ig_name, body in docs:
            try:
                spec = (yaml.load(body, Loader=SAFE_LOADER) or {}).get("spec", {})
            except yaml.YAMLError as e:
                records.append(self._problem("ebs", "kops_instance_group", ig_name, region, ERROR, f"unreadable spec: {e}", expected))
                continue
            encrypted = bool(spec.get("rootVolumeEncryption"))
            key = spec.get("rootVolumeEncryptionKey")
            detail = f"role {spec.get('role', '?')}; rootVolumeEncryption {'true' if encrypted else 'unset'}"
            if key and not encrypted:
                detail += " (the key is ignored by kops unless rootVolumeEncryption is true)"
            records.append(self._record("ebs", "kops_instance_group", ig_name, region, key, encrypted and key, expected, detail))
            for vol in spec.get("volumes") or []:
                records.append(self._record("ebs", "kops_instance_group", f"{ig_name} {vol.get('device')}", region, vol.get("key"),
                                            vol.get("encrypted") and vol.get("key"), expected, "extra volume"))
        return records


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _paginate(client, operation, result_key, **kwargs) -> list:
    items = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get(result_key, []))
    return items


def _spread(items: list, n: int) -> list:
    """n items spread evenly over the list, first and last included, so a sample is not just one prefix."""
    if n >= len(items):
        return list(items)
    if n == 1:
        return [items[0]]
    step = (len(items) - 1) / (n - 1)
    return [items[round(i * step)] for i in range(n)]


def summarize(records: list[dict]) -> dict:
    """Counts per service and overall; `compliant` means every in-scope resource is on the customer's key."""
    by_service: dict[str, dict] = {}
    for r in records:
        s = by_service.setdefault(r["service"], {"in_scope": 0, "on_customer_key": 0, "not_on_customer_key": 0, "enabled": True})
        if r["status"] == NOT_ENABLED:
            s["enabled"] = False
            continue
        s["in_scope"] += 1
        s["on_customer_key" if r["status"] == ON_CUSTOMER_KEY else "not_on_customer_key"] += 1
    in_scope = sum(s["in_scope"] for s in by_service.values())
    ok = sum(s["on_customer_key"] for s in by_service.values())
    statuses: dict[str, int] = {}
    for r in records:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    # etcd volumes move in their own step (a single-member etcd only in the window): counted, and named apart.
    etcd_off = sum(1 for r in records if r.get("etcd") and r["status"] not in (ON_CUSTOMER_KEY, NOT_ENABLED))
    return {"resources": len(records), "in_scope": in_scope, "on_customer_key": ok, "not_on_customer_key": in_scope - ok,
            "etcd_not_on_customer_key": etcd_off, "by_status": statuses, "by_service": by_service,
            "compliant": in_scope > 0 and ok == in_scope,
            "compliant_except_etcd": in_scope > 0 and ok + etcd_off == in_scope}
