"""all_versions request cost on the local AWS (SSE-KMS ETags opaque, as on AWS): a first run, a re-run, a run with
delete_replaced_versions and one after it, for versions with and without an additional checksum of their own.

    python benchmarks/s3_all_versions.py [--keys 200] [--versions 3] [--concurrency 4]

Starts its own local AWS (tests.local_aws.harness.LocalAWS) and drives the engine of s3_bucket_kms directly. A re-run
pairs each original with its copy by size and checksum: a HeadObject of the copy plus a HeadObject (own checksum) or a
GetObject (none: its SHA-256 is computed) of the original; a delete run adds the DeleteObject (the copy's read-back
is the pairing's HeadObject).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT / ".collections", ROOT):
    sys.path.insert(0, str(path))

from ansible_collections.mattermost.byok.plugins.module_utils.s3 import reencrypt as s3_reencrypt  # noqa: E402
from tests.local_aws.harness import LocalAWS  # noqa: E402

ACCOUNT = "222222222222"
ENFORCED = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def default_key(key_arn):
    return {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}}]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--versions", type=int, default=3, help="versions per key (1 KiB each)")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    originals = args.keys * args.versions
    with tempfile.TemporaryDirectory() as tmp, LocalAWS.start(extended=True, log_path=Path(tmp) / "server.log") as aws:
        s3, kms = aws.client("s3", account=ACCOUNT), aws.client("kms", account=ACCOUNT)
        old, new = kms.create_key()["KeyMetadata"]["Arn"], kms.create_key()["KeyMetadata"]["Arn"]
        print(f"{args.keys} keys x {args.versions} versions = {originals} original versions, concurrency {args.concurrency}\n")
        print(f"{'versions':24s} {'run':13s} {'copied':>6s} {'paired':>6s} {'deleted':>7s} {'requests':>8s} {'per version':>11s} {'seconds':>7s}")
        for label, extra in (("without a checksum", {}), ("with CRC32 of their own", {"ChecksumAlgorithm": "CRC32"})):
            bucket = "bench-versions-" + ("crc" if extra else "plain")
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
            s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=ENFORCED)
            s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=default_key(old))
            for i in range(args.keys):
                for n in range(args.versions):
                    s3.put_object(Bucket=bucket, Key=f"k/{i:05d}", Body=f"{i}-{n}-".encode() + b"x" * 1024, **extra)
            time.sleep(1.1)  # LastModified has one-second resolution: the cutoff's second is after every original
            cutoff = s3_reencrypt.server_time(s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=default_key(new)))
            time.sleep(1.1)
            traits = s3_reencrypt.bucket_traits(s3, bucket)
            for run, delete in (("first", False), ("re-run", False), ("delete", True), ("after delete", True)):
                options = s3_reencrypt.Options(bucket=bucket, key_arn=new, concurrency=args.concurrency)
                r = s3_reencrypt.run_versions(s3, options, traits, cutoff, None, delete_replaced=delete)
                print(f"{label:24s} {run:13s} {r['re_encrypted']:6d} {r['replaced_versions']:6d} {r['versions_deleted']:7d} "
                      f"{r['requests']:8d} {r['requests'] / originals:11.2f} {r['seconds']:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
