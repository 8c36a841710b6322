# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""s3_bucket_kms all_versions through ansible-playbook; every version read back with plain boto3."""

from __future__ import annotations

import hashlib
import os
import signal
import time

import pytest

from tests.integration.test_s3_bucket_kms import PROVIDER, make_bucket, process_tree, run_module, start_run
from tests.integration.test_s3_bucket_kms import key_arn, old_key  # noqa: F401  pylint: disable=unused-import
from tests.local_aws import fault_proxy


def history(s3, bucket):
    """Per key, oldest first: what an independent reader sees of every version, and whether a delete marker is current."""
    keys: dict = {}
    deleted = set()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for marker in page.get("DeleteMarkers", []):
            if marker["IsLatest"]:
                deleted.add(marker["Key"])
        for v in page.get("Versions", []):
            head = s3.head_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
            body = s3.get_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
            tags = s3.get_object_tagging(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])["TagSet"]
            keys.setdefault(v["Key"], []).insert(0, {
                "sha256": hashlib.sha256(body).hexdigest(), "metadata": head.get("Metadata"), "ContentType": head.get("ContentType"),
                "tags": sorted((t["Key"], t["Value"]) for t in tags), "storage_class": head.get("StorageClass", "STANDARD"),
                "key": head.get("SSEKMSKeyId"), "id": v["VersionId"]})
    return keys, deleted


def content(versions):
    return [{k: v for k, v in version.items() if k not in ("key", "id")} for version in versions]


def current_body(s3, bucket, key):
    return hashlib.sha256(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest()


def test_all_versions_reproduced_on_the_key_then_originals_deleted(local_aws, tmp_path, unique_name, key_arn, old_key):
    s3 = local_aws.client("s3", account=PROVIDER)
    bucket = make_bucket(s3, unique_name("versions"), old_key)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for i in range(3):
        s3.put_object(Bucket=bucket, Key="doc", Body=f"doc v{i}".encode(), Metadata={"n": str(i)}, Tagging=f"n={i}",
                      ContentType=f"text/v{i}", StorageClass="STANDARD_IA" if i == 1 else "STANDARD")
    s3.put_object(Bucket=bucket, Key="single", Body=b"only one")
    for i in range(2):
        s3.put_object(Bucket=bucket, Key="deleted", Body=f"gone {i}".encode())
    s3.delete_object(Bucket=bucket, Key="deleted")
    time.sleep(1.1)
    before, deleted = history(s3, bucket)
    assert deleted == {"deleted"}
    current = {k: current_body(s3, bucket, k) for k in ("doc", "single")}
    args = {"bucket": bucket, "key_arn": key_arn, "all_versions": True, "checkpoint_path": str(tmp_path / "cp")}

    plan = run_module(local_aws, tmp_path, args, "--check", name="check")
    assert plan["changed"] and plan["re_encrypted"] == 4 and history(s3, bucket)[0] == before, "check mode changed something"

    first = run_module(local_aws, tmp_path, args, name="first")
    after, deleted = history(s3, bucket)
    assert first["changed"] and first["complete"] and first["re_encrypted"] == 4 and first["failed_count"] == 0, first["failed_objects"]
    # Each key's history reproduced on the key, in order, after the originals (kept, on the old key).
    for key in ("doc", "single"):
        n = len(before[key])
        assert after[key][:n] == before[key], key
        assert content(after[key][n:]) == content(before[key]), key
        assert {v["key"] for v in after[key][n:]} == {key_arn}, key
        assert current_body(s3, bucket, key) == current[key], key
    # A deleted key stays deleted (a copy would bring it back): reported, not touched.
    assert after["deleted"] == before["deleted"] and deleted == {"deleted"}
    assert {o["key"].split("?")[0] for o in first["skipped_objects"]} == {"deleted"}

    again = run_module(local_aws, tmp_path, args, name="again")
    assert not again["changed"] and again["re_encrypted"] == 0 and again["replaced_versions"] == 4
    assert history(s3, bucket)[0] == after

    delete = {**args, "delete_replaced_versions": True}
    plan = run_module(local_aws, tmp_path, delete, "--check", name="check-delete")
    assert plan["changed"] and plan["versions_deleted"] == 4 and history(s3, bucket)[0] == after
    pruned = run_module(local_aws, tmp_path, delete, name="delete")
    final = history(s3, bucket)[0]
    assert pruned["changed"] and pruned["versions_deleted"] == 4 and pruned["versions_kept"] == 0, pruned["kept_versions"]
    for key in ("doc", "single"):
        assert content(final[key]) == content(before[key]) and {v["key"] for v in final[key]} == {key_arn}, key
        assert current_body(s3, bucket, key) == current[key], key
    assert final["deleted"] == before["deleted"]
    last = run_module(local_aws, tmp_path, delete, name="last")
    assert not last["changed"] and history(s3, bucket)[0] == final


def listing(s3, bucket):
    """Per key, (version id, size) of its versions: cheap enough to poll while a run copies and deletes."""
    found: dict = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []):
            found.setdefault(v["Key"], []).append((v["VersionId"], v["Size"]))
    return found


