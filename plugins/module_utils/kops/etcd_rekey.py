# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kops cluster's etcd volumes onto the customer's key, one control-plane member at a time.

An EBS volume's key cannot change. etcd-manager finds its volume by tags (docs/ebs-kops.md, "How etcd-manager finds
its volume"): in its own availability zone, a volume with `kubernetes.io/cluster/<cluster>=owned`, the tag key
`k8s.io/etcd/<etcd cluster>` (value `<member>/<all members>`) and `k8s.io/role/control-plane=1`. So a member moves
onto the key by giving those tags to a copy of its volume made on the key, while the member is stopped:

  stop_member   the control-plane group scaled to 0 (its original sizes kept in a tag on the group): the member
                stops, its volumes detach, nothing is written to them any more
  snapshot      each of the member's etcd volumes (old key)
  create_volume a volume from the snapshot on the customer key: same zone, type, size, IOPS, throughput
  swap_tags     the old volume loses every tag etcd-manager and kops look for (kept in `byok:set-aside-tags`, the
                way back) and is marked set aside; the new volume gets them. Never both at once.
  start_member  the group's sizes restored: a new control-plane node starts, its etcd-manager attaches the new volume
  validate      `kops validate cluster` until the cluster is healthy, and the new volumes attached to the group's
                running instance; only then the next member.

