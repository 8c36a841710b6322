# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every RDS setting read before and after each strategy by an independent reader (tests/integration/rds_reader.py:
every field RDS returns for the database and each of its instances, all tags), through ansible-playbook: nothing
changes but the key and the fields docs/rds.md lists ("What a re-key changes"). Deletion protection is carried as it
was (off here, as the demo fleet's global database had it), and no byok:* tag stays on a live database. A rollback
gives back the original database exactly."""

from __future__ import annotations

from tests.integration import rds_reader
from tests.integration import test_rds_helpers as h
from tests.integration.test_rds_reencrypt import keys, play, rds  # noqa: F401  pylint: disable=unused-import

ALLOWED = rds_reader.documented_changes()


def test_the_documented_list_is_the_expected_one():
    assert ALLOWED == {"KmsKeyId", "DbClusterResourceId", "DbiResourceId", "ClusterCreateTime", "InstanceCreateTime",
                       "EarliestRestorableTime", "LatestRestorableTime"}


def no_bookkeeping(view):
    return {name: sorted(k for k in v["TagList"] if k.startswith("byok:")) for name, v in view.items()
            if any(k.startswith("byok:") for k in v["TagList"])}


def test_global_database_keeps_every_setting(local_aws, play, unique_name):  # noqa: F811
    east, west = local_aws.client("rds", account=h.PROVIDER), local_aws.client("rds", account=h.PROVIDER, region="us-west-2")
    gid, primary, secondary = unique_name("g"), unique_name("p"), unique_name("s")
    region_keys = {"us-east-1": h.new_key(local_aws), "us-west-2": h.new_key(local_aws, region="us-west-2")}
    east.create_global_cluster(GlobalClusterIdentifier=gid, Engine="aurora-postgresql", StorageEncrypted=True)
    h.make_cluster(local_aws, primary, h.new_key(local_aws, account=h.PROVIDER), global_cluster=gid)
    h.make_cluster(local_aws, secondary, h.new_key(local_aws, account=h.PROVIDER, region="us-west-2"), region="us-west-2",
                   global_cluster=gid, primary=False)
    before = {primary: rds_reader.database(east, primary), secondary: rds_reader.database(west, secondary)}
    assert not before[primary][primary]["DeletionProtection"] and not before[secondary][secondary]["DeletionProtection"]

    result = play(identifier=primary, global_cluster=gid, region_keys=region_keys)
    assert result.get("complete"), {k: v for k, v in result.items() if k != "_output"}
    after = {primary: rds_reader.database(east, primary), secondary: rds_reader.database(west, secondary)}
    for cluster, region in ((primary, "us-east-1"), (secondary, "us-west-2")):
        assert rds_reader.differences(before[cluster], after[cluster], ALLOWED) == [], cluster
        assert after[cluster][cluster]["KmsKeyId"] == region_keys[region]
        assert no_bookkeeping(after[cluster]) == {}
    # The retained old sides carry the record of the re-key (and are protected on purpose).
    old = rds_reader.database(east, f"{primary}-byok-old")[f"{primary}-byok-old"]
    assert old["DeletionProtection"] and "byok:reencrypt-cutover-verified" in old["TagList"]
    assert not play(identifier=primary, global_cluster=gid, region_keys=region_keys)["changed"]


def test_blue_green_and_snapshot_restore_keep_every_setting(local_aws, play, rds, keys, unique_name):  # noqa: F811
    cases = [(h.make_cluster(local_aws, unique_name("bg"), keys["old"]), "cluster", {}),
             (h.make_cluster(local_aws, unique_name("sr"), keys["old"]), "cluster",
              {"strategy": "snapshot_restore", "allow_downtime": True})]
    replicated = h.make_instance(local_aws, unique_name("ri"), keys["old"])
    rds.create_db_instance_read_replica(DBInstanceIdentifier=f"{replicated}-r1", SourceDBInstanceIdentifier=replicated,
                                        DBInstanceClass="db.r6g.large", Tags=[{"Key": "Customer", "Value": "test"}])
    cases.append((replicated, "instance", {}))
    for name, kind, options in cases:
        before = rds_reader.database(rds, name, kind)
        result = play(identifier=name, kind=kind, key_arn=keys["new"], **options)
        assert result.get("complete"), {k: v for k, v in result.items() if k != "_output"}
        after = rds_reader.database(rds, name, kind)
        assert rds_reader.differences(before, after, ALLOWED) == [], name
        assert {v["KmsKeyId"] for v in after.values()} == {keys["new"]}, name
        assert no_bookkeeping(after) == {}, name
        # Rolled back: the original database itself again, every setting as it was (deletion protection, tags).
        back = play(identifier=name, kind=kind, key_arn=keys["new"], rds_state="rolled_back", **options)
        assert back.get("complete"), {k: v for k, v in back.items() if k != "_output"}
        assert rds_reader.differences(before, rds_reader.database(rds, name, kind), {"LatestRestorableTime"}) == [], name
