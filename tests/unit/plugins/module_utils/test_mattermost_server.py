# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Mattermost server's SSE setting: from the custom resource, the provisioner's rule without a kubeconfig,
and per bucket whether every writer follows the bucket default."""

from __future__ import annotations

import json

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.mattermost import server as ms


def resource(*env):
    return {"kind": "Mattermost", "spec": {"mattermostEnv": list(env)}}


def var(value, name=ms.SSE_VARIABLE):
    return {"name": name, "value": value}


@pytest.mark.parametrize("env, sends", [
    ([var("true")], True), ([var("1")], True), ([var("T")], True), ([var("True")], True),
    ([var("false")], False), ([var("0")], False), ([var("F")], False), ([var("FALSE")], False),
    ([], False),                                              # not set: the server's default (off)
    ([var("x", "MM_OTHER")], False),
    ([var("true"), var("false")], False),                     # the last entry of a name wins
    ([var("false"), var("true")], True),
    ([var("yes")], True),                                     # not a Go boolean: taken as on
    ([{"name": ms.SSE_VARIABLE, "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}], True),
])
def test_setting_from_resource(env, sends):
    assert ms.setting_from_resource(resource(*env))[0] is sends


def test_setting_from_a_resource_without_spec():
    assert ms.setting_from_resource({"kind": "Mattermost"}) == (
        False, f"{ms.SSE_VARIABLE} is not in spec.mattermostEnv: the server's own default (off) applies")


@pytest.mark.parametrize("filestore, on", [("aws-s3", True), ("aws-multitenant-s3", True), ("bifrost", False)])
def test_provisioner_rule(filestore, on):
    assert ms.provisioner_rule(filestore) is on


def test_read_resource_runs_kubectl_get():
    calls = []

    def run(cmd):
        calls.append(cmd)
        return 0, json.dumps(resource(var("false"))), ""

    assert ms.read_resource(run, "/usr/bin/kubectl", "/k", "ns", "mm")["kind"] == "Mattermost"
    assert calls == [["/usr/bin/kubectl", "--kubeconfig", "/k", "--request-timeout", "30s", "get",
                      "mattermosts.v1beta1.installation.mattermost.com", "mm", "--namespace", "ns", "--output", "json"]]


@pytest.mark.parametrize("answer, message", [
    ((1, "", "error: stat /k: no such file or directory\n"), "error: stat /k: no such file or directory"),
    ((0, "not json", ""), "is not JSON"),
    ((0, json.dumps({"kind": "Status"}), ""), "did not answer a Mattermost resource"),
])
def test_read_resource_failures(answer, message):
    with pytest.raises(ms.ClusterUnreadable) as e:
        ms.read_resource(lambda cmd: answer, "kubectl", "/k", "ns", "mm")
    assert message in str(e.value)


def installation(ident, buckets, kubeconfig="/k", filestore="aws-s3"):
    return {"id": ident, "filestore": filestore, "buckets": buckets,
            "sse_setting": {"namespace": ident, "name": ident, "kubeconfig": kubeconfig,
                            "kubeconfig_variable": "byok_ebs_kubeconfig" if kubeconfig else None}}


def reader(values):
    def read(kubeconfig, namespace, name):
        if values[name] is None:
            raise ms.ClusterUnreadable("Unable to connect to the server")
        return resource(var(values[name]))
    return read


def test_off_everywhere_trusts_time_for_that_bucket_only():
    result = ms.server_settings([installation("a", ["b1"])], ["b1", "b2"], reader({"a": "false"}))
    assert result["buckets"]["b1"]["writers_follow_default"] is True
    assert result["buckets"]["b2"]["writers_follow_default"] is False       # nobody known writes it: unknown
    assert result["findings"] == [] and result["errors"] == []
    assert result["installations"][0]["source"] == "cluster"


def test_setting_on_is_a_finding_naming_installation_setting_and_fix():
    result = ms.server_settings([installation("a", ["b1"]), installation("c", ["b1"])], ["b1"], reader({"a": "false", "c": "true"}))
    assert result["buckets"]["b1"]["writers_follow_default"] is False
    assert result["buckets"]["b1"]["server_sends_sse_s3"] == ["c"]
    [finding] = result["findings"]
    assert finding["status"] == "server_sends_sse_s3" and finding["installation"] == "c"
    assert finding["setting"] == "MM_FILESETTINGS_AMAZONS3SSE"
    assert "AES256" in finding["message"] and "b1" in finding["message"]
    assert "turn MM_FILESETTINGS_AMAZONS3SSE off for installation c" in finding["fix"] and "provisioner change" in finding["fix"]


def test_no_kubeconfig_falls_back_to_the_provisioner_rule_and_says_so():
    result = ms.server_settings([installation("a", ["b1"], kubeconfig=None)], ["b1"], reader({}))
    record = result["installations"][0]
    assert record["source"] == "provisioner_rule" and record["sends_sse_s3"] is True
    assert "the cluster was not read" in record["detail"] and "provisioner's rule" in record["detail"]
    assert result["findings"][0]["source"] == "provisioner_rule"


def test_bifrost_rule_is_off():
    result = ms.server_settings([installation("a", ["b1"], kubeconfig=None, filestore="bifrost")], ["b1"], reader({}))
    assert result["installations"][0]["sends_sse_s3"] is False and result["findings"] == []


def test_unreadable_cluster_is_an_error_naming_the_variable():
    result = ms.server_settings([installation("a", ["b1"])], ["b1"], reader({"a": None}))
    [error] = result["errors"]
    assert error.startswith("byok_mattermost_installations[0].sse_setting: the Mattermost custom resource a/a of installation a")
    assert "(byok_ebs_kubeconfig): Unable to connect to the server" in error
    assert "byok_s3_server_setting_unreadable=provisioner_rule" in error
    assert result["buckets"]["b1"]["writers_follow_default"] is False


def test_unreadable_cluster_with_the_fallback_chosen():
    result = ms.server_settings([installation("a", ["b1"])], ["b1"], reader({"a": None}), on_unreadable="provisioner_rule")
    assert result["errors"] == []
    assert result["installations"][0]["source"] == "provisioner_rule" and result["installations"][0]["sends_sse_s3"] is True
    assert "could not be read" in result["installations"][0]["detail"]


@pytest.mark.parametrize("env, expected, changed", [
    ([var("true")], [var("false")], True),
    ([var("false")], [var("false")], False),
    ([], [var("false")], True),
    ([var("x", "MM_A"), var("true"), var("y", "MM_B"), var("1")], [var("x", "MM_A"), var("y", "MM_B"), var("false")], True),
    ([var("false"), var("true")], [var("false")], True),     # one entry left, where the last (winning) one was
])
def test_with_setting_off(env, expected, changed):
    original = resource(*env)
    new, differs = ms.with_setting_off(original)
    assert new["spec"]["mattermostEnv"] == expected and differs is changed
    assert original["spec"]["mattermostEnv"] == env  # the read resource is left as it was


def test_replace_resource_sends_the_resource_on_stdin():
    seen = {}

    def run(cmd, data=None):
        seen.update(cmd=cmd, data=data)
        return 0, data, ""

    body = resource(var("false"))
    assert ms.replace_resource(run, "kubectl", "/k", body) == body
    assert seen["cmd"][-6:] == ["replace", "--validate=false", "--filename", "-", "--output", "json"] and json.loads(seen["data"]) == body
