# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.mattermost.byok.plugins.module_utils.fleet.customer_config import CustomerConfigError
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.customer_config import validate_customer
from tests.unit.customer_vars import BASE, K1, K2, KW, changed, errors_of

KP = "arn:aws:kms:us-east-1:222222222222:key/0acbe000-0000-4000-8000-000000000009"


def config(**changes):
    return changed(BASE, **changes)


def test_one_key_for_all():
    c = validate_customer("acme", config())
    assert c["service_keys"] == {"s3": K1, "rds": K1, "ebs": K1}
    assert c["distinct_keys"] == [{"arn": K1, "region": "us-east-1", "services": ["ebs", "rds", "s3"]}]
    assert c["rds_clusters"] == [{"identifier": "acme-db", "region": "us-east-1", "kind": "cluster", "key_arn": K1}]
    assert c["kops_cluster_name"] == "acme01-kops.k8s.local"
    assert c["kops_state_store"] == {"url": "s3://mattermost-kops-state-prod", "bucket": "mattermost-kops-state-prod", "prefix": ""}


def test_principals_follow_the_runbook_names():
    p = validate_customer("acme", config())["principals"]
    assert p["provisioning_user"] == "arn:aws:iam::222222222222:user/mattermost-cloud-prod-provisioning-vpc-0ac0e000000000001"
    assert p["nodes_role"] == "arn:aws:iam::222222222222:role/nodes.acme01-kops.k8s.local"
    assert p["masters_role"] == "arn:aws:iam::222222222222:role/masters.acme01-kops.k8s.local"


def test_key_per_service_with_sharing():
    c = validate_customer("acme", config(byok_keys={"s3": K1, "rds": K1, "ebs": K2}))
    assert c["service_keys"] == {"s3": K1, "rds": K1, "ebs": K2}
    assert {d["arn"]: d["services"] for d in c["distinct_keys"]} == {K1: ["rds", "s3"], K2: ["ebs"]}


def test_service_key_overrides_all():
    c = validate_customer("acme", config(byok_keys={"all": K1, "ebs": K2}))
    assert c["service_keys"] == {"s3": K1, "rds": K1, "ebs": K2}


def test_selective_services_need_only_their_resources():
    c = validate_customer("acme", config(byok_services=["s3"], byok_rds_clusters=None, byok_kops_state_store=None))
    assert c["services"] == ["s3"]
    assert c["service_keys"] == {"s3": K1}
    assert c["kops_state_store"] is None


def test_services_are_ordered_and_deduplicated():
    assert validate_customer("acme", config(byok_services=["ebs", "s3", "ebs"]))["services"] == ["s3", "ebs"]


def test_disabled_service_resources_are_kept_without_a_key():
    c = validate_customer("acme", config(byok_services=["s3", "ebs"]))
    assert c["rds_clusters"][0]["key_arn"] is None


def test_global_database_key_per_region():
    c = validate_customer("acme", config(
        byok_keys={"all": K1, "rds_regions": {"us-west-2": KW}},
        byok_rds_global_cluster="acme-global",
        byok_rds_clusters=[{"identifier": "acme-db", "region": "us-east-1"}, {"identifier": "acme-db-west", "region": "us-west-2"}]))
    assert [(x["identifier"], x["key_arn"]) for x in c["rds_clusters"]] == [("acme-db", K1), ("acme-db-west", KW)]
    assert c["rds_region_keys"] == {"us-west-2": KW}
    assert {d["arn"]: d["region"] for d in c["distinct_keys"]} == {K1: "us-east-1", KW: "us-west-2"}


def test_cluster_in_another_region_without_its_key():
    errs = errors_of(config(byok_rds_clusters=[{"identifier": "acme-db-west", "region": "us-west-2"}]))
    assert any(e.startswith("byok_keys.rds_regions.us-west-2: acme-db-west is in us-west-2") for e in errs)


