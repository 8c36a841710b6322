# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""s3_bucket_kms with engine=batch_job (S3 Batch Operations) through ansible-playbook against the local AWS, read back
with plain boto3: the same end state as the controller engine, a killed run's job followed, a finished bucket left alone."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from datetime import datetime, timedelta, timezone

import pytest

from tests.integration.test_s3_bucket_kms import PROVIDER
from tests.integration.test_s3_bucket_kms import key_arn, old_key  # noqa: F401  pylint: disable=unused-import
from tests.integration.test_s3_bucket_kms import make_bucket
from tests.integration.test_s3_bucket_kms import process_tree
from tests.integration.test_s3_bucket_kms import run_module
from tests.integration.test_s3_bucket_kms import snapshot
from tests.integration.test_s3_bucket_kms import start_run
from tests.integration.test_s3_bucket_kms import without_key

MIB = 1024 * 1024
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "batchoperations.s3.amazonaws.com"},
                                                 "Action": "sts:AssumeRole"}]}


@pytest.fixture
def job_role(local_aws, unique_name):
    """The role S3 Batch Operations assumes: trusts the service, may read and write the buckets and use the keys."""
    iam = local_aws.client("iam", account=PROVIDER)
    name = unique_name("mattermost-byok-s3-batch")[:64]
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="job", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging", "s3:PutObject",
                                       "s3:PutObjectTagging", "s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation",
                                       "s3:UpdateObjectEncryption"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:ReEncrypt*"], "Resource": "*"}]}))
    return arn


def body(key: str, size: int = 256) -> bytes:
    """The same content for a key in every bucket (the two engines' buckets are compared object by object)."""
    seed = hashlib.sha256(key.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


SSEC_KEY = hashlib.sha256(b"customer-provided").digest()


def seed_mixed(s3, bucket, extra=0):
    """Mixed storage classes, tags, metadata, content headers, checksums, an archived object, a multipart-sized object
    (above the lowered 5 MiB threshold) and an SSE-C object."""
    for i in range(6):
        key = f"std/{i}"
        s3.put_object(Bucket=bucket, Key=key, Body=body(key), Metadata={"i": str(i)}, Tagging=f"n={i}&team=a",
                      ContentType="text/plain", CacheControl="max-age=60", ContentDisposition="attachment")
    for i in range(3):
        key = f"ia/{i}"
        s3.put_object(Bucket=bucket, Key=key, Body=body(key, 2048), StorageClass="STANDARD_IA", ChecksumAlgorithm="SHA256",
                      Metadata={"k": "v"})
    for i in range(2):
        key = f"onezone/{i}"
        s3.put_object(Bucket=bucket, Key=key, Body=body(key), StorageClass="ONEZONE_IA", ChecksumAlgorithm="CRC32", Tagging="z=1")
    s3.put_object(Bucket=bucket, Key="it/0", Body=body("it/0"), StorageClass="INTELLIGENT_TIERING")
    s3.put_object(Bucket=bucket, Key="cold/glacier.bin", Body=b"cold", StorageClass="GLACIER")
    s3.put_object(Bucket=bucket, Key="large/archive.tar", Body=body("large", 6 * MIB), ContentType="application/x-tar",
                  Metadata={"kind": "full"}, Tagging="backup=weekly", StorageClass="STANDARD_IA")
    s3.put_object(Bucket=bucket, Key="secret/ssec.bin", Body=b"customer", SSECustomerAlgorithm="AES256", SSECustomerKey=SSEC_KEY)
    for i in range(extra):
        key = f"many/{i:05d}"
        s3.put_object(Bucket=bucket, Key=key, Body=body(key, 64), Metadata={"i": str(i)})


LOCK_UNTIL = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=2)


def seed_locks(s3, bucket):
    """Object lock of the objects' own: a retention with a legal hold, a legal hold put OFF (kept as OFF by a copy
    that sends it), and one with retention only; the other objects have none."""
    s3.put_object(Bucket=bucket, Key="locked/retained", Body=body("locked/retained"), ObjectLockMode="GOVERNANCE",
                  ObjectLockRetainUntilDate=LOCK_UNTIL, ObjectLockLegalHoldStatus="ON", StorageClass="STANDARD_IA")
    s3.put_object(Bucket=bucket, Key="locked/hold-off", Body=body("locked/hold-off"), ObjectLockLegalHoldStatus="OFF")
    s3.put_object(Bucket=bucket, Key="locked/compliance", Body=body("locked/compliance"), ObjectLockMode="GOVERNANCE",
                  ObjectLockRetainUntilDate=LOCK_UNTIL + timedelta(hours=1))


