"""Seed the local AWS with the demo fleet that an Ansible inventory describes.

    python -m tests.local_aws.demo_fleet --endpoint-url http://127.0.0.1:PORT --inventory inventories/demo

The inventory (hosts.yml, group_vars/, host_vars/) is the single source of truth for what exists: the provider
account with its IAM principals, provider-managed KMS keys and kops state store; per customer, the customer's
KMS keys (in the customer account, with the key ids of the inventory's ARNs), S3 buckets with objects, Aurora
PostgreSQL clusters (and a global database), a kops cluster's state-store documents, launch templates, Auto
Scaling groups, instances and etcd volumes. Everything starts on the provider key, as before BYOK is applied.
Choices the inventory leaves open come from fixtures/demo-profiles.yml; docs/demo-fleet.md describes the fleet.

Re-running against a seeded server creates nothing new: each resource is looked up first and skipped if present.
"""

import argparse
import base64
import concurrent.futures
import datetime
import fnmatch
import gzip
import json
import os
import random
import re
import secrets
import string
import sys
import threading
import time
import urllib.parse
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import yaml
from botocore.exceptions import BotoCoreError, ClientError

from tests.local_aws import kube_double
from tests.local_aws.harness import REPO_ROOT, LocalAWS
from tests.local_aws.mattermost_double import MattermostServer

# The key policies are the collection's own onboarding statements (scripts/setup links the checkout there).
sys.path.insert(0, str(REPO_ROOT / ".collections"))
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.customer_config import provider_principals  # noqa: E402 pylint: disable=wrong-import-position
from ansible_collections.mattermost.byok.plugins.module_utils.kms.onboarding_policy import key_policy_statements  # noqa: E402 pylint: disable=wrong-import-position

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DEMO_INVENTORY = REPO_ROOT / "inventories" / "demo"
KOPS_FIXTURES = FIXTURES / "kops"

# kops state stores named without a region suffix live in the default region (Mattermost's naming convention).
STATE_STORE_REGION = "us-east-1"
PROVIDER_KEY_ALIAS = "alias/mattermost-cloud-{env}"
CUSTOMER_KEY_ALIAS = "alias/mattermost-byok"
# The two statements of the BYOK runbook (mattermost-cloud-byok.txt), with exactly its actions.
RUNBOOK_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
RUNBOOK_SIDS = {"user": "Allow use of the key", "nodes": "Allow use of the key role nodes"}
KEY_SLOTS = ("all", "s3", "rds", "ebs")
SERVICES = ("s3", "rds", "ebs")
# AWS's defaults, sent explicitly: moto leaves KeyUsage out of DescribeKey unless it was given.
SYMMETRIC_KEY = {"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT"}
MIB = 1024 * 1024
PART_SIZE = 5 * MIB
# What kops's launch templates carry is nodeup's bootstrap script; the demo's stands in for it.
USER_DATA = base64.b64encode(b"#!/bin/bash\n# kops nodeup bootstrap (demo stand-in)\n").decode()
EC2_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


class InventoryError(Exception):
    """The inventory names something the seeder can't create; the message names the variable and the fix."""


class SeedError(Exception):
    """The local AWS refused or mis-created something."""


# --------------------------------------------------------------------------------------------------------------
# Inventory
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyArn:
    arn: str
    region: str
    account: str
    key_id: str


@dataclass(frozen=True)
class CustomerKey:
    """One customer KMS key and the inventory slots that name it (a key shared by services is one key)."""
    arn: KeyArn
    slots: tuple


@dataclass(frozen=True)
class DbCluster:
    """An Aurora cluster (kind "cluster") or a standalone RDS for PostgreSQL instance (kind "instance")."""
    identifier: str
    region: str
    kind: str = "cluster"


@dataclass(frozen=True)
class Customer:
    name: str
    account_id: str
    region: str
    vpc_id: str
    cluster_id: str
    services: tuple
    keys: tuple
    buckets: tuple
    db_clusters: tuple
    global_cluster: str | None
    policy_omits: frozenset
    key_source: str
    profile: dict
    # (s3_identity user name, canary secret name or None, buckets) of each installation whose server identity is an
    # IAM user of the provider account: seeded as the provisioner makes it (S3 actions only, access key in a secret).
    server_identities: tuple = ()
    installations: tuple = ()  # (id, S3 identity user name, buckets) of byok_mattermost_installations
    mattermost_sse_s3: bool = False  # demo_mattermost_sse_s3: the servers' MM_FILESETTINGS_AMAZONS3SSE in the cluster

    @property
    def cluster_name(self):
        return f"{self.cluster_id}-kops.k8s.local"

    @property
    def regions(self):
        """Every region this customer has resources in, its home region first."""
        return tuple(dict.fromkeys([self.region] + [c.region for c in self.db_clusters]))


@dataclass(frozen=True)
class Fleet:
    provider_account: str
    environment: str
    automation_role: str
    external_id: str | None
    state_store: str
    state_prefix: str
    customers: tuple
    notes: tuple = ()
    policy_dir: Path | None = None  # <key id>.json: the key policy as the customer saved it

    def state_path(self, key):
        """An object key under the state store's prefix."""
        return f"{self.state_prefix}/{key}" if self.state_prefix else key

    @property
    def state_root(self):
        """<bucket>[/<prefix>]: kops's configBase without the cluster name."""
        return f"{self.state_store}/{self.state_prefix}" if self.state_prefix else self.state_store

    def provisioning_user(self, customer):
        return f"mattermost-cloud-{self.environment}-provisioning-{customer.vpc_id}"

    @property
    def regions(self):
        found = [STATE_STORE_REGION] + [r for c in self.customers for r in c.regions]
        return tuple(dict.fromkeys(found))