def test_delete_replaced_killed_mid_copy_converges_and_never_deletes_an_uncopied_version(
        local_aws, tmp_path, unique_name, key_arn, old_key):
    """On the stricter local AWS (an SSE-KMS object's ETag is new with every write), a run with
    delete_replaced_versions is killed (ansible-playbook and the module) while copying; no original is ever gone
    before a copy of its content is on the key, and the next run ends in exactly the state an uninterrupted run
    ends in: each key's history, once, on the key. A further run copies and deletes nothing."""
    s3 = local_aws.client("s3", account=PROVIDER)
    bucket = make_bucket(s3, unique_name("killed"), old_key)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    keys = 60
    for i in range(keys):
        for n in range(3):  # distinct sizes per version: a version's content is told by its size while polling
            extra = {"ChecksumAlgorithm": "CRC32"} if i % 2 else {}  # half with a checksum of their own, half without
            s3.put_object(Bucket=bucket, Key=f"k/{i:03d}", Body=f"{i:03d}-{'v' * (n + 1)}".encode(), Metadata={"n": str(n)}, **extra)
    time.sleep(1.1)
    before, _deleted = history(s3, bucket)
    original = listing(s3, bucket)
    original_sizes = {k: {size for _id, size in v} for k, v in original.items()}
    args = {"bucket": bucket, "key_arn": key_arn, "all_versions": True, "delete_replaced_versions": True,
            "checkpoint_path": str(tmp_path / "cp"), "concurrency": 1}

    def check(observed):
        for key, found in observed.items():
            assert original_sizes[key] <= {size for _id, size in found}, f"{key}: a version's content left the bucket ({found})"
        return sum(1 for k, found in observed.items() if not set(original[k]) & set(found))  # keys done: no original left

    proc = start_run(local_aws, tmp_path, args, "killed")
    started = time.monotonic()
    while proc.poll() is None and time.monotonic() - started < 120:
        if check(listing(s3, bucket)) >= 10:
            break
        time.sleep(0.05)
    tree = process_tree(proc.pid)
    for pid in reversed(tree):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    time.sleep(1.0)
    done = check(listing(s3, bucket))
    assert len(tree) > 1 and 0 < done < keys, f"kill came too early or too late ({done} keys done, processes {tree})"

    resumed = run_module(local_aws, tmp_path, args, name="resumed")
    assert resumed["complete"] and resumed["failed_count"] == 0, resumed["failed_objects"]
    final = history(s3, bucket)[0]
    for key in before:
        assert content(final[key]) == content(before[key]), key  # the history once, in order, current last
        assert {v["key"] for v in final[key]} == {key_arn}, key
    last = run_module(local_aws, tmp_path, args, name="last")
    assert not last["changed"] and last["re_encrypted"] == 0 and last["versions_deleted"] == 0
    assert history(s3, bucket)[0] == final


def versioned_delete(method, _path, query, _headers, _body):
    return method == "DELETE" and "versionId=" in query


def version_copy(method, _path, _query, headers, _body):
    return method == "PUT" and bool(headers.get("x-amz-copy-source"))


def kill(proc):
    tree = process_tree(proc.pid)
    for pid in reversed(tree):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    return tree