def test_region_key_in_the_wrong_region():
    errs = errors_of(config(byok_keys={"all": K1, "rds_regions": {"eu-west-1": KW}}))
    assert any(e.startswith("byok_keys.rds_regions.eu-west-1: ") and "a KMS key only serves its own region" in e for e in errs)


def test_cluster_given_as_a_string_defaults_to_the_home_region():
    c = validate_customer("acme", config(byok_rds_clusters=["Acme-DB"]))
    assert c["rds_clusters"][0] == {"identifier": "acme-db", "region": "us-east-1", "kind": "cluster", "key_arn": K1}


def test_external_key_source_expects_a_provider_key():
    c = validate_customer("acme", config(byok_key_source="external", byok_keys={"all": KP}))
    assert c["key_source"] == "external"
    errs = errors_of(config(byok_key_source="external"))
    assert any("byok_keys.all: key " in e and "provider account (byok_key_source: external) is 222222222222" in e for e in errs)


@pytest.mark.parametrize("changes, field, fragment", [
    ({"byok_customer_account_id": None}, "byok_customer_account_id", "missing"),
    ({"byok_customer_account_id": 111111111101}, "byok_customer_account_id", "quote it"),
    ({"byok_customer_account_id": "1111"}, "byok_customer_account_id", "12-digit"),
    ({"byok_provider_account_id": None}, "byok_provider_account_id", "missing"),
    ({"byok_region": "us-east"}, "byok_region", "not an AWS region"),
    ({"byok_region": None}, "byok_region", "not an AWS region"),
    ({"byok_vpc_id": "vpc-xyz"}, "byok_vpc_id", "not a VPC id"),
    ({"byok_environment": "Prod!"}, "byok_environment", "not an environment name"),
    ({"byok_kops_cluster_id": "acme01-kops.k8s.local"}, "byok_kops_cluster_id", "not a kops cluster id"),
    ({"byok_kops_cluster_id": None}, "byok_kops_cluster_id", "not a kops cluster id"),
    ({"byok_key_source": "hsm"}, "byok_key_source", "not one of customer, external"),
    ({"byok_services": []}, "byok_services", "non-empty list"),
    ({"byok_services": "s3"}, "byok_services", "non-empty list"),
    ({"byok_services": ["s3", "efs"]}, "byok_services[1]", "unknown service 'efs'"),
    ({"byok_keys": None}, "byok_keys", "missing"),
    ({"byok_keys": {"s3": K1}}, "byok_keys.rds", "no key for the enabled service rds"),
    ({"byok_keys": {"all": K1, "database": K2}}, "byok_keys.database", "unknown entry"),
    ({"byok_keys": {"all": "alias/acme"}}, "byok_keys.all", "is an alias"),
    ({"byok_keys": {"all": "0acbe000-0000-4000-8000-000000000001"}}, "byok_keys.all", "bare key id"),
    ({"byok_keys": {"all": "arn:aws:kms:us-east-1:111111111101:alias/acme"}}, "byok_keys.all", "alias ARN"),
    ({"byok_keys": {"all": "arn:aws:kms:us-east-1:11111111110:key/0acbe000-0000-4000-8000-000000000001"}}, "byok_keys.all", "12 digits"),
    ({"byok_keys": {"all": "arn:aws:kms:us-east-1:333333333333:key/0acbe000-0000-4000-8000-000000000001"}}, "byok_keys.all",
     "is in account 333333333333, but the customer account is 111111111101"),
    ({"byok_keys": {"all": KW}}, "byok_keys.all", "is in us-west-2, but the resources are in us-east-1"),
    ({"byok_keys": {"all": K1, "rds_regions": "us-west-2"}}, "byok_keys.rds_regions", "must map a region"),
    ({"byok_s3_buckets": []}, "byok_s3_buckets", "no bucket is listed"),
    ({"byok_s3_buckets": ["Bad_Bucket"]}, "byok_s3_buckets[0]", "not an S3 bucket name"),
    ({"byok_s3_buckets": "one-bucket"}, "byok_s3_buckets", "must be a list"),
    ({"byok_rds_clusters": []}, "byok_rds_clusters", "no cluster is listed"),
    ({"byok_rds_clusters": [{"identifier": "1db"}]}, "byok_rds_clusters[0].identifier", "not an RDS identifier"),
    ({"byok_rds_clusters": [{"identifier": "db", "region": "mars-1"}]}, "byok_rds_clusters[0].region", "not an AWS region"),
    ({"byok_rds_clusters": [{"identifier": "db", "kind": "serverless"}]}, "byok_rds_clusters[0].kind", "not one of cluster, instance"),
    ({"byok_rds_clusters": [["db"]]}, "byok_rds_clusters[0]", "must be a mapping"),
    ({"byok_kops_state_store": "mattermost-kops-state"}, "byok_kops_state_store", "not an S3 URL"),
    ({"byok_kops_state_store": None}, "byok_kops_state_store", "not an S3 URL"),
    ({"byok_rds_global_cluster": "global db"}, "byok_rds_global_cluster", "not an RDS global cluster identifier"),
])
def test_bad_input_names_the_field(changes, field, fragment):
    errs = errors_of(config(**changes))
    matching = [e for e in errs if e.startswith(field + ": ")]
    assert matching, f"no error for {field} in {errs}"
    assert any(fragment in e for e in matching), matching


