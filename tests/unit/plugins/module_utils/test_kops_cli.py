# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kops CLI wrapper (with a recorded runner), the terraform plan guard, and the StorageClass rendering."""

from __future__ import annotations

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.kops import storage_class as sc
from ansible_collections.mattermost.byok.plugins.module_utils.kops.cli import KopsCli
from ansible_collections.mattermost.byok.plugins.module_utils.kops.cli import KopsCliError
from ansible_collections.mattermost.byok.plugins.module_utils.kops.cli import check_state_store
from ansible_collections.mattermost.byok.plugins.module_utils.kops.cli import ebs_volume_replacements
from ansible_collections.mattermost.byok.plugins.module_utils.kops.cli import resolve_binary

KEY = "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"
IG = "apiVersion: kops.k8s.io/v1alpha2\nkind: InstanceGroup\nmetadata:\n  name: nodes\nspec:\n  role: Node\n"


def recorder(answers):
    calls = []

    def run(argv, env):
        calls.append((argv, env))
        return answers.pop(0)
    return run, calls


def test_every_call_carries_the_state_store_and_the_environment():
    run, calls = recorder([(0, IG + "---\n" + IG.replace("name: nodes", "name: nodes-b"), "")])
    kops = KopsCli("/usr/bin/kops", "s3://state", run, {"AWS_REGION": "us-east-1"})
    groups = kops.get_instance_groups("c")
    assert [g["metadata"]["name"] for g in groups] == ["nodes", "nodes-b"]
    assert calls[0] == (["/usr/bin/kops", "get", "instancegroups", "--name", "c", "-o", "yaml", "--state", "s3://state"],
                        {"AWS_REGION": "us-east-1"})
    assert kops.commands == ["get instancegroups --name c -o yaml --state s3://state"]


CLUSTER = "apiVersion: kops.k8s.io/v1alpha2\nkind: Cluster\nmetadata:\n  name: c\nspec:\n  kubernetesVersion: 1.30.2\n"


def test_cluster_and_instance_groups_in_one_run():
    run, calls = recorder([(0, CLUSTER + "---\n" + IG + "---\n" + IG.replace("name: nodes", "name: nodes-b"), "")])
    cluster, groups = KopsCli("kops", "s3://state", run).get_cluster_and_instance_groups("c")
    assert cluster["kind"] == "Cluster" and cluster["metadata"]["name"] == "c"
    assert [g["metadata"]["name"] for g in groups] == ["nodes", "nodes-b"]
    assert calls[0][0] == ["kops", "get", "c", "-o", "yaml", "--state", "s3://state"]


@pytest.mark.parametrize("printed", ["", IG, CLUSTER + "---\n" + CLUSTER])
def test_cluster_and_instance_groups_needs_exactly_one_cluster(printed):
    run, _calls = recorder([(0, printed, "")])
    with pytest.raises(KopsCliError, match="expected one"):
        KopsCli("kops", "s3://state", run).get_cluster_and_instance_groups("c")


def test_kops_errors_are_quoted():
    run, _calls = recorder([(1, "", "I1129 noise\nError: cluster not found \"nope\"\n")])
    with pytest.raises(KopsCliError, match='reading cluster nope: kops get cluster failed \\(exit 1\\): Error: cluster not found "nope"'):
        KopsCli("kops", "s3://state", run).get_cluster("nope")


def test_update_and_roll_arguments():
    run, calls = recorder([(0, "", "")] * 3)
    kops = KopsCli("kops", "s3://s", run)
    kops.update_cluster("c")
    kops.update_cluster("c", target="terraform", out="/tmp/tf")
    kops.rolling_update("c", ["nodes-a"])
    assert [c[0][1:] for c in calls] == [
        ["update", "cluster", "--name", "c", "--yes", "--state", "s3://s"],
        ["update", "cluster", "--name", "c", "--yes", "--target", "terraform", "--out", "/tmp/tf", "--state", "s3://s"],
        ["rolling-update", "cluster", "--name", "c", "--yes", "--instance-group", "nodes-a", "--state", "s3://s"]]


def test_binary_and_state_store_checks(tmp_path):
    with pytest.raises(KopsCliError, match="kops_binary: '/nonexistent/kops' does not exist"):
        resolve_binary("/nonexistent/kops")
    with pytest.raises(KopsCliError, match="was not found on PATH"):
        resolve_binary("kops-surely-not-installed")
    assert check_state_store("s3://bucket/prefix/") == "s3://bucket/prefix"
    for bad in ("bucket", "s3://", "file:///tmp/state", None):
        with pytest.raises(KopsCliError, match="is not a kops state store"):
            check_state_store(bad)


# A `terraform show -json` plan as terraform writes it for kops output whose etcd member key changed.
PLAN = {"format_version": "1.2", "resource_changes": [
    {"address": "aws_launch_template.nodes-c", "type": "aws_launch_template", "change": {"actions": ["update"]}},
    {"address": "aws_ebs_volume.a-etcd-main-c", "type": "aws_ebs_volume", "change": {"actions": ["delete", "create"]},
     "action_reason": "replace_because_cannot_update"},
    {"address": "aws_ebs_volume.a-etcd-events-c", "type": "aws_ebs_volume", "change": {"actions": ["create", "delete"]}},
    {"address": "aws_ebs_volume.b-etcd-main-c", "type": "aws_ebs_volume", "change": {"actions": ["no-op"]}},
    {"address": "aws_ebs_volume.old", "type": "aws_ebs_volume", "change": {"actions": ["delete"]}}]}