ARN_KEY = re.compile(r"^arn:aws:kms:(?P<region>[a-z]{2}(-[a-z]+)+-\d):(?P<account>\d{12}):key/"
                     r"(?P<key_id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
ARN_ROLE = re.compile(r"^arn:aws:iam::(?P<account>\d{12}):role/(?P<name>[\w+=,.@-]{1,64})$")
ACCOUNT = re.compile(r"^\d{12}$")
VPC_ID = re.compile(r"^vpc-[0-9a-f]{8}([0-9a-f]{9})?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
DB_IDENTIFIER = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
KNOWN_HOST_VARS = {
    "byok_customer_account_id", "byok_region", "byok_vpc_id", "byok_kops_cluster_id", "byok_services", "byok_keys",
    "byok_s3_buckets", "byok_rds_clusters", "byok_rds_global_cluster", "demo_key_policy_omits", "demo_expected_outcome",
    "byok_key_source", "byok_provider_account_id", "byok_environment", "byok_assume_role_arn",
    "byok_assume_role_external_id", "byok_kops_state_store",
    # The Mattermost installations: their server identities and custom resources are seeded (seed_mattermost).
    "byok_mattermost_installations", "demo_mattermost_sse_s3", "demo_expected_compliant"}
KEY_SOURCES = ("customer", "external")
DB_KINDS = ("cluster", "instance")


def read_yaml(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle) or {}
    except yaml.YAMLError as e:
        raise InventoryError(f"{path}: not valid YAML: {e}") from e


def _vars_file(directory, name):
    """Variables of group or host `name`: <dir>/<name>.yml|.yaml, or every YAML file in <dir>/<name>/."""
    merged = {}
    for candidate in (directory / f"{name}.yml", directory / f"{name}.yaml"):
        if candidate.is_file():
            merged.update(read_yaml(candidate))
    folder = directory / name
    if folder.is_dir():
        for path in sorted(folder.glob("*.y*ml")):
            merged.update(read_yaml(path))
    return merged


def _walk_groups(name, group, parents, found):
    """Collect hosts with the chain of groups above them (outermost first) and their inline vars."""
    group = group or {}
    chain = parents + [name]
    for host, host_vars in (group.get("hosts") or {}).items():
        entry = found.setdefault(host, {"groups": [], "vars": {}})
        entry["groups"] += [g for g in chain if g not in entry["groups"]]
        entry["vars"].update(host_vars or {})
    for child, child_group in (group.get("children") or {}).items():
        _walk_groups(child, child_group, chain, found)


def inventory_hosts(inventory):
    hosts_file = next((p for p in (inventory / "hosts.yml", inventory / "hosts.yaml") if p.is_file()), None)
    if hosts_file is None:
        raise InventoryError(f"{inventory}: no hosts.yml (the seeder reads YAML inventories only)")
    found = {}
    for name, group in read_yaml(hosts_file).items():
        _walk_groups(name, group, [], found)
    if not found:
        raise InventoryError(f"{hosts_file}: names no hosts")
    return found


def host_variables(inventory, host, entry):
    """Variables as Ansible would merge them for a YAML inventory: group_vars outer to inner, then the host."""
    merged = {}
    for group in ["all"] + [g for g in entry["groups"] if g != "all"]:
        merged.update(_vars_file(inventory / "group_vars", group))
    merged.update(entry["vars"])
    merged.update(_vars_file(inventory / "host_vars", host))
    return merged


def _require(variables, host, name, pattern=None, what=None):
    value = variables.get(name)
    if value is None:
        raise InventoryError(f"{host}: {name} is not set")
    if not isinstance(value, str):
        raise InventoryError(f"{host}: {name} must be a string, got {type(value).__name__}")
    if "{{" in value:
        raise InventoryError(f"{host}: {name} is templated ({value!r}); the seeder needs a literal value")
    if pattern is not None and not pattern.match(value):
        raise InventoryError(f"{host}: {name}={value!r} is not {what}")
    return value


def _string_list(variables, host, name):
    value = variables.get(name) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InventoryError(f"{host}: {name} must be a list of strings, got {value!r}")
    return value


def parse_key_arn(host, where, value, regions):
    if not isinstance(value, str) or not ARN_KEY.match(value):
        raise InventoryError(f"{host}: {where}={value!r} is not a KMS key ARN with a key id "
                             "(arn:aws:kms:<region>:<account>:key/<uuid>); aliases and multi-Region keys can't be seeded")
    m = ARN_KEY.match(value)
    if m["region"] not in regions:
        raise InventoryError(f"{host}: {where} names region {m['region']!r}, which the local AWS doesn't have")
    return KeyArn(value, m["region"], m["account"], m["key_id"])


def parse_keys(host, variables, regions):
    """byok_keys → customer keys, one per distinct ARN, with the slots that name it (all/s3/rds/ebs/rds:<region>)."""
    raw = variables.get("byok_keys") or {}
    if not isinstance(raw, dict):
        raise InventoryError(f"{host}: byok_keys must be a mapping of {', '.join(KEY_SLOTS)}, rds_regions")
    named = []
    for slot, value in raw.items():
        if slot in KEY_SLOTS:
            named.append((slot, parse_key_arn(host, f"byok_keys.{slot}", value, regions)))
        elif slot == "rds_regions":
            if not isinstance(value, dict):
                raise InventoryError(f"{host}: byok_keys.rds_regions must map a region to a key ARN")
            for region, arn in value.items():
                key = parse_key_arn(host, f"byok_keys.rds_regions.{region}", arn, regions)
                if key.region != region:
                    raise InventoryError(f"{host}: byok_keys.rds_regions.{region} is a key in {key.region}")
                named.append((f"rds:{region}", key))
        else:
            raise InventoryError(f"{host}: byok_keys.{slot} is not a key slot the seeder knows "
                                 f"({', '.join(KEY_SLOTS)}, rds_regions)")
    by_id = {}
    for slot, key in named:
        known = by_id.setdefault(key.key_id, (key, []))
        if known[0] != key:
            raise InventoryError(f"{host}: key id {key.key_id} appears with two ARNs: {known[0].arn} and {key.arn}")
        known[1].append(slot)
    return tuple(CustomerKey(key, tuple(slots)) for key, slots in by_id.values())


def parse_db_clusters(host, variables, regions):
    raw = variables.get("byok_rds_clusters") or []
    if not isinstance(raw, list):
        raise InventoryError(f"{host}: byok_rds_clusters must be a list of {{identifier, region}}")
    clusters = []
    for index, item in enumerate(raw):
        where = f"byok_rds_clusters[{index}]"
        if not isinstance(item, dict) or set(item) - {"identifier", "region", "kind"}:
            raise InventoryError(f"{host}: {where} must have only identifier, region and kind (got {item!r})")
        identifier, region = item.get("identifier"), item.get("region", variables.get("byok_region"))
        kind = item.get("kind", "cluster")
        if kind not in DB_KINDS:
            raise InventoryError(f"{host}: {where}.kind={kind!r} is not one of {', '.join(DB_KINDS)}")
        if not isinstance(identifier, str) or not DB_IDENTIFIER.match(identifier):
            raise InventoryError(f"{host}: {where}.identifier={identifier!r} is not a valid DB cluster identifier")
        if region not in regions:
            raise InventoryError(f"{host}: {where}.region={region!r} is not a region of the local AWS")
        clusters.append(DbCluster(identifier, region, kind))
    return tuple(clusters)


def parse_customer(host, variables, regions, profiles):
    region = _require(variables, host, "byok_region")
    if region not in regions:
        raise InventoryError(f"{host}: byok_region={region!r} is not a region of the local AWS")
    services = _string_list(variables, host, "byok_services")
    unknown = [s for s in services if s not in SERVICES]
    if unknown:
        raise InventoryError(f"{host}: byok_services names {unknown}; the seeder knows {list(SERVICES)}")
    buckets = _string_list(variables, host, "byok_s3_buckets")
    for bucket in buckets:
        if not BUCKET.match(bucket):
            raise InventoryError(f"{host}: byok_s3_buckets entry {bucket!r} is not a valid bucket name")
    omits = _string_list(variables, host, "demo_key_policy_omits")
    if set(omits) - set(RUNBOOK_SIDS):
        raise InventoryError(f"{host}: demo_key_policy_omits={omits!r}; allowed entries are {sorted(RUNBOOK_SIDS)}")
    key_source = variables.get("byok_key_source", "customer")
    if key_source not in KEY_SOURCES:
        raise InventoryError(f"{host}: byok_key_source={key_source!r} is not one of {', '.join(KEY_SOURCES)}")
    db_clusters = parse_db_clusters(host, variables, regions)
    global_cluster = variables.get("byok_rds_global_cluster")
    if global_cluster is not None:
        check_global_cluster(host, global_cluster, region, db_clusters)
    customer = Customer(
        name=host,
        account_id=_require(variables, host, "byok_customer_account_id", ACCOUNT, "a 12-digit account id"),
        region=region,
        vpc_id=_require(variables, host, "byok_vpc_id", VPC_ID, "a VPC id (vpc-<8 or 17 hex digits>)"),
        cluster_id=_require(variables, host, "byok_kops_cluster_id", DNS_LABEL, "a DNS label"),
        services=tuple(services),
        keys=parse_keys(host, variables, regions),
        buckets=tuple(buckets),
        db_clusters=db_clusters,
        global_cluster=global_cluster,
        policy_omits=frozenset(omits),
        server_identities=parse_server_identities(host, variables),
        key_source=key_source,
        profile=profile_for(host, profiles),
        installations=parse_installations(host, variables),
        mattermost_sse_s3=bool(variables.get("demo_mattermost_sse_s3", False)))
    check_profile(customer)
    return customer


def parse_server_identities(host, variables):
    """The installations' server identities that are IAM users (the provisioner's aws-s3 installations)."""
    found = []
    for i, installation in enumerate(variables.get("byok_mattermost_installations") or []):
        arn = (installation or {}).get("s3_identity_arn") or ""
        m = re.match(r"^arn:aws:iam::(\d{12}):user/([\w+=,.@-]+)$", arn)
        if not m:
            continue  # a role, or none: nothing the seeder makes
        secret = ((installation.get("canary_credentials") or {}).get("secret") or None)
        if secret is not None and secret.startswith("arn:"):
            raise InventoryError(f"{host}: byok_mattermost_installations[{i}].canary_credentials.secret: the seeder names "
                                 "secrets by name (it can't choose an ARN's random suffix)")
        found.append((m.group(2), secret, tuple(installation.get("buckets") or ())))
    return tuple(found)


def parse_installations(host, variables):
    found = []
    for i, item in enumerate(variables.get("byok_mattermost_installations") or []):
        ident, arn = (item or {}).get("id"), (item or {}).get("s3_identity_arn", "")
        if not (isinstance(ident, str) and DNS_LABEL.match(ident) and re.match(r"^arn:aws:iam::\d{12}:user/[\w+=,.@-]+$", arn or "")):
            raise InventoryError(f"{host}: byok_mattermost_installations[{i}] needs an id and an IAM user s3_identity_arn")
        found.append((ident, arn.rsplit("/", 1)[1], tuple(item.get("buckets") or ())))
    return tuple(found)


def check_global_cluster(host, name, home_region, db_clusters):
    if not isinstance(name, str) or not DB_IDENTIFIER.match(name):
        raise InventoryError(f"{host}: byok_rds_global_cluster={name!r} is not a valid identifier")
    if any(c.kind != "cluster" for c in db_clusters):
        raise InventoryError(f"{host}: byok_rds_global_cluster: every byok_rds_clusters entry must be an Aurora cluster "
                             "(kind: cluster)")
    regions = [c.region for c in db_clusters]
    if len(set(regions)) != len(regions) or len(regions) < 2:
        raise InventoryError(f"{host}: byok_rds_global_cluster needs byok_rds_clusters in two or more regions, "
                             "one cluster per region")
    if home_region not in regions:
        raise InventoryError(f"{host}: byok_rds_global_cluster: no cluster in byok_region {home_region} "
                             "to be the primary")


def profile_for(host, profiles):
    profile = dict(profiles["defaults"])
    profile.update((profiles.get("customers") or {}).get(host) or {})
    if profile["kops_version"] not in profiles["kops_releases"]:
        raise InventoryError(f"fixtures/demo-profiles.yml: {host}: kops_version {profile['kops_version']} "
                             "has no entry in kops_releases")
    return profile


def check_profile(customer):
    """The profile may only refine what the inventory declares."""
    stray = set(customer.profile["versioned_buckets"]) - set(customer.buckets)
    if stray:
        raise InventoryError(f"fixtures/demo-profiles.yml: {customer.name}: versioned_buckets {sorted(stray)} "
                             "are not in the customer's byok_s3_buckets")
    if customer.profile["extra_volume_zone"] not in (None, "a", "b"):
        raise InventoryError(f"fixtures/demo-profiles.yml: {customer.name}: extra_volume_zone must be a, b or null")


def parse_group_settings(host, variables):
    provider = _require(variables, host, "byok_provider_account_id", ACCOUNT, "a 12-digit account id")
    environment = _require(variables, host, "byok_environment", DNS_LABEL, "a DNS label")
    role_arn = _require(variables, host, "byok_assume_role_arn", ARN_ROLE, "an IAM role ARN")
    store = _require(variables, host, "byok_kops_state_store")
    bucket, prefix = (store[len("s3://"):] + "/").split("/", 1)
    if not store.startswith("s3://") or not BUCKET.match(bucket):
        raise InventoryError(f"{host}: byok_kops_state_store={store!r} must be s3://<bucket>[/<prefix>]")
    if ARN_ROLE.match(role_arn)["account"] != provider:
        raise InventoryError(f"{host}: byok_assume_role_arn is not in byok_provider_account_id {provider}")
    external_id = variables.get("byok_assume_role_external_id") or None
    return provider, environment, role_arn, external_id, bucket, prefix.strip("/")


def check_fleet_unique(customers):
    for attribute, what in (("cluster_id", "byok_kops_cluster_id"), ("vpc_id", "byok_vpc_id")):
        seen = {}
        for c in customers:
            other = seen.setdefault(getattr(c, attribute), c.name)
            if other != c.name:
                raise InventoryError(f"{c.name} and {other} have the same {what}")
    seen = {}
    for c in customers:
        for name in list(c.buckets) + [d.identifier + "@" + d.region for d in c.db_clusters]:
            other = seen.setdefault(name, c.name)
            if other != c.name:
                raise InventoryError(f"{c.name} and {other} both name {name.split('@')[0]}")


def load_fleet(inventory, regions, profiles, limit=None):
    inventory = Path(inventory)
    if not inventory.is_dir():
        raise InventoryError(f"{inventory}: not an inventory directory")
    hosts = inventory_hosts(inventory)
    if limit:
        unknown = sorted(set(limit) - set(hosts))
        if unknown:
            raise InventoryError(f"--limit: {', '.join(unknown)} not in the inventory")
        hosts = {h: e for h, e in hosts.items() if h in limit}
    customers, settings, notes = [], set(), []
    for host, entry in hosts.items():
        variables = host_variables(inventory, host, entry)
        settings.add(parse_group_settings(host, variables))
        customers.append(parse_customer(host, variables, regions, profiles))
        ignored = sorted(k for k in variables if k.startswith(("byok_", "demo_")) and k not in KNOWN_HOST_VARS)
        if ignored:
            notes.append(f"{host}: not used by the seeder: {', '.join(ignored)}")
    if len(settings) != 1:
        raise InventoryError("hosts disagree on byok_provider_account_id / byok_environment / byok_assume_role_arn(_external_id) / "
                             "byok_kops_state_store; the seeder seeds one provider environment")
    check_fleet_unique(customers)
    provider, environment, role_arn, external_id, bucket, prefix = settings.pop()
    return Fleet(provider, environment, role_arn, external_id, bucket, prefix, tuple(customers), tuple(notes),
                 policy_dir=inventory / "key-policies")


def load_profiles(path=None):
    return read_yaml(path or FIXTURES / "demo-profiles.yml")


# --------------------------------------------------------------------------------------------------------------
# Clients and bookkeeping
# --------------------------------------------------------------------------------------------------------------

class Clients:
    """The harness's clients (acting as an account via sts.assume_role), made once per service/account/region."""

    def __init__(self, local_aws):
        self.local_aws = local_aws
        self._clients = {}
        self._lock = threading.Lock()

    def __call__(self, service, account, region="us-east-1"):
        with self._lock:
            key = (service, account, region)
            if key not in self._clients:
                self._clients[key] = self.local_aws.client(service, account=account, region=region, max_pool_connections=16)
            return self._clients[key]


@dataclass
class Tally:
    """Counts of resources per owner and kind: how many this run created, how many were already there."""
    created: dict = field(default_factory=dict)
    present: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, owner, kind, created, count=1):
        with self.lock:
            book = self.created if created else self.present
            book[(owner, kind)] = book.get((owner, kind), 0) + count


def error_code(error):
    return error.response.get("Error", {}).get("Code", "")


def exists(call, *missing_codes, **kwargs):
    """Run a describe call; None when it reports one of missing_codes (the resource is absent)."""
    try:
        return call(**kwargs)
    except ClientError as e:
        if error_code(e) in missing_codes:
            return None
        raise


def tag_list(tags, key="Key", value="Value"):
    return [{key: k, value: v} for k, v in tags.items()]


# --------------------------------------------------------------------------------------------------------------
# What already exists
# --------------------------------------------------------------------------------------------------------------

def _names(pages, items, name_key):
    return {item[name_key] for page in pages for item in page.get(items, [])}


def _tag(resource, key):
    return next((t["Value"] for t in resource.get("Tags", []) if t["Key"] == key), None)


@dataclass
class RegionState:
    vpcs: dict
    security_groups: dict
    launch_templates: set
    auto_scaling_groups: set
    volumes: set
    db_clusters: set
    db_instances: set
    parameter_groups: dict
    db_subnet_groups: set
    global_clusters: set


def read_region_state(aws, account, region):
    """One listing per resource type instead of a describe per resource: most of a fresh seed is creates."""
    ec2, rds = aws("ec2", account, region), aws("rds", account, region)
    autoscaling = aws("autoscaling", account, region)
    vpcs = {_tag(v, "Name"): v for v in ec2.describe_vpcs(Filters=[{"Name": "tag-key", "Values": ["byok:customer"]}])["Vpcs"]}
    groups = ec2.get_paginator("describe_security_groups").paginate(
        Filters=[{"Name": "vpc-id", "Values": [v["VpcId"] for v in vpcs.values()] or ["none"]}])
    return RegionState(
        vpcs=vpcs,
        security_groups={(g["VpcId"], g["GroupName"]): g["GroupId"] for page in groups for g in page["SecurityGroups"]},
        launch_templates=_names(ec2.get_paginator("describe_launch_templates").paginate(),
                                "LaunchTemplates", "LaunchTemplateName"),
        auto_scaling_groups=_names(autoscaling.get_paginator("describe_auto_scaling_groups").paginate(),
                                   "AutoScalingGroups", "AutoScalingGroupName"),
        volumes={_tag(v, "Name") for page in ec2.get_paginator("describe_volumes").paginate(
            Filters=[{"Name": "tag-key", "Values": ["KubernetesCluster"]}]) for v in page["Volumes"]},
        db_clusters=_names(rds.get_paginator("describe_db_clusters").paginate(), "DBClusters", "DBClusterIdentifier"),
        db_instances=_names(rds.get_paginator("describe_db_instances").paginate(), "DBInstances", "DBInstanceIdentifier"),
        parameter_groups={
            "cluster": _names(rds.get_paginator("describe_db_cluster_parameter_groups").paginate(),
                              "DBClusterParameterGroups", "DBClusterParameterGroupName"),
            "instance": _names(rds.get_paginator("describe_db_parameter_groups").paginate(),
                               "DBParameterGroups", "DBParameterGroupName")},
        db_subnet_groups=_names(rds.get_paginator("describe_db_subnet_groups").paginate(),
                                "DBSubnetGroups", "DBSubnetGroupName"),
        global_clusters=_names([rds.describe_global_clusters()], "GlobalClusters", "GlobalClusterIdentifier"))


# --------------------------------------------------------------------------------------------------------------
# Seeding
# --------------------------------------------------------------------------------------------------------------

class Seeder:
    def __init__(self, fleet, clients, profiles):
        self.fleet = fleet
        self.aws = clients
        self.profiles = profiles
        self.tally = Tally()
        self.provider_keys = {}
        self.images = {}
        self.state = {}
        self.roles, self.users = set(), set()

    @property
    def provider(self):
        return self.fleet.provider_account

    def seed(self, workers):
        self.seed_provider()
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(self.seed_customer, c): c for c in self.fleet.customers}
            for future in concurrent.futures.as_completed(futures):
                try:
                    future.result()
                except (ClientError, BotoCoreError, SeedError) as e:
                    raise SeedError(f"{futures[future].name}: {e}") from e

    # -- provider account ----------------------------------------------------------------------------------------

    def seed_provider(self):
        iam = self.aws("iam", self.provider)
        self.roles = _names(iam.get_paginator("list_roles").paginate(), "Roles", "RoleName")
        self.users = _names(iam.get_paginator("list_users").paginate(), "Users", "UserName")
        for region in self.fleet.regions:
            self.provider_keys[region] = self.ensure_provider_key(region)
            self.state[region] = read_region_state(self.aws, self.provider, region)
        self.ensure_automation_role()
        self.ensure_autoscaling_service_role()
        self.ensure_bucket("provider", self.fleet.state_store, STATE_STORE_REGION, versioned=True,
                           tags={"Environment": self.fleet.environment, "Purpose": "kops-state-store"})

    def ensure_provider_key(self, region):
        """The provider-managed key of a region; also the account's EBS default, so unset keys land on it."""
        kms = self.aws("kms", self.provider, region)
        alias = PROVIDER_KEY_ALIAS.format(env=self.fleet.environment)
        found = exists(kms.describe_key, "NotFoundException", KeyId=alias)
        if found:
            self.tally.add("provider", "kms keys", False)
            return found["KeyMetadata"]["Arn"]
        arn = kms.create_key(
            Description=f"Mattermost Cloud {self.fleet.environment}: provider-managed key for {region}", **SYMMETRIC_KEY,
            Tags=tag_list({"Environment": self.fleet.environment, "ManagedBy": "mattermost-cloud"},
                          "TagKey", "TagValue"))["KeyMetadata"]["Arn"]
        kms.create_alias(AliasName=alias, TargetKeyId=arn)
        ec2 = self.aws("ec2", self.provider, region)
        ec2.enable_ebs_encryption_by_default()
        ec2.modify_ebs_default_kms_key_id(KmsKeyId=arn)
        self.tally.add("provider", "kms keys", True)
        return arn

    def ensure_role(self, owner, name, trust, tags=None):
        if name in self.roles:
            self.tally.add(owner, "iam", False)
            return False
        self.aws("iam", self.provider).create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                                                   Tags=tag_list(tags or {}))
        self.tally.add(owner, "iam", True)
        return True

    def ensure_automation_role(self):
        m = ARN_ROLE.match(self.fleet.automation_role)
        statement = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{self.provider}:root"}, "Action": "sts:AssumeRole"}
        if self.fleet.external_id:
            statement["Condition"] = {"StringEquals": {"sts:ExternalId": self.fleet.external_id}}
        trust = {"Version": "2012-10-17", "Statement": [statement]}
        if self.ensure_role("provider", m["name"], trust, {"Environment": self.fleet.environment}):
            policy = {"Version": "2012-10-17", "Statement": [{
                "Sid": "ByokAutomation", "Effect": "Allow", "Resource": "*",
                "Action": ["kms:*", "s3:*", "rds:*", "ec2:*", "autoscaling:*", "iam:Get*", "iam:List*",
                           "iam:PassRole", "sts:GetCallerIdentity"]}]}
            self.aws("iam", self.provider).put_role_policy(RoleName=m["name"], PolicyName="byok-automation",
                                                           PolicyDocument=json.dumps(policy))

    def ensure_autoscaling_service_role(self):
        """Every account that uses Auto Scaling has this role; BYOK grants the customer key to it."""
        if "AWSServiceRoleForAutoScaling" in self.roles:
            self.tally.add("provider", "iam", False)
            return
        self.aws("iam", self.provider).create_service_linked_role(AWSServiceName="autoscaling.amazonaws.com")
        self.tally.add("provider", "iam", True)

    # -- S3 ------------------------------------------------------------------------------------------------------

    def ensure_bucket(self, owner, bucket, region, versioned=False, tags=None):
        """The bucket, SSE-KMS with the region's provider key; True if it was created (so it is empty)."""
        s3 = self.aws("s3", self.provider, region)
        if exists(s3.head_bucket, "404", "NoSuchBucket", Bucket=bucket) is not None:
            self.tally.add(owner, "buckets", False)
            return False
        params = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **params)
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                   "KMSMasterKeyID": self.provider_keys[region]},
            "BucketKeyEnabled": True}]})
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
        if versioned:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        if tags:
            s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_list(tags)})
        self.tally.add(owner, "buckets", True)
        return True

    def existing_keys(self, s3, bucket, prefix=""):
        """Keys with any version (a delete marker counts), so a re-run never rewrites history."""
        keys = set()
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
            keys.update(v["Key"] for v in page.get("Versions", []) + page.get("DeleteMarkers", []))
        return keys

    def put_object(self, s3, bucket, region, obj):
        params = {"Bucket": bucket, "Key": obj.key, "ContentType": obj.content_type,
                  "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.provider_keys[region], **obj.headers}
        if obj.metadata:
            params["Metadata"] = obj.metadata
        if obj.tags:
            params["Tagging"] = urllib.parse.urlencode(obj.tags)
        if not obj.multipart:
            return s3.put_object(Body=obj.body, **params)
        upload = s3.create_multipart_upload(**params)["UploadId"]
        parts = []
        for number, offset in enumerate(range(0, len(obj.body), PART_SIZE), start=1):
            etag = s3.upload_part(Bucket=bucket, Key=obj.key, UploadId=upload, PartNumber=number,
                                  Body=obj.body[offset:offset + PART_SIZE])["ETag"]
            parts.append({"PartNumber": number, "ETag": etag})
        return s3.complete_multipart_upload(Bucket=bucket, Key=obj.key, UploadId=upload,
                                            MultipartUpload={"Parts": parts})

    def seed_objects(self, customer, bucket):
        region = customer.region
        versioned = bucket in customer.profile["versioned_buckets"]
        s3 = self.aws("s3", self.provider, region)
        created = self.ensure_bucket(customer.name, bucket, region, versioned,
                                     {"Customer": customer.name, "Environment": self.fleet.environment})
        present = set() if created else self.existing_keys(s3, bucket)
        for obj in bucket_objects(bucket):
            if obj.key in present:
                self.tally.add(customer.name, "objects", False)
                continue
            if versioned and obj.history == "overwrite":
                self.put_object(s3, bucket, region, obj.older_version())
            self.put_object(s3, bucket, region, obj)
            if versioned and obj.history == "delete":
                s3.delete_object(Bucket=bucket, Key=obj.key)
            self.tally.add(customer.name, "objects", True)

    def seed_mattermost(self, customer):
        """Per installation: the server's S3 identity as the provisioner makes it (an IAM user with S3 actions only),
        its Mattermost custom resource in the cluster's Kubernetes double with the server's SSE setting, and one file
        the server double uploaded as the installation, with the headers of that setting."""
        endpoint = self.aws.local_aws.endpoint_url
        setting = "true" if customer.mattermost_sse_s3 else "false"
        for ident, user, buckets in customer.installations:
            kube_double.put_resource(endpoint, customer.cluster_id, kube_double.mattermost_resource(
                ident, {"MM_FILESETTINGS_AMAZONS3SSE": setting, "MM_FILESETTINGS_DRIVERNAME": "amazons3"}))
            if user in self.users:
                self.tally.add(customer.name, "iam", False)
                continue
            iam = self.aws("iam", self.provider)
            # The identity itself (S3 actions only) is made by ensure_server_identities; here its server uploads a file.
            if user not in {name for name, _secret, _buckets in customer.server_identities}:
                iam.create_user(UserName=user, Tags=tag_list({"Environment": self.fleet.environment, "Installation": ident}))
                resources = [f"arn:aws:s3:::{b}" for b in buckets] + [f"arn:aws:s3:::{b}/*" for b in buckets]
                iam.put_user_policy(UserName=user, PolicyName="mattermost-filestore", PolicyDocument=json.dumps({
                    "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": resources, "Action": [
                        "s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:PutObjectAcl", "s3:DeleteObject"]}]}))
                self.tally.add(customer.name, "iam", True)
            access = iam.create_access_key(UserName=user)["AccessKey"]
            credentials = {"aws_access_key_id": access["AccessKeyId"], "aws_secret_access_key": access["SecretAccessKey"]}
            for bucket in buckets:
                server = MattermostServer(endpoint, bucket, credentials, customer.mattermost_sse_s3, customer.region)
                server.upload(f"{ident}/server-uploads/welcome.txt", f"uploaded by the server of {ident}".encode())
                self.tally.add(customer.name, "objects", True)

    # -- customer: IAM and keys ----------------------------------------------------------------------------------

    def seed_customer(self, customer):
        self.ensure_customer_iam(customer)
        self.ensure_server_identities(customer)
        self.ensure_customer_keys(customer)
        networks = {region: self.ensure_network(customer, region) for region in customer.regions}
        for bucket in customer.buckets:
            self.seed_objects(customer, bucket)
        self.seed_mattermost(customer)
        self.seed_databases(customer, networks)
        self.seed_kops(customer, networks[customer.region])

    def ensure_customer_iam(self, customer):
        """The runbook's principals: the provisioning user and the kops node role, plus kops's control-plane role.
        They exist before the customer's key policy names them, as AWS requires."""
        user = self.fleet.provisioning_user(customer)
        if user in self.users:
            self.tally.add(customer.name, "iam", False)
        else:
            self.aws("iam", self.provider).create_user(
                UserName=user, Tags=tag_list({"Environment": self.fleet.environment, "VpcID": customer.vpc_id}))
            self.tally.add(customer.name, "iam", True)
        for role in ("masters", "nodes"):
            self.ensure_kops_role(customer, role, self.release(customer))

    def ensure_server_identities(self, customer):
        """Each installation's own S3 identity as the provisioner makes it: an IAM user whose policy allows S3 actions on
        its bucket only (no KMS action), its access key stored in Secrets Manager as {"ID": ..., "Secret": ...}."""
        iam = self.aws("iam", self.provider)
        for user, secret, buckets in customer.server_identities:
            if user in self.users:
                self.tally.add(customer.name, "iam", False)
                continue
            iam.create_user(UserName=user, Tags=tag_list({"Customer": customer.name, "Environment": self.fleet.environment}))
            # The demo's buckets start on the provider's own KMS key (where the provisioner leaves SSE-S3): a server
            # writing them before BYOK must be able to use that key, or it could not have worked at all.
            iam.put_user_policy(UserName=user, PolicyName=f"{user}-filestore", PolicyDocument=json.dumps({
                "Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{b}" for b in buckets]},
                    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:PutObjectAcl", "s3:DeleteObject"],
                     "Resource": [f"arn:aws:s3:::{b}/*" for b in buckets]},
                    {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                     "Resource": sorted(set(self.provider_keys.values()))}]}))
            if secret:
                key = iam.create_access_key(UserName=user)["AccessKey"]
                self.aws("secretsmanager", self.provider, customer.region).create_secret(
                    Name=secret, Description=f"IAM access key for user {user}",
                    SecretString=json.dumps({"ID": key["AccessKeyId"], "Secret": key["SecretAccessKey"]}))
            self.tally.add(customer.name, "iam", True)

    def ensure_kops_role(self, customer, role, release):
        """kops's IAM role, inline policy and instance profile, all named <role>.<cluster>."""
        iam = self.aws("iam", self.provider)
        name = f"{role}.{customer.cluster_name}"
        tags = cluster_tags(customer, name)
        if not self.ensure_role(customer.name, name, EC2_TRUST, tags):
            return
        iam.put_role_policy(RoleName=name, PolicyName=name, PolicyDocument=json.dumps(kops_role_policy(role, release)))
        iam.create_instance_profile(InstanceProfileName=name, Tags=tag_list(tags))
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)

    def ensure_customer_keys(self, customer):
        aliases = customer_key_aliases(customer)
        for key in customer.keys:
            kms = self.aws("kms", key.arn.account, key.arn.region)
            if exists(kms.describe_key, "NotFoundException", KeyId=key.arn.key_id):
                self.tally.add(customer.name, "kms keys", False)
                if any(a["AliasName"] == aliases[key] for a in kms.list_aliases(KeyId=key.arn.key_id)["Aliases"]):
                    continue
            else:
                self.create_customer_key(kms, customer, key)
                self.tally.add(customer.name, "kms keys", True)
            kms.create_alias(AliasName=aliases[key], TargetKeyId=key.arn.key_id)

    def create_customer_key(self, kms, customer, key):
        """A customer key: in the customer's account with the runbook's policy, or (byok_key_source: external) a
        provider key awaiting the customer's key material, with AWS's default policy."""
        tags = [{"TagKey": "_custom_id_", "TagValue": key.arn.key_id}, {"TagKey": "Purpose", "TagValue": "mattermost-byok"}]
        params = {"Description": f"{customer.name}: customer-managed key for Mattermost Cloud ({describe_slots(key.slots)})",
                  "Tags": tags, **SYMMETRIC_KEY}
        if customer.key_source == "external":
            params.update(Origin="EXTERNAL", Description=f"{customer.name}: imported key material for Mattermost Cloud "
                                                         f"({describe_slots(key.slots)})")
            tags.append({"TagKey": "Customer", "TagValue": customer.name})
        else:
            saved = self.fleet.policy_dir / f"{key.arn.key_id}.json" if self.fleet.policy_dir else None
            params["Policy"] = saved.read_text() if saved and saved.is_file() else json.dumps(customer_key_policy(self.fleet, customer, key))
        created = kms.create_key(**params)["KeyMetadata"]
        if created["Arn"] != key.arn.arn:
            kms.schedule_key_deletion(KeyId=created["KeyId"], PendingWindowInDays=7)
            raise SeedError(f"the local AWS created {created['Arn']} instead of {key.arn.arn}: it does not honour "
                            "the _custom_id_ key tag; start it with scripts/local-aws, which adds that extension")

    # -- customer: network ---------------------------------------------------------------------------------------

    def ensure_network(self, customer, region):
        """A VPC with private and utility subnets in zones a and b. Moto picks VPC ids, so the inventory's VPC id
        is recorded as the tag byok:vpc-id on the customer's home-region VPC."""
        ec2 = self.aws("ec2", self.provider, region)
        home = region == customer.region
        name = f"mattermost-cloud-{self.fleet.environment}-{customer.name}" + ("" if home else f"-{region}")
        found = self.state[region].vpcs.get(name)
        if found:
            self.tally.add(customer.name, "vpcs", False)
            return self.read_network(ec2, found)
        cidr = network_cidr(customer, region)
        tags = {"Name": name, "byok:customer": customer.name}
        if home:
            tags["byok:vpc-id"] = customer.vpc_id
        vpc = ec2.create_vpc(CidrBlock=cidr, TagSpecifications=[{"ResourceType": "vpc", "Tags": tag_list(tags)}])["Vpc"]
        subnets = {}
        for subnet, (subnet_cidr, zone, kind) in subnet_layout(cidr, region).items():
            subnet_tags = {"Name": f"{subnet}.{customer.cluster_name}", "SubnetType": kind,
                           f"kubernetes.io/cluster/{customer.cluster_name}": "shared"}
            created = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock=subnet_cidr, AvailabilityZone=zone,
                                        TagSpecifications=[{"ResourceType": "subnet", "Tags": tag_list(subnet_tags)}])
            subnets[subnet] = {"id": created["Subnet"]["SubnetId"], "cidr": subnet_cidr, "zone": zone}
        self.tally.add(customer.name, "vpcs", True)
        return {"vpc_id": vpc["VpcId"], "cidr": cidr, "subnets": subnets}

    def read_network(self, ec2, vpc):
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
        named = {(_tag(s, "Name") or "").split(".")[0]: {"id": s["SubnetId"], "cidr": s["CidrBlock"], "zone": s["AvailabilityZone"]}
                 for s in subnets}
        return {"vpc_id": vpc["VpcId"], "cidr": vpc["CidrBlock"], "subnets": named}

    def ensure_security_group(self, region, network, name, description, tags, port=None):
        known = self.state[region].security_groups.get((network["vpc_id"], name))
        if known:
            return known
        ec2 = self.aws("ec2", self.provider, region)
        group = ec2.create_security_group(
            GroupName=name, Description=description, VpcId=network["vpc_id"],
            TagSpecifications=[{"ResourceType": "security-group", "Tags": tag_list({"Name": name, **tags})}])
        if port:
            ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[{
                "IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": network["cidr"]}]}])
        return group["GroupId"]

    # -- customer: RDS -------------------------------------------------------------------------------------------

    def seed_databases(self, customer, networks):
        if customer.global_cluster:
            self.ensure_global_cluster(customer)
        # The primary first: a global database's secondaries join after it.
        for cluster in sorted(customer.db_clusters, key=lambda c: c.region != customer.region):
            self.ensure_database(customer, cluster, networks[cluster.region])

    def ensure_global_cluster(self, customer):
        if customer.global_cluster in self.state[customer.region].global_clusters:
            self.tally.add(customer.name, "db global clusters", False)
            return
        # Created empty, then the primary joins: moto marks a writer only for clusters created into the global.
        self.aws("rds", self.provider, customer.region).create_global_cluster(
            GlobalClusterIdentifier=customer.global_cluster, Engine="aurora-postgresql",
            EngineVersion=customer.profile["aurora_engine_version"], StorageEncrypted=True)
        self.tally.add(customer.name, "db global clusters", True)

    def ensure_parameter_group(self, customer, region, kind):
        """The customer's cluster parameter group (Aurora) or DB parameter group (instance), with
        rds.logical_replication=1 where the profile asks for it (an RDS Blue/Green prerequisite)."""
        profile = customer.profile
        family = profile["aurora_parameter_group_family" if kind == "cluster" else "postgres_parameter_group_family"]
        name = f"mattermost-{customer.name}-{family}"
        if name in self.state[region].parameter_groups[kind]:
            return name
        rds = self.aws("rds", self.provider, region)
        logical = [{"ParameterName": "rds.logical_replication", "ParameterValue": "1", "ApplyMethod": "pending-reboot"}]
        if kind == "cluster":
            rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=name, DBParameterGroupFamily=family,
                                                  Description=f"Mattermost {customer.name} Aurora PostgreSQL cluster parameters")
            if profile["logical_replication"]:
                rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=name, Parameters=logical)
        else:
            rds.create_db_parameter_group(DBParameterGroupName=name, DBParameterGroupFamily=family,
                                          Description=f"Mattermost {customer.name} PostgreSQL parameters")
            if profile["logical_replication"]:
                rds.modify_db_parameter_group(DBParameterGroupName=name, Parameters=logical)
        return name

    def ensure_db_subnet_group(self, customer, region, network):
        name = f"mattermost-{customer.name}-db"
        if name not in self.state[region].db_subnet_groups:
            private = [s["id"] for n, s in sorted(network["subnets"].items()) if not n.startswith("utility-")]
            self.aws("rds", self.provider, region).create_db_subnet_group(
                DBSubnetGroupName=name, SubnetIds=private,
                DBSubnetGroupDescription=f"Mattermost {customer.name} database subnets")
        return name

    def ensure_database(self, customer, db, network):
        if db.kind == "instance":
            self.ensure_db_instance(customer, db, network)
        else:
            self.ensure_db_cluster(customer, db, network)

    def ensure_db_instance(self, customer, db, network):
        """A standalone RDS for PostgreSQL instance (byok_rds_clusters kind: instance)."""
        if db.identifier in self.state[db.region].db_instances:
            self.tally.add(customer.name, "db instances", False)
            return
        self.aws("rds", self.provider, db.region).create_db_instance(
            DBInstanceIdentifier=db.identifier, Engine="postgres", EngineVersion=customer.profile["postgres_engine_version"],
            DBInstanceClass="db.m6g.large", AllocatedStorage=100, StorageType="gp3", DBName="mattermost",
            DBParameterGroupName=self.ensure_parameter_group(customer, db.region, "instance"),
            Tags=tag_list({"Customer": customer.name, "Environment": self.fleet.environment}),
            **self.database_placement(customer, db.region, network))
        self.tally.add(customer.name, "db instances", True)

    def ensure_db_cluster(self, customer, cluster, network):
        rds = self.aws("rds", self.provider, cluster.region)
        state = self.state[cluster.region]
        tags = tag_list({"Customer": customer.name, "Environment": self.fleet.environment})
        if cluster.identifier in state.db_clusters:
            self.tally.add(customer.name, "db clusters", False)
        else:
            rds.create_db_cluster(**self.db_cluster_parameters(customer, cluster, network), Tags=tags)
            self.tally.add(customer.name, "db clusters", True)
        # A writer and a reader; the writer is promoted first on failover.
        for number in (1, 2):
            identifier = f"{cluster.identifier}-{number}"
            if identifier in state.db_instances:
                self.tally.add(customer.name, "db instances", False)
                continue
            rds.create_db_instance(DBInstanceIdentifier=identifier, DBClusterIdentifier=cluster.identifier,
                                   Engine="aurora-postgresql", DBInstanceClass="db.r6g.large", Tags=tags,
                                   PromotionTier=number)
            self.tally.add(customer.name, "db instances", True)

    def database_placement(self, customer, region, network, with_credentials=True):
        """What clusters and instances share: network, encryption with the provider key, backups, windows."""
        profile = customer.profile
        security_group = self.ensure_security_group(
            region, network, f"mattermost-{customer.name}-db", f"Mattermost {customer.name} database",
            {"Customer": customer.name}, port=5432)
        params = {
            "Port": 5432, "StorageEncrypted": True, "KmsKeyId": self.provider_keys[region],
            "DBSubnetGroupName": self.ensure_db_subnet_group(customer, region, network),
            "VpcSecurityGroupIds": [security_group],
            "BackupRetentionPeriod": profile["backup_retention_days"],
            "PreferredBackupWindow": profile["backup_window"],
            "PreferredMaintenanceWindow": profile["maintenance_window"],
            "CopyTagsToSnapshot": True}
        if with_credentials:
            # A throw-away password: the demo database holds no data and nothing reads it back.
            params.update(MasterUsername="mmuser", MasterUserPassword=secrets.token_urlsafe(24))
        return params

    def db_cluster_parameters(self, customer, cluster, network):
        # A global database's secondary clusters take their credentials from the primary.
        primary = not customer.global_cluster or cluster.region == customer.region
        params = {
            "DBClusterIdentifier": cluster.identifier, "Engine": "aurora-postgresql",
            "EngineVersion": customer.profile["aurora_engine_version"],
            "DBClusterParameterGroupName": self.ensure_parameter_group(customer, cluster.region, "cluster"),
            **self.database_placement(customer, cluster.region, network, with_credentials=primary)}
        if customer.global_cluster:
            params["GlobalClusterIdentifier"] = customer.global_cluster
        if primary:
            params["DatabaseName"] = "mattermost"
        return params

    # -- customer: kops ------------------------------------------------------------------------------------------

    def release(self, customer):
        return self.profiles["kops_releases"][customer.profile["kops_version"]]

    def image(self, region, release):
        """The newest image matching the release's name pattern in the local AWS."""
        key = (region, release["image_name"])
        if key not in self.images:
            ec2 = self.aws("ec2", self.provider, region)
            images = ec2.describe_images(Owners=[release["image_owner"]],
                                         Filters=[{"Name": "name", "Values": [release["image_name"]]}])["Images"]
            if not images:
                raise SeedError(f"no image named {release['image_name']} in {region}")
            self.images[key] = max(images, key=lambda i: i["Name"])
        return self.images[key]

    def seed_kops(self, customer, network):
        release = self.release(customer)
        groups = instance_groups(customer, release)
        self.write_state_store(customer, network, groups, release)
        security_groups = {role: self.ensure_security_group(
            customer.region, network, f"{role}.{customer.cluster_name}", f"Security group for {role}",
            cluster_tags(customer, f"{role}.{customer.cluster_name}")) for role in ("masters", "nodes")}
        for group in groups:
            self.ensure_launch_template(customer, group, security_groups, release)
        launched = [group for group in groups if self.ensure_auto_scaling_group(customer, group, network)]
        instances = self.group_instances(customer, groups)
        for group in groups:
            self.tally.add(customer.name, "instances", group in launched, len(instances.get(group["name"], [])))
        self.ensure_etcd_volumes(customer, next(iter(instances[groups[0]["name"]]), None))

    def write_state_store(self, customer, network, groups, release):
        s3 = self.aws("s3", self.provider, STATE_STORE_REGION)
        documents = kops_documents(self.fleet, customer, network, groups, release,
                                   self.image(customer.region, release))
        present = self.existing_keys(s3, self.fleet.state_store, prefix=self.fleet.state_path(f"{customer.cluster_name}/"))
        for key, body in documents.items():
            if key in present:
                self.tally.add(customer.name, "kops documents", False)
                continue
            content_type = "text/plain" if key.endswith(".txt") else "application/yaml"
            s3.put_object(Bucket=self.fleet.state_store, Key=key, Body=body.encode(), ContentType=content_type,
                          ServerSideEncryption="aws:kms", SSEKMSKeyId=self.provider_keys[STATE_STORE_REGION])
            self.tally.add(customer.name, "kops documents", True)

    def ensure_launch_template(self, customer, group, security_groups, release):
        name = f"{group['name']}.{customer.cluster_name}"
        if name in self.state[customer.region].launch_templates:
            self.tally.add(customer.name, "launch templates", False)
            return
        tags = tag_list(group_tags(customer, group))
        data = {
            "ImageId": self.image(customer.region, release)["ImageId"],
            "InstanceType": group["machine_type"],
            "IamInstanceProfile": {"Name": f"{group['iam_role']}.{customer.cluster_name}"},
            "SecurityGroupIds": [security_groups[group["iam_role"]]],
            "BlockDeviceMappings": block_device_mappings(group, self.provider_keys[customer.region]),
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled",
                                "HttpPutResponseHopLimit": 3 if group["role"] == "Master" else 1},
            "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}, {"ResourceType": "volume", "Tags": tags}],
            "UserData": USER_DATA,
        }
        self.aws("ec2", self.provider, customer.region).create_launch_template(
            LaunchTemplateName=name, LaunchTemplateData=data,
            TagSpecifications=[{"ResourceType": "launch-template", "Tags": tags}])
        self.tally.add(customer.name, "launch templates", True)

    def ensure_auto_scaling_group(self, customer, group, network):
        """The group's Auto Scaling group, which launches its instances at once; True if created now.
        The local AWS gives them exactly the template's volumes, with the template's volume tags, as AWS does."""
        name = f"{group['name']}.{customer.cluster_name}"
        if name in self.state[customer.region].auto_scaling_groups:
            self.tally.add(customer.name, "auto scaling groups", False)
            return False
        tags = [{"Key": k, "Value": v, "PropagateAtLaunch": True} for k, v in group_tags(customer, group).items()]
        self.aws("autoscaling", self.provider, customer.region).create_auto_scaling_group(
            AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateName": name, "Version": "$Latest"},
            MinSize=group["min_size"], MaxSize=group["max_size"], DesiredCapacity=group["min_size"],
            VPCZoneIdentifier=network["subnets"][group["zone"]]["id"], Tags=tags)
        self.tally.add(customer.name, "auto scaling groups", True)
        return True

    def group_instances(self, customer, groups):
        """Instance ids per instance group name."""
        names = {f"{g['name']}.{customer.cluster_name}": g["name"] for g in groups}
        found = self.aws("autoscaling", self.provider, customer.region).describe_auto_scaling_groups(
            AutoScalingGroupNames=list(names))["AutoScalingGroups"]
        return {names[a["AutoScalingGroupName"]]: [i["InstanceId"] for i in a["Instances"]] for a in found}

    def ensure_etcd_volumes(self, customer, control_plane_instance):
        """etcd-manager's volumes, one per etcd cluster, attached to the control-plane instance."""
        ec2 = self.aws("ec2", self.provider, customer.region)
        for etcd, device in (("main", "/dev/xvdu"), ("events", "/dev/xvdv")):
            name = f"a.etcd-{etcd}.{customer.cluster_name}"
            if name in self.state[customer.region].volumes:
                self.tally.add(customer.name, "etcd volumes", False)
                continue
            tags = {"Name": name, "KubernetesCluster": customer.cluster_name, f"k8s.io/etcd/{etcd}": "a/a",
                    "k8s.io/role/control-plane": "1", "k8s.io/role/master": "1",
                    f"kubernetes.io/cluster/{customer.cluster_name}": "owned"}
            volume = ec2.create_volume(AvailabilityZone=f"{customer.region}a", Size=20, VolumeType="gp3", Iops=3000,
                                       Throughput=125, Encrypted=True, KmsKeyId=self.provider_keys[customer.region],
                                       TagSpecifications=[{"ResourceType": "volume", "Tags": tag_list(tags)}])
            if control_plane_instance:
                ec2.attach_volume(VolumeId=volume["VolumeId"], InstanceId=control_plane_instance, Device=device)
            self.tally.add(customer.name, "etcd volumes", True)


