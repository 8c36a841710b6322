"""The kops double's command line (see the package docstring for what it implements and how)."""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import sys
import time
from pathlib import Path

import yaml

from .s3_state import S3Client, S3ClientError, S3Error

# libyaml's parser when PyYAML has it (the same documents, a fraction of the CPU); output keeps PyYAML's own dumper.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str):
    return yaml.load(text, Loader=_LOADER)  # nosec B506 - a safe loader


VERSION = "1.28.4"
CONTROL_PLANE_ROLES = ("Master", "ControlPlane", "APIServer")
V1ALPHA2 = "kops.k8s.io/v1alpha2"


class KopsError(Exception):
    """Printed as `Error: <message>` with exit code 1, as kops does."""


# -- state store ---------------------------------------------------------------------------------------------------

class Boto3S3:
    """The state store through boto3, for what the light client does not do: profiles, SSO, AWS's own endpoints."""

    def __init__(self, region: str):
        import boto3  # pylint: disable=import-outside-toplevel  # on use: importing it costs more than a whole kops call
        from botocore.config import Config  # pylint: disable=import-outside-toplevel
        # kops's state store: the SDK's default retryer (standard mode; AWS_MAX_ATTEMPTS is honoured).
        self.s3 = boto3.client("s3", region_name=region, config=Config(retries={"mode": "standard"}))

    @staticmethod
    @contextlib.contextmanager
    def _errors():
        """botocore's errors as the light client's, so that StateStore words both alike."""
        from botocore.exceptions import BotoCoreError, ClientError  # pylint: disable=import-outside-toplevel
        try:
            yield
        except ClientError as e:
            error = e.response.get("Error", {})
            raise S3Error(error.get("Code"), error.get("Message", ""), str(e)) from e
        except BotoCoreError as e:
            raise S3ClientError(str(e)) from e

    def get_object(self, bucket: str, key: str) -> bytes | None:
        try:
            with self._errors():
                return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except S3Error as e:
            if e.code in ("NoSuchKey", "404"):
                return None
            raise

    def put_object(self, bucket: str, key: str, body: bytes) -> None:
        with self._errors():
            self.s3.put_object(Bucket=bucket, Key=key, Body=body)

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        with self._errors():
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            return [o["Key"] for page in pages for o in page.get("Contents", [])]


def state_client(region: str) -> S3Client | Boto3S3:
    """The light client when the environment names an endpoint and static keys (the local AWS), else boto3.

    KOPS_DOUBLE_STATE_CLIENT=boto3 forces boto3, to compare the two.
    """
    light = None if os.environ.get("KOPS_DOUBLE_STATE_CLIENT") == "boto3" else S3Client.from_environ(region)
    return light or Boto3S3(region)


class StateStore:
    def __init__(self, url: str | None):
        if not url:
            raise KopsError("State Store: Required value: Please set the --state flag or export KOPS_STATE_STORE.\n"
                            "For example, a valid value follows the format s3://<bucket>.")
        if not url.startswith("s3://"):
            raise KopsError(f"unable to read state store location {url!r}: only s3:// is supported by this double")
        bucket, _slash, prefix = url[len("s3://"):].partition("/")
        self.url, self.bucket, self.prefix = url, bucket, prefix.strip("/")
        self.s3 = state_client(os.environ.get("KOPS_STATE_S3_REGION", "us-east-1"))

    def key(self, cluster: str, *parts: str) -> str:
        return "/".join([p for p in (self.prefix, cluster) if p] + list(parts))

    def path(self, cluster: str, *parts: str) -> str:
        return f"s3://{self.bucket}/{self.key(cluster, *parts)}"

    def read(self, cluster: str, *parts: str) -> str | None:
        try:
            body = self.s3.get_object(self.bucket, self.key(cluster, *parts))
        except S3Error as e:
            raise KopsError(f"error reading {self.path(cluster, *parts)}: {e.code}: {e.message}") from e
        except S3ClientError as e:
            raise KopsError(f"error reading {self.path(cluster, *parts)}: {e}") from e
        return None if body is None else body.decode()

    def write(self, cluster: str, body: str, *parts: str) -> None:
        try:
            self.s3.put_object(self.bucket, self.key(cluster, *parts), body.encode())
        except S3ClientError as e:
            raise KopsError(f"error writing {self.path(cluster, *parts)}: {e}") from e

    def list_instance_groups(self, cluster: str) -> list[str]:
        prefix = self.key(cluster, "instancegroup") + "/"
        try:
            keys = self.s3.list_keys(self.bucket, prefix)
        except S3ClientError as e:
            raise KopsError(f"error listing {self.path(cluster, 'instancegroup')}: {e}") from e
        return sorted(key[len(prefix):] for key in keys)

    def cluster(self, name: str) -> dict:
        if not name:
            raise KopsError("--name is required")
        text = self.read(name, "config")
        if text is None:
            raise KopsError(f"cluster not found {name!r}")
        return load(text)

    def instance_groups(self, cluster: str) -> list[dict]:
        return [load(self.read(cluster, "instancegroup", n) or "{}") for n in self.list_instance_groups(cluster)]


