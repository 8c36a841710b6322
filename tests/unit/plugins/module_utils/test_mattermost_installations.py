# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""byok_mattermost_installations: the schema, each problem named by its variable, shared file stores refused."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.fleet.customer_config import validate_customer
from tests.unit.customer_vars import BASE as CUSTOMER
from tests.unit.customer_vars import changed, errors_of

USER = "arn:aws:iam::222222222222:user/mattermost-acme01inst"
BASE = changed(CUSTOMER, byok_services=["s3"], byok_s3_buckets=["mattermost-acme-filestore", "mattermost-acme-backups"],
               byok_rds_clusters=None, byok_kops_state_store=None)
INSTALLATION = {"id": "acme01inst", "filestore": "aws-s3", "buckets": ["mattermost-acme-filestore"], "s3_identity_arn": USER}


def variables(*installations, **extra):
    v = copy.deepcopy(BASE)
    v["byok_mattermost_installations"] = [copy.deepcopy(i) for i in installations]
    v.update(extra)
    return v


def with_fields(**changes):
    return changed(INSTALLATION, **changes)


def test_minimal_installation_gets_the_defaults():
    c = validate_customer("acme", variables(INSTALLATION))
    assert c["mattermost_installations"] == [{
        "id": "acme01inst", "filestore": "aws-s3", "buckets": ["mattermost-acme-filestore"], "s3_identity_arn": USER,
        "sse_setting": {"namespace": "acme01inst", "name": "acme01inst", "kubeconfig": None, "kubeconfig_variable": None},
        "canary_credentials": None}]


def test_no_installations_is_an_empty_list():
    assert validate_customer("acme", copy.deepcopy(BASE))["mattermost_installations"] == []


def test_kubeconfig_defaults_to_the_ebs_one():
    c = validate_customer("acme", variables(INSTALLATION, byok_ebs_kubeconfig="/etc/byok/acme.kubeconfig"))
    setting = c["mattermost_installations"][0]["sse_setting"]
    assert setting["kubeconfig"] == "/etc/byok/acme.kubeconfig"
    assert setting["kubeconfig_variable"] == "byok_ebs_kubeconfig"


def test_own_kubeconfig_namespace_and_name():
    item = with_fields(sse_setting={"namespace": "mm-acme", "name": "acme", "kubeconfig": "/k/acme"})
    setting = validate_customer("acme", variables(item, byok_ebs_kubeconfig="/other"))["mattermost_installations"][0]["sse_setting"]
    assert setting == {"namespace": "mm-acme", "name": "acme", "kubeconfig": "/k/acme",
                       "kubeconfig_variable": "byok_mattermost_installations[0].sse_setting.kubeconfig"}


@pytest.mark.parametrize("filestore", ["aws-multitenant-s3", "bifrost"])
def test_shared_file_store_is_refused_with_the_reason(filestore):
    errors = errors_of(variables(with_fields(filestore=filestore)))
    assert len(errors) == 1
    assert errors[0].startswith(f"byok_mattermost_installations[0].filestore: {filestore} is refused for BYOK")
    assert "shared bucket" in errors[0] and "cannot carry one customer's key" in errors[0]


@pytest.mark.parametrize("filestore", ["minio-operator", "local-ephemeral"])
def test_in_cluster_file_store_is_refused(filestore):
    errors = errors_of(variables(with_fields(filestore=filestore)))
    assert errors == [f"byok_mattermost_installations[0].filestore: {filestore} keeps the files in the cluster, on its EBS "
                      "volumes (the ebs step covers them), not in S3; leave this installation out of byok_mattermost_installations"]


@pytest.mark.parametrize("filestore", [None, "s3", 3, "AWS-S3"])
def test_unknown_or_missing_file_store(filestore):
    errors = errors_of(variables(with_fields(filestore=filestore)))
    assert len(errors) == 1 and errors[0].startswith("byok_mattermost_installations[0].filestore: ")
    assert "aws-s3, aws-multitenant-s3, bifrost" in errors[0]


def test_bucket_not_in_byok_s3_buckets():
    errors = errors_of(variables(with_fields(buckets=["mattermost-acme-filestore", "mattermost-other"])))
    assert errors == ["byok_mattermost_installations[0].buckets[1]: 'mattermost-other' is not in byok_s3_buckets; "
                      "add the bucket there, or fix the name"]


@pytest.mark.parametrize("buckets", [None, [], "mattermost-acme-filestore"])
def test_buckets_required_as_a_list(buckets):
    errors = errors_of(variables(with_fields(buckets=buckets)))
    assert errors == ["byok_mattermost_installations[0].buckets: list the byok_s3_buckets this installation's server writes (at least one)"]


@pytest.mark.parametrize("ident", [None, "", "Acme01", "acme_01", "-acme", 12])
def test_bad_installation_id(ident):
    errors = errors_of(variables(with_fields(id=ident)))
    assert len(errors) == 1 and errors[0].startswith("byok_mattermost_installations[0].id: ")


def test_installation_listed_twice():
    errors = errors_of(variables(INSTALLATION, INSTALLATION))
    assert errors == ["byok_mattermost_installations[1].id: installation acme01inst is listed twice; give each installation once"]