# --------------------------------------------------------------------------------------------------------------
# What to create: pure functions
# --------------------------------------------------------------------------------------------------------------

def describe_slots(slots):
    names = {"all": "all services", "s3": "S3", "rds": "RDS", "ebs": "EBS"}
    return ", ".join(names.get(s, s.replace("rds:", "RDS in ")) for s in slots)


def customer_key_aliases(customer):
    """alias/mattermost-byok for the first key of an account and region; further keys there add their slots.
    External keys live in the provider account beside other customers' keys, so their aliases name the customer."""
    base = CUSTOMER_KEY_ALIAS + (f"-{customer.name}" if customer.key_source == "external" else "")
    aliases, taken = {}, set()
    for key in customer.keys:
        place = (key.arn.account, key.arn.region)
        if place in taken:
            aliases[key] = f"{base}-" + "-".join(s.replace(":", "-") for s in key.slots)
        else:
            aliases[key] = base
            taken.add(place)
    return aliases


def customer_key_policy(fleet, customer, key):
    """AWS's default key policy plus every statement the collection asks the customer to add for the services
    that use this key (the runbook's two and those AWS also needs), minus those the customer left out."""
    principals = provider_principals(fleet.provider_account, fleet.environment, customer.vpc_id, customer.cluster_id)
    principals["server_identities"] = [f"arn:aws:iam::{fleet.provider_account}:user/{user}" for user, _s, _b in customer.server_identities]
    if fleet.automation_role:
        principals["automation_role"] = fleet.automation_role
    services = key_services(customer, key)
    left_out = {RUNBOOK_SIDS[who] for who in customer.policy_omits}
    statements = [{"Sid": "Enable IAM User Permissions", "Effect": "Allow",
                   "Principal": {"AWS": f"arn:aws:iam::{key.arn.account}:root"}, "Action": "kms:*", "Resource": "*"}]
    statements += [s["statement"] for s in key_policy_statements(principals, services, fleet.provider_account, key.arn.region)
                   if s["sid"] not in left_out]
    return {"Version": "2012-10-17", "Id": "key-default-1", "Statement": statements}


