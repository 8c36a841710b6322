# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""find_global_members: a member removed from the global database by an interrupted run is still found by its tag."""

from __future__ import annotations

from ansible_collections.mattermost.byok.plugins.module_utils import rds_reencrypt as r

ARN = "arn:aws:rds:{}:111122223333:cluster:{}"


class FakeRds:
    def __init__(self, region, members, clusters):
        self.region, self.members, self.clusters = region, members, clusters

    def describe_global_clusters(self, GlobalClusterIdentifier):
        return {"GlobalClusters": [{"GlobalClusterIdentifier": GlobalClusterIdentifier,
                                    "GlobalClusterMembers": [{"DBClusterArn": a} for a in self.members]}]}

    def get_paginator(self, name):
        clusters = self.clusters

        class Pages:
            def paginate(self):
                return [{"DBClusters": clusters}]
        return Pages()


def tagged(name, region, **tags):
    return {"DBClusterIdentifier": name, "DBClusterArn": ARN.format(region, name),
            "TagList": [{"Key": k, "Value": v} for k, v in tags.items()]}


def test_removed_secondary_set_aside_is_found_by_its_tag():
    west = [tagged("db-byok-old", "us-west-2", **{r.TAG_GLOBAL: "g", r.TAG_SOURCE: "db"}),
            tagged("other", "us-west-2", **{r.TAG_GLOBAL: "h", r.TAG_SOURCE: "other"})]
    fakes = {"us-east-1": FakeRds("us-east-1", [ARN.format("us-east-1", "p")], []),
             "us-west-2": FakeRds("us-west-2", [], west)}
    found = r.find_global_members(lambda service, region: fakes[region], "g", "p", "us-east-1", ["us-east-1", "us-west-2"])
    assert found == {"p": "us-east-1", "db": "us-west-2"}
