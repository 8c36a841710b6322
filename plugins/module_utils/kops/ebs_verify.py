# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What AWS itself says about a kops cluster's EBS keys: launch templates, instances' volumes, etcd volumes.

Read-only. The reads use kops's naming: the launch template and Auto Scaling group of instance group <ig> are both
`<ig>.<cluster>`, an etcd member's volume is `<member>.etcd-<etcd cluster>.<cluster>` with the tag
`k8s.io/etcd/<etcd cluster>`. Clients are boto3 clients with the collection's retry policy (aws_module.RETRY_POLICY).
"""

from __future__ import annotations

from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import same_kms_key

try:
    from botocore.exceptions import ClientError
except ImportError:
    ClientError = Exception  # the module reports the missing SDK

ETCD_TAG_PREFIX = "k8s.io/etcd/"

ETCD_REASON = ("kops cannot change the key of a running cluster's etcd volumes: the direct target fails with "
               "'Field cannot be changed: KmsKeyID', and the terraform target would destroy and re-create the volume "
               "(terraform's kms_key_id is ForceNew), losing the member's data")
ETCD_OPTIONS = [
    "accept: the member stays on its current key and is recorded as an exception in the audit",
    "per-member volume swap, one member at a time with its control-plane node stopped: snapshot, copy the snapshot "
    "with the customer key, new volume with identical tags, detach/untag the old one, then set etcdMembers[].kmsKeyId "
    "(and terraform state rm/import in terraform mode); a single-member cluster loses its API meanwhile",
    "etcd-manager restore: new volumes on the key, etcd-manager-ctl restore-backup from the state store's "
    "backups/etcd/{main,events} (full control-plane downtime, writes after the backup are lost)",
    "rebuild: a new cluster created with etcdMembers[].encryptedVolume: true and kmsKeyId: <key ARN>, workloads moved",
]


def _tag(resource: dict, key: str):
    return next((t.get("Value") for t in resource.get("Tags") or [] if t.get("Key") == key), None)


def _mapping_view(mapping: dict, key_arn: str) -> dict:
    ebs = mapping.get("Ebs") or {}
    kms = ebs.get("KmsKeyId")
    return {"device": mapping.get("DeviceName"), "encrypted": bool(ebs.get("Encrypted")), "kms_key_id": kms,
            "on_key": bool(ebs.get("Encrypted")) and same_kms_key(kms, key_arn)}


def launch_templates(ec2, names: list, key_arn: str) -> list:
    """Per launch template: its default and latest version and whether every EBS mapping of each names the key."""
    found = []
    for name in names:
        entry = {"name": name, "found": False, "default_version": None, "latest_version": None, "mappings": [], "on_key": False}
        try:
            versions = ec2.describe_launch_template_versions(aws_retry=True, LaunchTemplateName=name,
                                                             Versions=["$Default", "$Latest"])["LaunchTemplateVersions"]
        except ClientError as e:
            if "NotFound" in e.response.get("Error", {}).get("Code", ""):
                found.append(entry)
                continue
            raise
        default = next(v for v in versions if v.get("DefaultVersion"))
        latest = max(versions, key=lambda v: v["VersionNumber"])
        views = {}
        for label, version in (("default", default), ("latest", latest)):
            mappings = [m for m in version.get("LaunchTemplateData", {}).get("BlockDeviceMappings") or [] if m.get("Ebs")]
            views[label] = [_mapping_view(m, key_arn) for m in mappings]
        entry.update(found=True, default_version=default["VersionNumber"], latest_version=latest["VersionNumber"],
                     mappings=views["default"],
                     on_key=bool(views["default"]) and all(m["on_key"] for m in views["default"] + views["latest"]))
        found.append(entry)
    return found


def instances(autoscaling, ec2, group_names: list, key_arn: str) -> list:
    """Per running instance of the Auto Scaling groups: its volumes (etcd volumes excluded) and their keys."""
    groups = []
    for i in range(0, len(group_names), 50):
        pages = autoscaling.get_paginator("describe_auto_scaling_groups").paginate(AutoScalingGroupNames=group_names[i:i + 50])
        groups += [g for p in pages for g in p["AutoScalingGroups"]]
    by_instance = {i["InstanceId"]: g["AutoScalingGroupName"] for g in groups for i in g.get("Instances") or []}
    if not by_instance:
        return []
    ids = sorted(by_instance)
    described = []
    for i in range(0, len(ids), 100):
        pages = ec2.get_paginator("describe_instances").paginate(InstanceIds=ids[i:i + 100])
        described += [inst for p in pages for r in p["Reservations"] for inst in r["Instances"]]
    described = [d for d in described if d["State"]["Name"] not in ("terminated", "shutting-down")]
    volume_ids = sorted({m["Ebs"]["VolumeId"] for d in described for m in d.get("BlockDeviceMappings") or [] if m.get("Ebs")})
    volumes = {}
    for i in range(0, len(volume_ids), 200):
        pages = ec2.get_paginator("describe_volumes").paginate(VolumeIds=volume_ids[i:i + 200])
        volumes.update({v["VolumeId"]: v for p in pages for v in p["Volumes"]})
    result = []
    for d in sorted(described, key=lambda x: x["InstanceId"]):
        vols = []
        for m in d.get("BlockDeviceMappings") or []:
            volume = volumes.get((m.get("Ebs") or {}).get("VolumeId"))
            if volume is None or any(t["Key"].startswith(ETCD_TAG_PREFIX) for t in volume.get("Tags") or []):
                continue
            vols.append({"volume_id": volume["VolumeId"], "device": m.get("DeviceName"),
                         "root": m.get("DeviceName") == d.get("RootDeviceName"),
                         "kms_key_id": volume.get("KmsKeyId"),
                         "on_key": bool(volume.get("Encrypted")) and same_kms_key(volume.get("KmsKeyId"), key_arn)})
        result.append({"instance_id": d["InstanceId"], "auto_scaling_group": by_instance[d["InstanceId"]],
                       "launch_template_version": _tag(d, "aws:ec2launchtemplate:version"), "volumes": vols,
                       "on_key": bool(vols) and all(v["on_key"] for v in vols)})
    return result


def etcd_report(ec2, cluster_name: str, members: list, key_arn: str) -> list:
    """Each etcd member with its volume's actual key; those not on the key carry the reason and the options."""
    pages = ec2.get_paginator("describe_volumes").paginate(
        Filters=[{"Name": f"tag:kubernetes.io/cluster/{cluster_name}", "Values": ["owned"]}])
    volumes = {_tag(v, "Name"): v for p in pages for v in p["Volumes"]}
    report = []
    for member in members:
        name = f"{member['member']}.etcd-{member['etcd_cluster']}.{cluster_name}"
        volume = volumes.get(name)
        entry = dict(member, volume_name=name, volume_id=None, kms_key_id=None, on_key=False, reason=None, options=[])
        if volume is None:
            entry.update(reason="no volume with this Name tag was found in the cluster's region", options=[
                "check the cluster name and region; a cluster that was never applied has no etcd volumes yet"])
        else:
            entry.update(volume_id=volume["VolumeId"], kms_key_id=volume.get("KmsKeyId"),
                         on_key=bool(volume.get("Encrypted")) and same_kms_key(volume.get("KmsKeyId"), key_arn))
            if not entry["on_key"]:
                entry.update(reason=ETCD_REASON, options=list(ETCD_OPTIONS))
        report.append(entry)
    return report