def key_services(customer, key):
    """The enabled services this key serves: its own slots, and those left to the "all" slot."""
    named = {slot for other in customer.keys for slot in other.slots if slot in SERVICES}
    services = {slot for slot in key.slots if slot in SERVICES}
    services |= {"rds" for slot in key.slots if slot.startswith("rds:")}
    if "all" in key.slots:
        services |= set(SERVICES) - named
    return [s for s in SERVICES if s in services and s in customer.services]


def kops_role_policy(role, release):
    """A trimmed kops role policy. From kops 1.29 the control plane always gets KMS actions; 1.28 adds them only
    when an etcd member names a kmsKeyId, which these clusters don't."""
    actions = ["ec2:DescribeInstances", "ec2:DescribeRegions", "ec2:DescribeVolumes", "autoscaling:DescribeAutoScalingGroups"]
    if role == "masters":
        actions += ["ec2:AttachVolume", "ec2:DetachVolume", "ec2:CreateVolume", "ec2:CreateTags"]
    statements = [{"Effect": "Allow", "Action": actions, "Resource": "*"}]
    if role == "masters" and release["templates"] >= "1.29":
        statements.append({"Effect": "Allow", "Resource": "*", "Action": [
            "kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"]})
    return {"Version": "2012-10-17", "Statement": statements}


