# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The EBS CSI StorageClass that puts a kops cluster's new persistent volumes on the customer's key.

StorageClass parameters are immutable ("updates to parameters are forbidden"), so the key comes with a new class,
made the default, and the previous default is un-defaulted. Existing persistent volumes keep their key.
kubectl cannot validate a manifest without an API server; here it runs against a discovery cache written for an
unreachable server, which makes `kubectl create --dry-run=client --validate=false` resolve the kind offline (it
checks that the group, version and kind exist and that the document parses; field types need the server's OpenAPI,
so they are checked here in Python).
"""

from __future__ import annotations

import json
import os

try:
    import yaml
except ImportError:  # PyYAML comes with ansible-core; the modules report it if missing
    yaml = None

PROVISIONER = "ebs.csi.aws.com"
DEFAULT_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
VOLUME_TYPES = ("gp3", "gp2", "io1", "io2", "st1", "sc1", "standard")
OFFLINE_SERVER = "byok-offline.invalid:443"

_SERVER_GROUPS = {"kind": "APIGroupList", "apiVersion": "v1", "groups": [{
    "name": "storage.k8s.io", "versions": [{"groupVersion": "storage.k8s.io/v1", "version": "v1"}],
    "preferredVersion": {"groupVersion": "storage.k8s.io/v1", "version": "v1"}}]}
_STORAGE_RESOURCES = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "storage.k8s.io/v1", "resources": [{
    "name": "storageclasses", "singularName": "storageclass", "namespaced": False, "kind": "StorageClass",
    "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"], "shortNames": ["sc"]}]}


class StorageClassError(ValueError):
    """A manifest or cluster state this module will not apply; the message names the fix."""


def render(name: str, key_arn: str, volume_type: str = "gp3", make_default: bool = True,
           allow_volume_expansion: bool = True) -> dict:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name, "annotations": {DEFAULT_ANNOTATION: "true" if make_default else "false"},
                     "labels": {"app.kubernetes.io/managed-by": "mattermost.byok"}},
        "provisioner": PROVISIONER,
        # The driver's keys; kmsKeyId must be the full ARN (the driver passes it to CreateVolume as is).
        "parameters": {"type": volume_type, "encrypted": "true", "kmsKeyId": key_arn},
        "allowVolumeExpansion": allow_volume_expansion,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }


def validate(manifest: dict) -> None:
    """The checks kubectl's OpenAPI validation would make on the fields we set, and the driver's rules."""
    problems = []
    if manifest.get("apiVersion") != "storage.k8s.io/v1" or manifest.get("kind") != "StorageClass":
        problems.append("apiVersion/kind must be storage.k8s.io/v1 StorageClass")
    name = (manifest.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not name or len(name) > 253 or not all(c.isalnum() and c.islower() or c.isdigit() or c in "-." for c in name):
        problems.append(f"metadata.name {name!r} is not a DNS subdomain (lowercase letters, digits, '-', '.')")
    if manifest.get("provisioner") != PROVISIONER:
        problems.append(f"provisioner must be {PROVISIONER}")
    params = manifest.get("parameters") or {}
    if not all(isinstance(v, str) for v in params.values()):
        problems.append("parameters values must be strings (encrypted: \"true\", not true)")
    if params.get("encrypted") != "true" or not str(params.get("kmsKeyId", "")).startswith("arn:"):
        problems.append("parameters need encrypted: \"true\" and kmsKeyId: <full key ARN>")
    if params.get("type") not in VOLUME_TYPES:
        problems.append(f"parameters.type {params.get('type')!r} is not an EBS volume type ({', '.join(VOLUME_TYPES)})")
    if manifest.get("volumeBindingMode") not in ("Immediate", "WaitForFirstConsumer"):
        problems.append("volumeBindingMode must be Immediate or WaitForFirstConsumer")
    if not isinstance(manifest.get("allowVolumeExpansion"), bool):
        problems.append("allowVolumeExpansion must be a boolean")
    if problems:
        raise StorageClassError("StorageClass manifest: " + "; ".join(problems))


def dump(manifest: dict) -> str:
    return yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False)


def write_offline_kubectl_config(directory: str) -> tuple[str, str]:
    """(kubeconfig, cache dir) that let kubectl map StorageClass without a server. Files are written fresh on each
    call: kubectl trusts its discovery cache for six hours after the files' modification time."""
    cache = os.path.join(directory, "cache")
    # kubectl names the cache directory after the server with '-' and ':' replaced by '_'.
    server_dir = os.path.join(cache, "discovery", OFFLINE_SERVER.replace("-", "_").replace(":", "_"))
    os.makedirs(os.path.join(server_dir, "storage.k8s.io", "v1"), exist_ok=True)
    with open(os.path.join(server_dir, "servergroups.json"), "w") as f:
        json.dump(_SERVER_GROUPS, f)
    with open(os.path.join(server_dir, "storage.k8s.io", "v1", "serverresources.json"), "w") as f:
        json.dump(_STORAGE_RESOURCES, f)
    kubeconfig = os.path.join(directory, "kubeconfig")
    with open(kubeconfig, "w") as f:
        yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "offline",
                        "clusters": [{"name": "offline", "cluster": {"server": f"https://{OFFLINE_SERVER}"}}],
                        "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "offline"}}],
                        "users": [{"name": "offline", "user": {"token": "offline"}}]}, f)
    return kubeconfig, cache


def plan_cluster_classes(existing: list, manifest: dict) -> dict:
    """What applying the class means for the cluster's classes: create it or not, which defaults to remove.
    An existing class of the same name with other parameters cannot be updated: refuse with the fix."""
    name = manifest["metadata"]["name"]
    current = next((c for c in existing if (c.get("metadata") or {}).get("name") == name), None)
    if current is not None and (current.get("parameters") or {}) != manifest["parameters"]:
        raise StorageClassError(
            f"StorageClass {name} exists with parameters {current.get('parameters')}; parameters cannot change "
            f"(Kubernetes forbids it): give another name for the class on this key")
    make_default = manifest["metadata"]["annotations"][DEFAULT_ANNOTATION] == "true"
    undefault = sorted((c.get("metadata") or {}).get("name") for c in existing
                       if (c.get("metadata") or {}).get("name") != name and make_default
                       and ((c.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_ANNOTATION) == "true")
    annotate = current is not None and ((current.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_ANNOTATION) != \
        manifest["metadata"]["annotations"][DEFAULT_ANNOTATION]
    return {"create": current is None, "set_default": annotate, "undefault": undefault}