def confirmed(plan, args):
    """The arguments of the run after a check-mode plan: its jobs' digests given back (they may run at once)."""
    digests = [j["digest"] for j in plan["engine"]["jobs"]]
    assert digests and all(len(d) == 12 for d in digests), plan["engine"]["jobs"]
    return {**args, "batch_job_confirm": digests}


def jobs_of(local_aws, bucket):
    control = local_aws.client("s3control", account=PROVIDER)
    jobs, kwargs = [], {}
    while True:
        page = control.list_jobs(AccountId=PROVIDER, **kwargs)
        jobs += [j for j in page.get("Jobs", []) if f" {bucket} " in (j.get("Description") or "")]
        if not page.get("NextToken"):
            return jobs
        kwargs["NextToken"] = page["NextToken"]


def test_job_engine_ends_exactly_as_the_controller_engine(local_aws, tmp_path, unique_name, key_arn, old_key, job_role):
    s3 = local_aws.client("s3", account=PROVIDER)
    # Object lock enabled: the job engine reads each object's lock and leaves those with their own to the controller.
    by_job = make_bucket(s3, unique_name("job"), old_key, ObjectLockEnabledForBucket=True)
    by_controller = make_bucket(s3, unique_name("ctl"), old_key, ObjectLockEnabledForBucket=True)
    state = make_bucket(s3, unique_name("state"), old_key)
    for bucket in (by_job, by_controller):
        seed_mixed(s3, bucket)
        seed_locks(s3, bucket)
    time.sleep(1.1)  # LastModified has one-second resolution: every seeded object is older than the cutoff
    before = snapshot(s3, by_job)
    assert without_key(before) == without_key(snapshot(s3, by_controller))
    common = {"key_arn": key_arn, "multipart_threshold": 5 * MIB, "multipart_part_size": 5 * MIB, "checkpoint_bucket": state,
              "concurrency": 4}
    job_args = {**common, "bucket": by_job, "engine": "batch_job", "batch_job_role_arn": job_role}

    plan = run_module(local_aws, tmp_path, job_args, "--check", name="plan")
    assert snapshot(s3, by_job) == before and not jobs_of(local_aws, by_job), "check mode changed something"
    planned = {j["storage_class"] for j in plan["engine"]["jobs"]}
    assert plan["changed"] and plan["engine"]["name"] == "batch_job" and planned == {"STANDARD", "STANDARD_IA", "ONEZONE_IA",
                                                                                     "INTELLIGENT_TIERING"}
    assert all(j["status"].startswith("planned") and j["key_arn"] == key_arn for j in plan["engine"]["jobs"])

    job_args = confirmed(plan, job_args)
    job = run_module(local_aws, tmp_path, job_args, name="job")
    ctl = run_module(local_aws, tmp_path, {**common, "bucket": by_controller}, name="controller")
    assert job["complete"] and ctl["complete"] and job["failed_count"] == 0 and ctl["failed_count"] == 0, job["failed_objects"]
    assert job["engine"]["name"] == "batch_job" and ctl["engine"]["name"] == "controller"
    made = jobs_of(local_aws, by_job)
    assert len(made) == 4 and {j["Status"] for j in made} == {"Complete"}
    assert all(j.get("manifest", "").startswith(f"arn:aws:s3:::{state}/") for j in job["engine"]["jobs"]), job["engine"]["jobs"]
    after_job, after_ctl = snapshot(s3, by_job), snapshot(s3, by_controller)
    assert after_job["locked/retained"]["ObjectLockLegalHoldStatus"] == "ON"
    assert after_job["locked/retained"]["ObjectLockRetainUntilDate"] == LOCK_UNTIL
    assert after_job["locked/hold-off"]["ObjectLockLegalHoldStatus"] == "OFF"
    assert after_job == after_ctl, "the engines left different objects"
    assert without_key(after_job) == without_key(before), "an attribute changed"
    skipped = {o["key"]: o["reason"] for o in job["skipped_objects"]}
    assert skipped == {o["key"]: o["reason"] for o in ctl["skipped_objects"]}
    assert set(skipped) == {"cold/glacier.bin", "secret/ssec.bin"}
    copied = set(before) - set(skipped)
    assert all(after_job[k]["key"] == key_arn and after_job[k]["sse"] == "aws:kms" for k in copied)
    assert job["re_encrypted"] == ctl["re_encrypted"] == len(copied)
    # The controller's own requests: the listing, the jobs (list, create, describe), the multipart object and the
    # retried SSE-C task - not one per object.
    # Every small object but the three with a lock of their own (the SSE-C one's lock can't be read: the controller's).
    locked = {"locked/retained", "locked/hold-off", "locked/compliance"}
    assert job["to_job"] == len(copied) - 1 - len(locked), job
    by_controller_reasons = {o["key"]: o["reason"] for o in job["by_controller_objects"]}
    assert set(by_controller_reasons) == locked | {"large/archive.tar"}, by_controller_reasons
    assert "legal hold ON" in by_controller_reasons["locked/retained"]
    assert "legal hold OFF" in by_controller_reasons["locked/hold-off"]
    assert "GOVERNANCE retention" in by_controller_reasons["locked/compliance"]
    assert "single-copy limit" in by_controller_reasons["large/archive.tar"]
    assert job["progress_line"].startswith(f"{by_job}: {len(before)}/{len(before)} objects (100.0%)")

    again = run_module(local_aws, tmp_path, job_args, name="again")
    assert not again["changed"] and again["to_job"] == 0 and len(jobs_of(local_aws, by_job)) == 4
    assert snapshot(s3, by_job) == after_job