def network_cidr(customer, region):
    """A /16 that stays the same for a customer and region across runs."""
    return f"10.{zlib.crc32(f'{customer.name}/{region}'.encode()) % 200 + 20}.0.0/16"


def subnet_layout(cidr, region):
    """kops subnet names → (cidr, zone, type): private subnets for the cluster and database, utility for load balancers."""
    prefix = cidr.rsplit(".", 2)[0]
    return {f"{region}a": (f"{prefix}.32.0/19", f"{region}a", "Private"),
            f"{region}b": (f"{prefix}.64.0/19", f"{region}b", "Private"),
            f"utility-{region}a": (f"{prefix}.0.0/22", f"{region}a", "Utility"),
            f"utility-{region}b": (f"{prefix}.4.0/22", f"{region}b", "Utility")}


def instance_groups(customer, release):
    """The control plane in zone a and a nodes group per zone, as kops names them for a single-master cluster."""
    region, extra = customer.region, customer.profile["extra_volume_zone"]

    def group(name, role, zone, size, extra_volume_size=None):
        kind = "master" if role == "Master" else "node"
        return {"name": name, "role": role, "iam_role": f"{kind}s", "zone": f"{region}{zone}",
                "min_size": size, "max_size": size if role == "Master" else 2 * size,
                "machine_type": release["machine_type"][kind], "root_volume_size": release["root_volume_size"][kind],
                "extra_volume_size": extra_volume_size}
    return [group(f"master-{region}a", "Master", "a", 1)] + [
        group(f"nodes-{region}{zone}", "Node", zone, 2, 20 if extra == zone else None) for zone in ("a", "b")]


