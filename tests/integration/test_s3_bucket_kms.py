# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""s3_bucket_kms through ansible-playbook against the local AWS, every outcome read back with plain boto3."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from tests.integration import runner

PROVIDER = "222222222222"
MIB = 1024 * 1024
PLAYBOOK = "tests/integration/playbooks/s3_bucket_kms.yml"
ENFORCED = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def run_module(aws, tmp_path, args, *flags, batches=False, ignore_errors=False, name="result"):
    result_file = tmp_path / f"{name}.json"
    variables = {"s3_args": args, "s3_result_file": str(result_file), "s3_batches": batches, "s3_ignore_errors": ignore_errors}
    vars_file = tmp_path / f"{name}-vars.json"
    vars_file.write_text(json.dumps(variables))
    proc = runner.run_playbook(aws.endpoint_url, "localhost,", str(tmp_path), "-c", "local", "-e", f"@{vars_file}", *flags,
                               playbook=PLAYBOOK, extra_env=runner.account_credentials(aws.endpoint_url, PROVIDER))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return json.loads(result_file.read_text())


def snapshot(s3, bucket):
    """Everything an independent reader sees of each current object."""
    state = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            key = item["Key"]
            try:
                head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
            except s3.exceptions.ClientError:
                state[key] = {"unreadable": True}
                continue
            archived = head.get("StorageClass") in ("GLACIER", "DEEP_ARCHIVE")
            body = b"" if archived else s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            state[key] = {
                "sha256": hashlib.sha256(body).hexdigest(), "metadata": head.get("Metadata"),
                "tags": [] if archived else sorted((t["Key"], t["Value"]) for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]),
                "storage_class": head.get("StorageClass", "STANDARD"),
                "checksum_algorithm": item.get("ChecksumAlgorithm"),
                **{f: head.get(f) for f in ("ContentType", "ContentEncoding", "ContentDisposition", "ContentLanguage",
                                            "CacheControl", "Expires", "WebsiteRedirectLocation", "ObjectLockMode",
                                            "ObjectLockRetainUntilDate", "ObjectLockLegalHoldStatus")},
                "key": head.get("SSEKMSKeyId"), "sse": head.get("ServerSideEncryption"),
            }
    return state


def without_key(state):
    return {k: {f: v for f, v in attrs.items() if f not in ("key", "sse")} for k, attrs in state.items()}


@pytest.fixture
def key_arn(local_aws):
    return local_aws.client("kms", account=PROVIDER).create_key(Description="customer s3 key stand-in")["KeyMetadata"]["Arn"]


@pytest.fixture
def old_key(local_aws):
    return local_aws.client("kms", account=PROVIDER).create_key(Description="old key")["KeyMetadata"]["Arn"]


def make_bucket(s3, name, old_key, acls=False, **create):
    s3.create_bucket(Bucket=name, **create)
    if not acls:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=ENFORCED)
    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": old_key}}]})
    return name


def seed_attributes(s3, bucket):
    s3.put_object(Bucket=bucket, Key="docs/plain.txt", Body=b"hello", ContentType="text/plain; charset=utf-8",
                  ContentEncoding="identity", ContentDisposition='attachment; filename="plain.txt"', ContentLanguage="en",
                  CacheControl="max-age=60", Expires=datetime(2030, 1, 1, tzinfo=timezone.utc), Metadata={"owner": "team-a"},
                  Tagging="class=internal&team=a", WebsiteRedirectLocation="/elsewhere")
    s3.put_object(Bucket=bucket, Key="docs/ia.bin", Body=os.urandom(2048), StorageClass="STANDARD_IA", ChecksumAlgorithm="SHA256",
                  Metadata={"k": "v"})
    s3.put_object(Bucket=bucket, Key="docs/crc.bin", Body=os.urandom(100), ChecksumAlgorithm="CRC32", StorageClass="ONEZONE_IA")
    for i in range(40):
        s3.put_object(Bucket=bucket, Key=f"many/{i:03d}", Body=os.urandom(64 + i), Metadata={"i": str(i)}, Tagging=f"n={i}")
    body = os.urandom(11 * MIB)
    s3.put_object(Bucket=bucket, Key="large/archive.tar", Body=body, ContentType="application/x-tar",
                  ContentDisposition="attachment", Metadata={"kind": "full"}, Tagging="backup=weekly", StorageClass="STANDARD_IA")