def dump(doc: dict) -> str:
    return yaml.safe_dump(doc, sort_keys=True, default_flow_style=False)


def cluster_region(cluster: dict) -> str:
    zones = [s.get("zone") for s in cluster["spec"].get("subnets") or [] if s.get("zone")]
    if not zones:
        raise KopsError("unable to determine the cluster's region: no subnet has a zone")
    return zones[0][:-1]


# -- get / replace -------------------------------------------------------------------------------------------------

def output(docs: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(docs[0] if len(docs) == 1 else docs, indent=2, sort_keys=True) + "\n"
    if fmt != "yaml":
        raise KopsError(f"unknown output format: {fmt!r} (this double prints yaml or json)")
    return "---\n".join(dump(d) for d in docs)


def cmd_get(args, store: StateStore) -> str:
    what = args.resource
    if what in ("cluster", "clusters"):
        name = args.name or (args.names[0] if args.names else None)
        return output([store.cluster(name)], args.output)
    if what in ("instancegroup", "instancegroups", "ig", "igs"):
        store.cluster(args.name)
        groups = store.instance_groups(args.name)
        if args.names:
            by_name = {g["metadata"]["name"]: g for g in groups}
            missing = [n for n in args.names if n not in by_name]
            if missing:
                raise KopsError(f"InstanceGroup {missing[0]!r} not found")
            groups = [by_name[n] for n in args.names]
        if not groups:
            raise KopsError("No InstanceGroup objects found")
        return output(groups, args.output)
    if not args.names and not args.name:
        # `kops get <cluster> -o yaml`: the cluster and its instance groups.
        return output([store.cluster(what)] + store.instance_groups(what), args.output)
    raise KopsError(f"unknown resource type {what!r} (this double knows cluster and instancegroups)")


def _etcd_names(cluster: dict) -> dict:
    return {e.get("name"): [(m.get("name"), m.get("instanceGroup")) for m in e.get("etcdMembers") or []]
            for e in cluster["spec"].get("etcdClusters") or []}


def cmd_replace(args, store: StateStore) -> str:
    try:
        docs = [d for d in yaml.safe_load_all(Path(args.filename).read_text(encoding="utf-8")) if d]
    except OSError as e:
        raise KopsError(f"error reading file {args.filename!r}: {e}") from e
    except yaml.YAMLError as e:
        raise KopsError(f"error parsing file {args.filename!r}: {e}") from e
    for doc in docs:
        if doc.get("apiVersion") not in (V1ALPHA2, "kops.k8s.io/v1alpha3"):
            raise KopsError(f"error parsing file {args.filename!r}: no kind \"{doc.get('kind')}\" is registered for version "
                            f"\"{doc.get('apiVersion')}\"")
        kind, name = doc.get("kind"), (doc.get("metadata") or {}).get("name")
        if kind == "Cluster":
            old_text = store.read(name, "config")
            if old_text is None and not args.force:
                raise KopsError(f"cluster {name!r} does not exist; use --force to create it")
            old = load(old_text) if old_text else None
            if old is not None:
                # kops's ValidateClusterUpdate: etcd cluster and member names and instance groups are immutable.
                if _etcd_names(old) != _etcd_names(doc):
                    raise KopsError("spec.etcdClusters: Forbidden: etcd cluster and member names, and their instance "
                                    "groups, cannot be changed")
            _bump_generation(doc, old)
            store.write(name, dump(doc), "config")
        elif kind == "InstanceGroup":
            cluster = ((doc.get("metadata") or {}).get("labels") or {}).get("kops.k8s.io/cluster")
            if not cluster:
                raise KopsError(f"InstanceGroup {name!r}: must specify the label \"kops.k8s.io/cluster\"")
            store.cluster(cluster)
            old_text = store.read(cluster, "instancegroup", name)
            if old_text is None and not args.force:
                raise KopsError(f"InstanceGroup {name!r} does not exist; use --force to create it")
            doc = stored_instance_group(doc)
            _validate_instance_group(doc)
            _bump_generation(doc, load(old_text) if old_text else None)
            store.write(cluster, dump(doc), "instancegroup", name)
        else:
            raise KopsError(f"unhandled kind {kind!r} in {args.filename!r}")
    return ""


# v1alpha3's spec.rootVolume fields and the v1alpha2 fields they convert to (pkg/apis/kops/v1alpha3/conversion.go).
ROOT_VOLUME_V1ALPHA3_TO_V1ALPHA2 = {"size": "rootVolumeSize", "type": "rootVolumeType", "iops": "rootVolumeIops",
                                    "throughput": "rootVolumeThroughput", "optimization": "rootVolumeOptimization",
                                    "encryption": "rootVolumeEncryption", "encryptionKey": "rootVolumeEncryptionKey"}


def stored_instance_group(doc: dict) -> dict:
    """The InstanceGroup as kops stores it: decoded by its apiVersion, written back as v1alpha2.

    In v1alpha2 (pkg/apis/kops/v1alpha2/instancegroup.go) the root volume is the flat fields and the struct is
    `RootVolume ... json:"-"`: a `rootVolume:` map is dropped unread, so it is neither honoured nor stored. In v1alpha3
    only `rootVolume:` exists; its fields become the flat v1alpha2 ones and flat fields given there are dropped.
    """
    doc = copy.deepcopy(doc)
    spec = doc.get("spec") or {}
    if doc.get("apiVersion") == V1ALPHA2:
        spec.pop("rootVolume", None)
        return doc
    for flat in ROOT_VOLUME_V1ALPHA3_TO_V1ALPHA2.values():
        spec.pop(flat, None)
    for nested, flat in ROOT_VOLUME_V1ALPHA3_TO_V1ALPHA2.items():
        value = (spec.get("rootVolume") or {}).get(nested)
        if value is not None:
            spec[flat] = value
    spec.pop("rootVolume", None)
    doc["apiVersion"] = V1ALPHA2
    return doc


def _validate_instance_group(doc: dict) -> None:
    spec = doc.get("spec") or {}
    if spec.get("rootVolumeEncryptionKey") and spec.get("rootVolumeEncryption") is False:
        raise KopsError(f"spec.rootVolume.encryptionKey: Invalid value: {spec['rootVolumeEncryptionKey']!r}: "
                        "encryptionKey requires encryption to be enabled")
    for i, volume in enumerate(spec.get("volumes") or []):
        if not volume.get("device"):
            raise KopsError(f"spec.volumes[{i}].device: Required value: device name must be set")


def _bump_generation(doc: dict, old: dict | None) -> None:
    meta = doc.setdefault("metadata", {})
    if old is None:
        meta.setdefault("generation", 1)
        return
    meta["generation"] = (old.get("metadata") or {}).get("generation", 0) + (1 if old.get("spec") != doc.get("spec") else 0)
    if not meta["generation"]:
        meta.pop("generation")


# -- update cluster ------------------------------------------------------------------------------------------------

def ebs_root(group: dict, current: dict | None) -> dict:
    """The root volume kops's awsmodel renders: encrypted by default, the spec's key only with encryption set."""
    spec = group["spec"]
    ebs = dict((current or {}).get("Ebs") or {})
    encrypted = spec.get("rootVolumeEncryption")
    ebs["Encrypted"] = True if encrypted is None else bool(encrypted)
    if encrypted is True and spec.get("rootVolumeEncryptionKey"):
        ebs["KmsKeyId"] = spec["rootVolumeEncryptionKey"]
    else:
        ebs.pop("KmsKeyId", None)
    for field, name in (("rootVolumeSize", "VolumeSize"), ("rootVolumeType", "VolumeType")):
        if spec.get(field):
            ebs[name] = spec[field]
    return ebs


def rendered_mappings(group: dict, current: list[dict]) -> list[dict]:
    by_device = {m.get("DeviceName"): m for m in current}
    root_device = current[0]["DeviceName"] if current else "/dev/xvda"
    mappings = [{"DeviceName": root_device, "Ebs": ebs_root(group, by_device.get(root_device))}]
    for volume in group["spec"].get("volumes") or []:
        ebs = dict((by_device.get(volume["device"]) or {}).get("Ebs") or {})
        ebs.update({"VolumeSize": volume.get("size", ebs.get("VolumeSize")), "VolumeType": volume.get("type", ebs.get("VolumeType", "gp3")),
                    "DeleteOnTermination": volume.get("deleteOnTermination", True),
                    "Encrypted": volume.get("encrypted", True)})
        if volume.get("key"):
            ebs["KmsKeyId"] = volume["key"]
        else:
            ebs.pop("KmsKeyId", None)
        mappings.append({"DeviceName": volume["device"], "Ebs": ebs})
    return mappings


def _comparable(mappings: list[dict], desired: list[dict]) -> list:
    """Mappings compared as EBS sees them. Where kops names no key the account's default EBS key applies, so the
    key a template already carries there is no difference (moto cannot answer GetEbsDefaultKmsKeyId)."""
    keyless = {m.get("DeviceName") for m in desired if not (m.get("Ebs") or {}).get("KmsKeyId")}
    out = []
    for m in mappings:
        ebs = dict(m.get("Ebs") or {})
        if m.get("DeviceName") in keyless:
            ebs.pop("KmsKeyId", None)
        out.append((m.get("DeviceName"), json.dumps(ebs, sort_keys=True, default=str)))
    return sorted(out)


class Cloud:
    def __init__(self, region: str):
        import boto3  # pylint: disable=import-outside-toplevel  # not at the top: `kops get` does without it
        self.region = region
        from botocore.config import Config  # pylint: disable=import-outside-toplevel
        # kops's cloud calls (upup/pkg/fi/cloudup/awsup/aws_cloud.go, loadAWSConfig): the SDK's adaptive retry mode with
        # MaxAttempts = ClientMaxRetries = 13.
        config = Config(retries={"mode": "adaptive", "total_max_attempts": 13})
        self.ec2 = boto3.client("ec2", region_name=region, config=config)
        self.autoscaling = boto3.client("autoscaling", region_name=region, config=config)

    def launch_template(self, name: str) -> dict | None:
        from botocore.exceptions import ClientError  # pylint: disable=import-outside-toplevel
        try:
            return self.ec2.describe_launch_template_versions(LaunchTemplateName=name, Versions=["$Latest"])["LaunchTemplateVersions"][0]
        except ClientError as e:
            if "NotFound" in e.response["Error"]["Code"]:
                return None
            raise

    def role_policy(self, role: str, name: str) -> dict | None:
        """An inline policy of a kops role (None when absent)."""
        from botocore.exceptions import ClientError  # pylint: disable=import-outside-toplevel
        import boto3  # pylint: disable=import-outside-toplevel
        if not hasattr(self, "iam"):
            self.iam = boto3.client("iam", region_name=self.region)
        try:
            document = self.iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        except ClientError as e:
            if e.response["Error"]["Code"] == "NoSuchEntity":
                return None
            raise
        return json.loads(document) if isinstance(document, str) else document

    def etcd_volumes(self, cluster: str) -> list[dict]:
        pages = self.ec2.get_paginator("describe_volumes").paginate(
            Filters=[{"Name": f"tag:kubernetes.io/cluster/{cluster}", "Values": ["owned"]}])
        volumes = [v for p in pages for v in p["Volumes"]]
        return [v for v in volumes if any(t["Key"].startswith("k8s.io/etcd/") for t in v.get("Tags", []))]


def _tag(resource: dict, key: str):
    return next((t["Value"] for t in resource.get("Tags", []) if t["Key"] == key), None)


def etcd_key_changes(cluster: dict, cloud: Cloud) -> list[tuple[str, str, str]]:
    """(volume name, actual key, spec key) for every member whose spec names a key its volume does not have."""
    name = cluster["metadata"]["name"]
    volumes = {_tag(v, "Name"): v for v in cloud.etcd_volumes(name)}
    changes = []
    for etcd in cluster["spec"].get("etcdClusters") or []:
        for member in etcd.get("etcdMembers") or []:
            volume = volumes.get(f"{member.get('name')}.etcd-{etcd.get('name')}.{name}")
            wanted = member.get("kmsKeyId") or member.get("kmsKeyID")
            if volume is not None and wanted and volume.get("KmsKeyId") != wanted:
                changes.append((_tag(volume, "Name"), volume.get("KmsKeyId"), wanted))
    return changes


def cmd_update(args, store: StateStore) -> str:
    cluster = store.cluster(args.name)
    groups = store.instance_groups(args.name)
    cloud = Cloud(cluster_region(cluster))
    lines, work = [], []
    for group in groups:
        lt_name = f"{group['metadata']['name']}.{args.name}"
        current = cloud.launch_template(lt_name)
        if current is None:
            raise KopsError(f"error running tasks: LaunchTemplate/{lt_name} not found (this double updates existing clusters only)")
        existing = current["LaunchTemplateData"].get("BlockDeviceMappings") or []
        desired = rendered_mappings(group, existing)
        if _comparable(existing, desired) != _comparable(desired, desired):
            lines.append(f"  LaunchTemplate/{lt_name}\n    BlockDeviceMappings  {_short(existing)} -> {_short(desired)}")
            work.append((lt_name, current, desired))
    etcd_changes = etcd_key_changes(cluster, cloud)
    # spec.additionalPolicies: kops renders each role's list as the role's inline policy additional.<role>s.<cluster>.
    policies = []
    for role, text in sorted(((cluster["spec"].get("additionalPolicies") or {}).items())):
        role_name, policy_name = f"{role}s.{args.name}", f"additional.{role}s.{args.name}"
        desired = {"Version": "2012-10-17", "Statement": json.loads(text)}
        if cloud.role_policy(role_name, policy_name) != desired:
            lines.append(f"  IAMRolePolicy/{policy_name}\n    PolicyDocument  (additionalPolicies.{role})")
            policies.append((role_name, policy_name, desired))
    if args.target == "terraform":
        return _render_terraform(args, cluster, groups, cloud)
    if etcd_changes:
        lines += [f"  EBSVolume/{n}\n    KmsKeyId  {a} -> {w}" for n, a, w in etcd_changes]
    if not lines:
        return "\nNo changes need to be applied\n" if args.yes else "\nNo changes need to be applied\n"
    if not args.yes:
        return "Will modify resources:\n" + "\n".join(lines) + "\n\nMust specify --yes to apply changes\n"
    if etcd_changes:
        # awstasks.EBSVolume.CheckChanges: an existing volume's key cannot change.
        raise KopsError("error running tasks: deadline exceeded executing task EBSVolume/"
                        f"{etcd_changes[0][0]}. Example error: Field cannot be changed: KmsKeyID")
    for role_name, policy_name, document in policies:
        cloud.iam.put_role_policy(RoleName=role_name, PolicyName=policy_name, PolicyDocument=json.dumps(document))
    for lt_name, current, desired in work:
        # kops renders the whole template (awstasks.LaunchTemplate): everything of the current version, the new mappings.
        data = {**(current.get("LaunchTemplateData") or {}), "BlockDeviceMappings": desired}
        version = cloud.ec2.create_launch_template_version(
            LaunchTemplateName=lt_name, SourceVersion=str(current["VersionNumber"]),
            LaunchTemplateData=data)["LaunchTemplateVersion"]["VersionNumber"]
        cloud.ec2.modify_launch_template(LaunchTemplateName=lt_name, DefaultVersion=str(version))
    store.write(args.name, VERSION, "kops-version.txt")
    return ("Will modify resources:\n" + "\n".join(lines) + "\n\nCluster changes have been applied to the cloud.\n\n"
            "Changes may require instances to restart: kops rolling-update cluster\n")


def _short(mappings: list[dict]) -> str:
    return "[" + ", ".join(f"{m['DeviceName']}:{(m.get('Ebs') or {}).get('KmsKeyId', 'default key')}" for m in mappings) + "]"


def _render_terraform(args, cluster: dict, groups: list[dict], cloud: Cloud) -> str:
    if not args.out:
        raise KopsError("--out is required with --target=terraform")
    name = cluster["metadata"]["name"]
    safe = name.replace(".", "-")
    blocks = []
    for group in groups:
        lt_name = f"{group['metadata']['name']}.{name}"
        current = cloud.launch_template(lt_name)
        mappings = rendered_mappings(group, (current or {}).get("LaunchTemplateData", {}).get("BlockDeviceMappings") or [])
        devices = "".join(
            f"  block_device_mappings {{\n    device_name = \"{m['DeviceName']}\"\n    ebs {{\n"
            f"      encrypted   = {str(m['Ebs'].get('Encrypted', True)).lower()}\n"
            + (f"      kms_key_id  = \"{m['Ebs']['KmsKeyId']}\"\n" if m["Ebs"].get("KmsKeyId") else "")
            + f"      volume_size = {m['Ebs'].get('VolumeSize', 0)}\n      volume_type = \"{m['Ebs'].get('VolumeType', 'gp3')}\"\n    }}\n  }}\n"
            for m in mappings)
        blocks.append(f"resource \"aws_launch_template\" \"{group['metadata']['name']}-{safe}\" {{\n"
                      f"  name = \"{lt_name}\"\n{devices}}}\n")
    for etcd in cluster["spec"].get("etcdClusters") or []:
        for member in etcd.get("etcdMembers") or []:
            key = member.get("kmsKeyId") or member.get("kmsKeyID")
            blocks.append(f"resource \"aws_ebs_volume\" \"{member['name']}-etcd-{etcd['name']}-{safe}\" {{\n"
                          f"  encrypted = {str(member.get('encryptedVolume', False)).lower()}\n"
                          + (f"  kms_key_id = \"{key}\"\n" if key else "")
                          + f"  tags = {{\n    \"Name\" = \"{member['name']}.etcd-{etcd['name']}.{name}\"\n  }}\n}}\n")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "kubernetes.tf").write_text("locals {\n  cluster_name = \"%s\"\n  region = \"%s\"\n}\n\n%s" % (name, cloud.region, "\n".join(blocks)))
    store_note = "" if args.yes else "\nMust specify --yes to apply changes\n"
    return (f"Terraform output has been placed into {out}\nRun these commands to apply the configuration:\n"
            f"   cd {out}\n   terraform plan\n   terraform apply\n{store_note}")


