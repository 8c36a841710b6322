# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Edits of kops Cluster and InstanceGroup documents that put a cluster's volumes on a KMS key.

Pure functions on parsed YAML (dicts): no kops, no AWS, importable without Ansible.

What kops stores and prints (`kops get ... -o yaml`) is the v1alpha2 API, whose field names have been stable since
kops 1.19: `spec.rootVolumeEncryption` + `spec.rootVolumeEncryptionKey`, `spec.volumes[].encrypted` + `.key`.
kops honours the root-volume key only when `rootVolumeEncryption: true` is set explicitly (the default `true` is not
enough), so both are always written. v1alpha3 and kops's internal API nest them as `spec.rootVolume.encryption` /
`.encryptionKey` (kops >= 1.27, commit 92958f9966 "v1alpha3: Move IG root volume settings to sub-struct").
The shape is chosen by the document's apiVersion only, as kops decodes it: in kops.k8s.io/v1alpha2
(pkg/apis/kops/v1alpha2/instancegroup.go) the struct is `RootVolume *kops.InstanceRootVolumeSpec json:"-"`, so a
`rootVolume:` map in a v1alpha2 document is dropped unread and only the flat fields count; in kops.k8s.io/v1alpha3
(pkg/apis/kops/v1alpha3/instancegroup.go) only `rootVolume:` exists. Fields of the other shape are left as they are
and reported (ignored_fields), never converted.
etcd members' `kmsKeyId` is never edited: a running cluster's etcd volumes cannot change key (the direct target fails
with "Field cannot be changed: KmsKeyID", terraform would destroy and re-create the volumes).
"""

from __future__ import annotations

import copy
import json

try:
    import yaml
except ImportError:  # PyYAML comes with ansible-core; the modules report it if missing
    yaml = None

API_V1ALPHA2 = "kops.k8s.io/v1alpha2"
API_V1ALPHA3 = "kops.k8s.io/v1alpha3"
SUPPORTED_APIS = (API_V1ALPHA2, API_V1ALPHA3)
CONTROL_PLANE_ROLES = ("Master", "ControlPlane", "APIServer")
CLUSTER_LABEL = "kops.k8s.io/cluster"


class KopsSpecError(ValueError):
    """A document this module will not edit; the message names the document and why."""


def _check(doc, kind: str):
    if not isinstance(doc, dict) or doc.get("kind") != kind:
        raise KopsSpecError(f"expected a kops {kind} document, got kind {(doc or {}).get('kind')!r}")
    api = doc.get("apiVersion")
    if api not in SUPPORTED_APIS:
        raise KopsSpecError(f"{kind} {name_of(doc)!r}: apiVersion {api!r} is not one this module edits ({', '.join(SUPPORTED_APIS)})")
    if not isinstance(doc.get("spec"), dict):
        raise KopsSpecError(f"{kind} {name_of(doc)!r}: has no spec")


def name_of(doc) -> str:
    return ((doc or {}).get("metadata") or {}).get("name", "")


def load_documents(text: str) -> list[dict]:
    """The YAML documents `kops get ... -o yaml` printed (one or several, separated by ---)."""
    return [d for d in yaml.safe_load_all(text or "") if d]


def dump_documents(docs: list[dict]) -> str:
    """kops prints keys sorted (its YAML goes through JSON); the same form keeps diffs to the edited lines."""
    return "---\n".join(yaml.safe_dump(d, sort_keys=True, default_flow_style=False) for d in docs)


def _set(spec: dict, key: str, value, path: str, changes: list):
    before = spec.get(key)
    if before != value:
        spec[key] = value
        changes.append({"path": path, "before": before, "after": value})


# Root-volume fields of each shape, as kops names them; the other shape's are not fields of that apiVersion.
FLAT_ROOT_VOLUME_FIELDS = ("rootVolumeSize", "rootVolumeType", "rootVolumeIops", "rootVolumeThroughput", "rootVolumeOptimization",
                           "rootVolumeEncryption", "rootVolumeEncryptionKey")


def nested_root_volume(doc) -> bool:
    """True when the document's apiVersion keeps the root volume in `spec.rootVolume` (v1alpha3), False for the flat
    fields (v1alpha2). Decided by apiVersion only: kops ignores the other shape."""
    return (doc or {}).get("apiVersion") == API_V1ALPHA3


def ignored_fields(doc) -> list[str]:
    """Root-volume fields of an InstanceGroup that kops drops unread for its apiVersion, each with what to use instead."""
    spec = (doc or {}).get("spec") or {}
    group = f"InstanceGroup {name_of(doc)!r}"
    if nested_root_volume(doc):
        flat = [f for f in FLAT_ROOT_VOLUME_FIELDS if f in spec]
        return [f"{group}: spec.{f} is not a field of {API_V1ALPHA3}; kops ignores it (the root volume is spec.rootVolume there)"
                for f in flat]
    if "rootVolume" in spec:
        return [f"{group}: spec.rootVolume is not a field of {API_V1ALPHA2}; kops ignores it and reads the flat "
                "spec.rootVolumeEncryption/spec.rootVolumeEncryptionKey, which this edit sets (spec.rootVolume is left as it was)"]
    return []


def root_volume_fields(doc) -> dict:
    """{encryption, encryption_key} of an instance group, in the shape its apiVersion has."""
    spec = doc.get("spec") or {}
    if nested_root_volume(doc):
        root = spec.get("rootVolume") or {}
        return {"encryption": root.get("encryption"), "encryption_key": root.get("encryptionKey")}
    return {"encryption": spec.get("rootVolumeEncryption"), "encryption_key": spec.get("rootVolumeEncryptionKey")}


def plan_instance_group(doc: dict, key_arn: str, extra_volumes: bool = True) -> tuple[dict, list[dict]]:
    """(edited copy, changes) for one InstanceGroup: root volume and, with extra_volumes, each `volumes[]` entry on
    `key_arn`. Every other field is left as it was. Changes are {path, before, after} with kops's own field paths."""
    _check(doc, "InstanceGroup")
    new = copy.deepcopy(doc)
    spec, changes = new["spec"], []
    if nested_root_volume(doc):
        if spec.get("rootVolume") is not None and not isinstance(spec["rootVolume"], dict):
            raise KopsSpecError(f"InstanceGroup {name_of(doc)!r}: spec.rootVolume is not a mapping")
        if spec.get("rootVolume") is None:
            spec["rootVolume"] = {}
        root = spec["rootVolume"]
        _set(root, "encryption", True, "spec.rootVolume.encryption", changes)
        _set(root, "encryptionKey", key_arn, "spec.rootVolume.encryptionKey", changes)
    else:
        # Explicitly true, or kops ignores the key and uses the account's default EBS key.
        _set(spec, "rootVolumeEncryption", True, "spec.rootVolumeEncryption", changes)
        _set(spec, "rootVolumeEncryptionKey", key_arn, "spec.rootVolumeEncryptionKey", changes)
    if extra_volumes:
        volumes = spec.get("volumes")
        if volumes is not None and not isinstance(volumes, list):
            raise KopsSpecError(f"InstanceGroup {name_of(doc)!r}: spec.volumes is not a list")
        for i, volume in enumerate(volumes or []):
            if not isinstance(volume, dict):
                raise KopsSpecError(f"InstanceGroup {name_of(doc)!r}: spec.volumes[{i}] is not a mapping")
            _set(volume, "encrypted", True, f"spec.volumes[{i}].encrypted", changes)
            _set(volume, "key", key_arn, f"spec.volumes[{i}].key", changes)
    return new, changes