def test_terraform_guard_finds_every_volume_deletion():
    assert ebs_volume_replacements(PLAN) == ["aws_ebs_volume.a-etcd-main-c", "aws_ebs_volume.a-etcd-events-c", "aws_ebs_volume.old"]
    assert ebs_volume_replacements({"resource_changes": PLAN["resource_changes"][:1]}) == []
    assert ebs_volume_replacements({}) == []


def test_storage_class_rendering_and_validation():
    manifest = sc.render("kops-csi-byok", KEY)
    sc.validate(manifest)
    assert manifest["provisioner"] == "ebs.csi.aws.com"
    assert manifest["parameters"] == {"type": "gp3", "encrypted": "true", "kmsKeyId": KEY}
    assert manifest["metadata"]["annotations"] == {sc.DEFAULT_ANNOTATION: "true"}
    bad = sc.render("Kops_CSI", KEY, volume_type="gp9")
    bad["parameters"]["encrypted"] = True
    with pytest.raises(sc.StorageClassError, match="metadata.name.*parameters values must be strings.*gp9"):
        sc.validate(bad)


def test_storage_class_plan_on_a_kops_cluster():
    manifest = sc.render("kops-csi-byok", KEY)
    kops_default = {"metadata": {"name": "kops-csi-1-21", "annotations": {sc.DEFAULT_ANNOTATION: "true"}},
                    "parameters": {"type": "gp3", "encrypted": "true"}}
    gp2 = {"metadata": {"name": "gp2"}, "parameters": {"type": "gp2"}}
    assert sc.plan_cluster_classes([kops_default, gp2], manifest) == {"create": True, "set_default": False, "undefault": ["kops-csi-1-21"]}
    applied = [dict(kops_default, metadata={"name": "kops-csi-1-21", "annotations": {sc.DEFAULT_ANNOTATION: "false"}}), manifest]
    assert sc.plan_cluster_classes(applied, manifest) == {"create": False, "set_default": False, "undefault": []}
    other_key = sc.render("kops-csi-byok", KEY.replace("0001", "0002"))
    with pytest.raises(sc.StorageClassError, match="parameters cannot change"):
        sc.plan_cluster_classes([other_key], manifest)


# --- transient kops failures are run again; others fail at once ------------------------------------------------

from ansible_collections.mattermost.byok.plugins.module_utils.kops.cli import transient  # noqa: E402  pylint: disable=wrong-import-position

TRANSIENT_ERRORS = [
    "Error: error reading s3://state/c/config: An error occurred (SlowDown) when calling the GetObject operation: Please reduce your request rate.",
    "Error: An error occurred (RequestLimitExceeded) when calling the DescribeLaunchTemplateVersions operation (reached max retries: 12)",
    "Error: An error occurred (Throttling) when calling the DescribeAutoScalingGroups operation: Rate exceeded",
    'Error: error reading s3://state/c/config: Could not connect to the endpoint URL: "http://127.0.0.1:1/state/c/config"',
    "Error: operation error S3: GetObject, https response error StatusCode: 503, RequestID: X, api error SlowDown",
    "Error: error listing s3://state: read tcp 10.0.0.1:443: connection reset by peer",
    "Error: Connection was closed before we received a valid response from endpoint URL",
    "Error: unexpected EOF",
    "Error: InternalError: We encountered an internal error. Please try again.",
]
PERMANENT_ERRORS = [
    "Error: spec.rootVolume.encryptionKey: Invalid value: 'k': encryptionKey requires encryption to be enabled",
    "Error: cluster 'c' does not exist; use --force to create it",
    "Error: error reading s3://state/c/config: An error occurred (NoSuchBucket) when calling the GetObject operation",
    "Error: Field cannot be changed: KmsKeyID",
    "Error: An error occurred (AccessDenied) when calling the PutObject operation: Access Denied",
    "Error: spec.etcdClusters: Forbidden: etcd cluster and member names cannot be changed",
]


@pytest.mark.parametrize("error", TRANSIENT_ERRORS)
def test_transient_errors_are_recognised(error):
    assert transient(error)


@pytest.mark.parametrize("error", PERMANENT_ERRORS)
def test_permanent_errors_are_not(error):
    assert not transient(error)


@pytest.mark.parametrize("error", TRANSIENT_ERRORS[:4])
def test_a_transient_failure_is_run_again_and_reported(error):
    run, calls = recorder([(1, "", error), (1, "", error), (0, CLUSTER, "")])
    waits = []
    kops = KopsCli("kops", "s3://state", run, sleep=waits.append)
    assert kops.get_cluster("c")["kind"] == "Cluster"
    assert len(calls) == 3 and calls[0] == calls[1] == calls[2]
    assert kops.commands == ["get cluster --name c -o yaml --state s3://state"]  # one command, run three times
    assert [r["attempt"] for r in kops.retried] == [1, 2] and kops.retried[0]["error"] == error
    assert len(waits) == 2 and 1.0 <= waits[0] <= 2.0 and 2.0 <= waits[1] <= 4.0


@pytest.mark.parametrize("error", PERMANENT_ERRORS)
def test_a_permanent_failure_is_not_run_again(error):
    run, calls = recorder([(1, "", error)])
    kops = KopsCli("kops", "s3://state", run, sleep=pytest.fail)
    with pytest.raises(KopsCliError, match="exit 1"):
        kops.update_cluster("c")
    assert len(calls) == 1 and kops.retried == []


def test_transient_failures_give_up_after_the_attempts():
    error = TRANSIENT_ERRORS[0]
    run, calls = recorder([(1, "", error)] * 4)
    kops = KopsCli("kops", "s3://state", run, attempts=4, sleep=lambda _s: None)
    with pytest.raises(KopsCliError, match="after 4 attempts: .*SlowDown"):
        kops.rolling_update("c")
    assert len(calls) == 4 and len(kops.retried) == 3
