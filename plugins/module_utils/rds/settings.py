# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Settings of an RDS/Aurora database that must survive a re-key, read from Describe* and written back.

A restore or a new secondary starts from defaults for everything that is not passed (parameter groups, subnet
group, security groups, Performance Insights, monitoring...; research/aws-byok-mechanics.md section 2.1 and
pitfall 10). Each setting is kept under its API parameter name, so the same dict feeds the create/restore call,
the follow-up modify call for what the create call does not accept, and the field-by-field comparison.
Pure functions: no AWS calls here.
"""

from __future__ import annotations

import re

BYOK_TAG_PREFIX = "byok:"
# What RDS appends to the names of a Blue/Green deployment's green resources.
GREEN_SUFFIX = re.compile(r"-green-[a-z0-9]{6}$")

# (field in DescribeDBClusters, API parameter) for an Aurora cluster.
CLUSTER_FIELDS = (
    ("Engine", "Engine"),
    ("EngineVersion", "EngineVersion"),
    ("EngineMode", "EngineMode"),
    ("DBClusterParameterGroup", "DBClusterParameterGroupName"),
    ("DBSubnetGroup", "DBSubnetGroupName"),
    ("VpcSecurityGroups", "VpcSecurityGroupIds"),
    ("Port", "Port"),
    ("DatabaseName", "DatabaseName"),
    ("MasterUsername", "MasterUsername"),
    ("IAMDatabaseAuthenticationEnabled", "EnableIAMDatabaseAuthentication"),
    ("BackupRetentionPeriod", "BackupRetentionPeriod"),
    ("PreferredBackupWindow", "PreferredBackupWindow"),
    ("PreferredMaintenanceWindow", "PreferredMaintenanceWindow"),
    ("DeletionProtection", "DeletionProtection"),
    ("EnabledCloudwatchLogsExports", "EnableCloudwatchLogsExports"),
    ("CopyTagsToSnapshot", "CopyTagsToSnapshot"),
    ("ServerlessV2ScalingConfiguration", "ServerlessV2ScalingConfiguration"),
    ("PerformanceInsightsEnabled", "EnablePerformanceInsights"),
    ("PerformanceInsightsKMSKeyId", "PerformanceInsightsKMSKeyId"),
    ("PerformanceInsightsRetentionPeriod", "PerformanceInsightsRetentionPeriod"),
    ("MonitoringInterval", "MonitoringInterval"),
    ("MonitoringRoleArn", "MonitoringRoleArn"),
    ("BacktrackWindow", "BacktrackWindow"),
    ("HttpEndpointEnabled", "EnableHttpEndpoint"),
    ("NetworkType", "NetworkType"),
    ("StorageType", "StorageType"),
    ("Iops", "Iops"),
    ("DBClusterInstanceClass", "DBClusterInstanceClass"),
    ("AutoMinorVersionUpgrade", "AutoMinorVersionUpgrade"),
    ("AssociatedRoles", "AssociatedRoles"),
    ("TagList", "Tags"),
)

# A member instance of an Aurora cluster.
MEMBER_FIELDS = (
    ("DBInstanceClass", "DBInstanceClass"),
    ("Engine", "Engine"),
    ("PromotionTier", "PromotionTier"),
    ("DBParameterGroups", "DBParameterGroupName"),
    ("AvailabilityZone", "AvailabilityZone"),
    ("PubliclyAccessible", "PubliclyAccessible"),
    ("AutoMinorVersionUpgrade", "AutoMinorVersionUpgrade"),
    ("PreferredMaintenanceWindow", "PreferredMaintenanceWindow"),
    ("CACertificateIdentifier", "CACertificateIdentifier"),
    ("PerformanceInsightsEnabled", "EnablePerformanceInsights"),
    ("PerformanceInsightsKMSKeyId", "PerformanceInsightsKMSKeyId"),
    ("PerformanceInsightsRetentionPeriod", "PerformanceInsightsRetentionPeriod"),
    ("MonitoringInterval", "MonitoringInterval"),
    ("MonitoringRoleArn", "MonitoringRoleArn"),
    ("TagList", "Tags"),
)

# A standalone (non-Aurora) DB instance: the member settings plus what a cluster holds for Aurora.
INSTANCE_FIELDS = MEMBER_FIELDS + (
    ("EngineVersion", "EngineVersion"),
    ("LicenseModel", "LicenseModel"),
    ("AllocatedStorage", "AllocatedStorage"),
    ("MaxAllocatedStorage", "MaxAllocatedStorage"),
    ("StorageType", "StorageType"),
    ("Iops", "Iops"),
    ("StorageThroughput", "StorageThroughput"),
    ("MultiAZ", "MultiAZ"),
    ("DBSubnetGroup", "DBSubnetGroupName"),
    ("VpcSecurityGroups", "VpcSecurityGroupIds"),
    ("Endpoint", "Port"),
    ("DBName", "DBName"),
    ("MasterUsername", "MasterUsername"),
    ("OptionGroupMemberships", "OptionGroupName"),
    ("IAMDatabaseAuthenticationEnabled", "EnableIAMDatabaseAuthentication"),
    ("BackupRetentionPeriod", "BackupRetentionPeriod"),
    ("PreferredBackupWindow", "PreferredBackupWindow"),
    ("DeletionProtection", "DeletionProtection"),
    ("EnabledCloudwatchLogsExports", "EnableCloudwatchLogsExports"),
    ("CopyTagsToSnapshot", "CopyTagsToSnapshot"),
)

# Set at creation only, or describing the data rather than the configuration: never sent in a modify call.
NOT_MODIFIABLE = frozenset(("Engine", "EngineMode", "DatabaseName", "DBName", "MasterUsername", "AvailabilityZone",
                            "LicenseModel", "AssociatedRoles", "Tags", "DBSubnetGroupName"))
# Parameters a secondary cluster of a global database must not be given (it takes them from the primary).
SECONDARY_OMITS = frozenset(("MasterUsername", "DatabaseName", "BackupRetentionPeriod"))


def user_tags(tag_list) -> dict:
    """Tags as a dict, without the bookkeeping tags this collection sets (byok:*)."""
    return {t["Key"]: t["Value"] for t in tag_list or [] if not t["Key"].startswith(BYOK_TAG_PREFIX)}


def tag_list(tags: dict) -> list:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def _normalize(field: str, value):
    """One comparable value per field (names instead of nested structures, sorted lists)."""
    if value is None:
        return None
    if field == "VpcSecurityGroups":
        return sorted(g["VpcSecurityGroupId"] for g in value)
    if field == "DBParameterGroups":
        return value[0]["DBParameterGroupName"] if value else None
    if field == "DBSubnetGroup" and isinstance(value, dict):
        return value.get("DBSubnetGroupName")
    if field == "Endpoint":
        return value.get("Port") if isinstance(value, dict) else None
    if field == "OptionGroupMemberships":
        # default:<engine>-<version> is what RDS attaches when none is given; naming it explicitly is refused.
        name = value[0]["OptionGroupName"] if value else None
        return None if not name or name.startswith("default:") else name
    if field == "EnabledCloudwatchLogsExports":
        return sorted(value)
    if field == "TagList":
        return user_tags(value)
    if field == "AssociatedRoles":
        return sorted(({"RoleArn": r["RoleArn"], "FeatureName": r.get("FeatureName", "")} for r in value),
                      key=lambda r: (r["RoleArn"], r["FeatureName"]))
    if field == "ServerlessV2ScalingConfiguration":
        return {k: v for k, v in value.items() if k in ("MinCapacity", "MaxCapacity", "SecondsUntilAutoPause")} or None
    return value


def _read(description: dict, fields) -> dict:
    settings = {}
    for field, param in fields:
        value = _normalize(field, description.get(field))
        if value is not None and value != [] and value != {}:
            settings[param] = value
        elif field == "TagList":
            settings[param] = {}
    return settings


def cluster_settings(cluster: dict) -> dict:
    """{API parameter: value} of an Aurora cluster description, byok:* tags left out."""
    return _read(cluster, CLUSTER_FIELDS)


def member_settings(instance: dict) -> dict:
    settings = _read(instance, MEMBER_FIELDS)
    settings["IsClusterWriter"] = bool(instance.get("_is_writer"))
    return settings


def instance_settings(instance: dict) -> dict:
    return _read(instance, INSTANCE_FIELDS)


def base_name(identifier: str, suffix: str) -> str:
    """The original instance name of an instance renamed with `suffix` (unchanged when it has none)."""
    return identifier[: -len(suffix)] if suffix and identifier.endswith(suffix) else identifier


def member_base(identifier: str, suffixes=()) -> str:
    """The original name of an instance under a re-key suffix, or a Blue/Green green name (<name>-green-xxxxxx)."""
    for suffix in suffixes:
        identifier = base_name(identifier, suffix)
    return GREEN_SUFFIX.sub("", identifier)


def differences(before: dict, after: dict, where: str = "") -> list:
    """Fields that differ, as 'where.Field: before -> after' lines (empty when identical)."""
    lines = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            lines.append(f"{where}{key}: {before.get(key)!r} -> {after.get(key)!r}")
    return lines


def create_kwargs(settings: dict, accepted, extra_tags: dict | None = None, omit=()) -> dict:
    """The part of `settings` an API call accepts (`accepted`: its input member names), tags as a TagList."""
    kwargs = {}
    for param, value in settings.items():
        if param in omit or param not in accepted or param == "IsClusterWriter":
            continue
        if param == "Tags":
            value = tag_list({**value, **(extra_tags or {})})
        kwargs[param] = value
    if "Tags" in accepted and "Tags" not in kwargs and extra_tags:
        kwargs["Tags"] = tag_list(extra_tags)
    return kwargs


def modify_kwargs(wanted: dict, actual: dict, accepted) -> dict:
    """A modify call that brings `actual` to `wanted` (empty when nothing the call can change differs)."""
    kwargs = {}
    for param, value in wanted.items():
        if param in NOT_MODIFIABLE or actual.get(param) == value:
            continue
        if param == "EnableCloudwatchLogsExports":
            have = set(actual.get(param) or [])
            want = set(value or [])
            kwargs["CloudwatchLogsExportConfiguration"] = {"EnableLogTypes": sorted(want - have),
                                                           "DisableLogTypes": sorted(have - want)}
        elif param in accepted:
            kwargs[param] = value
    return kwargs