# -- rolling-update ------------------------------------------------------------------------------------------------

def _group_status(cloud: Cloud, cluster: str, group: dict) -> tuple[str, dict, list[dict], int]:
    asg_name = f"{group['metadata']['name']}.{cluster}"
    found = cloud.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[asg_name])["AutoScalingGroups"]
    if not found:
        raise KopsError(f"error listing nodes in cluster: Auto Scaling group {asg_name!r} not found")
    asg = found[0]
    latest = cloud.launch_template(asg_name)["VersionNumber"]
    ids = [i["InstanceId"] for i in asg["Instances"]]
    instances = []
    if ids:
        reservations = cloud.ec2.describe_instances(InstanceIds=ids)["Reservations"]
        instances = [i for r in reservations for i in r["Instances"] if i["State"]["Name"] not in ("terminated", "shutting-down")]
    return asg_name, asg, instances, latest


def _needs_update(instance: dict, latest: int) -> bool:
    return _tag(instance, "aws:ec2launchtemplate:version") != str(latest)


def cmd_rolling_update(args, store: StateStore) -> str:
    cluster = store.cluster(args.name)
    groups = store.instance_groups(args.name)
    if args.instance_group:
        known = {g["metadata"]["name"] for g in groups}
        for name in args.instance_group:
            if name not in known:
                raise KopsError(f"InstanceGroup {name!r} not found")
        groups = [g for g in groups if g["metadata"]["name"] in args.instance_group]
    cloud = Cloud(cluster_region(cluster))
    # Control plane first, then the rest, as kops rolls them.
    groups.sort(key=lambda g: (g["spec"].get("role") not in CONTROL_PLANE_ROLES, g["metadata"]["name"]))
    rows, todo = [], []
    for group in groups:
        asg_name, asg, instances, latest = _group_status(cloud, args.name, group)
        stale = [i for i in instances if _needs_update(i, latest)]
        rows.append((group["metadata"]["name"], "NeedsUpdate" if stale else "Ready", len(stale), len(instances) - len(stale),
                     asg["MinSize"], asg["DesiredCapacity"], asg["MaxSize"], len(instances)))
        todo += [(group, asg_name, i, latest) for i in stale]
    table = "NAME\tSTATUS\tNEEDUPDATE\tREADY\tMIN\tTARGET\tMAX\tNODES\n" + "".join("\t".join(map(str, r)) + "\n" for r in rows)
    if not todo:
        return table + "\nNo rolling-update required.\n"
    if not args.yes:
        return table + "\nMust specify --yes to rolling-update.\n"
    log = [table]
    for group, asg_name, instance, latest in todo:
        replacement = _replace_instance(cloud, args.name, asg_name, instance)
        log.append(f"I: Stopping instance \"{instance['InstanceId']}\", in group \"{asg_name}\"; "
                   f"replaced by \"{replacement}\".\n")
    log.append(f"I: Rolling update completed for cluster \"{args.name}\"!\n")
    return "".join(log)


