# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rds_settings: what is read from Describe*, what is sent back, and what is compared."""

from __future__ import annotations

from ansible_collections.mattermost.byok.plugins.module_utils.rds import settings as s

CLUSTER = {
    "Engine": "aurora-postgresql", "EngineVersion": "15.4", "DBClusterParameterGroup": "pg", "DBSubnetGroup": "sng",
    "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-2"}, {"VpcSecurityGroupId": "sg-1"}], "Port": 5432,
    "IAMDatabaseAuthenticationEnabled": True, "BackupRetentionPeriod": 14, "PreferredMaintenanceWindow": "sun:06:00-sun:07:00",
    "EnabledCloudwatchLogsExports": ["postgresql"], "ServerlessV2ScalingConfiguration": {"MinCapacity": 0.5, "MaxCapacity": 8.0},
    "DeletionProtection": True, "KmsKeyId": "arn:old", "DBClusterIdentifier": "db",
    "TagList": [{"Key": "Customer", "Value": "acme"}, {"Key": "byok:reencrypt-step", "Value": "verified"}],
}


def test_cluster_settings_normalized():
    settings = s.cluster_settings(CLUSTER)
    assert settings["VpcSecurityGroupIds"] == ["sg-1", "sg-2"]
    assert settings["DBClusterParameterGroupName"] == "pg" and settings["DBSubnetGroupName"] == "sng"
    assert settings["EnableIAMDatabaseAuthentication"] is True and settings["Tags"] == {"Customer": "acme"}
    assert "KmsKeyId" not in settings and "DBClusterIdentifier" not in settings


def test_create_kwargs_only_accepted_and_tags_merged():
    settings = s.cluster_settings(CLUSTER)
    kwargs = s.create_kwargs(settings, {"Engine", "Port", "Tags", "DBSubnetGroupName"}, {"byok:reencrypt-source": "db"})
    assert set(kwargs) == {"Engine", "Port", "Tags", "DBSubnetGroupName"}
    assert {"Key": "byok:reencrypt-source", "Value": "db"} in kwargs["Tags"] and {"Key": "Customer", "Value": "acme"} in kwargs["Tags"]
    assert "DBSubnetGroupName" not in s.create_kwargs(settings, {"DBSubnetGroupName"}, omit=("DBSubnetGroupName",))


def test_modify_kwargs_bring_the_difference_only():
    wanted = s.cluster_settings(CLUSTER)
    actual = dict(wanted, PreferredMaintenanceWindow="wed:01:00-wed:01:30", EnableCloudwatchLogsExports=["upgrade"], Engine="x")
    kwargs = s.modify_kwargs(wanted, actual, {"PreferredMaintenanceWindow", "Engine"})
    assert kwargs == {"PreferredMaintenanceWindow": "sun:06:00-sun:07:00",
                      "CloudwatchLogsExportConfiguration": {"EnableLogTypes": ["postgresql"], "DisableLogTypes": ["upgrade"]}}


def test_differences_and_names():
    assert s.differences({"a": 1, "b": 2}, {"a": 1, "b": 3}, "x.") == ["x.b: 2 -> 3"]
    assert s.member_base("db-1-byok-new", ("-byok-new",)) == "db-1"
    assert s.member_base("blue-green-db-1-green-abc123") == "blue-green-db-1"
    assert s.member_base("blue-green-db-1") == "blue-green-db-1"


def test_instance_settings_skip_default_option_group():
    instance = {"Engine": "postgres", "Endpoint": {"Port": 5432}, "DBSubnetGroup": {"DBSubnetGroupName": "sng"},
                "DBParameterGroups": [{"DBParameterGroupName": "pg"}],
                "OptionGroupMemberships": [{"OptionGroupName": "default:postgres-15"}]}
    settings = s.instance_settings(instance)
    assert settings["Port"] == 5432 and settings["DBSubnetGroupName"] == "sng" and settings["DBParameterGroupName"] == "pg"
    assert "OptionGroupName" not in settings