@pytest.mark.parametrize("matches, passes", [
    (version_copy, 1),  # between the copies of k/0's first and second versions
    (versioned_delete, 0),  # every copy of k/0 made, none of its originals deleted
    (versioned_delete, 1),  # one original of k/0 deleted
    (versioned_delete, 2),
], ids=["between-copies", "before-deletions", "after-one-deletion", "after-two-deletions"])
def test_delete_replaced_killed_at_a_chosen_write_converges(local_aws, tmp_path, unique_name, key_arn, old_key, matches, passes):
    """The run is stopped at an exact write (the fault proxy holds that request unanswered, the test kills
    ansible-playbook and the module, the held request never reaches S3): the next run copies only what is missing and
    ends in the uninterrupted state. Killed after a key's first deletion, the older order (oldest original first) left
    a copy without its original under copies still paired with theirs, and the next run copied it on top again."""
    s3 = local_aws.client("s3", account=PROVIDER)
    bucket = make_bucket(s3, unique_name("held"), old_key)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for i in range(3):
        for n in range(3):
            extra = {"ChecksumAlgorithm": "CRC32"} if i == 1 else {}
            s3.put_object(Bucket=bucket, Key=f"k/{i}", Body=f"{i}-{'v' * (n + 1)}".encode(), Metadata={"n": str(n)}, **extra)
    time.sleep(1.1)
    before, _deleted = history(s3, bucket)
    args = {"bucket": bucket, "key_arn": key_arn, "all_versions": True, "delete_replaced_versions": True,
            "checkpoint_path": str(tmp_path / "cp"), "concurrency": 1}
    proxy = fault_proxy.start(local_aws.endpoint_url, fault_proxy.FaultSpec())
    try:
        held = proxy.hold(matches, passes)
        proc = start_run(type("Endpoint", (), {"endpoint_url": proxy.endpoint_url}), tmp_path, args, "killed")
        assert held.reached.wait(180), "the run never reached the write to stop at"
        tree = kill(proc)
        held.release()
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert len(tree) > 1
    stopped = history(s3, bucket)[0]
    assert len(stopped["k/0"]) == 3 + (1 if matches is version_copy else 3) - passes * (matches is versioned_delete)
    assert stopped["k/1"] == before["k/1"] and stopped["k/2"] == before["k/2"]

    resumed = run_module(local_aws, tmp_path, args, name="resumed")
    assert resumed["complete"] and resumed["failed_count"] == 0, resumed["failed_objects"]
    assert resumed["restored_current"] == 0 and resumed["versions_kept"] == 0, resumed
    assert resumed["re_encrypted"] == 6 + (2 if matches is version_copy else 0), resumed
    final = history(s3, bucket)[0]
    for key in before:
        assert content(final[key]) == content(before[key]), key
        assert {v["key"] for v in final[key]} == {key_arn}, key
    last = run_module(local_aws, tmp_path, args, name="last")
    assert not last["changed"] and last["re_encrypted"] == 0 and last["versions_deleted"] == 0
    assert history(s3, bucket)[0] == final


def test_delete_replaced_keeps_an_original_whose_copy_is_gone(local_aws, tmp_path, unique_name, key_arn, old_key):
    """The copy of an original is removed between runs: the next run finds no copy with its checksum, copies it again
    and deletes the original only then; the key's content history is intact throughout."""
    s3 = local_aws.client("s3", account=PROVIDER)
    bucket = make_bucket(s3, unique_name("gone"), old_key)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for n in range(3):
        s3.put_object(Bucket=bucket, Key="doc", Body=f"doc v{n}".encode())
    time.sleep(1.1)
    before = history(s3, bucket)[0]
    args = {"bucket": bucket, "key_arn": key_arn, "all_versions": True, "checkpoint_path": str(tmp_path / "cp")}
    first = run_module(local_aws, tmp_path, args, name="first")
    assert first["re_encrypted"] == 3 and len(history(s3, bucket)[0]["doc"]) == 6
    middle_copy = history(s3, bucket)[0]["doc"][4]
    s3.delete_object(Bucket=bucket, Key="doc", VersionId=middle_copy["id"])
    pruned = run_module(local_aws, tmp_path, {**args, "delete_replaced_versions": True}, name="pruned")
    assert pruned["re_encrypted"] == 1 and pruned["versions_deleted"] == 3, pruned
    final = history(s3, bucket)[0]["doc"]
    assert {v["key"] for v in final} == {key_arn}
    # v0 and v2 were reproduced by the first run, v1 again now; the current content is v2 again (restored last).
    assert [v["sha256"] for v in final] == [before["doc"][i]["sha256"] for i in (0, 2, 1, 2)]