@pytest.mark.parametrize("arn, fragment", [
    (None, "is not an ARN"),
    ("mattermost-acme01inst", "is not an ARN"),
    ("arn:aws:iam::111111111101:user/mattermost-acme01inst",
     "is in account 111111111101, but the server's identity lives in the provider account 222222222222"),
    ("arn:aws:iam::222222222222:group/mattermost", "is not an IAM user or role ARN"),
    ("arn:aws:s3:::mattermost-acme-filestore", "is not an IAM user or role ARN"),
])
def test_bad_s3_identity(arn, fragment):
    errors = errors_of(variables(with_fields(s3_identity_arn=arn)))
    assert len(errors) == 1 and errors[0].startswith("byok_mattermost_installations[0].s3_identity_arn: ")
    assert fragment in errors[0]


def test_role_identity_is_accepted():
    role = "arn:aws:iam::222222222222:role/mattermost-acme01inst"
    assert validate_customer("acme", variables(with_fields(s3_identity_arn=role)))["mattermost_installations"][0]["s3_identity_arn"] == role


@pytest.mark.parametrize("setting, expected", [
    ({"namespace": "Acme"}, "byok_mattermost_installations[0].sse_setting.namespace: 'Acme' is not a Kubernetes namespace name"),
    ({"name": "acme_01"}, "byok_mattermost_installations[0].sse_setting.name: 'acme_01' is not a Kubernetes object name (the Mattermost custom resource)"),
    ({"kubeconfig": 5}, "byok_mattermost_installations[0].sse_setting.kubeconfig: 5 must be the path of a kubeconfig file"),
    ({"context": "x"}, "byok_mattermost_installations[0].sse_setting.context: unknown field; use namespace, name, kubeconfig"),
    ("acme", "byok_mattermost_installations[0].sse_setting: must be a mapping with namespace, name and kubeconfig (each optional)"),
])
def test_bad_sse_setting(setting, expected):
    assert errors_of(variables(with_fields(sse_setting=setting))) == [expected]


@pytest.mark.parametrize("canary, expected", [
    ({"secret": "mattermost/acme01inst/s3"}, {"secret": "mattermost/acme01inst/s3"}),
    ({"secret": "arn:aws:secretsmanager:us-east-1:222222222222:secret:acme-AbCdEf"},
     {"secret": "arn:aws:secretsmanager:us-east-1:222222222222:secret:acme-AbCdEf"}),
    ({"role_arn": "arn:aws:iam::222222222222:role/acme-canary"}, {"role_arn": "arn:aws:iam::222222222222:role/acme-canary"}),
])
def test_canary_credentials(canary, expected):
    c = validate_customer("acme", variables(with_fields(canary_credentials=canary)))
    assert c["mattermost_installations"][0]["canary_credentials"] == expected


@pytest.mark.parametrize("canary, fragment", [
    ({}, "give exactly one of secret"),
    ({"secret": "a", "role_arn": "arn:aws:iam::222222222222:role/x"}, "give exactly one of secret"),
    ({"secret": "arn:aws:s3:::bucket"}, "is a s3 ARN, not a Secrets Manager secret"),
    ({"secret": "has space"}, "is not a Secrets Manager secret name or ARN"),
    ({"role_arn": "arn:aws:iam::222222222222:user/x"}, "is not an IAM role ARN"),
    ("secret-name", "must be a mapping"),
])
def test_bad_canary_credentials(canary, fragment):
    errors = errors_of(variables(with_fields(canary_credentials=canary)))
    assert any(e.startswith("byok_mattermost_installations[0].canary_credentials") and fragment in e for e in errors), errors


def test_unknown_field_and_not_a_list():
    assert errors_of(variables(with_fields(bucket="x"))) == [
        "byok_mattermost_installations[0].bucket: unknown field; an installation has id, filestore, buckets, s3_identity_arn, "
        "sse_setting, canary_credentials"]
    v = copy.deepcopy(BASE)
    v["byok_mattermost_installations"] = {"id": "acme01inst"}
    assert errors_of(v) == ["byok_mattermost_installations: must be a list of installations (id, filestore, buckets, s3_identity_arn, ...)"]
    v["byok_mattermost_installations"] = ["acme01inst"]
    assert errors_of(v) == ["byok_mattermost_installations[0]: must be a mapping with id, filestore, buckets and s3_identity_arn"]


def test_every_problem_of_every_entry_at_once():
    errors = errors_of(variables(with_fields(filestore="bifrost"), with_fields(id="acme02", buckets=["nope"], s3_identity_arn="x")))
    fields = [e.split(":", 1)[0] for e in errors]
    assert fields == ["byok_mattermost_installations[0].filestore", "byok_mattermost_installations[1].buckets[0]",
                      "byok_mattermost_installations[1].s3_identity_arn"]


def test_other_variables_problems_are_reported_too():
    errors = errors_of(variables(with_fields(filestore="bifrost"), byok_region="nowhere"))
    assert any(e.startswith("byok_region") for e in errors)
    assert any(e.startswith("byok_mattermost_installations[0].filestore") for e in errors)