def test_every_attribute_kept_check_mode_skips_policy_and_second_run(local_aws, tmp_path, unique_name, key_arn, old_key):
    s3 = local_aws.client("s3", account=PROVIDER)
    bucket = make_bucket(s3, unique_name("attrs"), old_key)
    state_bucket = make_bucket(s3, unique_name("state"), old_key)
    seed_attributes(s3, bucket)
    s3.put_object(Bucket=bucket, Key="cold/glacier.bin", Body=b"cold", StorageClass="GLACIER")
    s3.put_object(Bucket=bucket, Key="secret/ssec.bin", Body=b"customer", SSECustomerAlgorithm="AES256", SSECustomerKey=os.urandom(32))
    existing = {"Sid": "KeepMe", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket", "Resource": f"arn:aws:s3:::{bucket}"}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [existing]}))
    time.sleep(1.1)  # LastModified has one-second resolution
    before = snapshot(s3, bucket)
    args = {"bucket": bucket, "key_arn": key_arn, "deny_other_keys": True, "multipart_threshold": 5 * MIB,
            "multipart_part_size": 5 * MIB, "checkpoint_bucket": state_bucket, "concurrency": 4}

    plan = run_module(local_aws, tmp_path, args, "--check", "--diff", name="check")
    assert snapshot(s3, bucket) == before, "check mode changed an object"
    assert s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0][
        "ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == old_key
    assert "Contents" not in s3.list_objects_v2(Bucket=state_bucket), "check mode wrote a checkpoint"
    assert plan["changed"] and plan["diff"]["after"]["encryption"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == key_arn
    # Every object but the archived one would be attempted (the SSE-C one is only found out by the copy itself).
    assert plan["scanned"] == len(before) and plan["skipped_count"] == 1 and plan["re_encrypted"] == len(before) - 1

    first = run_module(local_aws, tmp_path, args, "--diff", name="first")
    after = snapshot(s3, bucket)
    assert first["changed"] and first["complete"] and first["failed_count"] == 0, first["failed_objects"]
    reasons = {o["key"]: o["reason"] for o in first["skipped_objects"]}
    assert set(reasons) == {"cold/glacier.bin", "secret/ssec.bin"}
    assert reasons["secret/ssec.bin"].startswith("SSE-C") and reasons["cold/glacier.bin"].startswith("archived (GLACIER)")
    copied = set(before) - set(reasons)
    assert first["re_encrypted"] == len(copied)
    for key in copied:
        assert after[key]["key"] == key_arn and after[key]["sse"] == "aws:kms", key
    assert without_key(after) == without_key(before), "an attribute changed"
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert existing in policy["Statement"] and len(policy["Statement"]) == 2
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rules["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == key_arn and rules["BucketKeyEnabled"] is True
    # One request per object on this bucket: the copy (the listing and the multipart object add a little).
    small = len(copied) - 1
    # 43 copies, 1 listing, the multipart object (HEAD, tags, create, 3 parts, complete), the refused SSE-C copy.
    assert first["requests"] <= small + 1 + 7 + 1, first["requests"]

    second = run_module(local_aws, tmp_path, args, name="second")
    assert not second["changed"] and second["re_encrypted"] == 0 and second["already_on_key"] == len(copied)
    # Nothing copied; the reads are the listing plus a HEAD for objects last modified in the cutoff's own second
    # (timing-dependent) and a retry of each skipped object.
    assert second["requests"] <= second["scanned"] + 2, "a finished bucket's re-run reads at most once per object"
    assert snapshot(s3, bucket) == after

    verify = run_module(local_aws, tmp_path, {**args, "verify": True}, name="verify")
    assert not verify["changed"] and verify["already_on_key"] == len(copied)

    # An upload naming another key is refused; one relying on the default (no key header) lands on the key.
    with pytest.raises(s3.exceptions.ClientError):
        s3.put_object(Bucket=bucket, Key="new", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=old_key)
    s3.put_object(Bucket=bucket, Key="new", Body=b"x")
    assert s3.head_object(Bucket=bucket, Key="new")["SSEKMSKeyId"] == key_arn
    # aws:kms with no key id would land on the AWS managed key aws/s3, not on the bucket default: refused too.
    with pytest.raises(s3.exceptions.ClientError) as no_key_id:
        s3.put_object(Bucket=bucket, Key="aws-s3", Body=b"x", ServerSideEncryption="aws:kms")
    assert no_key_id.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    s3.put_object(Bucket=bucket, Key="named", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_arn)
    assert s3.head_object(Bucket=bucket, Key="named")["SSEKMSKeyId"] == key_arn


def test_acl_grants_kept_on_a_bucket_with_acls(local_aws, tmp_path, unique_name, key_arn, old_key):
    s3 = local_aws.client("s3", account=PROVIDER)
    bucket = make_bucket(s3, unique_name("acls"), old_key, acls=True)
    owner = s3.get_bucket_acl(Bucket=bucket)["Owner"]
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"shared/{i}", Body=b"x", ACL="public-read" if i % 2 else "private")
    s3.put_object(Bucket=bucket, Key="logdelivery", Body=b"x",
                  GrantRead='uri="http://acs.amazonaws.com/groups/s3/LogDelivery"', GrantFullControl=f'id="{owner["ID"]}"')
    time.sleep(1.1)
    acls = {o["Key"]: s3.get_object_acl(Bucket=bucket, Key=o["Key"])["Grants"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    result = run_module(local_aws, tmp_path, {"bucket": bucket, "key_arn": key_arn, "checkpoint_path": str(tmp_path / "cp")})
    assert result["re_encrypted"] == 6 and result["extra_reads"] == ["GetObjectAcl"]
    assert result["requests_per_object"] <= 2.5
    for key, grants in acls.items():
        assert s3.head_object(Bucket=bucket, Key=key)["SSEKMSKeyId"] == key_arn
        got = s3.get_object_acl(Bucket=bucket, Key=key)["Grants"]
        assert sorted(map(json.dumps, got)) == sorted(map(json.dumps, grants)), key


def test_object_lock_retention_and_legal_hold_kept(local_aws, tmp_path, unique_name, key_arn, old_key):
    s3 = local_aws.client("s3", account=PROVIDER)
    bucket = make_bucket(s3, unique_name("lock"), old_key, ObjectLockEnabledForBucket=True)
    until = (datetime.now(timezone.utc) + timedelta(days=3)).replace(microsecond=0)
    s3.put_object(Bucket=bucket, Key="held", Body=b"h", ObjectLockLegalHoldStatus="ON")
    s3.put_object(Bucket=bucket, Key="retained", Body=b"r", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until)
    s3.put_object(Bucket=bucket, Key="free", Body=b"f")
    time.sleep(1.1)
    result = run_module(local_aws, tmp_path, {"bucket": bucket, "key_arn": key_arn, "checkpoint_path": str(tmp_path / "cp")})
    assert result["re_encrypted"] == 3 and result["failed_count"] == 0, result["failed_objects"]
    held, retained = s3.head_object(Bucket=bucket, Key="held"), s3.head_object(Bucket=bucket, Key="retained")
    assert held["SSEKMSKeyId"] == key_arn and held.get("ObjectLockLegalHoldStatus") == "ON"
    assert retained["SSEKMSKeyId"] == key_arn and retained["ObjectLockMode"] == "GOVERNANCE"
    assert retained["ObjectLockRetainUntilDate"] == until


@pytest.mark.parametrize("all_versions", [False, True])
def test_expired_retention_copied_as_none_running_retention_and_legal_hold_kept(
        local_aws, tmp_path, unique_name, key_arn, old_key, all_versions):
    """S3 refuses a copy that names a retain-until date in the past (400 InvalidArgument, as the local AWS does): an
    expired retention is copied as none; running governance/compliance retention and legal hold are kept."""
    s3 = local_aws.client("s3", account=PROVIDER)
    bucket = make_bucket(s3, unique_name("expired"), old_key, ObjectLockEnabledForBucket=True)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    soon, later = now + timedelta(seconds=3), now + timedelta(days=3)
    s3.put_object(Bucket=bucket, Key="expired", Body=b"e", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=soon)
    s3.put_object(Bucket=bucket, Key="expired-held", Body=b"eh", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=soon,
                  ObjectLockLegalHoldStatus="ON")
    s3.put_object(Bucket=bucket, Key="governance", Body=b"g", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=later)
    s3.put_object(Bucket=bucket, Key="compliance", Body=b"c", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=later)
    s3.put_object(Bucket=bucket, Key="held", Body=b"h", ObjectLockLegalHoldStatus="ON")
    time.sleep(max(0.0, (soon - datetime.now(timezone.utc)).total_seconds()) + 1.1)
    result = run_module(local_aws, tmp_path, {"bucket": bucket, "key_arn": key_arn, "all_versions": all_versions,
                                              "checkpoint_path": str(tmp_path / "cp")})
    assert result["re_encrypted"] == 5 and result["failed_count"] == 0, result["failed_objects"]
    lock = {}
    for key in ("expired", "expired-held", "governance", "compliance", "held"):
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["SSEKMSKeyId"] == key_arn, key
        lock[key] = (head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate"), head.get("ObjectLockLegalHoldStatus"))
    assert lock == {"expired": (None, None, None), "expired-held": (None, None, "ON"), "governance": ("GOVERNANCE", later, None),
                    "compliance": ("COMPLIANCE", later, None), "held": (None, None, "ON")}


def versions(s3, bucket):
    counts = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            counts[version["Key"]] = counts.get(version["Key"], 0) + 1
    return counts


def process_tree(root: int) -> list[int]:
    """root and every process below it (ansible-core puts each worker, and the module it runs, in a session of its
    own, so killing ansible-playbook's process group leaves the module running)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def start_run(aws, tmp_path, args, name):
    variables = tmp_path / f"{name}-vars.json"
    variables.write_text(json.dumps({"s3_args": args, "s3_result_file": str(tmp_path / f"{name}.json"), "s3_batches": False}))
    env = {**runner.ansible_env(aws.endpoint_url, str(tmp_path)), **runner.account_credentials(aws.endpoint_url, PROVIDER)}
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-c", "local", "-i", "localhost,", PLAYBOOK,
           "-e", f"@{variables}"]
    return subprocess.Popen(cmd, cwd=runner.ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def seed_versioned(s3, bucket, count):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for i in range(count):
        s3.put_object(Bucket=bucket, Key=f"f/{i:04d}", Body=f"body {i}".encode(), Metadata={"i": str(i)})
    time.sleep(1.1)


def wait_for_copies(s3, bucket, proc, at_least):
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        if sum(1 for v in versions(s3, bucket).values() if v > 1) >= at_least:
            return
        time.sleep(0.2)


def test_batches_and_killed_run_resume_without_loss_or_duplicates(local_aws, tmp_path, unique_name, key_arn, old_key):
    s3 = local_aws.client("s3", account=PROVIDER)
    bucket = make_bucket(s3, unique_name("resume"), old_key)
    state_bucket = make_bucket(s3, unique_name("state"), old_key)
    seed_versioned(s3, bucket, 600)
    before = snapshot(s3, bucket)
    args = {"bucket": bucket, "key_arn": key_arn, "checkpoint_bucket": state_bucket, "concurrency": 2}

    # Killed part-way: ansible-playbook AND the module it runs get SIGKILL while copying (copies in flight included).
    proc = start_run(local_aws, tmp_path, args, "killed")
    wait_for_copies(s3, bucket, proc, 50)
    tree = process_tree(proc.pid)
    for pid in reversed(tree):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    partly = sum(1 for v in versions(s3, bucket).values() if v > 1)
    assert len(tree) > 1 and 0 < partly < 600, f"kill came too late or too early ({partly} copied, processes {tree})"
    time.sleep(1.0)
    assert sum(1 for v in versions(s3, bucket).values() if v > 1) == partly, "the module outlived the kill"

    # Then time-boxed batches until complete.
    result = run_module(local_aws, tmp_path, {**args, "max_seconds": 0.5}, batches=True, name="batches")
    assert result["complete"] and result["attempts"] > 1, "expected several batches"
    assert result["progress"]["done"] == 600 and result["progress_line"].startswith(f"{bucket}: 600/600 objects (100.0%)")
    after = snapshot(s3, bucket)
    assert without_key(after) == without_key(before)
    assert all(a["key"] == key_arn for a in after.values())
    assert versions(s3, bucket) == {k: 2 for k in before}, "an object was copied twice or not at all"
    again = run_module(local_aws, tmp_path, args, name="again")
    assert not again["changed"] and versions(s3, bucket) == {k: 2 for k in before}


def test_run_started_while_an_orphaned_run_copies_waits_for_it(local_aws, tmp_path, unique_name, key_arn, old_key):
    """ansible-playbook killed, its module still copying (what a kill of the playbook's process group leaves): a new
    run waits for the lease instead of copying the same objects again."""
    s3 = local_aws.client("s3", account=PROVIDER)
    bucket = make_bucket(s3, unique_name("orphan"), old_key)
    state_bucket = make_bucket(s3, unique_name("state"), old_key)
    seed_versioned(s3, bucket, 300)
    args = {"bucket": bucket, "key_arn": key_arn, "checkpoint_bucket": state_bucket, "concurrency": 2}
    proc = start_run(local_aws, tmp_path, {**args, "concurrency": 1}, "orphaned")
    wait_for_copies(s3, bucket, proc, 30)
    tree = process_tree(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)  # the playbook's group only: the worker and the module live on
    proc.wait()
    assert any(os.path.exists(f"/proc/{pid}") for pid in tree[1:]), "the module did not outlive the playbook"

    result = run_module(local_aws, tmp_path, {**args, "max_seconds": 0.5}, batches=True, name="batches")
    assert result["complete"] and result["progress"]["done"] == 300
    assert versions(s3, bucket) == {f"f/{i:04d}": 2 for i in range(300)}, "an object was copied twice or not at all"
    assert all(s3.head_object(Bucket=bucket, Key=f"f/{i:04d}")["SSEKMSKeyId"] == key_arn for i in range(0, 300, 37))


def test_injected_throttling_is_retried(local_aws, tmp_path, unique_name, key_arn, old_key):
    s3 = local_aws.client("s3", account=PROVIDER)
    bucket = make_bucket(s3, unique_name("throttle"), old_key)
    for i in range(30):
        s3.put_object(Bucket=bucket, Key=f"t/{i}", Body=b"x")
    time.sleep(1.1)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "local-aws:throttle", "Value": "12#1"}]})
    result = run_module(local_aws, tmp_path, {"bucket": bucket, "key_arn": key_arn, "checkpoint_path": str(tmp_path / "cp")})
    assert result["complete"] and result["re_encrypted"] == 30 and result["failed_count"] == 0
    assert result["retries"] + result["requests"] - 31 >= 12, "the SlowDown answers were not seen"
    assert all(s3.head_object(Bucket=bucket, Key=f"t/{i}")["SSEKMSKeyId"] == key_arn for i in range(30))


def test_bad_input_refused_before_any_change(local_aws, tmp_path, unique_name, old_key):
    s3 = local_aws.client("s3", account=PROVIDER)
    bucket = make_bucket(s3, unique_name("bad"), old_key)
    for args, words in (({"key_arn": "alias/customer"}, "key_arn"), ({"concurrency": 0}, "concurrency"),
                        ({"multipart_threshold": 1024}, "multipart_threshold")):
        result = run_module(local_aws, tmp_path, {"bucket": bucket, "key_arn": old_key, **args}, ignore_errors=True, name="bad")
        assert result["failed"] and words in result["msg"], result["msg"]
    assert s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0][
        "ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == old_key


def test_after_four_killed_runs_the_fifth_says_where_it_resumed(local_aws, tmp_path, unique_name, key_arn, old_key):
    count = 1600  # enough that a killed run can't finish between two looks of the test at a loaded machine
    s3 = local_aws.client("s3", account=PROVIDER)
    bucket = make_bucket(s3, unique_name("fifth"), old_key)
    state_bucket = make_bucket(s3, unique_name("state"), old_key)
    seed_versioned(s3, bucket, count)
    args = {"bucket": bucket, "key_arn": key_arn, "checkpoint_bucket": state_bucket, "concurrency": 1}
    copied = 0
    for kill in range(4):  # ansible-playbook and its module killed while copying, four times
        proc = start_run(local_aws, tmp_path, args, f"killed-{kill}")
        wait_for_copies(s3, bucket, proc, copied + 30)
        for pid in reversed(process_tree(proc.pid)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
        copied = sum(1 for v in versions(s3, bucket).values() if v > 1)
    assert 0 < copied < count, f"{copied} copied by the killed runs"

    result = run_module(local_aws, tmp_path, args, name="fifth")
    assert result["complete"] and versions(s3, bucket) == {f"f/{i:04d}": 2 for i in range(count)}
    resumed = result["resumed"]
    assert resumed is not None, result["progress_line"]
    where = f"after {json.dumps(resumed['after'])}" if resumed["after"] is not None else "from the start"
    assert f"resumed an unfinished pass {where}" in result["progress_line"], result["progress_line"]
    assert f"with {resumed['done_before']} objects done before" in result["progress_line"]
    # What the killed runs copied is not copied again: found on the key (this run's batch) or counted before the marker.
    assert result["already_on_key"] + resumed["done_before"] >= copied and result["re_encrypted"] <= count - copied
    assert result["progress"]["done"] == count
    # The last killed run's lease was still fresh: the fifth waited for its copies in flight before taking over.
    waited = result["waited_for_lease"]
    assert waited and waited["seconds"] > 0 and "just stopped" in waited["holder"], result["progress_line"]
    assert f"waited {waited['seconds']:.1f} s for another run's lease" in result["progress_line"]


def test_buckets_in_one_call_each_its_own_result_and_a_missing_one_fails_alone(local_aws, tmp_path, unique_name, key_arn, old_key):
    """`buckets`: every bucket as `bucket` would do it, side by side; a missing bucket fails the call with its name,
    the others are on the key all the same; a bad name among them changes nothing at all."""
    s3 = local_aws.client("s3", account=PROVIDER)
    first, second = (make_bucket(s3, unique_name(n), old_key) for n in ("one", "two"))
    for bucket in (first, second):
        for i in range(5):
            s3.put_object(Bucket=bucket, Key=f"f/{i}", Body=os.urandom(100))
    missing = unique_name("missing")
    common = {"key_arn": key_arn, "checkpoint_path": str(tmp_path / "cp"), "bucket_concurrency": 2}

    refused = run_module(local_aws, tmp_path, {**common, "buckets": [{"name": first}, {"name": "Not_A_Bucket"}]},
                         ignore_errors=True, name="refused")
    assert refused["failed"] and "Not_A_Bucket" in refused["msg"]
    assert s3.get_bucket_encryption(Bucket=first)["ServerSideEncryptionConfiguration"]["Rules"][0][
        "ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == old_key  # nothing changed

    plan = run_module(local_aws, tmp_path, {**common, "buckets": [{"name": first}, {"name": second}]}, "--check", name="plan")
    assert [r["bucket"] for r in plan["results"]] == [first, second]
    assert all(r["scanned"] == 5 and r["progress_line"].startswith(r["bucket"]) for r in plan["results"])
    assert s3.head_object(Bucket=first, Key="f/0")["SSEKMSKeyId"] == old_key  # check mode changed nothing

    result = run_module(local_aws, tmp_path, {**common, "buckets": [{"name": first}, {"name": missing}, {"name": second}]},
                        ignore_errors=True, name="apply")
    assert result["failed"] and missing in result["msg"] and first not in result["msg"]
    by_bucket = {r["bucket"]: r for r in result["results"]}
    assert [r["bucket"] for r in result["results"]] == [first, missing, second]
    assert by_bucket[missing]["failed"] and not by_bucket[first].get("failed") and by_bucket[first]["complete"]
    for bucket in (first, second):
        assert {s3.head_object(Bucket=bucket, Key=f"f/{i}")["SSEKMSKeyId"] for i in range(5)} == {key_arn}
        assert by_bucket[bucket]["re_encrypted"] == 5

    again = run_module(local_aws, tmp_path, {**common, "buckets": [{"name": first}, {"name": second}]}, name="again")
    assert not again["changed"] and [r["re_encrypted"] for r in again["results"]] == [0, 0]