ADDITIONAL_POLICY_ROLES = ("node", "master")


def merge_additional_policies(spec: dict, additional: dict, changes: list, cluster: str) -> None:
    """Merge IAM statements into `spec.additionalPolicies.<role>` (a JSON list of statements kept as a string, as
    kops stores it; kops puts it on the role as the inline policy additional.<role>s.<cluster>). A statement whose
    Sid is already there is replaced when it differs; others are appended; nothing is removed."""
    for role, statements in sorted((additional or {}).items()):
        if role not in ADDITIONAL_POLICY_ROLES:
            raise KopsSpecError(f"additional_policies.{role}: kops takes additional policies for {', '.join(ADDITIONAL_POLICY_ROLES)}")
        if not statements:
            continue
        policies = spec.get("additionalPolicies")
        if policies is not None and not isinstance(policies, dict):
            raise KopsSpecError(f"Cluster {cluster!r}: spec.additionalPolicies is not a mapping")
        before_text = (policies or {}).get(role)
        try:
            current = json.loads(before_text) if before_text else []
        except ValueError:
            raise KopsSpecError(f"Cluster {cluster!r}: spec.additionalPolicies.{role} is not a JSON list of statements") from None
        if isinstance(current, dict):
            current = [current]
        merged = list(current)
        for statement in statements:
            sid = statement.get("Sid")
            at = next((i for i, s in enumerate(merged) if sid and isinstance(s, dict) and s.get("Sid") == sid), None)
            if at is None:
                merged.append(statement)
            elif merged[at] != statement:
                merged[at] = statement
        if merged != current:
            after_text = json.dumps(merged, indent=2)
            spec.setdefault("additionalPolicies", {})[role] = after_text
            changes.append({"path": f"spec.additionalPolicies.{role}", "before": before_text, "after": after_text})