Each step is chosen from what AWS shows (tags `byok:etcd-rekey-of` on the snapshot and the new volume, the set-aside
tags, the group's size tag), so a run stopped anywhere is finished by the next, never making a second copy. The old
volume and the snapshot stay (set aside, on the old key) for the residual clean-up's retention.

Stopping one member of a three-member etcd keeps quorum. A single-member etcd is a control-plane outage while its
member is stopped: it is done only when disruption is allowed (the maintenance window), like the node roll.
"""

from __future__ import annotations

import json
import time

from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import same_kms_key
from ansible_collections.mattermost.byok.plugins.module_utils.fleet import residual_copies as rc

REKEY_OF_TAG = "byok:etcd-rekey-of"          # on the snapshot and the new volume: the old volume's id
SIZES_TAG = "byok:etcd-rekey-sizes"          # on the Auto Scaling group while its member is stopped: min,max,desired
SET_ASIDE_TAGS_TAG = "byok:set-aside-tags"   # the old volume's etcd-manager and kops tags, JSON: the way back
DONE = "done"
STEPS = ("stop_member", "snapshot", "create_volume", "swap_tags", "start_member", "validate")


class EtcdRekeyError(Exception):
    pass


def discovery_tag(key: str) -> bool:
    """Tags etcd-manager or kops find an etcd volume by (and its Name, which kops matches it with)."""
    return (key in ("Name", "KubernetesCluster") or key.startswith("k8s.io/etcd/") or key.startswith("k8s.io/role/")
            or key.startswith("kubernetes.io/cluster/"))


def tags_of(resource) -> dict:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def members_by_group(members: list[dict]) -> dict:
    """instance group -> [(etcd cluster, member)], in the spec's order."""
    groups: dict[str, list] = {}
    for m in members:
        groups.setdefault(m["instance_group"], []).append((m["etcd_cluster"], m["member"]))
    return groups


def cluster_sizes(members: list[dict]) -> dict:
    sizes: dict[str, int] = {}
    for m in members:
        sizes[m["etcd_cluster"]] = sizes.get(m["etcd_cluster"], 0) + 1
    return sizes


def next_step(facts: dict, key: str) -> str:
    """The next step for one member (pure). `facts`:
    volumes: {etcd cluster: {"live": vol|None, "new": vol|None, "snapshot": snap|None, "set_aside": vol|None}},
    sizes_tag: str|None, desired: int, running: [instance ids], attached: {etcd cluster: instance id|None}."""
    volumes = facts["volumes"]
    swapped = all(v["live"] is not None and _on_key(v["live"], key) for v in volumes.values())
    if swapped:
        if facts["sizes_tag"]:
            return "start_member"
        if all(facts["attached"].get(e) in facts["running"] for e in volumes):
            return DONE
        return "validate"
    if not facts["sizes_tag"]:
        return "stop_member"  # records the sizes, then scales to 0
    if facts["desired"] > 0 or facts["running"]:
        return "stop_member"  # recorded, not yet stopped (or still stopping)
    for v in volumes.values():
        if v["live"] is not None and _on_key(v["live"], key):
            continue
        if v["new"] is None and v["snapshot"] is None:
            return "snapshot"
        if v["new"] is None:
            return "create_volume"
        return "swap_tags"
    return "swap_tags"


def _on_key(volume, key) -> bool:
    return bool(volume.get("Encrypted")) and same_kms_key(volume.get("KmsKeyId"), key)


def spec_with_keys(cluster_doc: dict, key: str) -> tuple[dict, list]:
    """The Cluster with every etcd member `encryptedVolume: true` and `kmsKeyId: <key>`, and the changes (pure)."""
    import copy
    new = copy.deepcopy(cluster_doc)
    changes = []
    for etcd in new["spec"].get("etcdClusters") or []:
        for member in etcd.get("etcdMembers") or []:
            where = f"spec.etcdClusters[{etcd.get('name')}].etcdMembers[{member.get('name')}]"
            if member.get("encryptedVolume") is not True:
                changes.append({"path": f"{where}.encryptedVolume", "before": member.get("encryptedVolume"), "after": True})
                member["encryptedVolume"] = True
            field = "kmsKeyID" if "kmsKeyID" in member else "kmsKeyId"
            if member.get(field) != key:
                changes.append({"path": f"{where}.{field}", "before": member.get(field), "after": key})
                member[field] = key
    return new, changes


class EtcdRekey:
    """One cluster's etcd members onto `key`. `ec2`/`autoscaling` are boto3 clients; `validate()` runs kops validate."""

    def __init__(self, ec2, autoscaling, cluster: str, members: list[dict], key: str, validate, now,
                 poll: float = 5, timeout: float = 1800):
        self.ec2, self.asg, self.cluster, self.members, self.key = ec2, autoscaling, cluster, members, key
        self.validate_cluster, self.now, self.poll, self.timeout = validate, now, poll, timeout
        self.groups = members_by_group(members)
        self.log: list[str] = []

    # -- reading ------------------------------------------------------------------------------------------------------
    def volumes(self):
        """The cluster's volumes, those set aside from it and the copies in progress (one filter per call: values
        of one filter are ORed by AWS, but not by every endpoint)."""
        found = {}
        for filters in ([{"Name": f"tag:kubernetes.io/cluster/{self.cluster}", "Values": ["owned"]}],
                        [{"Name": f"tag:{rc.SET_ASIDE_TAG}", "Values": [self.cluster]}],
                        [{"Name": "tag-key", "Values": [REKEY_OF_TAG]}]):
            for page in self.ec2.get_paginator("describe_volumes").paginate(Filters=filters):
                found.update({v["VolumeId"]: v for v in page["Volumes"]})
        return list(found.values())

    def snapshots(self):
        return self.ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": f"tag:{rc.SET_ASIDE_TAG}", "Values": [self.cluster]}])["Snapshots"]

    def group_name(self, ig):
        return f"{ig}.{self.cluster}"

    def group(self, ig):
        found = self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[self.group_name(ig)])["AutoScalingGroups"]
        if not found:
            raise EtcdRekeyError(f"{self.cluster}: no Auto Scaling group {self.group_name(ig)} for etcd's instance group {ig}")
        return found[0]

    def running(self, group):
        ids = [i["InstanceId"] for i in group["Instances"] if i.get("LifecycleState") in ("InService", "Pending")]
        if not ids:
            return []
        reservations = self.ec2.describe_instances(InstanceIds=ids)["Reservations"]
        return [i["InstanceId"] for r in reservations for i in r["Instances"] if i["State"]["Name"] in ("pending", "running")]

    def facts(self, ig, volumes=None, snapshots=None):
        volumes = self.volumes() if volumes is None else volumes
        snapshots = self.snapshots() if snapshots is None else snapshots
        group = self.group(ig)
        facts = {"group": group, "sizes_tag": tags_of_group(group).get(SIZES_TAG), "desired": group["DesiredCapacity"],
                 "running": self.running(group), "volumes": {}, "attached": {}}
        for etcd, member in self.groups[ig]:
            facts["volumes"][etcd] = self.member_volumes(volumes, snapshots, etcd, member)
            live = facts["volumes"][etcd]["live"]
            attachments = (live or {}).get("Attachments") or []
            facts["attached"][etcd] = attachments[0]["InstanceId"] if attachments and attachments[0].get("State") in ("attached", "attaching") else None
        return facts

    def member_volumes(self, volumes, snapshots, etcd, member):
        tag = f"k8s.io/etcd/{etcd}"
        live = [v for v in volumes if tags_of(v).get(f"kubernetes.io/cluster/{self.cluster}") == "owned"
                and tags_of(v).get(tag, "").split("/", 1)[0] == member]
        if len(live) > 1:
            raise EtcdRekeyError(f"{self.cluster}: {len(live)} volumes carry etcd-manager's tags for member {member} of etcd "
                                 f"{etcd} ({', '.join(v['VolumeId'] for v in live)}); etcd-manager would pick either. Remove "
                                 "the tags from the one that is not the member's before running again")
        who = f"{etcd}/{member}"
        aside = [v for v in volumes if tags_of(v).get(rc.SET_ASIDE_MEMBER_TAG) == who and tags_of(v).get(rc.SET_ASIDE_TAG) == self.cluster]
        # The old volume of the move in progress: the live one if still off the key, else the newest set aside.
        newest_aside = sorted(aside, key=lambda v: tags_of(v).get(rc.SET_ASIDE_AT_TAG, ""))[-1] if aside else None
        old = live[0] if live and not _on_key(live[0], self.key) else newest_aside
        old_id = old["VolumeId"] if old else None
        new = [v for v in volumes if old_id and tags_of(v).get(REKEY_OF_TAG) == old_id]
        snaps = [s for s in snapshots if old_id and tags_of(s).get(REKEY_OF_TAG) == old_id]
        return {"live": live[0] if live else None, "old": old, "new": new[0] if new else None,
                "snapshot": snaps[0] if snaps else None, "set_aside": aside}

    def plan(self):
        """Per instance group: its members, whether a single-member etcd makes it an outage, and its next step."""
        volumes, snapshots = self.volumes(), self.snapshots()
        sizes = cluster_sizes(self.members)
        plan = []
        for ig, members in self.groups.items():
            facts = self.facts(ig, volumes, snapshots)
            missing = [e for e, v in facts["volumes"].items() if v["live"] is None and v["old"] is None]
            if missing:
                raise EtcdRekeyError(f"{self.cluster}: no volume with etcd-manager's tags for member {members[0][1]} of etcd "
                                     f"{', '.join(missing)} (and none set aside); check the cluster name and region")
            step = next_step(facts, self.key)
            outage = any(sizes[etcd] < 2 for etcd, dummy_member in members)
            plan.append({"instance_group": ig, "members": [f"{e}/{m}" for e, m in members], "next_step": step,
                         "outage": outage, "quorum_kept": not outage,
                         "volumes": {e: {"live": (v["live"] or {}).get("VolumeId"), "live_key": (v["live"] or {}).get("KmsKeyId"),
                                         "new": (v["new"] or {}).get("VolumeId"), "set_aside": [a["VolumeId"] for a in v["set_aside"]]}
                                     for e, v in facts["volumes"].items()}})
        return plan

    # -- acting -------------------------------------------------------------------------------------------------------
    def step(self, ig):
        """Do the next step of `ig`'s member; returns the step done (or DONE)."""
        facts = self.facts(ig)
        step = next_step(facts, self.key)
        if step == DONE:
            return DONE
        getattr(self, f"do_{step}")(ig, facts)
        return step

    def _wait(self, what, probe):
        deadline = time.monotonic() + self.timeout
        while True:
            done, status = probe()
            if done:
                return
            if time.monotonic() > deadline:
                raise EtcdRekeyError(f"{what}: still {status} after {self.timeout} s; run again to resume")
            time.sleep(self.poll)

    def healthy_peers(self, ig):
        """Before a member of a multi-member etcd stops: every other member's volume attached to a running node."""
        others = [g for g in self.groups if g != ig]
        volumes, snapshots = self.volumes(), self.snapshots()
        for other in others:
            facts = self.facts(other, volumes, snapshots)
            for etcd, v in facts["volumes"].items():
                if facts["attached"].get(etcd) not in facts["running"]:
                    raise EtcdRekeyError(f"{self.cluster}: member {etcd} of {other} is not running on its volume; stopping "
                                         f"{ig} now would lose etcd's quorum. Fix that member first")

    def do_stop_member(self, ig, facts):
        group = facts["group"]
        name = group["AutoScalingGroupName"]
        if not facts["sizes_tag"]:
            self.healthy_peers(ig)
            sizes = f"{group['MinSize']},{group['MaxSize']},{group['DesiredCapacity']}"
            self.asg.create_or_update_tags(Tags=[{"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": SIZES_TAG,
                                                  "Value": sizes, "PropagateAtLaunch": False}])
            self.log.append(f"{name}: sizes {sizes} recorded")
        if group["DesiredCapacity"] > 0 or group["MinSize"] > 0:
            self.asg.update_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, DesiredCapacity=0)
            self.log.append(f"{name}: scaled to 0, the member stops")

        def stopped():
            f = self.facts(ig)
            attached = [e for e, v in f["volumes"].items() if v["old"] is not None and v["old"].get("State") == "in-use"]
            return not f["running"] and not attached, f"{len(f['running'])} instance(s) running, {len(attached)} volume(s) attached"
        self._wait(f"stopping the etcd member of {ig}", stopped)

    def do_snapshot(self, ig, facts):
        for etcd, v in facts["volumes"].items():
            old = v["old"]
            if old is None or v["snapshot"] is not None or v["new"] is not None or _on_key(old, self.key):
                continue
            tags = tags_of(old)
            snap = self.ec2.create_snapshot(VolumeId=old["VolumeId"], Description=f"etcd {etcd} member volume before the re-key onto the customer key",
                                            TagSpecifications=[{"ResourceType": "snapshot", "Tags": _tag_list({
                                                REKEY_OF_TAG: old["VolumeId"], rc.SET_ASIDE_TAG: self.cluster,
                                                rc.SET_ASIDE_MEMBER_TAG: f"{etcd}/{tags.get(f'k8s.io/etcd/{etcd}', '?').split('/', 1)[0]}",
                                                rc.SET_ASIDE_AT_TAG: self.now(), "Name": f"{tags.get('Name', old['VolumeId'])} (before re-key)"})}])
            self.log.append(f"{old['VolumeId']}: snapshot {snap['SnapshotId']}")
            self._wait(f"snapshot {snap['SnapshotId']}", lambda s=snap["SnapshotId"]: _snapshot_done(self.ec2, s))
            return  # one volume per step: a stop after any of them resumes cleanly

    def do_create_volume(self, ig, facts):
        for etcd, v in facts["volumes"].items():
            old, snap = v["old"], v["snapshot"]
            if old is None or v["new"] is not None or snap is None:
                continue
            self._wait(f"snapshot {snap['SnapshotId']}", lambda: _snapshot_done(self.ec2, snap["SnapshotId"]))
            params = {"SnapshotId": snap["SnapshotId"], "AvailabilityZone": old["AvailabilityZone"], "VolumeType": old["VolumeType"],
                      "Size": old["Size"], "Encrypted": True, "KmsKeyId": self.key,
                      "TagSpecifications": [{"ResourceType": "volume", "Tags": _tag_list({REKEY_OF_TAG: old["VolumeId"]})}]}
            if old["VolumeType"] in ("io1", "io2", "gp3") and old.get("Iops"):
                params["Iops"] = old["Iops"]
            if old["VolumeType"] == "gp3" and old.get("Throughput"):
                params["Throughput"] = old["Throughput"]
            new = self.ec2.create_volume(**params)
            self.log.append(f"{old['VolumeId']}: new volume {new['VolumeId']} on the customer key")
            self._wait(f"volume {new['VolumeId']}", lambda n=new["VolumeId"]: _volume_state(self.ec2, n, "available"))
            return

    def do_swap_tags(self, ig, facts):
        for etcd, v in facts["volumes"].items():
            old, new = v["old"], v["new"]
            if old is None or new is None:
                continue
            old_tags = tags_of(old)
            moved = {k: val for k, val in old_tags.items() if discovery_tag(k)}
            if moved:
                # Out of etcd-manager's and kops's sight first: at no moment do two volumes carry the member's tags.
                member = old_tags.get(f"k8s.io/etcd/{etcd}", "?").split("/", 1)[0]
                self.ec2.create_tags(Resources=[old["VolumeId"]], Tags=_tag_list({
                    SET_ASIDE_TAGS_TAG: json.dumps(moved, separators=(",", ":"), sort_keys=True), rc.SET_ASIDE_TAG: self.cluster,
                    rc.SET_ASIDE_MEMBER_TAG: f"{etcd}/{member}", rc.SET_ASIDE_AT_TAG: self.now(),
                    "byok:set-aside-name": old_tags.get("Name", "")}))
                self.ec2.delete_tags(Resources=[old["VolumeId"]], Tags=[{"Key": k} for k in moved])
                self.log.append(f"{old['VolumeId']}: set aside (etcd-manager's tags removed, kept in {SET_ASIDE_TAGS_TAG})")
            else:
                moved = json.loads(old_tags.get(SET_ASIDE_TAGS_TAG, "{}"))
            if not all(tags_of(new).get(k) == val for k, val in moved.items()):
                self.ec2.create_tags(Resources=[new["VolumeId"]], Tags=_tag_list(moved))
                self.log.append(f"{new['VolumeId']}: given etcd-manager's tags ({moved.get('Name', etcd)})")

    def do_start_member(self, ig, facts):
        group = facts["group"]
        name = group["AutoScalingGroupName"]
        low, high, desired = (int(x) for x in facts["sizes_tag"].split(","))
        self.asg.update_auto_scaling_group(AutoScalingGroupName=name, MinSize=low, MaxSize=high, DesiredCapacity=desired)
        self.asg.delete_tags(Tags=[{"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": SIZES_TAG}])
        self.log.append(f"{name}: sizes {low},{high},{desired} restored, a control-plane node starts on the new volume")

    def do_validate(self, ig, facts):
        self.validate_cluster()

        def member_up():
            f = self.facts(ig)
            missing = [e for e in f["volumes"] if f["attached"].get(e) not in f["running"]]
            return not missing, f"etcd {', '.join(missing)} not attached to a running node of {ig}"
        self._wait(f"the etcd member of {ig}", member_up)
        self.log.append(f"{ig}: member healthy on the customer key")


def tags_of_group(group) -> dict:
    return {t["Key"]: t["Value"] for t in group.get("Tags", [])}


def _tag_list(tags: dict) -> list:
    return [{"Key": k, "Value": str(v)} for k, v in tags.items()]


def _snapshot_done(ec2, snapshot_id):
    s = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    if s["State"] == "error":
        raise EtcdRekeyError(f"snapshot {snapshot_id} failed: {s.get('StateMessage', '')}")
    return s["State"] == "completed", s["State"]


def _volume_state(ec2, volume_id, wanted):
    v = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    if v["State"] == "error":
        raise EtcdRekeyError(f"volume {volume_id} failed to create (is the key usable by EC2 in this account?)")
    return v["State"] == wanted, v["State"]
