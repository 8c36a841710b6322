# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers shared by the rds_reencrypt tests (no tests here): databases with every setting the re-key must carry
over, and an independent reader that compares two databases field by field with boto3 directly (it does not use
the collection's own settings code)."""

from __future__ import annotations

import uuid

PROVIDER = "222222222222"
CUSTOMER = "111111111101"
PASSWORD = "not-a-secret-123"

# Fields of DescribeDBClusters that must be equal before and after (identifiers, ARNs, times, status, the key and
# the resource id are expected to differ or are compared separately).
CLUSTER_FIELDS = ("Engine", "EngineVersion", "EngineMode", "DBClusterParameterGroup", "DBSubnetGroup", "Port",
                  "DatabaseName", "MasterUsername", "IAMDatabaseAuthenticationEnabled", "BackupRetentionPeriod",
                  "PreferredBackupWindow", "PreferredMaintenanceWindow", "EnabledCloudwatchLogsExports",
                  "CopyTagsToSnapshot", "ServerlessV2ScalingConfiguration", "StorageEncrypted", "HttpEndpointEnabled",
                  "AutoMinorVersionUpgrade", "NetworkType")
MEMBER_FIELDS = ("DBInstanceClass", "Engine", "PromotionTier", "AvailabilityZone", "PubliclyAccessible",
                 "AutoMinorVersionUpgrade", "PerformanceInsightsEnabled", "PerformanceInsightsRetentionPeriod",
                 "MonitoringInterval", "MonitoringRoleArn", "CACertificateIdentifier")
INSTANCE_FIELDS = MEMBER_FIELDS + ("EngineVersion", "AllocatedStorage", "StorageType", "MultiAZ", "DBName",
                                   "MasterUsername", "IAMDatabaseAuthenticationEnabled", "BackupRetentionPeriod",
                                   "PreferredBackupWindow", "PreferredMaintenanceWindow", "EnabledCloudwatchLogsExports",
                                   "CopyTagsToSnapshot", "StorageEncrypted")


def _tags(tag_list):
    return {t["Key"]: t["Value"] for t in tag_list or [] if not t["Key"].startswith("byok:")}


def cluster_view(rds, identifier, strip=()):
    """What an SRE would check of a cluster: settings, security groups, tags, and per instance its settings."""
    c = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
    view = {f: c.get(f) for f in CLUSTER_FIELDS}
    view["VpcSecurityGroups"] = sorted(g["VpcSecurityGroupId"] for g in c.get("VpcSecurityGroups", []))
    view["Tags"] = _tags(rds.list_tags_for_resource(ResourceName=c["DBClusterArn"])["TagList"])
    view["instances"] = {}
    for m in c["DBClusterMembers"]:
        i = rds.describe_db_instances(DBInstanceIdentifier=m["DBInstanceIdentifier"])["DBInstances"][0]
        name = m["DBInstanceIdentifier"]
        for s in strip:
            if name.endswith(s):
                name = name[: -len(s)]
        item = {f: i.get(f) for f in MEMBER_FIELDS}
        item["writer"] = m["IsClusterWriter"]
        item["DBParameterGroup"] = [g["DBParameterGroupName"] for g in i.get("DBParameterGroups", [])]
        item["Tags"] = _tags(i.get("TagList"))
        view["instances"][name] = item
    return view


def instance_view(rds, identifier):
    i = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    view = {f: i.get(f) for f in INSTANCE_FIELDS}
    view["Port"] = (i.get("Endpoint") or {}).get("Port")
    view["DBSubnetGroup"] = (i.get("DBSubnetGroup") or {}).get("DBSubnetGroupName")
    view["VpcSecurityGroups"] = sorted(g["VpcSecurityGroupId"] for g in i.get("VpcSecurityGroups", []))
    view["DBParameterGroup"] = [g["DBParameterGroupName"] for g in i.get("DBParameterGroups", [])]
    view["Tags"] = _tags(rds.list_tags_for_resource(ResourceName=i["DBInstanceArn"])["TagList"])
    return view


def key_of(rds, identifier, kind="cluster"):
    if kind == "cluster":
        return rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]["KmsKeyId"]
    return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]["KmsKeyId"]


