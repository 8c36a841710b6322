# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A revocation drill on the local AWS: disable the customer's keys as the customer would, prove that every store
of the customer refuses access as AWS documents it, list every copy still readable, re-enable and recover.

KMS developer guide, "How unusable KMS keys affect data keys": a resource already using a data key keeps it until the
service needs the KMS key again. So each store is made to need it: an object is read (S3 answers KMS.DisabledException),
a database is looked at (RDS puts it in inaccessible-encryption-credentials-recoverable), a node is stopped and
started (EC2 cannot attach its encrypted volumes), a volume is made from a snapshot (EBS cannot decrypt it).

Only ever against the local AWS: `local_endpoint` refuses anything else before any call.
"""

from __future__ import annotations

import ipaddress
import socket
import time
import urllib.parse

from ansible.module_utils.urls import open_url

try:
    from botocore.exceptions import ClientError
except ImportError:
    pass  # the module reports the missing SDK

from ansible_collections.amazon.aws.plugins.module_utils.arn import parse_aws_arn

from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import same_kms_key
from ansible_collections.mattermost.byok.plugins.module_utils.aws.errors import error_code
from ansible_collections.mattermost.byok.plugins.module_utils.aws.errors import error_text

REFUSED, READABLE = "refused", "readable"
DRILL_TAG = "byok:revocation-drill"
INACCESSIBLE = ("inaccessible-encryption-credentials-recoverable", "inaccessible-encryption-credentials")


class DrillError(Exception):
    pass


def local_endpoint(endpoint_url: str | None, opener=open_url) -> str:
    """The endpoint when it is the local AWS (a loopback address that serves the local AWS's /moto-api/), else an
    error saying why the drill refuses to run: it disables keys and stops instances."""
    if not endpoint_url:
        raise DrillError("endpoint_url: not set; the revocation drill runs only against the local AWS "
                         "(scripts/local-aws start; set AWS_ENDPOINT_URL), never against AWS")
    parsed = urllib.parse.urlparse(endpoint_url)
    host = parsed.hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, parsed.port or 80)}
    except OSError as e:
        raise DrillError(f"endpoint_url: {endpoint_url} does not resolve ({e}); the drill runs only against the local AWS") from None
    if not addresses or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise DrillError(f"endpoint_url: {endpoint_url} is not on this machine (loopback); the revocation drill disables "
                         "the customer's keys and runs only against the local AWS")
    try:
        with opener(endpoint_url.rstrip("/") + "/moto-api/", timeout=10) as answer:
            if getattr(answer, "status", getattr(answer, "code", 200)) != 200:
                raise DrillError(f"endpoint_url: {endpoint_url} answers /moto-api/ with {answer.status}; not the local AWS")
    except OSError as e:
        raise DrillError(f"endpoint_url: {endpoint_url} does not serve the local AWS's /moto-api/ ({e}); the drill runs "
                         "only against the local AWS") from None
    return endpoint_url


class Drill:
    """`clients(service, region, account=None)`: boto3 clients, as the provider or (account given) as that account."""

    def __init__(self, config: dict, clients, customer_account: str, poll: float = 0.5, timeout: float = 120):
        self.config, self.clients, self.customer_account = config, clients, customer_account
        self.poll, self.timeout = poll, timeout
        self.steps: list[str] = []

    # -- probes -----------------------------------------------------------------------------------------------------
    def probes(self, resources: list[dict], copies: list[dict], plan_only: bool = False) -> list[dict]:
        """What to try, per store and copy of the enabled services (made before the key is disabled; `plan_only`
        takes no probe snapshot)."""
        cfg = self.config
        probes = []
        if "s3" in cfg["services"]:
            s3 = self.clients("s3", cfg["region"])
            for bucket in cfg["s3_buckets"]:
                listed = s3.list_objects_v2(Bucket=bucket, MaxKeys=1).get("Contents", [])
                if listed:
                    probes.append({"kind": "store", "what": "s3 object", "id": f"{bucket}/{listed[0]['Key']}",
                                   "probe": "s3_get", "bucket": bucket, "key": listed[0]["Key"], "region": cfg["region"]})
        if "rds" in cfg["services"]:
            for db in cfg["rds_clusters"]:
                probes.append({"kind": "store", "what": "database", "id": db["identifier"], "probe": "rds_status",
                               "db_kind": db.get("kind", "cluster"), "region": db["region"]})
        if "ebs" in cfg["services"] and cfg.get("kops_cluster_name"):
            node = self._node()
            if node:
                probes.append({"kind": "store", "what": "kops node (encrypted root volume)", "id": node, "probe": "ec2_restart",
                               "region": cfg["region"]})
                snapshot = "(a snapshot of the node's first volume)" if plan_only else self._drill_snapshot(node)
                if snapshot:
                    probes.append({"kind": "store", "what": "snapshot of a node volume", "id": snapshot, "probe": "ebs_restore",
                                   "region": cfg["region"], "drill_made": True})
        for c in copies:
            if c["type"] == "s3_noncurrent_version":
                probes.append({"kind": "copy", "what": "noncurrent object version", "id": c["id"], "probe": "s3_get",
                               "bucket": c["bucket"], "key": c["key"], "version_id": c["version_id"], "region": c["region"]})
            elif c["type"] == "rds_retained_database":
                probes.append({"kind": "copy", "what": "database kept aside", "id": c["id"], "probe": "rds_status",
                               "db_kind": c.get("kind", "cluster"), "region": c["region"]})
            elif c["type"] in ("ebs_snapshot",):
                probes.append({"kind": "copy", "what": "EBS snapshot", "id": c["id"], "probe": "ebs_restore", "region": c["region"]})
            elif c["type"] == "ebs_volume_set_aside":
                probes.append({"kind": "copy", "what": "set-aside EBS volume", "id": c["id"], "probe": "key_usable",
                               "key_arn": c.get("key_arn"), "region": c["region"]})
            else:  # RDS snapshots and retained backups: restorable exactly when their key is usable
                probes.append({"kind": "copy", "what": c["type"].replace("_", " "), "id": c["id"], "probe": "key_usable",
                               "key_arn": c.get("key_arn"), "region": c["region"]})
        return probes

    def _node(self):
        ec2 = self.clients("ec2", self.config["region"])
        reservations = ec2.describe_instances(Filters=[
            {"Name": "tag:KubernetesCluster", "Values": [self.config["kops_cluster_name"]]},
            {"Name": "tag:k8s.io/role/node", "Values": ["1"]},
            {"Name": "instance-state-name", "Values": ["running"]}])["Reservations"]
        instances = sorted(i["InstanceId"] for r in reservations for i in r["Instances"])
        return instances[0] if instances else None

    def _drill_snapshot(self, instance_id):
        ec2 = self.clients("ec2", self.config["region"])
        instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        volumes = [m["Ebs"]["VolumeId"] for m in instance.get("BlockDeviceMappings", []) if m.get("Ebs")]
        if not volumes:
            return None
        snap = ec2.create_snapshot(VolumeId=volumes[0], Description="revocation drill probe",
                                   TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": DRILL_TAG, "Value": "probe"}]}])
        self.steps.append(f"snapshot {snap['SnapshotId']} of {volumes[0]} taken as a probe")
        return snap["SnapshotId"]

    def run_probe(self, probe: dict) -> dict:
        """Try the probe now: (outcome, evidence)."""
        handler = getattr(self, f"_probe_{probe['probe']}")
        outcome, evidence = handler(probe)
        return {**{k: probe[k] for k in ("kind", "what", "id", "region")}, "outcome": outcome, "evidence": evidence}

    def _probe_s3_get(self, p):
        s3 = self.clients("s3", p["region"])
        extra = {"VersionId": p["version_id"]} if p.get("version_id") else {}
        try:
            s3.get_object(Bucket=p["bucket"], Key=p["key"], **extra)["Body"].read()
            return READABLE, "GetObject returned the object"
        except ClientError as e:
            return REFUSED, f"GetObject: {error_text(e)}"

    def _probe_rds_status(self, p):
        rds = self.clients("rds", p["region"])
        try:
            if p["db_kind"] == "cluster":
                status = rds.describe_db_clusters(DBClusterIdentifier=p["id"])["DBClusters"][0]["Status"]
            else:
                status = rds.describe_db_instances(DBInstanceIdentifier=p["id"])["DBInstances"][0]["DBInstanceStatus"]
        except ClientError as e:
            return REFUSED, f"describe: {error_code(e)}"
        return (REFUSED if status in INACCESSIBLE else READABLE), f"status {status}"

    def _probe_ec2_restart(self, p):
        ec2 = self.clients("ec2", p["region"])
        ec2.stop_instances(InstanceIds=[p["id"]])
        self._wait(f"{p['id']} to stop", lambda: self._instance(ec2, p["id"])["State"]["Name"] == "stopped")
        ec2.start_instances(InstanceIds=[p["id"]])
        deadline = time.monotonic() + self.timeout
        while True:
            found = self._instance(ec2, p["id"])
            state = found["State"]["Name"]
            if state == "running":
                return READABLE, "the node started again with its encrypted volumes"
            if state == "stopped":
                reason = (found.get("StateReason") or {}).get("Message", "")
                return REFUSED, f"StartInstances: the node stays stopped ({reason})"
            if time.monotonic() > deadline:
                return REFUSED, f"StartInstances: still {state} after {self.timeout} s"
            time.sleep(self.poll)

    @staticmethod
    def _instance(ec2, instance_id):
        return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]

    def _probe_ebs_restore(self, p):
        ec2 = self.clients("ec2", p["region"])
        snap = ec2.describe_snapshots(SnapshotIds=[p["id"]])["Snapshots"][0]
        made = ec2.create_volume(SnapshotId=p["id"], AvailabilityZone=f"{p['region']}a",
                                 TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": DRILL_TAG, "Value": "probe"}]}])
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                state = ec2.describe_volumes(VolumeIds=[made["VolumeId"]])["Volumes"][0]["State"]
            except ClientError as e:
                if error_code(e) == "InvalidVolume.NotFound":
                    return REFUSED, f"CreateVolume from the snapshot failed (key {snap.get('KmsKeyId')} unusable): the volume never came to be"
                raise
            if state == "available":
                ec2.delete_volume(VolumeId=made["VolumeId"])
                return READABLE, "CreateVolume from the snapshot worked (probe volume deleted)"
            if state == "error" or time.monotonic() > deadline:
                return REFUSED, f"CreateVolume from the snapshot: volume {state}"
            time.sleep(self.poll)

    def _probe_key_usable(self, p):
        key = p.get("key_arn")
        if not key:
            return READABLE, "not encrypted with a KMS key"
        region = parse_aws_arn(key)["region"]
        try:
            state = self.clients("kms", region).describe_key(KeyId=key)["KeyMetadata"]["KeyState"]
        except ClientError as e:
            return REFUSED, f"its key {key} cannot be described ({error_code(e)})"
        return (READABLE if state == "Enabled" else REFUSED), f"its key {key} is {state}"

    # -- the drill ----------------------------------------------------------------------------------------------------
    def keys(self):
        return [k["arn"] for k in self.config["distinct_keys"]]

    def set_keys(self, enabled: bool):
        for arn in self.keys():
            parts = parse_aws_arn(arn)
            kms = self.clients("kms", parts["region"], account=parts["account_id"])
            (kms.enable_key if enabled else kms.disable_key)(KeyId=arn)
            self.steps.append(f"{arn} {'enabled' if enabled else 'disabled'} as its owner (account {parts['account_id']})")

    def recover(self, results):
        """After re-enabling: start what the revocation stopped (RDS needs a start, the node a start)."""
        for r in results:
            if r["what"] in ("database", "database kept aside") and r["outcome"] == REFUSED:
                rds = self.clients("rds", r["region"])
                try:
                    rds.start_db_cluster(DBClusterIdentifier=r["id"])
                except ClientError as e:
                    if error_code(e) != "InvalidDBClusterStateFault":
                        raise
                self.steps.append(f"{r['id']} started again (out of inaccessible-encryption-credentials-recoverable)")
                self._wait(f"{r['id']} to be available", lambda i=r["id"], rg=r["region"]: self.clients("rds", rg).describe_db_clusters(
                    DBClusterIdentifier=i)["DBClusters"][0]["Status"] == "available")
            if r["what"].startswith("kops node") and r["outcome"] == REFUSED:
                ec2 = self.clients("ec2", r["region"])
                ec2.start_instances(InstanceIds=[r["id"]])
                self._wait(f"{r['id']} to run", lambda i=r["id"]: self._instance(ec2, i)["State"]["Name"] == "running")
                self.steps.append(f"{r['id']} started again")

    def cleanup(self, probes):
        for p in probes:
            if p.get("drill_made"):
                self.clients("ec2", p["region"]).delete_snapshot(SnapshotId=p["id"])
                self.steps.append(f"probe snapshot {p['id']} deleted")

    def _wait(self, what, done):
        deadline = time.monotonic() + self.timeout
        while not done():
            if time.monotonic() > deadline:
                raise DrillError(f"waiting for {what}: not after {self.timeout} s")
            time.sleep(self.poll)

    def run(self, resources, copies) -> dict:
        probes = self.probes(resources, copies)
        before = [self.run_probe(p) for p in probes if p["probe"] != "ec2_restart"]
        self.set_keys(False)
        try:
            revoked = [self.run_probe(p) for p in probes]
        finally:
            self.set_keys(True)
        self.recover(revoked)
        after = [self.run_probe(p) for p in probes]
        self.cleanup(probes)
        readable = [r for r in revoked if r["outcome"] == READABLE]
        stores_readable = [r for r in readable if r["kind"] == "store"]
        return {"keys": self.keys(), "before": before, "while_revoked": revoked, "after_reenable": after,
                "readable_while_revoked": readable, "nothing_readable": not readable,
                "stores_refused": sum(1 for r in revoked if r["kind"] == "store" and r["outcome"] == REFUSED),
                "stores_readable": len(stores_readable),
                "all_readable_again": all(r["outcome"] == READABLE for r in after), "steps": self.steps}


def off_key_stores(resources: list[dict]) -> list[dict]:
    """In-scope stores not on the customer key: readable whatever the customer does with its key."""
    return [{"kind": "store", "what": r["type"], "id": r["id"], "region": r["region"], "outcome": READABLE,
             "evidence": f"on {r.get('key_arn') or 'no KMS key'}, not the customer's key"}
            for r in resources if r["status"] in ("other_key", "unencrypted") and not same_kms_key(r.get("key_arn"), r.get("expected_key_arn"))]
