"""Fleet scale: EC2 reads by tag cost the same for one customer whatever the number of customers in the account.

Every customer's kops volumes, instances and launch templates live in the one provider account, and the audit
finds a customer's by ``tag:KubernetesCluster``. AWS filters server-side; moto answers such a call by evaluating
every filter on every resource of the region, and each evaluation reads the resource's tags through
``TagBackend.describe_tags(filters={"resource-id": [id]})``, which walks every tag of every resource. So a tag
filtered DescribeVolumes was quadratic in the number of resources: with the benchmark's fleet, about 50 ms of
server CPU at 10 customers and 1,000 ms at 50 (docs/fleet.md, "Local AWS at fleet scale").

Two fast paths, both answering exactly what moto answers (same resources, same fields, same order):
- the tags of one resource id (no wildcard) are read from the tag store directly instead of by walking it;
- a describe with a literal ``tag:<key>`` filter (no ``*``, ``?``, ``[`` or ``\\``) first keeps only the resources
  whose tag has one of the values, read from the tag store (a dict lookup per resource), then runs moto's own
  filtering on those. Moto's match for a literal value is equality, so no resource moto would return is dropped.
Nothing is cached: the tag store is read on every call, so no index can go stale after a create, tag change or
delete.

Two more costs of a busy server, not of AWS:
- every request looked its Host header up in a fresh listing of moto's package directory (a ``listdir`` and about
  180 ``isdir`` calls, about 1 ms of CPU per request); the listing is the installed package, so it is read once;
- IAM looks roles up by walking the account's role dict (on every request made with assumed-role credentials);
  a role created by another request meanwhile made that walk fail ("dictionary changed size during iteration",
  an HTTP 500 seen when seeding a fleet with concurrent workers). The walk now goes over a copy of the roles.
- RDS finds a cluster's members by walking every DB instance of the region (creating a cluster instance does it
  too); an instance created meanwhile made it fail the same way ("OrderedDict mutated during iteration"). It walks
  a copy as well, and so do RDS's filtered describes (DescribeDBInstances with a ``db-cluster-id`` filter failed that
  way in a fleet apply while another customer's instances were created).
"""
from __future__ import annotations

import os
from typing import Any

from moto import backends
from moto.ec2.models import elastic_block_store, instances, launch_templates
from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.models.elastic_block_store import Volume
from moto.ec2.models.instances import Instance
from moto.ec2.models.launch_templates import LaunchTemplate
from moto.ec2.models.tags import TagBackend
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix
from moto.iam.models import IAMBackend
from moto.rds.models import DBCluster, DBInstanceClustered, RDSBackend

from ._patching import MotoInternalsChanged, replace, require, wrap

# Characters that make an EC2 filter value a pattern (moto: fnmatch, simple_aws_filter_to_re).
PATTERN_CHARACTERS = frozenset("*?[\\")
# Classes whose tag filters go through TaggedEC2Resource's tag reading (checked at apply time).
NARROWED_CLASSES = (Volume, LaunchTemplate, Instance)
# False: moto's own code answers (the tests compare both answers on the same state). A server started with
# BYOK_LOCAL_AWS_FLEET_SCALE=0 in its environment starts with them off, to time moto's own (e.g. benchmarks/fleet.py).
FAST_PATHS_ENABLED = os.environ.get("BYOK_LOCAL_AWS_FLEET_SCALE", "1") != "0"


def _literal(value: Any) -> bool:
    return isinstance(value, str) and not PATTERN_CHARACTERS.intersection(value)


def _literal_tag_filters(filters: Any) -> list[tuple[str, frozenset[str]]]:
    """(key, values) of the ``tag:<key>`` filters whose values are all literal."""
    if not isinstance(filters, dict):
        return []
    found = []
    for name, values in filters.items():
        if isinstance(name, str) and name.startswith("tag:") and isinstance(values, list) and all(_literal(v) for v in values):
            found.append((name[4:], frozenset(values)))
    return found


def _tag_store(objects: list[Any]) -> dict[str, dict[str, str]] | None:
    """The tag store of the one EC2 backend all `objects` belong to, or None when they are not all of a
    class narrowed here, or not of one backend."""
    backend = getattr(objects[0], "ec2_backend", None)
    store = getattr(backend, "tags", None)
    if not isinstance(store, dict):
        return None
    for obj in objects:
        if type(obj) not in NARROWED_CLASSES or getattr(obj, "ec2_backend", None) is not backend:
            return None
    return store