def test_object_lock_bucket_split_between_job_and_controller_with_the_reason(local_aws, tmp_path, unique_name, key_arn,
                                                                             old_key, job_role):
    s3 = local_aws.client("s3", account=PROVIDER)
    bucket = make_bucket(s3, unique_name("lock"), old_key, ObjectLockEnabledForBucket=True)
    state = make_bucket(s3, unique_name("state"), old_key)
    until = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=2)
    s3.put_object(Bucket=bucket, Key="locked", Body=b"x", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until,
                  ObjectLockLegalHoldStatus="ON")
    s3.put_object(Bucket=bucket, Key="free", Body=b"y")
    s3.put_object(Bucket=bucket, Key="free too", Body=b"z")  # (a space: URL-encoded in the manifest)
    time.sleep(1.1)
    before = snapshot(s3, bucket)
    args = {"bucket": bucket, "key_arn": key_arn, "checkpoint_bucket": state, "engine": "batch_job", "batch_job_role_arn": job_role}
    plan = run_module(local_aws, tmp_path, args, "--check", name="lock-plan")
    assert plan["to_job"] == 2 and not jobs_of(local_aws, bucket) and snapshot(s3, bucket) == before
    args = confirmed(plan, args)
    result = run_module(local_aws, tmp_path, args, name="lock")
    assert result["engine"]["name"] == "batch_job" and "object lock" in result["engine"]["reason"]
    assert result["to_job"] == 2 and result["re_encrypted"] == 3 and result["complete"], result
    assert [o["key"] for o in result["by_controller_objects"]] == ["locked"]
    made = jobs_of(local_aws, bucket)
    assert len(made) == 1 and made[0]["Status"] == "Complete"
    after = snapshot(s3, bucket)
    assert without_key(after) == without_key(before) and all(a["key"] == key_arn for a in after.values())
    again = run_module(local_aws, tmp_path, args, name="lock-again")
    assert not again["changed"] and len(jobs_of(local_aws, bucket)) == 1