def _replace_instance(cloud: Cloud, cluster: str, asg_name: str, instance: dict) -> str:
    before = {i["InstanceId"] for i in cloud.autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[asg_name])["AutoScalingGroups"][0]["Instances"]}
    etcd = [v for v in cloud.etcd_volumes(cluster) if any(a["InstanceId"] == instance["InstanceId"] for a in v.get("Attachments", []))]
    for volume in etcd:
        cloud.ec2.detach_volume(VolumeId=volume["VolumeId"], InstanceId=instance["InstanceId"])
    cloud.autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=instance["InstanceId"], ShouldDecrementDesiredCapacity=False)
    deadline = time.monotonic() + 30
    while True:
        now = cloud.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[asg_name])["AutoScalingGroups"][0]["Instances"]
        new = [i["InstanceId"] for i in now if i["InstanceId"] not in before]
        if new:
            break
        if time.monotonic() > deadline:
            raise KopsError(f"error rolling-update of group {asg_name!r}: no replacement for {instance['InstanceId']} was launched; "
                            "cluster did not validate within 15m0s (instances fail to launch: is the launch template's KMS key usable "
                            "by the Auto Scaling service-linked role?)")
        time.sleep(0.1)
    launched = cloud.ec2.describe_instances(InstanceIds=new)["Reservations"][0]["Instances"][0]
    if launched["State"]["Name"] in ("terminated", "shutting-down"):
        reason = (launched.get("StateReason") or {}).get("Message", "")
        raise KopsError(f"error rolling-update of group {asg_name!r}: instance {new[0]} failed to launch: {reason}")
    for volume in etcd:
        # etcd-manager on the new control-plane node finds its volume by tags and attaches it.
        device = "/dev/xvdu" if _tag(volume, "k8s.io/etcd/main") else "/dev/xvdv"
        cloud.ec2.attach_volume(VolumeId=volume["VolumeId"], InstanceId=new[0], Device=device)
    return new[0]


