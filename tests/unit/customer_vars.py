# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One customer's inventory variables (acme of the demo's shape) for the unit tests of customer_config and what
builds on it, and the ways those tests vary them."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.fleet.customer_config import CustomerConfigError
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.customer_config import validate_customer

K1 = "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"
K2 = "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000002"
KW = "arn:aws:kms:us-west-2:111111111101:key/0acbe000-0000-4000-8000-000000000003"
BASE = {
    "byok_customer_account_id": "111111111101",
    "byok_provider_account_id": "222222222222",
    "byok_environment": "prod",
    "byok_region": "us-east-1",
    "byok_vpc_id": "vpc-0ac0e000000000001",
    "byok_kops_cluster_id": "acme01",
    "byok_services": ["s3", "rds", "ebs"],
    "byok_keys": {"all": K1},
    "byok_s3_buckets": ["mattermost-acme-filestore"],
    "byok_rds_clusters": [{"identifier": "acme-db", "region": "us-east-1"}],
    "byok_kops_state_store": "s3://mattermost-kops-state-prod",
}


def changed(base: dict, **changes) -> dict:
    """A deep copy of `base` with `changes` applied; a change to None removes the variable."""
    v = copy.deepcopy(base)
    for name, value in changes.items():
        if value is None:
            v.pop(name, None)
        else:
            v[name] = value
    return v


def errors_of(v: dict) -> list:
    """The problems validate_customer names for acme with these variables (it must refuse them)."""
    with pytest.raises(CustomerConfigError) as e:
        validate_customer("acme", v)
    return e.value.errors