def _matching_ids(store: dict[str, dict[str, str]], tag_filters: list[tuple[str, frozenset[str]]]) -> set[str]:
    """Ids of the resources that can pass every literal tag filter. A non-string tag value is kept (moto
    compares such values in other ways), so this is never narrower than moto's own filtering."""
    ids = set()
    # A snapshot: concurrent requests tag new resources meanwhile (iterating the live dict raised a 500).
    for resource_id, tags in list(store.items()):
        for key, values in tag_filters:
            value = tags.get(key)
            if value is None or (isinstance(value, str) and value not in values):
                break
        else:
            ids.add(resource_id)
    return ids


def narrow_by_tags(filters: Any, objects: list[Any]) -> list[Any]:
    """`objects` without those that cannot pass the literal tag filters; the rest in their order."""
    tag_filters = _literal_tag_filters(filters) if FAST_PATHS_ENABLED else []
    if not tag_filters or not objects:
        return objects
    store = _tag_store(objects)
    if store is None:
        return objects
    ids = _matching_ids(store, tag_filters)
    return [obj for obj in objects if obj.id in ids]


def _fast_resource_tags(backend: TagBackend, filters: Any) -> list[dict[str, str]] | None:
    """describe_tags for exactly one literal resource id, or None when the call is another kind."""
    if not isinstance(filters, dict) or list(filters) != ["resource-id"]:
        return None
    ids = filters["resource-id"]
    if not isinstance(ids, list) or len(ids) != 1 or not _literal(ids[0]):
        return None
    resource_id = ids[0]
    store = getattr(backend, "tags", None)
    if not isinstance(store, dict):
        return None
    tags = store.get(resource_id)  # .get: the store is a defaultdict, and reading must not add to it
    if not tags:
        return []
    resource_type = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
    return [{"resource_id": resource_id, "key": key, "value": value, "resource_type": resource_type}
            for key, value in dict(tags).items()]


_APPLIED: list[bool] = []


def _copy(read: Any) -> Any:
    """`read()` of a dict that other requests may change meanwhile (RDS's is a Python-level mapping, so even copying
    it can meet a change: try again)."""
    for _attempt in range(100):
        try:
            return read()
        except RuntimeError:
            continue
    return read()


def _values_copy(mapping: Any) -> list[Any]:
    return _copy(lambda: list(mapping.values()))


def _items_copy(mapping: Any) -> dict[Any, Any]:
    return _copy(lambda: dict(mapping.items()))


def _cluster_members(cluster: Any) -> list[Any]:
    """moto's DBCluster._members, over a copy of the region's DB instances."""
    return [db for db in _values_copy(cluster.backend.databases)
            if isinstance(db, DBInstanceClustered) and db.db_cluster_identifier == cluster.resource_id]


def apply() -> None:
    if _APPLIED:  # the tests apply it in their own process as well
        return
    _APPLIED.append(True)
    for cls in NARROWED_CLASSES:
        if cls.get_tags is not TaggedEC2Resource.get_tags:
            raise MotoInternalsChanged(f"{cls.__qualname__}.get_tags no longer reads the EC2 tag store; review fleet_scale.py")

    @wrap(TagBackend, "describe_tags")
    def describe_tags(original, self, filters=None):
        fast = _fast_resource_tags(self, filters) if FAST_PATHS_ENABLED else None
        return original(self, filters) if fast is None else fast

    original_generic_filter = require(elastic_block_store, "generic_filter")

    def generic_filter(filters, objects):
        return original_generic_filter(filters, narrow_by_tags(filters, objects))

    # DescribeVolumes and DescribeLaunchTemplates call generic_filter from their own module's namespace.
    replace(elastic_block_store, "generic_filter", generic_filter)
    replace(launch_templates, "generic_filter", generic_filter)

    original_filter_reservations = require(instances, "filter_reservations")

    def filter_reservations(reservations, filter_dict):
        # DescribeInstances: a reservation none of whose instances can pass is one moto would drop.
        everyone = [i for r in reservations for i in r.instances]
        if everyone:
            kept = {id(i) for i in narrow_by_tags(filter_dict, everyone)}
            if len(kept) < len(everyone):
                reservations = [r for r in reservations if any(id(i) in kept for i in r.instances)]
        return original_filter_reservations(reservations, filter_dict)

    replace(instances, "filter_reservations", filter_reservations)

    # The Host lookup: moto's package directory does not change while the server runs.
    modules = tuple(require(backends, "list_of_moto_modules")())
    replace(backends, "list_of_moto_modules", lambda: iter(modules))

    @wrap(IAMBackend, "get_roles")
    def get_roles(original, self):
        return list(original(self))  # a copy: callers walk it while other requests may add or delete roles

    replace(DBCluster, "_members", property(_cluster_members))
    original_filter_resources = require(RDSBackend, "_filter_resources")
    replace(RDSBackend, "_filter_resources", staticmethod(
        lambda resources, filters, resource_class: original_filter_resources(_items_copy(resources), filters, resource_class)))
