# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The byok_rds role over the seeded demo fleet, checked with boto3: every Aurora cluster ends on its customer's
key with the same identifier, endpoint names, instances and settings, the old cluster retained; umbrella's global
database has each region on its own region's key. Disruption is gated: outside the window, blue_green stops after
the verified green side (deferred), snapshot_restore only shows its plan.

A private local AWS (fresh_local_aws): the demo fleet of the shared one must stay on the provider key for the
other tests.
"""

from __future__ import annotations

import json
import os

from tests.integration import rds_reader
from tests.integration import runner
from tests.integration import test_rds_helpers as h

PLAYBOOK = "tests/integration/playbooks/rds_fleet.yml"
ALLOWED = json.dumps({"byok_disruption": {"allowed": True, "reason": "test: inside the window"}})
NOT_ALLOWED = json.dumps({"byok_disruption": {"allowed": False, "reason": "test: outside the window"}})
# globex and hooli have no logical replication in their parameter groups (no Blue/Green): snapshot cut-over.
CLUSTERS = {"acme-db": ("us-east-1", "acme"), "initech-db": ("us-west-2", "initech"), "umbrella-db": ("us-east-1", "umbrella"),
            "umbrella-db-west": ("us-west-2", "umbrella"), "globex-db": ("us-east-1", "globex"), "hooli-db": ("us-east-1", "hooli")}


def customer_keys():
    keys = {}
    for cluster, (region, customer) in CLUSTERS.items():
        hv = runner.demo_host_vars(customer)
        keys[cluster] = hv["byok_keys"].get("rds_regions", {}).get(region) or hv["byok_keys"].get("rds") or hv["byok_keys"]["all"]
    return keys


def play(aws, artifacts, *args):
    artifacts.mkdir(parents=True, exist_ok=True)
    proc = runner.run_playbook(aws.endpoint_url, os.path.join(runner.DEMO_INVENTORY, "hosts.yml"), str(artifacts), *args,
                               playbook=PLAYBOOK)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    results = {}
    for name in os.listdir(artifacts):
        if name.startswith("rds-"):
            results[name[4:-5]] = runner.read_json(os.path.join(artifacts, name))
    return proc.stdout, results


def test_demo_fleet_databases_move_to_customer_keys(fresh_local_aws, tmp_path):
    aws = fresh_local_aws
    runner.seed(aws.endpoint_url)
    rds = {r: aws.client("rds", account=h.PROVIDER, region=r) for r in ("us-east-1", "us-west-2")}
    before = {c: (h.cluster_view(rds[r], c), h.key_of(rds[r], c), rds[r].describe_db_clusters(DBClusterIdentifier=c)["DBClusters"][0])
              for c, (r, dummy) in CLUSTERS.items()}
    keys = customer_keys()
    blue_green = "acme,initech,umbrella"
    # Every field RDS returns for each database and its instances, all tags: only the key and what docs/rds.md lists
    # may differ afterwards (umbrella's global members had deletion protection off and must keep it off).
    full_before = {c: rds_reader.database(rds[r], c) for c, (r, dummy) in CLUSTERS.items()}

    # Check mode: the plan, nothing changed.
    out, results = play(aws, tmp_path / "plan", "--check", "-l", blue_green, "-e", ALLOWED)
    assert all(not r["deferred"] and r["summary"].startswith("plan:") for rs in results.values() for r in rs), results
    assert all(h.key_of(rds[r], c) == before[c][1] for c, (r, dummy) in CLUSTERS.items())

    # Calls whose time box ends before the first step: rounds until byok_rds_max_calls, a progress line after each
    # (elapsed over all calls), and the record says where the next run resumes; announced, nothing changed.
    out, results = play(aws, tmp_path / "rounds", "-l", "acme", "-e", ALLOWED, "-e", "byok_rds_time_box_seconds=0",
                        "-e", "byok_rds_max_calls=3")
    assert out.count("acme-db: step create_green, status available, elapsed") == 3, out
    assert "acme rds before: acme-db move to the customer key (blue_green)" in out and "acme rds after: acme-db done" in out
    assert results["acme"] == [{"step": "rds", "resource": "acme-db", "changed": False, "disruptive": True, "deferred": False,
                                "estimated_disruption_seconds": 60,
                                "summary": "not finished at step create_green; resumes on the next run"}], results
    assert h.key_of(rds["us-east-1"], "acme-db") == before["acme-db"][1]

    # Outside the window: green sides created and verified, switchovers deferred; nothing switched.
    out, results = play(aws, tmp_path / "outside", "-l", blue_green, "-e", NOT_ALLOWED)
    assert all(r["deferred"] and r["disruptive"] for rs in results.values() for r in rs), results
    assert "step deferred" in out and "elapsed" in out
    assert h.key_of(rds["us-east-1"], "acme-db") == before["acme-db"][1]
    assert h.key_of(rds["us-west-2"], "umbrella-db-west") == keys["umbrella-db-west"]  # a secondary: no disruption
    assert h.key_of(rds["us-east-1"], "umbrella-db") == before["umbrella-db"][1]
    out, results = play(aws, tmp_path / "plan-sr", "-l", "globex,hooli", "-e", NOT_ALLOWED, "-e", "byok_rds_strategy=snapshot_restore")
    assert all(r["deferred"] and not r["changed"] for rs in results.values() for r in rs), results
    assert h.inventory(rds["us-east-1"], "globex-db")["cluster_snapshots"] == []

    # Inside the window.
    out, results = play(aws, tmp_path / "inside", "-l", blue_green, "-e", ALLOWED)
    assert all(r["changed"] and not r["deferred"] for rs in results.values() for r in rs), results
    assert "switchover" in results["acme"][0]["summary"]
    out, results = play(aws, tmp_path / "inside-sr", "-l", "globex,hooli", "-e", ALLOWED, "-e", "byok_rds_strategy=snapshot_restore")
    assert all(r["changed"] and "downtime" in r["summary"] for rs in results.values() for r in rs), results
    assert "step final_snapshot" in out or "step done" in out

    for cluster, (region, dummy) in CLUSTERS.items():
        client = rds[region]
        view, old_key, described = before[cluster]
        after = client.describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]
        assert after["KmsKeyId"] == keys[cluster], cluster
        assert (after["Endpoint"], after["ReaderEndpoint"], after["Port"]) == (described["Endpoint"], described["ReaderEndpoint"], described["Port"])
        assert h.cluster_view(client, cluster) == view, cluster
        old = [c for c in h.inventory(client, cluster)["clusters"] if c != cluster and c.startswith(cluster + "-") and "west" not in c[len(cluster):]]
        assert len(old) == 1 and h.key_of(client, old[0]) == old_key, (cluster, old)
        assert client.describe_db_clusters(DBClusterIdentifier=old[0])["DBClusters"][0]["DeletionProtection"]
    for cluster, (region, dummy) in CLUSTERS.items():
        full_after = rds_reader.database(rds[region], cluster)
        assert rds_reader.differences(full_before[cluster], full_after, rds_reader.documented_changes()) == [], cluster
        assert not any(k.startswith("byok:") for view in full_after.values() for k in view["TagList"]), cluster
    members = rds["us-east-1"].describe_global_clusters(GlobalClusterIdentifier="umbrella-global")["GlobalClusters"][0]["GlobalClusterMembers"]
    assert {m["DBClusterArn"].rsplit(":", 1)[-1]: m["IsWriter"] for m in members} == {"umbrella-db": True, "umbrella-db-west": False}
    assert keys["umbrella-db"].split(":")[3] == "us-east-1" and keys["umbrella-db-west"].split(":")[3] == "us-west-2"

    # A second run changes nothing.
    out, results = play(aws, tmp_path / "again", "-l", blue_green, "-e", ALLOWED)
    assert not any(r["changed"] for rs in results.values() for r in rs), results