def test_killed_run_follows_its_job_and_a_finished_bucket_creates_nothing(local_aws, tmp_path, unique_name, key_arn, old_key,
                                                                          job_role):
    s3 = local_aws.client("s3", account=PROVIDER)
    bucket = make_bucket(s3, unique_name("kill"), old_key)
    state = make_bucket(s3, unique_name("state"), old_key)
    for i in range(50):
        s3.put_object(Bucket=bucket, Key=f"f/{i:04d}", Body=body(f"f/{i}", 64), Metadata={"i": str(i)})
    # The local AWS's slow-task knob: each task of a job on this bucket takes 0.5 s (25 s in all), so the job is still
    # running at the kill and when the next run starts (after its 5 s grace for the dead run).
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "local-aws:batch-task-seconds", "Value": "0.5"}]})
    time.sleep(1.1)
    before = snapshot(s3, bucket)
    args = {"bucket": bucket, "key_arn": key_arn, "checkpoint_bucket": state, "engine": "batch_job", "batch_job_role_arn": job_role}
    args = confirmed(run_module(local_aws, tmp_path, args, "--check", name="plan"), args)

    proc = start_run(local_aws, tmp_path, args, "killed")
    deadline = time.time() + 120
    while time.time() < deadline and not jobs_of(local_aws, bucket):
        assert proc.poll() is None, "the run ended before its job was made"
        time.sleep(0.2)
    made = jobs_of(local_aws, bucket)
    assert len(made) == 1, made
    time.sleep(1.0)  # the job id is saved in the checkpoint right after CreateJob
    for pid in reversed(process_tree(proc.pid)):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    control = local_aws.client("s3control", account=PROVIDER)
    status = control.describe_job(AccountId=PROVIDER, JobId=made[0]["JobId"])["Job"]["Status"]
    assert status not in ("Complete", "Failed", "Cancelled"), f"the job had ended before the kill ({status}): kill earlier"

    # Resumed in time-boxed batches, as the role runs it: each call follows the same job a second, then returns.
    resumed = run_module(local_aws, tmp_path, {**args, "max_seconds": 1}, batches=True, name="resumed")
    assert resumed["complete"] and resumed["failed_count"] == 0 and resumed["attempts"] > 1, resumed.get("attempts")
    assert [j["id"] for j in resumed["engine"]["jobs"]] == [made[0]["JobId"]], "the resumed run did not follow the same job"
    assert len(jobs_of(local_aws, bucket)) == 1, "a second job was made"
    assert control.describe_job(AccountId=PROVIDER, JobId=made[0]["JobId"])["Job"]["Status"] == "Complete"
    after = snapshot(s3, bucket)
    assert without_key(after) == without_key(before) and all(a["key"] == key_arn for a in after.values())

    again = run_module(local_aws, tmp_path, args, name="again")
    assert not again["changed"] and len(jobs_of(local_aws, bucket)) == 1 and again["re_encrypted"] == 0


def all_versions(s3, bucket):
    out = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []):
            head = s3.head_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
            out[(v["Key"], v["VersionId"])] = {"etag": v["ETag"], "modified": v["LastModified"], "size": v["Size"],
                                               "storage_class": v.get("StorageClass"), "latest": v["IsLatest"],
                                               "metadata": head.get("Metadata"), "key": head.get("SSEKMSKeyId")}
        for m in page.get("DeleteMarkers", []):
            out[(m["Key"], m["VersionId"])] = {"delete_marker": True, "latest": m["IsLatest"]}
    return out


def test_external_key_versioned_bucket_rekeyed_in_place_without_copies(local_aws, tmp_path, unique_name, key_arn, old_key):
    """The external-key path: the key is in the provider account, with the bucket, so S3 re-keys each version where it is."""
    s3 = local_aws.client("s3", account=PROVIDER)
    bucket = make_bucket(s3, unique_name("inplace"), old_key)
    state = make_bucket(s3, unique_name("state"), old_key)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for i in range(4):
        for n in range(3):
            s3.put_object(Bucket=bucket, Key=f"k/{i}", Body=body(f"k/{i}/{n}"), Metadata={"n": str(n)},
                          StorageClass="STANDARD_IA" if i == 1 else "STANDARD")
    s3.put_object(Bucket=bucket, Key="cold", Body=b"cold", StorageClass="GLACIER")
    s3.delete_object(Bucket=bucket, Key="k/3")  # a deleted key: its versions are re-keyed too, nothing brought back
    before = all_versions(s3, bucket)
    args = {"bucket": bucket, "key_arn": key_arn, "checkpoint_bucket": state, "update_in_place": True}

    plan = run_module(local_aws, tmp_path, args, "--check", name="plan")
    assert plan["changed"] and plan["re_encrypted"] == 13 and all_versions(s3, bucket) == before

    first = run_module(local_aws, tmp_path, args, name="first")
    assert first["complete"] and first["changed"] and first["engine"]["name"] == "update_in_place", first["engine"]
    assert first["re_encrypted"] == 13 and first["failed_count"] == 0 and first["skipped_count"] == 0
    after = all_versions(s3, bucket)
    assert set(after) == set(before), "version ids or the number of versions changed (a copy was made)"
    for version, attrs in after.items():
        if attrs.get("delete_marker"):
            assert attrs == before[version]
            continue
        assert attrs["key"] == key_arn, version
        assert {k: v for k, v in attrs.items() if k != "key"} == {k: v for k, v in before[version].items() if k != "key"}
    again = run_module(local_aws, tmp_path, args, name="again")
    assert not again["changed"] and again["re_encrypted"] == 0 and again["already_on_key"] == 13
    assert all_versions(s3, bucket) == after


