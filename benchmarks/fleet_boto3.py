# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet's reads from plain boto3: what the key check and the audit of playbooks/byok.yml ask AWS, nothing more.

The baseline of benchmarks/fleet.py. Per customer, in the order the playbook makes them:
  byok_config   sts:AssumeRole (the automation role)
  byok_key      per distinct key: kms:DescribeKey, GetKeyRotationStatus, sts:GetCallerIdentity and the probe
                (Encrypt DryRun, GenerateDataKey + Decrypt, CreateGrant DryRun); the key policy comes from the
                inventory's key-policies/ (KMS lets no other account read it), so there is no GetKeyPolicy
  byok_audit    per bucket GetBucketEncryption, ListObjectsV2, HeadObject for up to 20 objects; per database
                DescribeDBClusters and DescribeDBInstances (its members); the cluster's launch templates and their
                default versions, volumes and instances; the kops instance-group documents in the state store
(plugins/modules/kms_policy_check.py, plugins/module_utils/kms/key_check.py and encryption_audit.py make these calls.)
Customers run concurrently on `concurrency` threads, as Ansible runs them on forks; a customer's calls run one
after the other, as a sequential script would make them.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

PROBE_CONTEXT = {"purpose": "byok-key-check"}
OBJECT_SAMPLE = 20
CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=4)


