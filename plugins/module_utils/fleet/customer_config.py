# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate one customer's BYOK inventory variables and derive what every step needs from them.

Pure: no AWS calls. Every error names the inventory variable (`byok_keys.rds`, `byok_services[2]`, ...) and
says how to fix it, so a bad host_vars file stops that customer before anything is read or changed.
"""

from __future__ import annotations

import re

from ansible_collections.amazon.aws.plugins.module_utils.arn import parse_aws_arn

from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import InvalidIdentifier
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import parse_kms_key_arn
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import validate_account_id
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import validate_region
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import validate_vpc_id
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.maintenance_window import InvalidWindow
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.maintenance_window import normalize_windows
from ansible_collections.mattermost.byok.plugins.module_utils.mattermost.installations import validate_installations

SERVICES = ("s3", "rds", "ebs")
KEY_SOURCES = ("customer", "external")
RDS_STRATEGIES = ("blue_green", "snapshot_restore")
KEY_SLOTS = ("all",) + SERVICES + ("rds_regions",)
ENVIRONMENT_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
CLUSTER_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
BUCKET_RE = re.compile(r"^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
RDS_ID_RE = re.compile(r"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{0,62}(?<!-)$")
STATE_STORE_RE = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?$")


class CustomerConfigError(ValueError):
    """All the problems of one customer's variables, one per line."""

    def __init__(self, customer: str, errors: list[str]):
        self.customer = customer
        self.errors = errors
        super().__init__(f"customer {customer}: invalid BYOK inventory variables:\n- " + "\n- ".join(errors))


def cluster_name(cluster_id: str) -> str:
    """kops cluster name for Mattermost's cluster id (gossip DNS)."""
    return f"{cluster_id}-kops.k8s.local"


def provider_principals(provider_account_id: str, environment: str, vpc_id: str, cluster_id: str) -> dict:
    """The provider-side IAM principals that use the customer's key."""
    name = cluster_name(cluster_id)
    return {
        "provisioning_user": f"arn:aws:iam::{provider_account_id}:user/mattermost-cloud-{environment}-provisioning-{vpc_id}",
        "nodes_role": f"arn:aws:iam::{provider_account_id}:role/nodes.{name}",
        "masters_role": f"arn:aws:iam::{provider_account_id}:role/masters.{name}",
        "autoscaling_role": f"arn:aws:iam::{provider_account_id}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
    }


class _Checker:
    """Collects errors instead of stopping at the first, so one run shows every problem."""

    def __init__(self):
        self.errors: list[str] = []

    def run(self, check, *args):
        try:
            return check(*args)
        except InvalidIdentifier as e:
            self.errors.append(str(e))
        return None

    def error(self, message: str):
        self.errors.append(message)