# -- validate cluster (and etcd-manager's volume discovery on control-plane nodes) ---------------------------------

def _etcd_manager_attach(cloud: Cloud, cluster_name: str, etcd_name: str, instance: dict) -> str | None:
    """What etcd-manager does on a control-plane node that has no volume for `etcd_name` attached: look in its own
    zone for an available volume with the tags kops passes it (--volume-tag kubernetes.io/cluster/<cluster>=owned,
    k8s.io/etcd/<name>, k8s.io/role/control-plane=1; kops pkg/model/components/etcdmanager/model.go) and attach it
    (etcd-manager pkg/volumes/aws/volumes.go findVolumes/AttachVolume)."""
    zone = instance["Placement"]["AvailabilityZone"]
    found = cloud.ec2.describe_volumes(Filters=[
        {"Name": "availability-zone", "Values": [zone]},
        {"Name": f"tag:kubernetes.io/cluster/{cluster_name}", "Values": ["owned"]},
        {"Name": "tag-key", "Values": [f"k8s.io/etcd/{etcd_name}"]},
        {"Name": "tag:k8s.io/role/control-plane", "Values": ["1"]},
        {"Name": "status", "Values": ["available"]}])["Volumes"]
    if not found:
        return None
    device = "/dev/xvdu" if etcd_name == "main" else "/dev/xvdv"
    cloud.ec2.attach_volume(VolumeId=found[0]["VolumeId"], InstanceId=instance["InstanceId"], Device=device)
    return found[0]["VolumeId"]