def test_every_problem_is_reported_at_once():
    errs = errors_of(config(byok_customer_account_id=None, byok_region="nowhere", byok_services=["s3", "nfs"]))
    fields = {e.split(":")[0] for e in errs}
    assert {"byok_customer_account_id", "byok_region", "byok_services[1]"} <= fields


def test_error_message_lists_each_problem_with_the_customer():
    with pytest.raises(CustomerConfigError) as e:
        validate_customer("hooli", config(byok_vpc_id="nope"))
    assert str(e.value).startswith("customer hooli: invalid BYOK inventory variables:\n- byok_vpc_id: ")


def _demo_inventory():
    root = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "inventories", "demo")
    with open(os.path.join(root, "group_vars", "dedicated.yml")) as f:
        group = yaml.safe_load(f)
    hosts = sorted(os.listdir(os.path.join(root, "host_vars")))
    for name in hosts:
        with open(os.path.join(root, "host_vars", name)) as f:
            yield name[:-4], {**group, **yaml.safe_load(f)}


@pytest.mark.parametrize("customer, variables", list(_demo_inventory()))
def test_demo_inventory_is_valid(customer, variables):
    c = validate_customer(customer, variables)
    assert c["customer_account_id"] == variables["byok_customer_account_id"]


def test_maintenance_window_and_strategy_defaults():
    c = validate_customer("acme", config())
    assert c["maintenance_windows"] == [] and c["rds_strategy"] == "blue_green"


def test_maintenance_window_one_or_many():
    assert validate_customer("acme", config(byok_maintenance_window="Sun:02:00-Sun:06:00"))["maintenance_windows"] == ["sun:02:00-sun:06:00"]
    many = config(byok_maintenance_window=["sun:02:00-sun:06:00", "wed:01:00-wed:03:00"], byok_rds_strategy="snapshot_restore")
    c = validate_customer("acme", many)
    assert len(c["maintenance_windows"]) == 2 and c["rds_strategy"] == "snapshot_restore"


@pytest.mark.parametrize("changes, fragment", [
    ({"byok_maintenance_window": "sunday 2am"}, "byok_maintenance_window: 'sunday 2am' is not a window"),
    ({"byok_maintenance_window": ["sun:02:00-sun:06:00", "x"]}, "byok_maintenance_window[1]"),
    ({"byok_rds_strategy": "in_place"}, "byok_rds_strategy: 'in_place' is not one of blue_green, snapshot_restore"),
])
def test_window_and_strategy_errors(changes, fragment):
    assert any(fragment in e for e in errors_of(config(**changes)))