def validate_customer(customer: str, v: dict) -> dict:
    """Validate the variables of `customer` (a dict of byok_* values) and return the normalized config.

    Raises CustomerConfigError listing every problem found.
    """
    c = _Checker()
    account = c.run(validate_account_id, v.get("byok_customer_account_id"), "byok_customer_account_id")
    provider = c.run(validate_account_id, v.get("byok_provider_account_id"), "byok_provider_account_id")
    region = c.run(validate_region, v.get("byok_region"), "byok_region")
    vpc_id = c.run(validate_vpc_id, v.get("byok_vpc_id"), "byok_vpc_id")
    environment = v.get("byok_environment")
    if not isinstance(environment, str) or not ENVIRONMENT_RE.match(environment):
        c.error(f"byok_environment: {environment!r} is not an environment name (lowercase letters, digits, dashes; e.g. prod)")
        environment = None
    cluster_id = v.get("byok_kops_cluster_id")
    if not isinstance(cluster_id, str) or not CLUSTER_ID_RE.match(cluster_id):
        c.error(f"byok_kops_cluster_id: {cluster_id!r} is not a kops cluster id (the part before -kops.k8s.local)")
        cluster_id = None
    key_source = v.get("byok_key_source", "customer")
    if key_source not in KEY_SOURCES:
        c.error(f"byok_key_source: {key_source!r} is not one of {', '.join(KEY_SOURCES)}")

    services = _services(c, v.get("byok_services"))
    key_owner = provider if key_source == "external" else account
    keys, region_keys = _keys(c, v.get("byok_keys"), services, region, key_owner, key_source)
    buckets = _buckets(c, v.get("byok_s3_buckets"), "s3" in services)
    clusters = _rds_clusters(c, v.get("byok_rds_clusters"), "rds" in services, region, keys.get("rds"), region_keys)
    state_store = _state_store(c, v.get("byok_kops_state_store"), "ebs" in services)
    installations = validate_installations(v.get("byok_mattermost_installations"), buckets, provider,
                                           v.get("byok_ebs_kubeconfig"), c.errors)
    global_cluster = v.get("byok_rds_global_cluster")
    if global_cluster is not None and (not isinstance(global_cluster, str) or not RDS_ID_RE.match(global_cluster)):
        c.error(f"byok_rds_global_cluster: {global_cluster!r} is not an RDS global cluster identifier")

    windows = []
    try:
        windows = normalize_windows(v.get("byok_maintenance_window"))
    except InvalidWindow as e:
        c.error(str(e))
    rds_strategy = v.get("byok_rds_strategy", "blue_green")
    if rds_strategy not in RDS_STRATEGIES:
        c.error(f"byok_rds_strategy: {rds_strategy!r} is not one of {', '.join(RDS_STRATEGIES)}")

    if c.errors:
        raise CustomerConfigError(customer, c.errors)

    principals = provider_principals(provider, environment, vpc_id, cluster_id)
    return {
        "customer": customer,
        "customer_account_id": account,
        "provider_account_id": provider,
        "environment": environment,
        "region": region,
        "vpc_id": vpc_id,
        "kops_cluster_id": cluster_id,
        "kops_cluster_name": cluster_name(cluster_id),
        "key_source": key_source,
        "services": services,
        "service_keys": keys,
        "rds_region_keys": region_keys,
        "distinct_keys": _distinct_keys(keys, clusters),
        "s3_buckets": buckets,
        "rds_clusters": clusters,
        "rds_global_cluster": global_cluster,
        "kops_state_store": state_store,
        "principals": principals,
        "maintenance_windows": windows,
        "rds_strategy": rds_strategy,
        "mattermost_installations": installations,
    }


def _services(c: _Checker, value) -> list[str]:
    if not isinstance(value, list) or not value:
        c.error(f"byok_services: {value!r} must be a non-empty list of {', '.join(SERVICES)}")
        return []
    services = []
    for i, name in enumerate(value):
        if name not in SERVICES:
            c.error(f"byok_services[{i}]: unknown service {name!r}; BYOK covers {', '.join(SERVICES)}")
        elif name not in services:
            services.append(name)
    return [s for s in SERVICES if s in services]


def _key(c: _Checker, value, field: str, owner: str | None, key_source: str, region: str | None = None) -> str | None:
    arn = c.run(parse_kms_key_arn, value, field)
    if arn is None:
        return None
    if owner and arn.account_id != owner:
        whose = "the provider account (byok_key_source: external)" if key_source == "external" else "the customer account"
        c.error(f"{field}: key {value} is in account {arn.account_id}, but {whose} is {owner}")
    if region and arn.region != region:
        c.error(f"{field}: key {value} is in {arn.region}, but the resources are in {region}; a KMS key only serves its own region")
    return str(arn)