def cmd_validate(args, store: StateStore) -> str:
    """kops validate cluster: every instance group at its size, and every control-plane node running etcd on its volume.

    The double has no Kubernetes: a control-plane node is "Ready" when it runs with one volume per etcd cluster of the
    spec attached, which etcd-manager on it attaches by tags when the node starts (played here, on first validation)."""
    cluster = store.cluster(args.name)
    groups = store.instance_groups(args.name)
    cloud = Cloud(cluster_region(cluster))
    etcd_names = [e.get("name") for e in cluster["spec"].get("etcdClusters") or []]
    deadline = time.monotonic() + _seconds(args.wait)
    while True:
        failures = []
        for group in groups:
            asg_name, asg, instances, dummy_latest = _group_status(cloud, args.name, group)
            running = [i for i in instances if i["State"]["Name"] == "running"]
            if len(running) < asg["DesiredCapacity"]:
                failures.append(f"InstanceGroup\t{group['metadata']['name']}\tInstanceGroup \"{group['metadata']['name']}\" did not have "
                                f"enough nodes {len(running)} vs {asg['DesiredCapacity']}")
            if group["spec"].get("role") not in CONTROL_PLANE_ROLES:
                continue
            for instance in running:
                attached = {v["VolumeId"]: v for v in cloud.etcd_volumes(args.name)
                            if any(a["InstanceId"] == instance["InstanceId"] for a in v.get("Attachments", []))}
                for etcd_name in etcd_names:
                    if not any(_tag(v, f"k8s.io/etcd/{etcd_name}") for v in attached.values()):
                        if _etcd_manager_attach(cloud, args.name, etcd_name, instance) is None:
                            failures.append(f"Pod\tkube-system/etcd-manager-{etcd_name}-{instance['InstanceId']}\tsystem-cluster-critical pod "
                                            f"\"etcd-manager-{etcd_name}\" is pending: no etcd volume in {instance['Placement']['AvailabilityZone']}")
        if not failures:
            return f"\nYour cluster {args.name} is ready\n"
        if time.monotonic() >= deadline:
            raise KopsError("validation failed: cluster not yet healthy\nVALIDATION ERRORS\nKIND\tNAME\tMESSAGE\n" + "\n".join(failures))
        time.sleep(1)


