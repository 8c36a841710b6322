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

from ansible_collections.mattermost.byok.plugins.module_utils.kops import spec as kops_spec

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


# --- the root volume's shape is chosen by apiVersion only (kops.k8s.io/v1alpha2 flat, v1alpha3 nested) ----------

OLD_KEY = "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-00000000000f"


def group_doc(api, spec):
    return {"apiVersion": api, "kind": "InstanceGroup",
            "metadata": {"name": "nodes-us-east-1a", "labels": {kops_spec.CLUSTER_LABEL: "acme01-kops.k8s.local"}},
            "spec": {"role": "Node", "machineType": "m5.large", **copy.deepcopy(spec)}}


V1ALPHA2_ROOT_VOLUME_MAPS = {
    "map-only": {"rootVolume": {"encryption": True, "encryptionKey": OLD_KEY}},
    "map-with-size": {"rootVolume": {"size": 64, "type": "gp3", "encryption": False}},
    "empty-map": {"rootVolume": {}},
    "null-map": {"rootVolume": None},
    "map-and-flat-old-key": {"rootVolume": {"encryptionKey": KEY}, "rootVolumeEncryption": True, "rootVolumeEncryptionKey": OLD_KEY},
    "map-on-key-flat-unset": {"rootVolume": {"encryption": True, "encryptionKey": KEY}},
    "map-not-a-mapping": {"rootVolume": "encrypted"},
    "map-and-flat-false": {"rootVolume": {"encryption": True}, "rootVolumeEncryption": False},
}


@pytest.mark.parametrize("case", sorted(V1ALPHA2_ROOT_VOLUME_MAPS))
def test_v1alpha2_with_a_root_volume_map_gets_the_flat_fields(case):
    """kops drops a v1alpha2 `rootVolume:` map unread (RootVolume is json:"-" there): the flat fields are written and
    the map is left exactly as it was."""
    doc = group_doc(kops_spec.API_V1ALPHA2, V1ALPHA2_ROOT_VOLUME_MAPS[case])
    new, changes = kops_spec.plan_instance_group(doc, KEY)
    assert (new["spec"]["rootVolumeEncryption"], new["spec"]["rootVolumeEncryptionKey"]) == (True, KEY)
    assert new["spec"]["rootVolume"] == doc["spec"]["rootVolume"]
    assert {c["path"] for c in changes} <= {"spec.rootVolumeEncryption", "spec.rootVolumeEncryptionKey"}
    assert set(kops_spec.deep_diff_paths(doc, new)) == {c["path"] for c in changes}
    assert kops_spec.root_volume_fields(new) == {"encryption": True, "encryption_key": KEY}
    [warning] = kops_spec.ignored_fields(doc)
    assert "spec.rootVolume is not a field of kops.k8s.io/v1alpha2" in warning and "nodes-us-east-1a" in warning
    again, more = kops_spec.plan_instance_group(new, KEY)
    assert more == [] and again == new


def test_v1alpha2_map_on_the_key_is_not_taken_for_the_key():
    """A v1alpha2 document whose only key is in the ignored map is not on the key: the edit is a real change."""
    doc = group_doc(kops_spec.API_V1ALPHA2, {"rootVolume": {"encryption": True, "encryptionKey": KEY}})
    assert kops_spec.root_volume_fields(doc) == {"encryption": None, "encryption_key": None}
    _new, changes = kops_spec.plan_instance_group(doc, KEY)
    assert [c["path"] for c in changes] == ["spec.rootVolumeEncryption", "spec.rootVolumeEncryptionKey"]


V1ALPHA3_SPECS = {
    "nested-only": {"rootVolume": {"size": 64, "encryption": True, "encryptionKey": OLD_KEY}},
    "nothing": {},
    "flat-only": {"rootVolumeEncryption": True, "rootVolumeEncryptionKey": OLD_KEY},
    "flat-on-key": {"rootVolumeEncryption": True, "rootVolumeEncryptionKey": KEY},
    "both": {"rootVolume": {"encryption": False}, "rootVolumeEncryptionKey": OLD_KEY},
    "null-map": {"rootVolume": None},
}


@pytest.mark.parametrize("case", sorted(V1ALPHA3_SPECS))
def test_v1alpha3_always_gets_the_nested_fields(case):
    doc = group_doc(kops_spec.API_V1ALPHA3, V1ALPHA3_SPECS[case])
    new, changes = kops_spec.plan_instance_group(doc, KEY)
    assert {k: new["spec"]["rootVolume"][k] for k in ("encryption", "encryptionKey")} == {"encryption": True, "encryptionKey": KEY}
    for flat_field in kops_spec.FLAT_ROOT_VOLUME_FIELDS:  # left as they were: not fields of v1alpha3
        assert new["spec"].get(flat_field) == doc["spec"].get(flat_field)
    assert {c["path"] for c in changes} <= {"spec.rootVolume.encryption", "spec.rootVolume.encryptionKey", "spec.rootVolume"}
    assert kops_spec.root_volume_fields(new) == {"encryption": True, "encryption_key": KEY}
    flat_present = [f for f in kops_spec.FLAT_ROOT_VOLUME_FIELDS if f in doc["spec"]]
    assert len(kops_spec.ignored_fields(doc)) == len(flat_present)
    assert all("not a field of kops.k8s.io/v1alpha3" in w for w in kops_spec.ignored_fields(doc))
    again, more = kops_spec.plan_instance_group(new, KEY)
    assert more == [] and again == new


def test_v1alpha3_flat_key_alone_is_not_taken_for_the_key():
    doc = group_doc(kops_spec.API_V1ALPHA3, {"rootVolumeEncryption": True, "rootVolumeEncryptionKey": KEY})
    assert kops_spec.root_volume_fields(doc) == {"encryption": None, "encryption_key": None}


def test_v1alpha3_root_volume_that_is_not_a_mapping_is_refused():
    with pytest.raises(kops_spec.KopsSpecError, match="spec.rootVolume is not a mapping"):
        kops_spec.plan_instance_group(group_doc(kops_spec.API_V1ALPHA3, {"rootVolume": "yes"}), KEY)


@pytest.mark.parametrize("api,spec,expected", [
    (kops_spec.API_V1ALPHA2, {}, False), (kops_spec.API_V1ALPHA2, {"rootVolume": {"encryption": True}}, False),
    (kops_spec.API_V1ALPHA3, {}, True), (kops_spec.API_V1ALPHA3, {"rootVolumeEncryption": True}, True),
])
def test_shape_follows_the_api_version_only(api, spec, expected):
    assert kops_spec.nested_root_volume(group_doc(api, spec)) is expected


@pytest.mark.parametrize("name", sorted(INSTANCE_GROUPS))
def test_real_documents_have_no_ignored_fields(name):
    assert kops_spec.ignored_fields(INSTANCE_GROUPS[name]) == []