def test_a_failed_job_is_reported_and_the_controller_takes_the_bucket(local_aws, tmp_path, unique_name, key_arn, old_key):
    """A job S3 can't run (here: its role does not trust S3 Batch Operations) fails as a whole: reported with AWS's
    reason, never re-made; the next run copies the bucket with the controller engine."""
    s3 = local_aws.client("s3", account=PROVIDER)
    iam = local_aws.client("iam", account=PROVIDER)
    name = unique_name("mattermost-byok-s3-batch")[:64]
    untrusted = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    bucket = make_bucket(s3, unique_name("failed"), old_key)
    state = make_bucket(s3, unique_name("state"), old_key)
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"f/{i}", Body=body(f"f/{i}"))
    time.sleep(1.1)
    before = snapshot(s3, bucket)
    args = {"bucket": bucket, "key_arn": key_arn, "checkpoint_bucket": state, "engine": "batch_job", "batch_job_role_arn": untrusted,
            "fail_on_object_errors": False}
    first = run_module(local_aws, tmp_path, args, name="first")
    assert first["complete"] and first["failed_count"] == 1 and [j["status"] for j in first["engine"]["jobs"]] == ["Failed"]
    assert "S3 Batch Operations job" in first["failed_objects"][0]["key"] and "Failed" in first["failed_objects"][0]["reason"]
    assert snapshot(s3, bucket) == before  # nothing copied by a job that never ran
    second = run_module(local_aws, tmp_path, args, name="second")
    assert second["engine"]["name"] == "controller" and "Failed" in second["engine"]["reason"]
    assert second["complete"] and second["re_encrypted"] == 5 and second["failed_count"] == 0
    assert len(jobs_of(local_aws, bucket)) == 1, "a second job was made"
    after = snapshot(s3, bucket)
    assert without_key(after) == without_key(before) and all(a["key"] == key_arn for a in after.values())


def test_in_place_refusals_current_copied_noncurrent_reported(local_aws, tmp_path, unique_name, key_arn, old_key):
    """What UpdateObjectEncryption refuses (here unencrypted objects, as its API reference says): the current version is
    copied onto the key like the controller copies it; a noncurrent one can't be copied into its place and is reported."""
    s3 = local_aws.client("s3", account=PROVIDER)
    bucket = unique_name("refused")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    state = make_bucket(s3, unique_name("state"), old_key)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old = s3.put_object(Bucket=bucket, Key="plain", Body=b"v1", Metadata={"n": "1"})["VersionId"]
    current = s3.put_object(Bucket=bucket, Key="plain", Body=b"v2", Metadata={"n": "2"})["VersionId"]
    assert "SSEKMSKeyId" not in s3.head_object(Bucket=bucket, Key="plain")
    time.sleep(1.1)
    result = run_module(local_aws, tmp_path, {"bucket": bucket, "key_arn": key_arn, "checkpoint_bucket": state,
                                              "update_in_place": True, "fail_on_object_errors": False}, name="refused")
    assert result["engine"]["name"] == "update_in_place" and result["complete"] and result["failed_count"] == 0
    assert result["re_encrypted"] == 1 and result["skipped_count"] == 1
    skipped = result["skipped_objects"][0]
    assert skipped["key"] == f"plain?versionId={old}" and "noncurrent" in skipped["reason"], skipped
    versions = s3.list_object_versions(Bucket=bucket, Prefix="plain")["Versions"]
    latest = next(v for v in versions if v["IsLatest"])
    assert len(versions) == 3 and latest["VersionId"] not in (old, current), "the current version was not copied"
    head = s3.head_object(Bucket=bucket, Key="plain")
    assert head["SSEKMSKeyId"] == key_arn and head["Metadata"] == {"n": "2"}
    assert s3.get_object(Bucket=bucket, Key="plain")["Body"].read() == b"v2"