def inventory(rds, identifier):
    """Every cluster, instance, snapshot and Blue/Green deployment whose name starts with `identifier`."""
    def named(operation, items, key, **kwargs):
        # Paginated: the shared local AWS holds every test's resources, past a page's 100.
        pages = rds.get_paginator(operation).paginate(**kwargs)
        return sorted(x[key] for page in pages for x in page[items] if x[key].startswith(identifier))
    return {
        "clusters": named("describe_db_clusters", "DBClusters", "DBClusterIdentifier"),
        "instances": named("describe_db_instances", "DBInstances", "DBInstanceIdentifier"),
        "cluster_snapshots": named("describe_db_cluster_snapshots", "DBClusterSnapshots", "DBClusterSnapshotIdentifier", SnapshotType="manual"),
        "snapshots": named("describe_db_snapshots", "DBSnapshots", "DBSnapshotIdentifier", SnapshotType="manual"),
        "deployments": named("describe_blue_green_deployments", "BlueGreenDeployments", "BlueGreenDeploymentName"),
    }


_CACHE = {}


def network(aws, region="us-east-1"):
    """A subnet group and a security group in the default VPC (one pair per local AWS and region)."""
    cache_key = ("network", aws.endpoint_url, region)
    if cache_key not in _CACHE:
        _CACHE[cache_key] = _network(aws, region)
    return _CACHE[cache_key]


def _network(aws, region):
    ec2 = aws.client("ec2", account=PROVIDER, region=region)
    rds = aws.client("rds", account=PROVIDER, region=region)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]][:2]
    suffix = uuid.uuid4().hex[:8]
    group = rds.create_db_subnet_group(DBSubnetGroupName=f"rds-test-{suffix}", DBSubnetGroupDescription="test",
                                       SubnetIds=subnets)["DBSubnetGroup"]["DBSubnetGroupName"]
    sg = ec2.create_security_group(GroupName=f"rds-test-{suffix}", Description="test", VpcId=vpc)["GroupId"]
    return group, sg


def new_key(aws, account=CUSTOMER, region="us-east-1", state="Enabled", fresh=False):
    """A symmetric key; Enabled keys are shared per local AWS, account and region unless `fresh` (KMS
    CreateKey is the slowest call of the local AWS)."""
    cache_key = ("key", aws.endpoint_url, account, region)
    if state == "Enabled" and not fresh:
        if cache_key not in _CACHE:
            _CACHE[cache_key] = new_key(aws, account, region, fresh=True)
        return _CACHE[cache_key]
    kms = aws.client("kms", account=account, region=region)
    key = kms.create_key(Description="rds test key")["KeyMetadata"]
    if state == "Disabled":
        kms.disable_key(KeyId=key["KeyId"])
    return key["Arn"]


def make_cluster(aws, name, key_arn, region="us-east-1", engine="aurora-postgresql", replication=True, instances=2,
                 global_cluster=None, primary=True):
    """An Aurora cluster with a custom cluster parameter group, subnet and security groups, IAM auth, log exports,
    backups and windows, Serverless v2 scaling, tags, and instances with classes, tiers, PI and monitoring."""
    rds = aws.client("rds", account=PROVIDER, region=region)
    subnet_group, sg = network(aws, region)
    family = "aurora-postgresql15" if engine == "aurora-postgresql" else "aurora-mysql8.0"
    group = f"{name}-params"
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=group, DBParameterGroupFamily=family, Description="t")
    if replication:
        parameter = ("rds.logical_replication", "1") if engine == "aurora-postgresql" else ("binlog_format", "ROW")
        rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=group, Parameters=[
            {"ParameterName": parameter[0], "ParameterValue": parameter[1], "ApplyMethod": "pending-reboot"}])
    instance_group = f"{name}-instance-params"
    rds.create_db_parameter_group(DBParameterGroupName=instance_group, DBParameterGroupFamily=family, Description="t")
    params = dict(DBClusterIdentifier=name, Engine=engine, EngineVersion="15.4" if engine == "aurora-postgresql" else "8.0.mysql_aurora.3.05.2",
                  Port=5432 if engine == "aurora-postgresql" else 3306, StorageEncrypted=True, KmsKeyId=key_arn,
                  DBClusterParameterGroupName=group, DBSubnetGroupName=subnet_group, VpcSecurityGroupIds=[sg],
                  EnableIAMDatabaseAuthentication=True, BackupRetentionPeriod=14, PreferredBackupWindow="03:00-04:00",
                  PreferredMaintenanceWindow="sun:06:00-sun:07:00", EnableCloudwatchLogsExports=["postgresql"] if engine == "aurora-postgresql" else ["error"],
                  CopyTagsToSnapshot=True, ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 8.0},
                  Tags=[{"Key": "Customer", "Value": "test"}, {"Key": "Environment", "Value": "test"}])
    if global_cluster:
        params["GlobalClusterIdentifier"] = global_cluster
    if primary:
        params.update(MasterUsername="mmuser", MasterUserPassword=PASSWORD, DatabaseName="mattermost")
    else:
        params.pop("BackupRetentionPeriod")
    rds.create_db_cluster(**params)
    for n in range(1, instances + 1):
        rds.create_db_instance(DBInstanceIdentifier=f"{name}-{n}", DBClusterIdentifier=name, Engine=engine,
                               DBInstanceClass="db.r6g.large" if n == 1 else "db.r6g.xlarge", PromotionTier=n,
                               DBParameterGroupName=instance_group, EnablePerformanceInsights=True,
                               PerformanceInsightsRetentionPeriod=7, MonitoringInterval=60,
                               MonitoringRoleArn=f"arn:aws:iam::{PROVIDER}:role/rds-monitoring",
                               Tags=[{"Key": "Customer", "Value": "test"}])
    return name


