# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An independent reader of every setting of an RDS database: the whole DescribeDBClusters / DescribeDBInstances
answer of the cluster (or instance) and of each of its instances (or read replicas), with all tags, read with boto3
directly. Nothing is left out but what describes the moment of reading; what a re-key changes is listed in docs/rds.md
("What a re-key changes") and read from there, so the documentation and the check cannot drift apart."""

from __future__ import annotations

import os
import re

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _without_members(description):
    return {k: v for k, v in description.items() if k not in ("DBClusterMembers", "ReadReplicaDBInstanceIdentifiers")}


def _tags(rds, arn):
    return {t["Key"]: t["Value"] for t in rds.list_tags_for_resource(ResourceName=arn)["TagList"]}


def instance(rds, identifier):
    found = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    view = dict(_without_members(found), TagList=_tags(rds, found["DBInstanceArn"]))
    view["ReadReplicaDBInstanceIdentifiers"] = sorted(found.get("ReadReplicaDBInstanceIdentifiers") or [])
    return view


def database(rds, identifier, kind="cluster"):
    """{identifier: settings} for the database and every instance of it (members of a cluster, replicas of an
    instance), each with every field RDS returns and all its tags."""
    if kind == "instance":
        top = instance(rds, identifier)
        views = {identifier: top}
        for replica in top["ReadReplicaDBInstanceIdentifiers"]:
            views[replica] = instance(rds, replica)
        return views
    found = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
    views = {identifier: dict(_without_members(found), TagList=_tags(rds, found["DBClusterArn"]),
                              DBClusterMembers=sorted((m["DBInstanceIdentifier"], m["IsClusterWriter"], m.get("PromotionTier"))
                                                      for m in found.get("DBClusterMembers", [])))}
    for member in found.get("DBClusterMembers", []):
        views[member["DBInstanceIdentifier"]] = instance(rds, member["DBInstanceIdentifier"])
    return views


def documented_changes(path=os.path.join(ROOT, "docs", "rds.md")):
    """The fields docs/rds.md says a re-key changes: the backticked names of its "What a re-key changes" table."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    section = text.split("## What a re-key changes", 1)[1].split("\n## ", 1)[0]
    fields = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            fields.update(re.findall(r"`([A-Za-z]+)`", line.split("|")[1]))
    return fields


def differences(before, after, allowed):
    """'identifier.Field: before -> after' for every field that changed and is not in `allowed`."""
    lines = []
    for name in sorted(set(before) | set(after)):
        if name not in before or name not in after:
            lines.append(f"{name}: {'gone' if name in before else 'new'}")
            continue
        for field in sorted(set(before[name]) | set(after[name])):
            if field in allowed:
                continue
            if before[name].get(field) != after[name].get(field):
                lines.append(f"{name}.{field}: {before[name].get(field)!r} -> {after[name].get(field)!r}")
    return lines