def test_external_key_bucket_above_the_threshold_rekeyed_in_place_by_a_job(local_aws, tmp_path, unique_name, key_arn, old_key,
                                                                           job_role):
    """engine=auto above batch_job_threshold with update_in_place: an S3UpdateObjectEncryption job re-keys the current
    versions, the controller the noncurrent ones; nothing is copied, and a second run makes no job."""
    s3 = local_aws.client("s3", account=PROVIDER)
    bucket = make_bucket(s3, unique_name("inplacejob"), old_key)
    state = make_bucket(s3, unique_name("state"), old_key)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for i in range(6):
        for n in range(2 if i % 2 else 1):
            s3.put_object(Bucket=bucket, Key=f"k/{i}", Body=body(f"k/{i}/{n}"), Metadata={"n": str(n)},
                          StorageClass="STANDARD_IA" if i == 3 else "STANDARD")
    s3.put_object(Bucket=bucket, Key="cold", Body=b"cold", StorageClass="GLACIER")
    before = all_versions(s3, bucket)
    assert len(before) == 10
    args = {"bucket": bucket, "key_arn": key_arn, "checkpoint_bucket": state, "update_in_place": True, "engine": "auto",
            "batch_job_threshold": 5, "batch_job_role_arn": job_role}

    plan = run_module(local_aws, tmp_path, args, "--check", name="plan")
    assert plan["changed"] and [j["operation"] for j in plan["engine"]["jobs"]] == ["S3UpdateObjectEncryption"]
    assert all_versions(s3, bucket) == before and not jobs_of(local_aws, bucket)

    args = confirmed(plan, args)
    first = run_module(local_aws, tmp_path, args, name="first")
    assert first["complete"] and first["changed"] and first["engine"]["name"] == "update_in_place_job", first["engine"]
    assert first["failed_count"] == 0 and first["skipped_count"] == 0
    made = jobs_of(local_aws, bucket)
    assert len(made) == 1 and made[0]["Operation"] == "S3UpdateObjectEncryption" and made[0]["Status"] == "Complete"
    assert first["to_job"] == 7  # the current versions; the 3 noncurrent ones re-keyed by the controller
    after = all_versions(s3, bucket)
    assert set(after) == set(before), "version ids or the number of versions changed (a copy was made)"
    for version, attrs in after.items():
        assert attrs["key"] == key_arn, version
        assert {k: v for k, v in attrs.items() if k != "key"} == {k: v for k, v in before[version].items() if k != "key"}

    again = run_module(local_aws, tmp_path, args, name="again")
    assert not again["changed"] and again["already_on_key"] == 10 and len(jobs_of(local_aws, bucket)) == 1
    assert all_versions(s3, bucket) == after


def test_auto_engine_chooses_by_the_objects_counted(local_aws, tmp_path, unique_name, key_arn, old_key, job_role):
    """engine=auto: the local AWS publishes no NumberOfObjects storage metric, so the listing counts; at or above the
    threshold the plan is a job, below it the controller (check mode: nothing made)."""
    s3 = local_aws.client("s3", account=PROVIDER)
    bucket = make_bucket(s3, unique_name("auto"), old_key)
    state = make_bucket(s3, unique_name("state"), old_key)
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"f/{i}", Body=body(f"f/{i}"))
    time.sleep(1.1)
    args = {"bucket": bucket, "key_arn": key_arn, "checkpoint_bucket": state, "engine": "auto", "batch_job_role_arn": job_role}
    above = run_module(local_aws, tmp_path, {**args, "batch_job_threshold": 3}, "--check", name="above")
    below = run_module(local_aws, tmp_path, {**args, "batch_job_threshold": 4}, "--check", name="below")
    assert above["engine"]["name"] == "batch_job" and "3 objects, at or above batch_job_threshold (3)" in above["engine"]["reason"]
    assert below["engine"]["name"] == "controller" and "3 objects, below batch_job_threshold (4)" in below["engine"]["reason"]
    assert above["to_job"] == 3 and below["to_job"] == 0 and below["re_encrypted"] == 3
    assert not jobs_of(local_aws, bucket)