def cluster_tags(customer, name):
    return {"KubernetesCluster": customer.cluster_name, "Name": name,
            f"kubernetes.io/cluster/{customer.cluster_name}": "owned"}


def group_tags(customer, group):
    tags = cluster_tags(customer, f"{group['name']}.{customer.cluster_name}")
    tags["kops.k8s.io/instancegroup"] = group["name"]
    if group["role"] == "Master":
        tags.update({"k8s.io/role/master": "1", "k8s.io/role/control-plane": "1"})
    else:
        tags["k8s.io/role/node"] = "1"
    return tags


def block_device_mappings(group, key_arn):
    """kops's root volume (gp3, 3000 IOPS, 125 MiB/s) and any extra volume, encrypted with the given key."""
    def ebs(size):
        return {"VolumeSize": size, "VolumeType": "gp3", "Iops": 3000, "Throughput": 125,
                "DeleteOnTermination": True, "Encrypted": True, "KmsKeyId": key_arn}
    mappings = [{"DeviceName": "/dev/xvda", "Ebs": ebs(group["root_volume_size"])}]
    if group["extra_volume_size"]:
        mappings.append({"DeviceName": "/dev/xvdd", "Ebs": ebs(group["extra_volume_size"])})
    return mappings


def render(template_path, values):
    try:
        return string.Template(template_path.read_text(encoding="utf-8")).substitute(values)
    except KeyError as e:
        raise SeedError(f"{template_path}: no value for ${{{e.args[0]}}}") from e


