# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""find_global_members: the global database's members, plus a member removed by an interrupted run, found by its tag
through the tagging API (one lookup per region, whatever the number of clusters in the account)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from ansible_collections.mattermost.byok.plugins.module_utils.rds import reencrypt as r

ARN = "arn:aws:rds:{}:111122223333:cluster:{}"


class Pages:
    def __init__(self, pages):
        self.pages = pages
        self.arguments = None

    def paginate(self, **arguments):
        self.arguments = arguments
        return self.pages


class FakeRegion:
    """What one region answers: the global database's members (primary region; "<region>/<name>" for another
    region's), the clusters that exist, and the tagging API's index (which may still hold a deleted cluster)."""

    def __init__(self, region, members=(), existing=(), tagged=()):
        self.region, self.members, self.existing, self.tagged = region, list(members), set(existing), list(tagged)
        self.described = []
        self.lookups = []

    def describe_global_clusters(self, GlobalClusterIdentifier):
        return {"GlobalClusters": [{"GlobalClusterIdentifier": GlobalClusterIdentifier,
                                    "GlobalClusterMembers": [{"DBClusterArn": ARN.format(*m.split("/")) if "/" in m
                                                              else ARN.format(self.region, m)} for m in self.members]}]}

    def describe_db_clusters(self, DBClusterIdentifier):
        self.described.append(DBClusterIdentifier)
        if DBClusterIdentifier not in self.existing:
            raise ClientError({"Error": {"Code": "DBClusterNotFoundFault", "Message": "not found"}}, "DescribeDBClusters")
        return {"DBClusters": [{"DBClusterIdentifier": DBClusterIdentifier}]}

    def get_paginator(self, name):
        assert name == "get_resources"
        matching = [t for t in self.tagged if t[1].get(r.TAG_GLOBAL) == "g"]  # the filter is applied by AWS
        pages = Pages([{"ResourceTagMappingList": [
            {"ResourceARN": ARN.format(self.region, name), "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            for name, tags in matching[i:i + 1]]} for i in range(len(matching))] or [{"ResourceTagMappingList": []}])
        self.lookups.append(pages)
        return pages


def tags(global_id, source):
    return {r.TAG_GLOBAL: global_id, r.TAG_SOURCE: source, "team": "data"}


def find(regions):
    return r.find_global_members(lambda service, region: regions[region], "g", "p", "us-east-1", sorted(regions))


def test_members_of_the_global_database_need_no_describe():
    east = FakeRegion("us-east-1", members=["p", "us-west-2/s"], existing=["p"])
    west = FakeRegion("us-west-2", existing=["s"], tagged=[("s", tags("g", "s"))])
    assert find({"us-east-1": east, "us-west-2": west}) == {"p": "us-east-1", "s": "us-west-2"}
    assert not east.described and not west.described


def test_removed_secondary_set_aside_is_found_by_its_tag():
    east = FakeRegion("us-east-1", members=["p"], existing=["p"])
    west = FakeRegion("us-west-2", existing=["db-byok-old", "other"],
                      tagged=[("db-byok-old", tags("g", "db")), ("other", tags("h", "other"))])
    assert find({"us-east-1": east, "us-west-2": west}) == {"p": "us-east-1", "db": "us-west-2"}
    assert west.described == ["db-byok-old"]


def test_removed_secondary_under_its_own_name_is_found():
    east = FakeRegion("us-east-1", members=["p"], existing=["p"])
    west = FakeRegion("us-west-2", existing=["db"], tagged=[("db", tags("g", "db"))])
    assert find({"us-east-1": east, "us-west-2": west}) == {"p": "us-east-1", "db": "us-west-2"}


def test_a_deleted_cluster_still_in_the_tag_index_is_not_a_member():
    east = FakeRegion("us-east-1", members=["p"], existing=["p"])
    west = FakeRegion("us-west-2", existing=[], tagged=[("gone-byok-old", tags("g", "gone"))])
    assert find({"us-east-1": east, "us-west-2": west}) == {"p": "us-east-1"}


def test_a_member_tagged_under_both_names_is_found_if_either_exists():
    east = FakeRegion("us-east-1", members=["p"], existing=["p"])
    west = FakeRegion("us-west-2", existing=["db"], tagged=[("db-byok-old", tags("g", "db")), ("db", tags("g", "db"))])
    assert find({"us-east-1": east, "us-west-2": west}) == {"p": "us-east-1", "db": "us-west-2"}


def test_a_tagged_cluster_without_its_source_is_ignored():
    east = FakeRegion("us-east-1", members=["p"], existing=["p"])
    west = FakeRegion("us-west-2", existing=["x"], tagged=[("x", {r.TAG_GLOBAL: "g"})])
    assert find({"us-east-1": east, "us-west-2": west}) == {"p": "us-east-1"}


def test_the_primary_outside_the_global_database_is_still_a_member():
    east = FakeRegion("us-east-1", members=[], existing=["p-byok-old"], tagged=[("p-byok-old", tags("g", "p"))])
    assert find({"us-east-1": east}) == {"p": "us-east-1"}


def test_the_lookup_asks_for_rds_clusters_with_the_global_tag_in_every_region():
    east = FakeRegion("us-east-1", members=["p"], existing=["p"])
    west = FakeRegion("us-west-2")
    find({"us-east-1": east, "us-west-2": west})
    for region in (east, west):
        assert [p.arguments for p in region.lookups] == [
            {"TagFilters": [{"Key": r.TAG_GLOBAL, "Values": ["g"]}], "ResourceTypeFilters": ["rds:cluster"]}]


def test_a_missing_global_database_is_an_error():
    east = FakeRegion("us-east-1")
    east.describe_global_clusters = lambda GlobalClusterIdentifier: {"GlobalClusters": []}
    with pytest.raises(r.ReencryptError, match="global_cluster: g not found"):
        find({"us-east-1": east})
