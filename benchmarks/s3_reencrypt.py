"""S3 re-encryption benchmark: the engine of s3_bucket_kms against `aws s3 cp --recursive` and bare CopyObject.

    python benchmarks/s3_reencrypt.py [--objects 2000] [--concurrency 10] [--memory-objects 1000]
    python benchmarks/s3_reencrypt.py --engines [--objects 200] [--concurrency 10]

Starts its own local AWS (tests.local_aws.harness.LocalAWS), seeds identical buckets (small objects plus a few
multipart-sized ones at a lowered threshold of 5 MiB), re-encrypts one with each method at the same concurrency and
prints objects/s, ratios and requests per object; then the engine on an ACL-enabled bucket (extra GetObjectAcl per
object), and the engine's peak Python memory (tracemalloc) on a bucket of --memory-objects and of ten times that.

--engines: the controller engine against the S3 Batch Operations engine (s3_bucket_kms engine=batch_job, the local
AWS's jobs doing the copies) on buckets of --objects and ten times that: the requests the controller sends per object
(job engine: the listing, ~1 per 1,000 objects, and a few per job), the controller's own time (listing, job creation)
and the wall time until the bucket is done (the local jobs run one task at a time, BYOK_LOCAL_AWS_BATCH_TASK_SECONDS
each, so their wall time says nothing of AWS's throughput; docs/s3.md has AWS's figures).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT / ".collections", ROOT):
    sys.path.insert(0, str(path))

import json  # noqa: E402

from ansible_collections.mattermost.byok.plugins.module_utils.s3 import reencrypt as s3_reencrypt  # noqa: E402
from ansible_collections.mattermost.byok.plugins.module_utils.s3.bucket_kms import BucketKms  # noqa: E402
from tests.local_aws.harness import LocalAWS  # noqa: E402

MIB = 1024 * 1024
ACCOUNT = "222222222222"
ENFORCED = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def seed(s3, bucket, objects, large, old_key, acls=False):
    s3.create_bucket(Bucket=bucket)
    if not acls:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=ENFORCED)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": old_key}}]})
    body = os.urandom(1024)

    def put(i):
        s3.put_object(Bucket=bucket, Key=f"data/{i:07d}", Body=body, Metadata={"n": str(i)}, ContentType="text/plain")

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(objects)))
    for i in range(large):
        s3.put_object(Bucket=bucket, Key=f"large/{i}", Body=os.urandom(6 * MIB))


def counted(client):
    return s3_reencrypt.RequestCounter(client)


def run_engine(s3, bucket, key, concurrency, acls=False):
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}, "BucketKeyEnabled": True}]})
    cutoff = time.time() + 1  # every seeded object is older (they are copied), as after the module sets the default
    traits = s3_reencrypt.bucket_traits(s3, bucket)
    assert traits.acls_enabled == acls
    options = s3_reencrypt.Options(bucket=bucket, key_arn=key, concurrency=concurrency, multipart_threshold=5 * MIB, part_size=5 * MIB)
    result = s3_reencrypt.run(s3, options, traits, cutoff, None)
    assert result["failed"] == 0, result["failed_objects"][:3]
    return result["scanned"], result["seconds"], result["requests"]


def run_bare(s3, bucket, key, concurrency):
    counter = counted(s3)
    started = time.monotonic()
    keys = [o for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page.get("Contents", [])]

    def copy(item):  # one CopyObject each, nothing kept: the ceiling of requests per second
        s3.copy_object(Bucket=bucket, Key=item["Key"], CopySource={"Bucket": bucket, "Key": item["Key"]},
                       ServerSideEncryption="aws:kms", SSEKMSKeyId=key)

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(copy, keys))
    return len(keys), time.monotonic() - started, counter.count


def run_cli(aws, bucket, key, concurrency, count):
    aws_cli = "aws"
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config"
        config.write_text(f"[default]\nregion = us-east-1\ns3 =\n  max_concurrent_requests = {concurrency}\n  multipart_threshold = 5MB\n"
                          "  multipart_chunksize = 5MB\n")
        env = {**os.environ, **aws.subprocess_env(account=ACCOUNT), "AWS_CONFIG_FILE": str(config)}
        started = time.monotonic()
        proc = subprocess.run([aws_cli, "s3", "cp", f"s3://{bucket}/", f"s3://{bucket}/", "--recursive", "--sse", "aws:kms",
                               "--sse-kms-key-id", key, "--only-show-errors"], env=env, capture_output=True, text=True, check=False)
        seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"aws s3 cp failed: {proc.stderr[-2000:]}")
    return count, seconds, None


def verify_on_key(s3, bucket, key, sample=50):
    items = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page.get("Contents", [])]
    step = max(1, len(items) // sample)
    return all(s3.head_object(Bucket=bucket, Key=k).get("SSEKMSKeyId") == key for k in items[::step])


def peak_memory(aws, s3, old_key, key, objects, concurrency, name):
    seed(s3, name, objects, 0, old_key)
    tracemalloc.start()
    run_engine(s3, name, key, concurrency)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


JOB_TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "batchoperations.s3.amazonaws.com"},
                                                     "Action": "sts:AssumeRole"}]}


def bucket_kms_params(bucket, key, state, concurrency, engine, role):
    return {"bucket": bucket, "key_arn": key, "bucket_key": True, "deny_other_keys": False, "remove_deny_statement": False,
            "policy_sid": "x", "reencrypt_objects": True, "prefix": "", "concurrency": concurrency,
            "multipart_threshold": 5 * 1024 * MIB, "multipart_part_size": 512 * MIB, "max_seconds": None, "verify": False,
            "all_versions": False, "delete_replaced_versions": False, "fail_on_object_errors": True,
            "writers_follow_default": False, "cutoff_margin": 900, "checkpoint_bucket": state, "checkpoint_prefix": "byok",
            "checkpoint_path": None, "engine": engine, "batch_job_threshold": 1, "batch_job_role_arn": role,
            "batch_job_report_bucket": None, "batch_job_report_prefix": "byok/jobs", "update_in_place": False}


def run_bucket_kms(aws, s3, bucket, key, state, concurrency, engine, role):
    """One s3_bucket_kms call (its module_utils, as the module runs them); (requests per object, controller seconds, wall)."""
    control = aws.client("s3control", account=ACCOUNT) if engine != "controller" else None
    params = bucket_kms_params(bucket, key, state, concurrency, engine, role)
    if control is not None:
        # the plan first (check mode), its digests given back: the jobs run at once, as after an operator's review
        plan = BucketKms(s3, params, True, s3control=control, account_id=ACCOUNT).apply()
        params["batch_job_confirm"] = [j["digest"] for j in plan["engine"]["jobs"]]
    started = time.monotonic()
    result = BucketKms(s3, params, False, s3control=control, account_id=ACCOUNT).apply()
    wall = time.monotonic() - started
    assert result["complete"] and result["failed"] == 0, result["failed_objects"][:3]
    assert result["engine"]["name"] == engine, result["engine"]
    return result["requests"] / result["scanned"], result["seconds"], wall, result["scanned"]


def compare_engines(aws, s3, old_key, key, objects, concurrency):
    iam = aws.client("iam", account=ACCOUNT)
    role = iam.create_role(RoleName="mattermost-byok-s3-batch-bench", AssumeRolePolicyDocument=json.dumps(JOB_TRUST))["Role"]["Arn"]
    iam.put_role_policy(RoleName="mattermost-byok-s3-batch-bench", PolicyName="job", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*", "kms:*"], "Resource": "*"}]}))
    s3.create_bucket(Bucket="bench-state")
    print(f"{'engine':12} {'objects':>8} {'req/object':>11} {'controller s':>13} {'wall s':>8}")
    rows = {}
    for size in (objects, objects * 10):
        for engine in ("controller", "batch_job"):
            name = f"bench-{engine.replace('_', '-')}-{size}"
            seed(s3, name, size, 0, old_key)
            time.sleep(1.1)
            per, busy, wall, scanned = run_bucket_kms(aws, s3, name, key, "bench-state", concurrency, engine, role)
            rows[(engine, size)] = (per, busy, wall)
            print(f"{engine:12} {scanned:>8} {per:>11.4f} {busy:>13.2f} {wall:>8.2f}", flush=True)
            assert verify_on_key(s3, name, key), f"{name}: an object is not on the key"
    for engine in ("controller", "batch_job"):
        growth = rows[(engine, objects * 10)][1] / max(rows[(engine, objects)][1], 1e-6)
        print(f"{engine}: controller time x{growth:.1f} for x10 objects")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2000, help="small (1 KiB) objects per bucket")
    parser.add_argument("--large", type=int, default=3, help="6 MiB objects per bucket (multipart at the 5 MiB threshold)")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--memory-objects", type=int, default=1000, help="bucket size for the memory check (and ten times it)")
    parser.add_argument("--engines", action="store_true", help="only the controller engine against the job engine (see above)")
    args = parser.parse_args(argv)
    if args.engines:
        with LocalAWS.start(extended=True) as aws:
            s3 = aws.client("s3", account=ACCOUNT, max_pool_connections=args.concurrency + 4)
            kms = aws.client("kms", account=ACCOUNT)
            old_key, key = (kms.create_key()["KeyMetadata"]["Arn"] for _key in range(2))
            compare_engines(aws, s3, old_key, key, args.objects, args.concurrency)
        return 0
    with LocalAWS.start(extended=True) as aws:
        s3 = aws.client("s3", account=ACCOUNT, max_pool_connections=args.concurrency + 4)
        kms = aws.client("kms", account=ACCOUNT)
        old_key, key = (kms.create_key()["KeyMetadata"]["Arn"] for _key in range(2))
        total = args.objects + args.large
        print(f"seeding 4 buckets of {args.objects} x 1 KiB + {args.large} x 6 MiB ...", flush=True)
        for name in ("bench-engine", "bench-cli", "bench-bare"):
            seed(s3, name, args.objects, args.large, old_key)
        seed(s3, "bench-acls", args.objects, args.large, old_key, acls=True)
        time.sleep(1.1)
        rows = {}
        rows["engine"] = run_engine(s3, "bench-engine", key, args.concurrency)
        rows["aws s3 cp"] = run_cli(aws, "bench-cli", key, args.concurrency, total)
        rows["bare CopyObject"] = run_bare(s3, "bench-bare", key, args.concurrency)
        rows["engine, ACLs enabled"] = run_engine(s3, "bench-acls", key, args.concurrency, acls=True)
        print(f"\n{total} objects per bucket, concurrency {args.concurrency}, 2 cores, local AWS (moto server)\n")
        print(f"{'method':24} {'objects':>8} {'seconds':>8} {'obj/s':>8} {'req/object':>11}")
        rate = {}
        for method, (count, seconds, requests) in rows.items():
            rate[method] = count / seconds
            per = f"{requests / count:.3f}" if requests is not None else "n/a"
            print(f"{method:24} {count:>8} {seconds:>8.2f} {rate[method]:>8.1f} {per:>11}")
        print(f"\nengine / bare CopyObject: {rate['engine'] / rate['bare CopyObject']:.2f}  (target >= 0.90)")
        print(f"engine / aws s3 cp:       {rate['engine'] / rate['aws s3 cp']:.2f}  (target >= 1.00)")
        print(f"engine with ACLs / engine without: {rate['engine, ACLs enabled'] / rate['engine']:.2f} "
              f"(extra GetObjectAcl per object: {rows['engine, ACLs enabled'][2] / total - rows['engine'][2] / total:.2f} requests)")
        for name in ("bench-engine", "bench-cli", "bench-bare", "bench-acls"):
            print(f"{name}: sampled objects on the new key: {verify_on_key(s3, name, key)}")
        small = peak_memory(aws, s3, old_key, key, args.memory_objects, args.concurrency, "bench-mem-1x")
        large = peak_memory(aws, s3, old_key, key, args.memory_objects * 10, args.concurrency, "bench-mem-10x")
        print(f"\npeak traced memory of the engine: {args.memory_objects} objects {small / MIB:.2f} MiB, "
              f"{args.memory_objects * 10} objects {large / MIB:.2f} MiB (x{large / small:.2f}, target <= 1.10)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