def plan_cluster(doc: dict, manage_storage_classes: bool | None = None, additional_policies: dict | None = None) -> tuple[dict, list[dict]]:
    """(edited copy, changes) for the Cluster. Only `spec.cloudConfig.manageStorageClasses` (when asked: false stops
    kops's channels from re-applying its own default StorageClass over the keyed one) and `spec.additionalPolicies`
    (statements the kops roles need on the key; kops detaches managed policies it was not told about) are written.
    etcd members are read for the report, never edited."""
    _check(doc, "Cluster")
    new = copy.deepcopy(doc)
    changes = []
    merge_additional_policies(new["spec"], additional_policies or {}, changes, name_of(doc))
    if manage_storage_classes is not None:
        cloud = new["spec"].get("cloudConfig")
        if cloud is not None and not isinstance(cloud, dict):
            raise KopsSpecError(f"Cluster {name_of(doc)!r}: spec.cloudConfig is not a mapping")
        before = (cloud or {}).get("manageStorageClasses")
        # kops treats an absent value as true.
        if (True if before is None else before) != manage_storage_classes:
            new["spec"].setdefault("cloudConfig", {})["manageStorageClasses"] = manage_storage_classes
            changes.append({"path": "spec.cloudConfig.manageStorageClasses", "before": before, "after": manage_storage_classes})
    return new, changes


def etcd_members(doc: dict) -> list[dict]:
    """Each etcd member of the Cluster as kops names it: etcd cluster, member, instance group, and the spec's
    encryptedVolume and kmsKeyId (v1alpha2) or kmsKeyID (v1alpha3/internal)."""
    _check(doc, "Cluster")
    members = []
    for etcd in doc["spec"].get("etcdClusters") or []:
        for member in etcd.get("etcdMembers") or []:
            members.append({
                "etcd_cluster": etcd.get("name"),
                "member": member.get("name"),
                "instance_group": member.get("instanceGroup"),
                "encrypted_volume": member.get("encryptedVolume"),
                "spec_kms_key_id": member.get("kmsKeyId", member.get("kmsKeyID")),
            })
    return members


def instance_group_cluster(doc: dict) -> str | None:
    return ((doc.get("metadata") or {}).get("labels") or {}).get(CLUSTER_LABEL)


def is_control_plane(doc: dict) -> bool:
    return (doc.get("spec") or {}).get("role") in CONTROL_PLANE_ROLES


def select_instance_groups(docs: list[dict], names: list[str] | None, cluster: str) -> list[dict]:
    """The instance groups to edit: all when names is None, else exactly those named (unknown names fail)."""
    by_name = {name_of(d): d for d in docs}
    if names is None:
        return list(docs)
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise KopsSpecError(
            f"instance_groups: {', '.join(unknown)} not found in cluster {cluster!r}; it has {', '.join(sorted(by_name)) or 'none'}")
    return [by_name[n] for n in names]


def deep_diff_paths(before, after, path: str = "") -> list[str]:
    """Every path where two documents differ (for tests and for refusing unexpected edits)."""
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in before or key not in after:
                found.append(sub)
            else:
                found += deep_diff_paths(before[key], after[key], sub)
        return found
    if isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            return [path]
        found = []
        for i, (b, a) in enumerate(zip(before, after)):
            found += deep_diff_paths(b, a, f"{path}[{i}]")
        return found
    return [] if before == after and type(before) is type(after) else [path]