def _seconds(text: str | None) -> float:
    if not text:
        return 0
    units = {"s": 1, "m": 60, "h": 3600}
    return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)


# -- entry point ---------------------------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kops", description="kops test double (BYOK tests)")
    p.add_argument("--state", default=os.environ.get("KOPS_STATE_STORE"))
    p.add_argument("-v", "--v", dest="verbosity", default=None)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("version")
    get = sub.add_parser("get")
    get.add_argument("resource")
    get.add_argument("names", nargs="*")
    get.add_argument("--name")
    get.add_argument("-o", "--output", default="yaml")
    replace = sub.add_parser("replace")
    replace.add_argument("-f", "--filename", required=True)
    replace.add_argument("--force", action="store_true")
    update = sub.add_parser("update")
    update.add_argument("resource", choices=["cluster"])
    update.add_argument("cluster_name", nargs="?")
    update.add_argument("--name")
    update.add_argument("--yes", action="store_true")
    update.add_argument("--target", default="direct", choices=["direct", "terraform"])
    update.add_argument("--out")
    update.add_argument("--admin", nargs="?", const="18h")
    roll = sub.add_parser("rolling-update")
    roll.add_argument("resource", choices=["cluster"])
    roll.add_argument("cluster_name", nargs="?")
    roll.add_argument("--name")
    roll.add_argument("--yes", action="store_true")
    roll.add_argument("--instance-group", action="append")
    roll.add_argument("--cloudonly", action="store_true")
    validate = sub.add_parser("validate")
    validate.add_argument("resource", choices=["cluster"])
    validate.add_argument("cluster_name", nargs="?")
    validate.add_argument("--name")
    validate.add_argument("--wait", default=None)
    for sp in (get, replace, update, roll, validate):
        sp.add_argument("--state", dest="sub_state")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if os.environ.get("KOPS_DOUBLE_LOG"):
        with open(os.environ["KOPS_DOUBLE_LOG"], "a", encoding="utf-8") as log:
            log.write(json.dumps(argv) + "\n")
    args = parser().parse_args(argv)
    try:
        if args.command == "version":
            sys.stdout.write(f"Client version: {VERSION} (kops test double)\n")
            return 0
        if getattr(args, "cluster_name", None) and not args.name:
            args.name = args.cluster_name
        store = StateStore(getattr(args, "sub_state", None) or args.state)
        handler = {"get": cmd_get, "replace": cmd_replace, "update": cmd_update, "rolling-update": cmd_rolling_update,
                   "validate": cmd_validate}[args.command]
        sys.stdout.write(handler(args, store))
        return 0
    except KopsError as e:
        sys.stderr.write(f"Error: {e}\n")
        return 1
    except _botocore_errors() as e:
        sys.stderr.write(f"Error: {e}\n")
        return 1


def _botocore_errors() -> tuple:
    """botocore's errors when this run used boto3 (EC2, Auto Scaling), else none: a light run never imports botocore."""
    exceptions = sys.modules.get("botocore.exceptions")
    return (exceptions.ClientError, exceptions.BotoCoreError) if exceptions else ()


if __name__ == "__main__":
    sys.exit(main())