def _keys(c: _Checker, value, services, region, owner, key_source):
    if not isinstance(value, dict) or not value:
        c.error("byok_keys: missing; set byok_keys.all (one key for every service) or byok_keys.<service> for each enabled service")
        return {}, {}
    for name in value:
        if name not in KEY_SLOTS:
            c.error(f"byok_keys.{name}: unknown entry; use one of {', '.join(KEY_SLOTS)}")
    keys = {}
    for service in services:
        field = f"byok_keys.{service}" if service in value else "byok_keys.all"
        if field == "byok_keys.all" and "all" not in value:
            c.error(f"byok_keys.{service}: no key for the enabled service {service}; set byok_keys.{service} or byok_keys.all")
            continue
        # RDS clusters may sit in other regions (global database); their region is checked per cluster.
        keys[service] = _key(c, value.get(service, value.get("all")), field, owner, key_source, None if service == "rds" else region)
    region_keys = {}
    per_region = value.get("rds_regions") or {}
    if not isinstance(per_region, dict):
        c.error("byok_keys.rds_regions: must map a region name to the key ARN of that region")
        per_region = {}
    for reg, arn in per_region.items():
        field = f"byok_keys.rds_regions.{reg}"
        if c.run(validate_region, reg, field) is not None:
            region_keys[reg] = _key(c, arn, field, owner, key_source, reg)
    return {k: a for k, a in keys.items() if a}, {r: a for r, a in region_keys.items() if a}


def _buckets(c: _Checker, value, required: bool) -> list[str]:
    if value is None:
        value = []
    if not isinstance(value, list):
        c.error("byok_s3_buckets: must be a list of bucket names")
        return []
    if required and not value:
        c.error("byok_s3_buckets: s3 is in byok_services but no bucket is listed")
    for i, name in enumerate(value):
        if not isinstance(name, str) or not BUCKET_RE.match(name):
            c.error(f"byok_s3_buckets[{i}]: {name!r} is not an S3 bucket name")
    return [b for b in value if isinstance(b, str)]


def _rds_clusters(c: _Checker, value, required, home_region, rds_key, region_keys) -> list[dict]:
    if value is None:
        value = []
    if not isinstance(value, list):
        c.error("byok_rds_clusters: must be a list of {identifier, region}")
        return []
    if required and not value:
        c.error("byok_rds_clusters: rds is in byok_services but no cluster is listed")
    clusters = []
    for i, item in enumerate(value):
        field = f"byok_rds_clusters[{i}]"
        if isinstance(item, str):
            item = {"identifier": item}
        if not isinstance(item, dict):
            c.error(f"{field}: must be a mapping with identifier and region")
            continue
        ident = item.get("identifier")
        if not isinstance(ident, str) or not RDS_ID_RE.match(ident):
            c.error(f"{field}.identifier: {ident!r} is not an RDS identifier (letters, digits, single dashes; starts with a letter)")
            continue
        reg = c.run(validate_region, item.get("region", home_region), f"{field}.region")
        kind = item.get("kind", "cluster")
        if kind not in ("cluster", "instance"):
            c.error(f"{field}.kind: {kind!r} is not one of cluster, instance")
        key = region_keys.get(reg)
        if required and key is None and rds_key:
            if reg == _region_of(rds_key):
                key = rds_key
            else:
                c.error(f"byok_keys.rds_regions.{reg}: {ident} is in {reg}, but the RDS key is in {_region_of(rds_key)}; "
                        f"give a key of {reg} under byok_keys.rds_regions")
        clusters.append({"identifier": ident.lower(), "region": reg, "kind": kind, "key_arn": key if required else None})
    return clusters


def _state_store(c: _Checker, value, required):
    if value is None and not required:
        return None
    m = STATE_STORE_RE.match(value) if isinstance(value, str) else None
    if not m:
        c.error(f"byok_kops_state_store: {value!r} is not an S3 URL (s3://<bucket>[/<prefix>])")
        return None
    return {"url": value, "bucket": m.group(1), "prefix": (m.group(2) or "").strip("/")}


def _region_of(arn: str) -> str:
    return parse_aws_arn(arn)["region"]


def _distinct_keys(keys: dict, clusters: list[dict]) -> list[dict]:
    """Each key once, with the services that use it (keys may repeat across services)."""
    by_arn: dict[str, list[str]] = {}
    for service, arn in keys.items():
        if service != "rds":
            by_arn.setdefault(arn, []).append(service)
    for cluster in clusters:
        if cluster["key_arn"] and "rds" not in by_arn.setdefault(cluster["key_arn"], []):
            by_arn[cluster["key_arn"]].append("rds")
    return [{"arn": arn, "region": _region_of(arn), "services": sorted(s)} for arn, s in by_arn.items()]
