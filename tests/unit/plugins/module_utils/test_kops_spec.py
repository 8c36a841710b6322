# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Spec edits on real kops documents of several releases: exactly the intended fields change (deep comparison)."""

from __future__ import annotations

import copy
import string
from pathlib import Path

import pytest
import yaml

from ansible_collections.mattermost.byok.plugins.module_utils import kops_spec

KEY = "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"
FIXTURES = Path(__file__).resolve().parents[4] / "tests" / "local_aws" / "fixtures" / "kops"
DOCS = FIXTURES / "documents"

TEMPLATE_VALUES = {
    "created": "2024-01-15T09:00:00Z", "cluster_name": "acme01-kops.k8s.local", "state_store": "mattermost-kops-state-demo",
    "region": "us-east-1", "kubernetes_version": "v1.28.9", "network_cidr": "10.40.0.0/16", "network_id": "vpc-0ac0e000000000001",
    "image": "137112412989/amzn2", "ig_name": "nodes-us-east-1b", "machine_type": "m5.xlarge", "min_size": 2, "max_size": 4,
    "zone": "us-east-1b", "root_volume_size": 128, "extra_volume_size": 20,
    **{f"{k}_{z}": f"{k}-{z}" for k in ("subnet_private", "subnet_utility", "cidr_private", "cidr_utility") for z in "ab"},
}


def load(path):
    return yaml.safe_load(path.read_text())


def seeded(version, kind, extra=False):
    """The demo seeder's documents of a kops release (templates under fixtures/kops/<version>/)."""
    text = string.Template((FIXTURES / version / f"{kind}.yaml").read_text()).substitute(TEMPLATE_VALUES)
    if extra:
        text += string.Template((FIXTURES / "volumes-extra.yaml").read_text()).substitute(TEMPLATE_VALUES)
    return yaml.safe_load(text)


INSTANCE_GROUPS = {p.name: load(p) for p in sorted(DOCS.glob("ig-*.yaml"))}
INSTANCE_GROUPS.update({
    f"seed-{v}-{k}{'-extra' if e else ''}": seeded(v, f"instancegroup-{k}", e)
    for v in ("1.28", "1.30") for k in ("master", "node") for e in (False, True)})


def flat(doc):
    return doc["apiVersion"] == kops_spec.API_V1ALPHA2


@pytest.mark.parametrize("name", sorted(INSTANCE_GROUPS))
def test_instance_group_edit_changes_only_the_encryption_fields(name):
    doc = INSTANCE_GROUPS[name]
    original = copy.deepcopy(doc)
    new, changes = kops_spec.plan_instance_group(doc, KEY)
    assert doc == original, "the input document must not be modified"
    volumes = doc["spec"].get("volumes") or []
    if flat(doc):
        intended = {"spec.rootVolumeEncryption", "spec.rootVolumeEncryptionKey"}
        assert (new["spec"]["rootVolumeEncryption"], new["spec"]["rootVolumeEncryptionKey"]) == (True, KEY)
    else:
        intended = {"spec.rootVolume.encryption", "spec.rootVolume.encryptionKey"}
        assert new["spec"]["rootVolume"] == {**doc["spec"]["rootVolume"], "encryption": True, "encryptionKey": KEY}
        assert "rootVolumeEncryption" not in new["spec"]
    intended |= {f"spec.volumes[{i}].{f}" for i in range(len(volumes)) for f in ("encrypted", "key")}
    differing = set(kops_spec.deep_diff_paths(doc, new))
    assert differing <= intended
    assert {c["path"] for c in changes} == differing
    # Every other field, compared as data.
    stripped_new, stripped_old = copy.deepcopy(new), copy.deepcopy(doc)
    for d in (stripped_new, stripped_old):
        spec = d["spec"]
        for f in ("rootVolumeEncryption", "rootVolumeEncryptionKey"):
            spec.pop(f, None)
        if isinstance(spec.get("rootVolume"), dict):
            spec["rootVolume"].pop("encryption", None)
            spec["rootVolume"].pop("encryptionKey", None)
        for v in spec.get("volumes") or []:
            v.pop("encrypted", None)
            v.pop("key", None)
    assert stripped_new == stripped_old
    for v in new["spec"].get("volumes") or []:
        assert (v["encrypted"], v["key"]) == (True, KEY)


@pytest.mark.parametrize("name", sorted(INSTANCE_GROUPS))
def test_instance_group_edit_is_idempotent(name):
    new, _changes = kops_spec.plan_instance_group(INSTANCE_GROUPS[name], KEY)
    again, changes = kops_spec.plan_instance_group(new, KEY)
    assert changes == [] and again == new