def kops_documents(fleet, customer, network, groups, release, image):
    """State-store objects under <cluster>/: config, instancegroup/<ig>, kops-version.txt."""
    templates = KOPS_FIXTURES / release["templates"]
    subnets = network["subnets"]
    region = customer.region
    values = {
        "cluster_name": customer.cluster_name, "created": customer.profile["created"], "region": region,
        "state_store": fleet.state_root,
        "kubernetes_version": release["kubernetes_version"],
        "network_cidr": network["cidr"], "network_id": network["vpc_id"],
        "image": f"{image['OwnerId']}/{image['Name']}",
    }
    for zone in ("a", "b"):
        for kind, prefix in (("private", ""), ("utility", "utility-")):
            subnet = subnets[f"{prefix}{region}{zone}"]
            values[f"subnet_{kind}_{zone}"] = subnet["id"]
            values[f"cidr_{kind}_{zone}"] = subnet["cidr"]
    base = fleet.state_path(customer.cluster_name)
    documents = {f"{base}/config": render(templates / "cluster.yaml", values)}
    for group in groups:
        kind = "master" if group["role"] == "Master" else "node"
        text = render(templates / f"instancegroup-{kind}.yaml", {**values, **group, "ig_name": group["name"]})
        if group["extra_volume_size"]:
            text += render(KOPS_FIXTURES / "volumes-extra.yaml", {"extra_volume_size": group["extra_volume_size"]})
        documents[f"{base}/instancegroup/{group['name']}"] = text
    documents[f"{base}/kops-version.txt"] = customer.profile["kops_version"]
    for key, text in documents.items():
        if key.endswith("kops-version.txt"):
            continue
        doc = yaml.safe_load(text)
        if doc.get("apiVersion") != "kops.k8s.io/v1alpha2":
            raise SeedError(f"{key}: rendered document is not kops v1alpha2")
    return documents


