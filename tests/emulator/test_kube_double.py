"""The local AWS answers the Kubernetes API paths of the Mattermost custom resource (tests/local_aws/kube_double.py).

Kubernetes API conventions (https://kubernetes.io/docs/reference/using-api/api-concepts/): objects are read at
``/apis/<group>/<version>/namespaces/<ns>/<plural>/<name>``, created by POST to the collection, replaced by PUT;
a replace with a stale ``metadata.resourceVersion`` answers 409 Conflict; errors are ``Status`` objects.
kubectl discovers the resource (``/api``, ``/apis``, ``/apis/<group>/<version>``) before ``kubectl get``.
Plain moto takes these paths for S3 buckets.
"""
from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request

import pytest

from tests.local_aws import kube_double

from .support import on_both

ON = {"MM_FILESETTINGS_AMAZONS3SSE": "true"}


def kubectl_get(kubeconfig, namespace, name):
    return subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "--request-timeout", "20s", "get",
                           "mattermosts.v1beta1.installation.mattermost.com", name, "--namespace", namespace, "--output", "json"],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("aws", ["extended", pytest.param("plain", marks=pytest.mark.xfail(
    strict=True, raises=urllib.error.HTTPError, reason="plain moto: no Kubernetes API, the path is an S3 bucket"))], indirect=True)
def test_kubectl_reads_the_mattermost_resource_through_a_kubeconfig(aws, tmp_path, unique_name):
    cluster = unique_name("c")
    kube_double.put_resource(aws.endpoint_url, cluster, kube_double.mattermost_resource("inst", ON))
    config = tmp_path / "kubeconfig"
    config.write_text(kube_double.kubeconfig(aws.endpoint_url, cluster))
    done = kubectl_get(config, "inst", "inst")
    assert done.returncode == 0, done.stderr
    resource = json.loads(done.stdout)
    assert resource["kind"] == "Mattermost" and resource["spec"]["mattermostEnv"] == [{"name": "MM_FILESETTINGS_AMAZONS3SSE", "value": "true"}]


def test_another_cluster_and_a_missing_resource_are_refused(local_aws, tmp_path, unique_name):
    cluster = unique_name("c")
    kube_double.put_resource(local_aws.endpoint_url, cluster, kube_double.mattermost_resource("inst", ON))
    config = tmp_path / "kubeconfig"
    config.write_text(kube_double.kubeconfig(local_aws.endpoint_url, unique_name("other")))
    refused = kubectl_get(config, "inst", "inst")
    assert refused.returncode != 0 and "Unauthorized" in refused.stderr
    config.write_text(kube_double.kubeconfig(local_aws.endpoint_url, cluster))
    missing = kubectl_get(config, "inst", "nothere")
    assert missing.returncode != 0 and "NotFound" in missing.stderr


def test_a_stale_replace_is_a_conflict(local_aws, unique_name):
    cluster = unique_name("c")
    first = kube_double.put_resource(local_aws.endpoint_url, cluster, kube_double.mattermost_resource("inst", ON))
    second = kube_double.put_resource(local_aws.endpoint_url, cluster, kube_double.mattermost_resource("inst", {}))
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    stale = dict(first)
    url = f"{kube_double.server_url(local_aws.endpoint_url, cluster)}/apis/installation.mattermost.com/v1beta1/namespaces/inst/mattermosts/inst"
    request = urllib.request.Request(url, data=json.dumps(stale).encode(), method="PUT", headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request, timeout=10)
    assert excinfo.value.code == 409 and json.loads(excinfo.value.read())["reason"] == "Conflict"


@on_both
def test_aws_paths_still_reach_moto(aws, unique_name):
    s3 = aws.client("s3")
    bucket = unique_name("b")
    s3.create_bucket(Bucket=bucket)
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