def test_a_job_runs_only_after_its_plan_was_shown(local_aws, tmp_path, unique_name, key_arn, old_key, job_role):
    """Without the plan's digest the job is created waiting Suspended (nothing copied), with the digest and the AWS CLI
    command in the result; a run with the digest lets that same job run to completion; a further run makes no job."""
    s3 = local_aws.client("s3", account=PROVIDER)
    control = local_aws.client("s3control", account=PROVIDER)
    bucket = make_bucket(s3, unique_name("confirm"), old_key)
    state = make_bucket(s3, unique_name("state"), old_key)
    for i in range(4):
        s3.put_object(Bucket=bucket, Key=f"f/{i}", Body=body(f"f/{i}"), StorageClass="STANDARD_IA" if i == 3 else "STANDARD")
    time.sleep(1.1)
    before = snapshot(s3, bucket)
    args = {"bucket": bucket, "key_arn": key_arn, "checkpoint_bucket": state, "engine": "batch_job", "batch_job_role_arn": job_role}

    plan = run_module(local_aws, tmp_path, args, "--check", name="plan")
    shown = {j["storage_class"]: j["digest"] for j in plan["engine"]["jobs"]}
    assert set(shown) == {"STANDARD", "STANDARD_IA"} and "digest" in plan["progress_line"]
    assert {j["storage_class"]: j["objects"] for j in plan["engine"]["jobs"]} == {"STANDARD": 3, "STANDARD_IA": 1}

    # A digest of another plan (a wrong one) confirms nothing: both jobs wait.
    waiting = run_module(local_aws, tmp_path, {**args, "batch_job_confirm": ["000000000000"]}, name="waiting")
    assert not waiting["complete"] and waiting["changed"] and waiting["jobs_created"] == 2
    made = jobs_of(local_aws, bucket)
    assert len(made) == 2 and {j["Status"] for j in made} == {"Suspended"}, made
    assert all(control.describe_job(AccountId=PROVIDER, JobId=j["JobId"])["Job"]["ConfirmationRequired"] for j in made)
    listed = {j["storage_class"]: j for j in waiting["jobs_awaiting_confirmation"]}
    assert {c: j["digest"] for c, j in listed.items()} == shown, "the digest shown to confirm is not the plan's"
    assert all(f"--job-id {j['id']} --requested-job-status Ready" in j["command"] for j in listed.values())
    assert "waiting for confirmation" in waiting["progress_line"]
    time.sleep(1.0)
    assert snapshot(s3, bucket) == before, "an object changed while its job waited for confirmation"

    # Check mode again shows the waiting jobs with their digests and touches nothing.
    again_plan = run_module(local_aws, tmp_path, args, "--check", name="plan-again")
    assert {j["digest"] for j in again_plan["jobs_awaiting_confirmation"]} == set(shown.values())
    assert {j["Status"] for j in jobs_of(local_aws, bucket)} == {"Suspended"}

    # Only STANDARD confirmed: that job runs, the other still waits; then both.
    one = run_module(local_aws, tmp_path, {**args, "batch_job_confirm": [shown["STANDARD"]]}, name="one")
    assert one["jobs_confirmed"] == 1 and not one["complete"] and [j["storage_class"] for j in one["jobs_awaiting_confirmation"]] == ["STANDARD_IA"]
    done = run_module(local_aws, tmp_path, {**args, "batch_job_confirm": list(shown.values())}, name="done")
    assert done["complete"] and done["failed_count"] == 0 and not done["jobs_awaiting_confirmation"]
    made = jobs_of(local_aws, bucket)
    assert len(made) == 2 and {j["Status"] for j in made} == {"Complete"}, "a job was made again instead of confirmed"
    after = snapshot(s3, bucket)
    assert without_key(after) == without_key(before) and all(a["key"] == key_arn for a in after.values())

    last = run_module(local_aws, tmp_path, {**args, "batch_job_confirm": list(shown.values())}, name="last")
    assert not last["changed"] and len(jobs_of(local_aws, bucket)) == 2


