# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""spec.additionalPolicies: the kops roles' statements on the customer's key, merged by Sid, never removed."""

from __future__ import annotations

import json

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.kops import spec as kops_spec

KEY = "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"
NODE = {"Sid": "MattermostByokNodes0Acbe000Key0", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": KEY}
MASTER = {"Sid": "MattermostByokMasters0Acbe000Key0", "Effect": "Allow", "Action": ["kms:CreateGrant"], "Resource": KEY,
          "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}}
VELERO = {"Sid": "Velero", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::velero/*"}


def cluster(additional=None):
    spec = {"kubernetesVersion": "1.28.4", "cloudProvider": "aws"}
    if additional is not None:
        spec["additionalPolicies"] = additional
    return {"apiVersion": "kops.k8s.io/v1alpha2", "kind": "Cluster", "metadata": {"name": "acme01-kops.k8s.local"}, "spec": spec}


def statements(doc, role):
    return json.loads(doc["spec"]["additionalPolicies"][role])


def test_statements_are_added_for_each_role():
    new, changes = kops_spec.plan_cluster(cluster(), additional_policies={"node": [NODE], "master": [MASTER]})
    assert statements(new, "node") == [NODE] and statements(new, "master") == [MASTER]
    assert [c["path"] for c in changes] == ["spec.additionalPolicies.master", "spec.additionalPolicies.node"]
    assert changes[0]["before"] is None


def test_existing_statements_are_kept_and_ours_appended():
    new, changes = kops_spec.plan_cluster(cluster({"node": json.dumps([VELERO])}), additional_policies={"node": [NODE]})
    assert statements(new, "node") == [VELERO, NODE]
    assert json.loads(changes[0]["before"]) == [VELERO]


def test_a_single_statement_object_is_read_as_a_list():
    new, _changes = kops_spec.plan_cluster(cluster({"node": json.dumps(VELERO)}), additional_policies={"node": [NODE]})
    assert statements(new, "node") == [VELERO, NODE]


def test_a_statement_with_the_same_sid_is_replaced_when_it_differs():
    old = dict(NODE, Action=["kms:Encrypt"])
    new, changes = kops_spec.plan_cluster(cluster({"node": json.dumps([old, VELERO])}), additional_policies={"node": [NODE]})
    assert statements(new, "node") == [NODE, VELERO] and len(changes) == 1


@pytest.mark.parametrize("additional", [{"node": [NODE]}, {"node": [NODE], "master": []}, {}, None])
def test_nothing_changes_when_the_statements_are_there(additional):
    doc = cluster({"node": json.dumps([NODE])})
    new, changes = kops_spec.plan_cluster(doc, additional_policies=additional)
    assert changes == [] and new == doc


def test_the_original_is_not_modified():
    doc = cluster({"node": json.dumps([VELERO])})
    before = json.dumps(doc, sort_keys=True)
    kops_spec.plan_cluster(doc, additional_policies={"node": [NODE]})
    assert json.dumps(doc, sort_keys=True) == before


@pytest.mark.parametrize("doc, additional, says", [
    (cluster(), {"bastion": [NODE]}, "additional_policies.bastion"),
    (cluster({"node": "not json"}), {"node": [NODE]}, "not a JSON list"),
    (cluster(["node"]), {"node": [NODE]}, "is not a mapping"),
])
def test_bad_input_is_named(doc, additional, says):
    with pytest.raises(kops_spec.KopsSpecError, match=says):
        kops_spec.plan_cluster(doc, additional_policies=additional)


def test_storage_classes_and_policies_in_one_plan():
    new, changes = kops_spec.plan_cluster(cluster(), manage_storage_classes=False, additional_policies={"master": [MASTER]})
    assert {c["path"] for c in changes} == {"spec.additionalPolicies.master", "spec.cloudConfig.manageStorageClasses"}
    assert new["spec"]["cloudConfig"]["manageStorageClasses"] is False