# -- S3 objects ---------------------------------------------------------------------------------------------------

@dataclass
class SeedObject:
    key: str
    body: bytes
    content_type: str
    headers: dict
    metadata: dict
    tags: dict
    multipart: bool
    history: str | None

    def older_version(self):
        """What the object held before its last overwrite: same attributes, different bytes."""
        body = self.body[::-1] if self.body else b"v1"
        return SeedObject(self.key, body, self.content_type, dict(self.headers), dict(self.metadata),
                          {**self.tags, "version": "previous"}, self.multipart, None)


UNITS = {"KiB": 1024, "MiB": MIB}
MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/gif": b"GIF89a", "application/pdf": b"%PDF-1.7\n",
         "application/zip": b"PK\x03\x04", "application/gzip": b"\x1f\x8b\x08\x00",
         "application/vnd.openxmlformats-officedocument.wordprocessingml.document": b"PK\x03\x04"}
WORDS = ("mattermost channel message thread reply team post file upload board playbook call recording export "
         "deploy review incident retro release plan notes draft budget quarter customer sync").split()
HEADERS = {"cache_control": "CacheControl", "content_disposition": "ContentDisposition",
           "content_encoding": "ContentEncoding", "content_language": "ContentLanguage",
           "storage_class": "StorageClass"}


def parse_size(value):
    if isinstance(value, int):
        return value
    for unit, factor in UNITS.items():
        if str(value).endswith(unit):
            return int(float(str(value)[:-len(unit)]) * factor)
    return int(value)


def pick(rng, value, parse=int):
    """A fixed value, or a random one from a [low, high] pair."""
    if isinstance(value, list):
        low, high = parse(value[0]), parse(value[1])
        return rng.randint(low, high)
    return parse(value)


def text_body(rng, size, content_type):
    lines = []
    length = 0
    while length < size:
        if content_type == "application/json":
            line = json.dumps({"level": rng.choice(["info", "warn", "error"]), "msg": " ".join(rng.choices(WORDS, k=6)),
                               "ts": 1700000000 + rng.randint(0, 10 ** 7)})
        elif content_type == "text/csv":
            line = ",".join([rng.choice(WORDS), str(rng.randint(1, 99999)), f"{rng.random():.4f}"])
        else:
            line = " ".join(rng.choices(WORDS, k=rng.randint(4, 14)))
        lines.append(line)
        length += len(line) + 1
    return ("\n".join(lines) + "\n").encode()[:size]


def object_body(rng, size, content_type, encoding):
    base_type = content_type.split(";")[0]
    if size == 0:
        return b""
    if base_type.startswith("text/") or base_type == "application/json":
        body = text_body(rng, size, base_type)
        return gzip.compress(body, mtime=0) if encoding == "gzip" else body
    magic = MAGIC.get(base_type, b"")
    return (magic + rng.randbytes(max(size - len(magic), 0)))[:size]


def mattermost_id(rng):
    return "".join(rng.choices(string.ascii_lowercase + string.digits, k=26))


def fill_placeholders(text, ids):
    return text.format(**ids) if isinstance(text, str) else text


# --s3-objects replaces it (the fleet benchmark seeds a handful of small objects per bucket).
S3_OBJECTS = {"path": FIXTURES / "s3-objects.yml"}


def catalogue_for(bucket):
    catalogues = read_yaml(S3_OBJECTS["path"])["catalogues"]
    return next(c for c in catalogues if fnmatch.fnmatch(bucket, c["buckets"]))


def bucket_objects(bucket):
    """The bucket's objects, the same on every run: the random generator is seeded with the bucket name."""
    rng = random.Random(f"demo-fleet/{bucket}")
    people = {name: [mattermost_id(rng) for index in range(count)] for name, count in (("team", 2), ("channel", 4), ("user", 5))}
    start = datetime.date(2024, 1, 1) + datetime.timedelta(days=rng.randint(0, 200))
    objects, keys = [], set()
    for entry in catalogue_for(bucket)["objects"]:
        for index in range(pick(rng, entry.get("count", 1))):
            day = start + datetime.timedelta(days=rng.randint(0, 120))
            ids = {name: rng.choice(choices) for name, choices in people.items()}
            ids.update(file=mattermost_id(rng), emoji=mattermost_id(rng), day=day.strftime("%Y%m%d"),
                       date=(start + datetime.timedelta(days=index)).isoformat())
            key = entry["key"].format(**ids)
            if key in keys:
                continue
            keys.add(key)
            size = pick(rng, entry["size"], parse_size)
            objects.append(SeedObject(
                key=key, body=object_body(rng, size, entry["content_type"], entry.get("content_encoding")),
                content_type=entry["content_type"],
                headers={HEADERS[h]: entry[h] for h in HEADERS if h in entry},
                metadata={k: fill_placeholders(v, ids) for k, v in (entry.get("metadata") or {}).items()},
                tags={k: fill_placeholders(v, ids) for k, v in (entry.get("tags") or {}).items()},
                multipart=bool(entry.get("multipart")), history=entry.get("history")))
    return objects


# --------------------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------------------

SUMMARY_KINDS = ("kms keys", "iam", "vpcs", "buckets", "objects", "db global clusters", "db clusters",
                 "db instances", "kops documents", "launch templates", "auto scaling groups", "instances",
                 "etcd volumes")


def summary_table(fleet, tally):
    """Resource kinds down, owners across; each cell is how many exist now, the last column how many this run made."""
    owners = ["provider"] + [c.name for c in fleet.customers]
    books = (tally.created, tally.present)
    kinds = [k for k in SUMMARY_KINDS if any((o, k) in book for o in owners for book in books)]
    header = ["resource"] + owners + ["created"]
    rows = [header]
    for kind in kinds:
        counts = [sum(book.get((owner, kind), 0) for book in books) for owner in owners]
        created = sum(tally.created.get((owner, kind), 0) for owner in owners)
        rows.append([kind] + [str(n) if n else "-" for n in counts] + [str(created)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
                     for row in rows)


def local_regions():
    return set(boto3.session.Session().get_available_regions("ec2"))


SEED_HELP = "seed the demo fleet an inventory describes (idempotent)"


def configure(parser):
    """Arguments of the seeder, for this module's command line and for scripts/local-aws seed."""
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"),
                        help="the local AWS endpoint (default: $AWS_ENDPOINT_URL)")
    parser.add_argument("--inventory", default=str(DEMO_INVENTORY), help="inventory directory (default: inventories/demo)")
    parser.add_argument("--workers", type=int, default=5, help="customers seeded in parallel (default: %(default)s)")
    parser.add_argument("--limit", default="", help="comma-separated customers to seed (default: every customer)")
    parser.add_argument("--profiles", default=None, help="seeding profiles file (default: fixtures/demo-profiles.yml)")
    parser.add_argument("--s3-objects", default=None, help="S3 object catalogue file (default: fixtures/s3-objects.yml)")


def run(args, endpoint_url=None):
    """Seed and print the summary; endpoint_url is the fallback when --endpoint-url and $AWS_ENDPOINT_URL are unset."""
    endpoint = args.endpoint_url or endpoint_url
    if not endpoint:
        print("demo_fleet: no endpoint: pass --endpoint-url or set AWS_ENDPOINT_URL (eval \"$(scripts/local-aws env)\")",
              file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        profiles = load_profiles(getattr(args, "profiles", None))
        if getattr(args, "s3_objects", None):
            S3_OBJECTS["path"] = Path(args.s3_objects)
        fleet = load_fleet(args.inventory, local_regions(), profiles, [h for h in args.limit.split(",") if h])
        for note in fleet.notes:
            print(f"note: {note}", file=sys.stderr, flush=True)
        seeder = Seeder(fleet, Clients(LocalAWS(endpoint)), profiles)
        seeder.seed(max(1, args.workers))
    except InventoryError as e:
        print(f"demo_fleet: inventory {args.inventory}: {e}", file=sys.stderr)
        return 2
    except (SeedError, ClientError, BotoCoreError) as e:
        print(f"demo_fleet: seeding {endpoint} failed: {e}", file=sys.stderr)
        return 1
    print(summary_table(fleet, seeder.tally))
    created, present = sum(seeder.tally.created.values()), sum(seeder.tally.present.values())
    print(f"\n{created} created, {present} already present, {time.monotonic() - started:.1f} s "
          f"({len(fleet.customers)} customers, endpoint {endpoint})")
    return 0


def _register_seed_command():
    """`scripts/local-aws seed`: seeds the running local AWS unless --endpoint-url or $AWS_ENDPOINT_URL says otherwise."""
    from tests.local_aws.control import StateDir, require_running, subcommand  # pylint: disable=import-outside-toplevel
    subcommand("seed", SEED_HELP, configure)(lambda args: run(args, args.endpoint_url or require_running(StateDir())))


_register_seed_command()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.local_aws.demo_fleet", description=SEED_HELP)
    configure(parser)
    return run(parser.parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