def test_object_lock_listing_in_time_boxed_batches_hands_each_key_to_the_job_once(local_aws, tmp_path, unique_name, key_arn,
                                                                                  old_key, job_role):
    """On an object-lock bucket the keys handed to the job are saved in parts with each checkpoint: a listing spread over
    several time-boxed calls still gives the job a manifest with every free key exactly once, the locked ones copied by
    the controller with their lock."""
    s3 = local_aws.client("s3", account=PROVIDER)
    bucket = make_bucket(s3, unique_name("lockbatches"), old_key, ObjectLockEnabledForBucket=True)
    state = make_bucket(s3, unique_name("state"), old_key)
    for i in range(60):
        if i % 10 == 0:
            s3.put_object(Bucket=bucket, Key=f"f/{i:03d}", Body=body(f"f/{i}"), ObjectLockLegalHoldStatus="ON")
        else:
            s3.put_object(Bucket=bucket, Key=f"f/{i:03d}", Body=body(f"f/{i}"))
    time.sleep(1.1)
    before = snapshot(s3, bucket)
    args = {"bucket": bucket, "key_arn": key_arn, "checkpoint_bucket": state, "engine": "batch_job", "batch_job_role_arn": job_role,
            "concurrency": 1}
    args = confirmed(run_module(local_aws, tmp_path, args, "--check", name="plan"), args)
    result = run_module(local_aws, tmp_path, {**args, "max_seconds": 0.2}, batches=True, name="batches")
    assert result["complete"] and result["attempts"] > 1 and result["failed_count"] == 0, result.get("attempts")
    assert result["pass_totals"]["to_job"] == 54 and result["pass_totals"]["re_encrypted"] == 60, result["pass_totals"]
    made = jobs_of(local_aws, bucket)
    assert len(made) == 1 and made[0]["Status"] == "Complete"
    manifest = [o["Key"] for o in s3.list_objects_v2(Bucket=state, Prefix=f"byok/s3-batch-jobs/{bucket}/lock-manifests/")["Contents"]]
    rows = s3.get_object(Bucket=state, Key=manifest[0])["Body"].read().decode().splitlines()
    assert len(rows) == len(set(rows)) == 54 and all(r.startswith(f"{bucket},f/") for r in rows)
    parts = s3.list_objects_v2(Bucket=state, Prefix=f"byok/s3-batch-jobs/{bucket}/lock-keys/")["Contents"]
    assert len(parts) > 1, "the listing was not spread over several parts"
    after = snapshot(s3, bucket)
    assert without_key(after) == without_key(before) and all(a["key"] == key_arn for a in after.values())


def test_external_key_unversioned_bucket_rekeyed_in_place(local_aws, tmp_path, unique_name, key_arn, old_key):
    """The in-place path on a bucket that never had versioning (every object's version id is "null")."""
    s3 = local_aws.client("s3", account=PROVIDER)
    bucket = make_bucket(s3, unique_name("inplace-plain"), old_key)
    state = make_bucket(s3, unique_name("state"), old_key)
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"k/{i}", Body=body(f"k/{i}"), Metadata={"n": str(i)})
    args = {"bucket": bucket, "key_arn": key_arn, "checkpoint_bucket": state, "update_in_place": True}
    first = run_module(local_aws, tmp_path, args, name="first")
    assert first["complete"] and first["changed"] and first["engine"]["name"] == "update_in_place", first["engine"]
    assert first["re_encrypted"] == 5 and first["failed_count"] == 0, first
    for i in range(5):
        head = s3.head_object(Bucket=bucket, Key=f"k/{i}")
        assert (head["SSEKMSKeyId"], head["Metadata"]) == (key_arn, {"n": str(i)}), f"k/{i}"
    again = run_module(local_aws, tmp_path, args, name="again")
    assert not again["changed"] and again["already_on_key"] == 5