class Reader:
    """One boto3 session for the run; clients per customer (its assumed-role credentials) and region."""

    def __init__(self, endpoint_url: str, base_credentials: dict[str, str]):
        self.endpoint_url = endpoint_url
        self.base = base_credentials
        self.session = boto3.Session(botocore_session=botocore.session.Session(session_vars={"profile": (None, None, None, None)}))

    def client(self, service, region, creds):
        return self.session.client(service, region_name=region, endpoint_url=self.endpoint_url, config=CONFIG,
                                   aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                                   aws_session_token=creds.get("SessionToken"))

    def customer(self, spec: dict) -> int:
        """All of one customer's reads; returns how many calls were made."""
        calls = 0
        base = {"AccessKeyId": self.base["AWS_ACCESS_KEY_ID"], "SecretAccessKey": self.base["AWS_SECRET_ACCESS_KEY"],
                "SessionToken": self.base.get("AWS_SESSION_TOKEN")}
        sts = self.client("sts", spec["region"], base)
        creds = sts.assume_role(RoleArn=spec["assume_role_arn"], RoleSessionName=f"byok-{spec['name']}")["Credentials"]
        calls += 1
        clients = {}

        def aws(service, region):
            if (service, region) not in clients:
                clients[(service, region)] = self.client(service, region, creds)
            return clients[(service, region)]

        for key in spec["distinct_keys"]:
            calls += self.key_check(aws("kms", key["region"]), aws("sts", key["region"]), key["arn"], spec["autoscaling_role"])
        s3 = aws("s3", spec["region"])
        for bucket in spec["buckets"]:
            calls += self.bucket(s3, bucket)
        for db in spec["rds_clusters"]:
            rds = aws("rds", db["region"])
            cluster = rds.describe_db_clusters(DBClusterIdentifier=db["identifier"])["DBClusters"][0]
            calls += 1
            if cluster.get("DBClusterMembers"):
                rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [db["identifier"]]}])
                calls += 1
        calls += self.kops(aws("ec2", spec["region"]), s3, spec)
        return calls

    @staticmethod
    def key_check(kms, sts, arn, grantee) -> int:
        kms.describe_key(KeyId=arn)
        try:
            kms.get_key_rotation_status(KeyId=arn)
        except ClientError:
            pass  # not readable cross-account unless the policy allows it; the module tolerates it too
        caller = sts.get_caller_identity()["Arn"]
        calls = 3
        try:
            kms.encrypt(KeyId=arn, Plaintext=b"byok", EncryptionContext=PROBE_CONTEXT, DryRun=True)
        except ClientError as e:
            if e.response["Error"]["Code"] != "DryRunOperationException":
                raise
        data_key = kms.generate_data_key(KeyId=arn, KeySpec="AES_256", EncryptionContext=PROBE_CONTEXT)
        kms.decrypt(KeyId=arn, CiphertextBlob=data_key["CiphertextBlob"], EncryptionContext=PROBE_CONTEXT)
        calls += 3
        try:
            granted = kms.create_grant(KeyId=arn, GranteePrincipal=grantee or caller, RetiringPrincipal=caller,
                                       Operations=["Decrypt", "Encrypt", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom",
                                                   "ReEncryptTo", "CreateGrant", "DescribeKey"], DryRun=True)
            kms.retire_grant(KeyId=arn, GrantId=granted["GrantId"])
            calls += 1
        except ClientError as e:
            if e.response["Error"]["Code"] != "DryRunOperationException":
                raise
        return calls + 1

    @staticmethod
    def bucket(s3, bucket) -> int:
        try:
            s3.get_bucket_encryption(Bucket=bucket)
        except ClientError as e:
            if e.response["Error"]["Code"] != "ServerSideEncryptionConfigurationNotFoundError":
                raise
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, MaxKeys=1000).get("Contents", [])]
        sample = keys[:OBJECT_SAMPLE]
        for key in sample:
            s3.head_object(Bucket=bucket, Key=key)
        return 2 + len(sample)

    @staticmethod
    def kops(ec2, s3, spec) -> int:
        calls = 0
        tag = [{"Name": "tag:KubernetesCluster", "Values": [spec["cluster_name"]]}]
        for page in ec2.get_paginator("describe_launch_templates").paginate(Filters=tag):
            calls += 1
            for template in page["LaunchTemplates"]:
                ec2.describe_launch_template_versions(LaunchTemplateId=template["LaunchTemplateId"], Versions=["$Default"])
                calls += 1
        volumes = {v["VolumeId"] for page in ec2.get_paginator("describe_volumes").paginate(Filters=tag) for v in page["Volumes"]}
        calls += 1
        attached = []
        states = [{"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]
        for page in ec2.get_paginator("describe_instances").paginate(Filters=tag + states):
            calls += 1
            attached += [m["Ebs"]["VolumeId"] for r in page["Reservations"] for i in r["Instances"]
                         for m in i.get("BlockDeviceMappings", []) if m.get("Ebs")]
        missing = [v for v in attached if v not in volumes]
        if missing:
            ec2.describe_volumes(VolumeIds=missing)
            calls += 1
        listing = s3.list_objects_v2(Bucket=spec["state_store"], Prefix=f"{spec['cluster_name']}/instancegroup/").get("Contents", [])
        calls += 1
        for obj in listing:
            s3.get_object(Bucket=spec["state_store"], Key=obj["Key"])["Body"].read()
            calls += 1
        return calls


class WatchReader(Reader):
    """The key watch's reads (playbooks/key_watch.yml, plugins/module_utils/kms/key_watch.py), nothing more:
    sts:AssumeRole; per distinct key DescribeKey, GetKeyPolicy (refused cross-account), GetCallerIdentity and the
    probe; ListRetirableGrants once; per bucket GetBucketEncryption; per database DescribeDBClusters and
    DescribeDBInstances; the launch templates and their default versions; GetObject of the kept state."""

    def customer(self, spec: dict) -> int:
        base = {"AccessKeyId": self.base["AWS_ACCESS_KEY_ID"], "SecretAccessKey": self.base["AWS_SECRET_ACCESS_KEY"],
                "SessionToken": self.base.get("AWS_SESSION_TOKEN")}
        creds = self.client("sts", spec["region"], base).assume_role(
            RoleArn=spec["assume_role_arn"], RoleSessionName=f"byok-{spec['name']}")["Credentials"]
        calls, clients = 1, {}

        def aws(service, region):
            if (service, region) not in clients:
                clients[(service, region)] = self.client(service, region, creds)
            return clients[(service, region)]

        calls += 1
        caller = aws("sts", spec["region"]).get_caller_identity()["Arn"]
        for key in spec["distinct_keys"]:
            kms = aws("kms", key["region"])
            state = kms.describe_key(KeyId=key["arn"])["KeyMetadata"]["KeyState"]
            try:
                kms.get_key_policy(KeyId=key["arn"], PolicyName="default")
            except ClientError:
                pass  # another account's key: KMS refuses, as it does the watch
            calls += 2
            if state == "Enabled":
                calls += self.probe(kms, key["arn"], spec["autoscaling_role"], caller)
        kms = aws("kms", spec["region"])
        provider = spec["assume_role_arn"].split(":")[4]
        kms.list_retirable_grants(RetiringPrincipal=f"arn:aws:iam::{provider}:root", Limit=100)
        calls += 1
        s3 = aws("s3", spec["region"])
        for bucket in spec["buckets"]:
            try:
                s3.get_bucket_encryption(Bucket=bucket)
            except ClientError as e:
                if e.response["Error"]["Code"] != "ServerSideEncryptionConfigurationNotFoundError":
                    raise
            calls += 1
        for db in spec["rds_clusters"]:
            rds = aws("rds", db["region"])
            cluster = rds.describe_db_clusters(DBClusterIdentifier=db["identifier"])["DBClusters"][0]
            calls += 1
            if cluster.get("DBClusterMembers"):
                rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [db["identifier"]]}])
                calls += 1
        if spec.get("ebs", True):
            ec2 = aws("ec2", spec["region"])
            tag = [{"Name": "tag:KubernetesCluster", "Values": [spec["cluster_name"]]}]
            for page in ec2.get_paginator("describe_launch_templates").paginate(Filters=tag):
                calls += 1
                for template in page["LaunchTemplates"]:
                    ec2.describe_launch_template_versions(LaunchTemplateId=template["LaunchTemplateId"], Versions=["$Default"])
                    calls += 1
        try:
            s3.get_object(Bucket=spec["state_store"], Key=f"byok-key-watch/{spec['name']}.json")["Body"].read()
        except ClientError:
            pass
        return calls + 1

    @staticmethod
    def probe(kms, arn, grantee, caller) -> int:
        try:
            kms.encrypt(KeyId=arn, Plaintext=b"byok", EncryptionContext=PROBE_CONTEXT, DryRun=True)
        except ClientError as e:
            if e.response["Error"]["Code"] != "DryRunOperationException":
                raise
        data_key = kms.generate_data_key(KeyId=arn, KeySpec="AES_256", EncryptionContext=PROBE_CONTEXT)
        kms.decrypt(KeyId=arn, CiphertextBlob=data_key["CiphertextBlob"], EncryptionContext=PROBE_CONTEXT)
        try:
            granted = kms.create_grant(KeyId=arn, GranteePrincipal=grantee or caller, RetiringPrincipal=caller,
                                       Operations=["Decrypt", "Encrypt", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom",
                                                   "ReEncryptTo", "CreateGrant", "DescribeKey"], DryRun=True)
            kms.retire_grant(KeyId=arn, GrantId=granted["GrantId"])
            return 5
        except ClientError as e:
            if e.response["Error"]["Code"] != "DryRunOperationException":
                raise
        return 4


def read_fleet(endpoint_url: str, base_credentials: dict[str, str], customers: list[dict], concurrency: int = 20,
               watch: bool = False) -> dict:
    """Every customer's reads (the key watch's with `watch`); returns seconds, calls and this process's CPU seconds."""
    reader = (WatchReader if watch else Reader)(endpoint_url, base_credentials)
    started, cpu = time.monotonic(), time.process_time()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        calls = sum(pool.map(reader.customer, customers))
    return {"seconds": time.monotonic() - started, "cpu_seconds": time.process_time() - cpu, "calls": calls}