def test_key_without_encryption_gets_encryption_set():
    doc = INSTANCE_GROUPS["ig-1.25-nodes-key-without-encryption.yaml"]
    _new, changes = kops_spec.plan_instance_group(doc, KEY)
    assert changes[0] == {"path": "spec.rootVolumeEncryption", "before": None, "after": True}
    # Same key already present: kops would still ignore it without the flag.
    doc = copy.deepcopy(doc)
    doc["spec"]["rootVolumeEncryptionKey"] = KEY
    _new, changes = kops_spec.plan_instance_group(doc, KEY)
    assert changes == [{"path": "spec.rootVolumeEncryption", "before": None, "after": True}]


def test_explicit_false_becomes_true():
    _new, changes = kops_spec.plan_instance_group(INSTANCE_GROUPS["ig-1.30-control-plane.yaml"], KEY)
    assert changes[0] == {"path": "spec.rootVolumeEncryption", "before": False, "after": True}


def test_extra_volumes_can_be_left_alone():
    doc = INSTANCE_GROUPS["ig-1.26-complex.yaml"]
    new, changes = kops_spec.plan_instance_group(doc, KEY, extra_volumes=False)
    assert new["spec"]["volumes"] == doc["spec"]["volumes"]
    assert {c["path"] for c in changes} == {"spec.rootVolumeEncryptionKey"}


@pytest.mark.parametrize("doc, message", [
    ({"apiVersion": "kops.k8s.io/v1alpha1", "kind": "InstanceGroup", "metadata": {"name": "x"}, "spec": {}}, "apiVersion"),
    ({"apiVersion": "kops.k8s.io/v1alpha2", "kind": "Cluster", "metadata": {"name": "x"}, "spec": {}}, "expected a kops InstanceGroup"),
    ({"apiVersion": "kops.k8s.io/v1alpha2", "kind": "InstanceGroup", "metadata": {"name": "x"}, "spec": {"volumes": {}}}, "not a list"),
])
def test_refuses_documents_it_does_not_understand(doc, message):
    with pytest.raises(kops_spec.KopsSpecError, match=message):
        kops_spec.plan_instance_group(doc, KEY)


CLUSTERS = {p.name: load(p) for p in sorted(DOCS.glob("cluster-*.yaml"))}
CLUSTERS.update({f"seed-{v}": seeded(v, "cluster") for v in ("1.28", "1.30")})


@pytest.mark.parametrize("name", sorted(CLUSTERS))
def test_cluster_edit_touches_only_manage_storage_classes(name):
    doc = CLUSTERS[name]
    new, changes = kops_spec.plan_cluster(doc, manage_storage_classes=False)
    assert kops_spec.deep_diff_paths(doc, new) in (["spec.cloudConfig.manageStorageClasses"], ["spec.cloudConfig"])
    assert new["spec"]["cloudConfig"]["manageStorageClasses"] is False
    assert changes == [{"path": "spec.cloudConfig.manageStorageClasses", "before": None, "after": False}]
    # Everything else, etcd members included, compared as data.
    rest = copy.deepcopy(new)
    del rest["spec"]["cloudConfig"]["manageStorageClasses"]
    if not rest["spec"]["cloudConfig"]:
        del rest["spec"]["cloudConfig"]
    assert rest == doc
    assert kops_spec.plan_cluster(new, manage_storage_classes=False) == (new, [])
    assert kops_spec.plan_cluster(doc) == (doc, [])
    assert kops_spec.plan_cluster(doc, manage_storage_classes=True) == (doc, [])  # absent means true


def test_etcd_members_are_read_not_edited():
    members = kops_spec.etcd_members(CLUSTERS["cluster-1.28-etcd-key.yaml"])
    assert [(m["etcd_cluster"], m["member"], m["instance_group"]) for m in members] == [
        ("main", "a", "master-us-east-1a"), ("events", "a", "master-us-east-1a")]
    assert members[0]["spec_kms_key_id"].startswith("arn:aws:kms:us-east-1:111122223333:")
    assert len(kops_spec.etcd_members(CLUSTERS["cluster-1.21-no-cloudconfig.yaml"])) == 6


def test_select_instance_groups():
    docs = [INSTANCE_GROUPS["ig-1.28-master.yaml"], INSTANCE_GROUPS["ig-1.19-nodes.yaml"]]
    assert kops_spec.select_instance_groups(docs, None, "c") == docs
    assert kops_spec.select_instance_groups(docs, ["nodes-us-east-1a"], "c") == docs[1:]
    with pytest.raises(kops_spec.KopsSpecError, match="instance_groups: nodes-zz not found in cluster 'c'; it has master-us-east-1a, nodes-us-east-1a"):
        kops_spec.select_instance_groups(docs, ["nodes-zz"], "c")


def test_documents_round_trip():
    docs = [CLUSTERS["seed-1.28"], INSTANCE_GROUPS["ig-1.26-complex.yaml"]]
    assert kops_spec.load_documents(kops_spec.dump_documents(docs)) == docs