def make_instance(aws, name, key_arn, region="us-east-1"):
    rds = aws.client("rds", account=PROVIDER, region=region)
    subnet_group, sg = network(aws, region)
    group = f"{name}-params"
    rds.create_db_parameter_group(DBParameterGroupName=group, DBParameterGroupFamily="postgres15", Description="t")
    rds.modify_db_parameter_group(DBParameterGroupName=group, Parameters=[
        {"ParameterName": "rds.logical_replication", "ParameterValue": "1", "ApplyMethod": "pending-reboot"}])
    rds.create_db_instance(DBInstanceIdentifier=name, Engine="postgres", EngineVersion="15.7", DBInstanceClass="db.m6g.large",
                           AllocatedStorage=100, StorageType="gp3", DBName="mattermost", MasterUsername="mmuser",
                           MasterUserPassword=PASSWORD, StorageEncrypted=True, KmsKeyId=key_arn, DBParameterGroupName=group,
                           DBSubnetGroupName=subnet_group, VpcSecurityGroupIds=[sg], Port=5432, BackupRetentionPeriod=7,
                           PreferredBackupWindow="03:00-04:00", PreferredMaintenanceWindow="sun:06:00-sun:07:00",
                           EnableIAMDatabaseAuthentication=True, EnableCloudwatchLogsExports=["postgresql"],
                           EnablePerformanceInsights=True, MonitoringInterval=60,
                           MonitoringRoleArn=f"arn:aws:iam::{PROVIDER}:role/rds-monitoring", CopyTagsToSnapshot=True,
                           Tags=[{"Key": "Customer", "Value": "test"}])
    return name


DAY = 86400.0


def time_box_ends_after(monkeypatch, step: str, primary: str | None = None, secondary: str | None = None) -> float:
    """Fault injection for the resume tests: the run stops right after `step`, as if killed there.

    The clock rds_reencrypt reads jumps a day forward the moment that step returns, so a run given the returned
    max_seconds finds its time box over and stops where a time-boxed run stops, with every step before it done in
    AWS. `step` is a step of Reencrypt, or "s:<step>" / "p:<step>" of a global database's secondary / primary
    member, or "switchover_to" / "switchover_back" of the global database. Later runs (max_seconds None) are not
    stopped; `monkeypatch.undo()` puts everything back.
    """
    from ansible_collections.mattermost.byok.plugins.module_utils.rds import reencrypt as rds_reencrypt  # pylint: disable=import-outside-toplevel

    offset = [0.0]
    real_now = rds_reencrypt._now  # pylint: disable=protected-access
    monkeypatch.setattr(rds_reencrypt, "_now", lambda: real_now() + offset[0])
    member, _sep, name = step.rpartition(":")
    if name in ("switchover_to", "switchover_back"):
        switchover = rds_reencrypt.GlobalReencrypt.switchover

        def stopping_switchover(self, target):
            switchover(self, target)
            if (target == self.primary) == (name == "switchover_back"):
                offset[0] += DAY

        monkeypatch.setattr(rds_reencrypt.GlobalReencrypt, "switchover", stopping_switchover)
        return DAY / 2
    cluster = {"s": secondary, "p": primary}.get(member)
    driver = rds_reencrypt.SecondaryReencrypt if member else rds_reencrypt.Reencrypt
    run_step = getattr(driver, "step_" + name)

    def stopping_step(self, facts):
        run_step(self, facts)
        if cluster is None or self.names.identifier == cluster:
            offset[0] += DAY

    monkeypatch.setattr(driver, "step_" + name, stopping_step)
    return DAY / 2
