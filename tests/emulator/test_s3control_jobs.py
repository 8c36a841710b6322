"""S3 Batch Operations jobs in the local AWS (tests/local_aws/extensions/s3control_jobs.py).

AWS: https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-job-status.html (statuses, confirmation,
cancellation, completion reports), batch-ops-copy-object.html (a copy job is a CopyObject per object, up to 5 GB),
batch-ops-examples-reports.html (report layout), API_control_S3JobManifestGenerator.html (generated manifests).
Plain moto has no s3control jobs: every request here is a 404 there (botocore ClientError).
"""
from __future__ import annotations

import csv
import datetime
import io
import json
import time
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.local_aws.harness import LocalAWS, drop_account_label

from .support import CUSTOMER, OTHER_REGION, PROVIDER, REGION, against_both, error_of, new_key
from .test_iam_auth import set_enforcement

GAP = "plain moto has no S3 Batch Operations jobs (s3control /v20180820/jobs answers 404)"
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "batchoperations.s3.amazonaws.com"},
                                                 "Action": "sts:AssumeRole"}]}
ORDER = ["New", "Preparing", "Suspended", "Ready", "Active", "Completing", "Complete"]
CSV_FORMAT = "S3BatchOperations_CSV_20180820"
FAILURE_THRESHOLD_TASKS = 1000  # "more than 1,000 tasks ... over 50 % failed" (job status page, tracking job failures)


def batch_role(aws: LocalAWS, name: str, account: str = PROVIDER, trust: dict | None = None) -> str:
    return aws.client("iam", account).create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust or TRUST))["Role"]["Arn"]


def csv_manifest(s3: Any, bucket: str, rows: list[str], key: str = "manifests/m.csv") -> dict[str, Any]:
    etag = s3.put_object(Bucket=bucket, Key=key, Body=("\n".join(rows) + "\n").encode())["ETag"].strip('"')
    fields = ["Bucket", "Key", "VersionId"] if rows and rows[0].count(",") == 2 else ["Bucket", "Key"]
    return {"Spec": {"Format": CSV_FORMAT, "Fields": fields}, "Location": {"ObjectArn": f"arn:aws:s3:::{bucket}/{key}", "ETag": etag}}


def report(bucket: str, scope: str = "AllTasks", prefix: str = "reports") -> dict[str, Any]:
    return {"Enabled": True, "Bucket": f"arn:aws:s3:::{bucket}", "Prefix": prefix, "Format": "Report_CSV_20180820", "ReportScope": scope}


def copy_in_place(bucket: str, key_arn: str, **extra: Any) -> dict[str, Any]:
    return {"S3PutObjectCopy": {"TargetResource": f"arn:aws:s3:::{bucket}", "SSEAwsKmsKeyId": key_arn, "BucketKeyEnabled": True,
                                "MetadataDirective": "COPY", **extra}}


def create(control: Any, role: str, operation: dict, **kwargs: Any) -> str:
    kwargs.setdefault("ConfirmationRequired", False)
    kwargs.setdefault("Priority", 10)
    kwargs.setdefault("Report", {"Enabled": False})
    return control.create_job(AccountId=PROVIDER, RoleArn=role, Operation=operation, **kwargs)["JobId"]


def follow(control: Any, job_id: str, until: tuple[str, ...] = ("Complete", "Failed", "Cancelled"), timeout: float = 60) -> tuple[dict, list[str]]:
    """(the job once in one of `until`, every status seen on the way)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        job = control.describe_job(AccountId=PROVIDER, JobId=job_id)["Job"]
        if not seen or seen[-1] != job["Status"]:
            seen.append(job["Status"])
        if job["Status"] in until:
            return job, seen
        assert time.monotonic() < deadline, f"job {job_id} still {job['Status']} after {timeout} s: {seen}"
        time.sleep(0.05)


def report_rows(s3: Any, bucket: str, job_id: str, prefix: str = "reports") -> tuple[dict, list[list[str]]]:
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/job-{job_id}/manifest.json")["Body"].read())
    rows = []
    for entry in manifest["Results"]:
        body = s3.get_object(Bucket=entry["Bucket"], Key=entry["Key"])["Body"].read().decode()
        rows += list(csv.reader(io.StringIO(body)))
    return manifest, rows


@pytest.fixture
def world(aws: LocalAWS, unique_name: Any) -> dict[str, Any]:
    """A provider bucket with three tagged objects with metadata, a key, a role for Batch Operations."""
    s3 = aws.client("s3", PROVIDER)
    bucket = unique_name("batch")
    s3.create_bucket(Bucket=bucket)
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"data/file {i}", Body=b"x" * (i + 1), Metadata={"owner": f"u{i}"}, Tagging=f"n={i}",
                      ContentType="text/plain", ServerSideEncryption="AES256")
    return {"s3": s3, "control": aws.client("s3control", PROVIDER), "bucket": bucket,
            "key": new_key(aws.client("kms", PROVIDER))["Arn"], "role": batch_role(aws, unique_name("batch-role"))}


@against_both(GAP, raises=ClientError)
def test_copy_job_moves_through_the_documented_statuses_and_rekeys_every_object(aws, world):
    s3, bucket = world["s3"], world["bucket"]
    manifest = csv_manifest(s3, bucket, [f"{bucket},data/file%20{i}" for i in range(3)])
    job_id = create(world["control"], world["role"], copy_in_place(bucket, world["key"]), Manifest=manifest, Description="re-key")
    job, seen = follow(world["control"], job_id)
    assert job["Status"] == "Complete", job.get("FailureReasons")
    assert seen == [s for s in ORDER if s in seen] and seen[-1] == "Complete"  # never out of the documented order
    assert "Suspended" not in seen  # ConfirmationRequired false
    assert job["ProgressSummary"]["TotalNumberOfTasks"] == 3
    assert job["ProgressSummary"]["NumberOfTasksSucceeded"] == 3 and job["ProgressSummary"]["NumberOfTasksFailed"] == 0
    assert job["TerminationDate"] >= job["CreationTime"] and job["Description"] == "re-key"
    for i in range(3):
        head = s3.head_object(Bucket=bucket, Key=f"data/file {i}")
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"], head.get("BucketKeyEnabled")) == ("aws:kms", world["key"], True)
        assert head["Metadata"] == {"owner": f"u{i}"} and head["ContentType"] == "text/plain"
        assert s3.get_object_tagging(Bucket=bucket, Key=f"data/file {i}")["TagSet"] == [{"Key": "n", "Value": str(i)}]


@against_both(GAP, raises=ClientError)
def test_completion_report_has_the_documented_layout(aws, world):
    s3, bucket = world["s3"], world["bucket"]
    s3.put_object(Bucket=bucket, Key="data/sse-c", Body=b"c", SSECustomerAlgorithm="AES256", SSECustomerKey="k" * 32)
    manifest = csv_manifest(s3, bucket, [f"{bucket},data/file%200", f"{bucket},data/sse-c"])
    job_id = create(world["control"], world["role"], copy_in_place(bucket, world["key"]), Manifest=manifest, Report=report(bucket))
    job, _seen = follow(world["control"], job_id)
    assert job["Status"] == "Complete"
    assert job["ProgressSummary"]["NumberOfTasksSucceeded"] == 1 and job["ProgressSummary"]["NumberOfTasksFailed"] == 1
    top, rows = report_rows(s3, bucket, job_id)
    assert top["Format"] == "Report_CSV_20180820"
    assert top["ReportSchema"] == "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"
    assert sorted(r["TaskExecutionStatus"] for r in top["Results"]) == ["failed", "succeeded"]
    assert all(r["Key"].startswith(f"reports/job-{job_id}/results/") and r["Key"].endswith(".csv") for r in top["Results"])
    assert [bucket, "data/file%200", "", "succeeded", "200", "", "Successful"] in rows
    failed = next(r for r in rows if r[3] == "failed")
    assert failed[:6] == [bucket, "data/sse-c", "", "failed", "400", "InvalidRequest"]  # SSE-C objects can't be copied by a job


@against_both(GAP, raises=ClientError)
def test_failed_tasks_only_report_and_objects_over_the_copy_limit(aws, world):
    s3, bucket = world["s3"], world["bucket"]
    manifest = csv_manifest(s3, bucket, [f"{bucket},data/file%200", f"{bucket},data/file%202"])
    job_id = create(world["control"], world["role"], copy_in_place(bucket, world["key"]), Manifest=manifest,
                    Report=report(bucket, "FailedTasksOnly"), Tags=[{"Key": "local-aws:copy-limit-bytes", "Value": "2"}])
    job, _seen = follow(world["control"], job_id)
    assert job["Status"] == "Complete"
    top, rows = report_rows(s3, bucket, job_id)
    assert [r["TaskExecutionStatus"] for r in top["Results"]] == ["failed"]
    assert rows == [[bucket, "data/file%202", "", "failed", "400", "InvalidRequest",
                     "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120"]]
    assert s3.head_object(Bucket=bucket, Key="data/file 2")["ServerSideEncryption"] == "AES256"  # not copied


@against_both(GAP, raises=ClientError)
def test_confirmation_required_suspends_the_job_until_ready(aws, world):
    s3, bucket, control = world["s3"], world["bucket"], world["control"]
    manifest = csv_manifest(s3, bucket, [f"{bucket},data/file%200"])
    job_id = create(control, world["role"], copy_in_place(bucket, world["key"]), Manifest=manifest, ConfirmationRequired=True)
    job, _seen = follow(control, job_id, until=("Suspended", "Failed"))
    assert job["Status"] == "Suspended" and job["SuspendedCause"] == "AwaitingConfirmation" and "SuspendedDate" in job
    time.sleep(0.5)
    assert control.describe_job(AccountId=PROVIDER, JobId=job_id)["Job"]["Status"] == "Suspended"  # waits for the confirmation
    assert s3.head_object(Bucket=bucket, Key="data/file 0")["ServerSideEncryption"] == "AES256"
    answer = control.update_job_status(AccountId=PROVIDER, JobId=job_id, RequestedJobStatus="Ready", StatusUpdateReason="plan reviewed")
    assert (answer["JobId"], answer["Status"], answer["StatusUpdateReason"]) == (job_id, "Ready", "plan reviewed")
    job, _seen = follow(control, job_id)
    assert job["Status"] == "Complete"
    with pytest.raises(ClientError) as excinfo:
        control.update_job_status(AccountId=PROVIDER, JobId=job_id, RequestedJobStatus="Cancelled")
    assert error_of(excinfo)[:2] == ("JobStatusException", 400)


@against_both(GAP, raises=ClientError)
def test_cancelling_an_active_job_stops_its_tasks(aws, world):
    s3, bucket, control = world["s3"], world["bucket"], world["control"]
    for i in range(3, 12):
        s3.put_object(Bucket=bucket, Key=f"data/file {i}", Body=b"y", ServerSideEncryption="AES256")
    manifest = csv_manifest(s3, bucket, [f"{bucket},data/file%20{i}" for i in range(12)])
    job_id = create(control, world["role"], copy_in_place(bucket, world["key"]), Manifest=manifest, Report=report(bucket),
                    Tags=[{"Key": "local-aws:task-seconds", "Value": "0.3"}])
    follow(control, job_id, until=("Active",))
    answer = control.update_job_status(AccountId=PROVIDER, JobId=job_id, RequestedJobStatus="Cancelled", StatusUpdateReason="stop")
    assert answer["Status"] == "Cancelling"
    job, seen = follow(control, job_id)
    assert job["Status"] == "Cancelled" and "TerminationDate" in job
    done = job["ProgressSummary"]["NumberOfTasksSucceeded"]
    assert done < 12 and job["ProgressSummary"]["TotalNumberOfTasks"] == 12
    _manifest, rows = report_rows(s3, bucket, job_id)
    assert len(rows) == done  # the report lists the tasks that ran


@against_both(GAP, raises=ClientError)
def test_client_request_token_makes_create_job_idempotent(aws, world):
    s3, bucket, control = world["s3"], world["bucket"], world["control"]
    manifest = csv_manifest(s3, bucket, [f"{bucket},data/file%200"])
    operation = copy_in_place(bucket, world["key"])
    first = create(control, world["role"], operation, Manifest=manifest, ClientRequestToken="run-1")
    assert create(control, world["role"], operation, Manifest=manifest, ClientRequestToken="run-1") == first
    with pytest.raises(ClientError) as excinfo:
        create(control, world["role"], operation, Manifest=manifest, ClientRequestToken="run-1", Priority=99)
    assert error_of(excinfo)[0] == "IdempotencyException"
    assert create(control, world["role"], operation, Manifest=manifest, ClientRequestToken="run-2") != first


@against_both(GAP, raises=ClientError)
def test_list_jobs_filters_by_status_and_pages(aws, world, unique_name):
    s3, bucket, control = world["s3"], world["bucket"], world["control"]
    manifest = csv_manifest(s3, bucket, [f"{bucket},data/file%200"])
    ids = [create(control, world["role"], copy_in_place(bucket, world["key"]), Manifest=manifest, ConfirmationRequired=True)
           for _i in range(3)]
    for job_id in ids:
        follow(control, job_id, until=("Suspended",))
    suspended = {j["JobId"]: j for j in control.list_jobs(AccountId=PROVIDER, JobStatuses=["Suspended"])["Jobs"]}
    assert set(ids) <= set(suspended)
    assert suspended[ids[0]]["Operation"] == "S3PutObjectCopy" and suspended[ids[0]]["Priority"] == 10
    pages, token = [], None
    while True:
        answer = control.list_jobs(AccountId=PROVIDER, JobStatuses=["Suspended"], MaxResults=1, **({"NextToken": token} if token else {}))
        pages.append(answer["Jobs"])
        token = answer.get("NextToken")
        if not token:
            break
    assert all(len(p) == 1 for p in pages) and {p[0]["JobId"] for p in pages} == set(suspended)
    assert not set(ids) & {j["JobId"] for j in control.list_jobs(AccountId=PROVIDER, JobStatuses=["Complete"])["Jobs"]}
    assert not aws.client("s3control", CUSTOMER).list_jobs(AccountId=CUSTOMER).get("Jobs")  # another account's jobs are not listed
    for job_id in ids:
        control.update_job_status(AccountId=PROVIDER, JobId=job_id, RequestedJobStatus="Cancelled")
    assert control.update_job_priority(AccountId=PROVIDER, JobId=ids[0], Priority=42)["Priority"] == 42
    assert control.describe_job(AccountId=PROVIDER, JobId=ids[0])["Job"]["Priority"] == 42


@against_both(GAP, raises=AssertionError)
def test_unknown_job_is_not_found(aws):
    with pytest.raises(ClientError) as excinfo:
        aws.client("s3control", PROVIDER).describe_job(AccountId=PROVIDER, JobId="00000000-0000-0000-0000-000000000000")
    assert error_of(excinfo)[0] == "NotFoundException"  # the model gives it no HTTP status of its own


@against_both(GAP, raises=ClientError)
@pytest.mark.parametrize("problem", ["untrusted role", "missing role", "manifest etag"])
def test_job_fails_when_its_role_or_manifest_is_wrong(aws, world, unique_name, problem):
    s3, bucket = world["s3"], world["bucket"]
    manifest = csv_manifest(s3, bucket, [f"{bucket},data/file%200"])
    role = world["role"]
    if problem == "untrusted role":
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        role = batch_role(aws, unique_name("ec2-role"), trust=trust)
    elif problem == "missing role":
        role = f"arn:aws:iam::{PROVIDER}:role/{unique_name('nobody')}"
    else:
        manifest["Location"]["ETag"] = "0" * 32
    job, _seen = follow(world["control"], create(world["control"], role, copy_in_place(bucket, world["key"]), Manifest=manifest))
    assert job["Status"] == "Failed" and job["FailureReasons"] and "TerminationDate" in job
    assert s3.head_object(Bucket=bucket, Key="data/file 0")["ServerSideEncryption"] == "AES256"


@against_both(GAP, raises=AssertionError)
def test_create_job_needs_one_manifest_kind(aws, world):
    generator = {"S3JobManifestGenerator": {"SourceBucket": f"arn:aws:s3:::{world['bucket']}", "EnableManifestOutput": False}}
    manifest = csv_manifest(world["s3"], world["bucket"], [f"{world['bucket']},data/file%200"])
    with pytest.raises(ClientError) as excinfo:
        create(world["control"], world["role"], copy_in_place(world["bucket"], world["key"]), Manifest=manifest, ManifestGenerator=generator)
    assert error_of(excinfo)[:2] == ("BadRequestException", 400)


@against_both(GAP, raises=ClientError)
def test_manifest_generator_filters_objects_and_writes_its_manifest(aws, world):
    s3, bucket, control = world["s3"], world["bucket"], world["control"]
    s3.put_object(Bucket=bucket, Key="data/cold", Body=b"c", StorageClass="STANDARD_IA", ServerSideEncryption="AES256")
    s3.put_object(Bucket=bucket, Key="data/on-key", Body=b"k", ServerSideEncryption="aws:kms", SSEKMSKeyId=world["key"])
    s3.put_object(Bucket=bucket, Key="other/file", Body=b"o", ServerSideEncryption="AES256")
    generator = {"S3JobManifestGenerator": {
        "SourceBucket": f"arn:aws:s3:::{bucket}", "EnableManifestOutput": True,
        "ManifestOutputLocation": {"Bucket": f"arn:aws:s3:::{bucket}", "ManifestPrefix": "generated", "ManifestFormat": "S3InventoryReport_CSV_20211130"},
        "Filter": {"KeyNameConstraint": {"MatchAnyPrefix": ["data/"]}, "MatchAnyStorageClass": ["STANDARD"],
                   "MatchAnyObjectEncryption": [{"SSES3": {}}, {"NOTSSE": {}}], "ObjectSizeLessThanBytes": 3}}}
    job_id = create(control, world["role"], copy_in_place(bucket, world["key"]), ManifestGenerator=generator, Report=report(bucket))
    job, _seen = follow(control, job_id)
    assert job["Status"] == "Complete" and job["ProgressSummary"]["TotalNumberOfTasks"] == 2  # file 0 and file 1 (sizes 1, 2)
    descriptor = job["GeneratedManifestDescriptor"]
    assert descriptor["Format"] == "S3InventoryReport_CSV_20211130"
    assert descriptor["Location"]["ObjectArn"] == f"arn:aws:s3:::{bucket}/generated/job-{job_id}/manifest.json"
    listing = json.loads(s3.get_object(Bucket=bucket, Key=f"generated/job-{job_id}/manifest.json")["Body"].read())
    data = s3.get_object(Bucket=bucket, Key=listing["files"][0]["key"])["Body"].read().decode()
    assert sorted(r[1] for r in csv.reader(io.StringIO(data))) == ["data/file%200", "data/file%201"]
    assert s3.head_object(Bucket=bucket, Key="data/file 1")["SSEKMSKeyId"] == world["key"]
    assert s3.head_object(Bucket=bucket, Key="data/file 2")["ServerSideEncryption"] == "AES256"  # too large for the filter
    assert s3.head_object(Bucket=bucket, Key="data/cold")["ServerSideEncryption"] == "AES256"


@against_both(GAP, raises=ClientError)
def test_update_object_encryption_job_rekeys_every_listed_version_in_place(aws, world, unique_name):
    s3, control = world["s3"], world["control"]
    bucket = unique_name("versioned")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old_key = new_key(aws.client("kms", PROVIDER))["Arn"]
    versions = [s3.put_object(Bucket=bucket, Key="doc", Body=bytes([i]) * 4, ServerSideEncryption="aws:kms", SSEKMSKeyId=old_key)["VersionId"]
                for i in range(3)]
    manifest = csv_manifest(s3, bucket, [f"{bucket},doc,{v}" for v in versions])
    before = s3.list_object_versions(Bucket=bucket, Prefix="doc")["Versions"]
    operation = {"S3UpdateObjectEncryption": {"ObjectEncryption": {"SSEKMS": {"KMSKeyArn": world["key"], "BucketKeyEnabled": True}}}}
    job, _seen = follow(control, create(control, world["role"], operation, Manifest=manifest))
    assert job["Status"] == "Complete" and job["ProgressSummary"]["NumberOfTasksSucceeded"] == 3
    after = s3.list_object_versions(Bucket=bucket, Prefix="doc")["Versions"]
    assert [(v["VersionId"], v["ETag"], v["LastModified"]) for v in after] == [(v["VersionId"], v["ETag"], v["LastModified"]) for v in before]
    for version in versions:
        head = s3.head_object(Bucket=bucket, Key="doc", VersionId=version)
        assert (head["SSEKMSKeyId"], head["BucketKeyEnabled"]) == (world["key"], True)


@pytest.fixture
def private_aws(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    """IAM enforcement is server-wide: the extended run gets a server of its own."""
    if request.node.callspec.params["aws"] == "plain":
        yield request.getfixturevalue("plain_moto")
        return
    with LocalAWS.start(extended=True, log_path=tmp_path / "local-aws.log") as server:
        yield server


@against_both("plain moto has no Batch Operations jobs, so no task runs as the job's role", raises=ClientError)
def test_tasks_run_as_the_role_and_need_its_kms_permissions(aws, private_aws, unique_name):
    """With IAM enforcement on, a role without kms permissions on the target key fails its task with AccessDenied;
    the same job with a role whose IAM policy allows the key (the key policy allows the account) succeeds."""
    aws = private_aws
    iam, s3, kms = aws.client("iam", PROVIDER), aws.client("s3", PROVIDER), aws.client("kms", PROVIDER)
    control = aws.client("s3control", PROVIDER)
    bucket = unique_name("enforced")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a", Body=b"a", ServerSideEncryption="AES256")
    key = new_key(kms)["Arn"]
    roles = {}
    for name in ("allowed", "no-kms"):
        roles[name] = batch_role(aws, unique_name(name))
        statements = [{"Effect": "Allow", "Action": "s3:*", "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]
        if name == "allowed":
            statements.append({"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": key})
        iam.put_role_policy(RoleName=roles[name].rsplit("/", 1)[1], PolicyName="job",
                            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    manifest = csv_manifest(s3, bucket, [f"{bucket},a"])
    operator = iam.create_user(UserName=unique_name("operator"))["User"]["UserName"]
    iam.put_user_policy(UserName=operator, PolicyName="all", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:*", "kms:*"], "Resource": "*"}]}))
    access = iam.create_access_key(UserName=operator)["AccessKey"]
    session = boto3.Session(aws_access_key_id=access["AccessKeyId"], aws_secret_access_key=access["SecretAccessKey"], region_name=REGION)
    config = Config(retries={"total_max_attempts": 1})
    control = session.client("s3control", endpoint_url=aws.endpoint_url, config=config)
    control.meta.events.register("before-sign.s3-control", drop_account_label)
    s3 = session.client("s3", endpoint_url=aws.endpoint_url, config=config)
    set_enforcement(aws, "0")  # from here on every request is authorized: the operator's, and the job's as its role
    try:
        outcomes = {}
        for name, role in roles.items():
            job, _seen = follow(control, create(control, role, copy_in_place(bucket, key), Manifest=manifest, Report=report(bucket)))
            outcomes[name] = (job["Status"], job["ProgressSummary"]["NumberOfTasksSucceeded"], job["ProgressSummary"]["NumberOfTasksFailed"])
            if name == "no-kms":
                _manifest, rows = report_rows(s3, bucket, job["JobId"])
                assert rows[0][3:6] == ["failed", "403", "AccessDenied"]
    finally:
        set_enforcement(aws, "inf")
    assert outcomes == {"allowed": ("Complete", 1, 0), "no-kms": ("Complete", 0, 1)}


@against_both(GAP, raises=ClientError)
def test_jobs_are_regional_and_keep_their_tags(aws, world):
    s3, bucket, control = world["s3"], world["bucket"], world["control"]
    manifest = csv_manifest(s3, bucket, [f"{bucket},data/file%200"])
    tags = [{"Key": "byok-run", "Value": "run-1"}]
    job_id = create(control, world["role"], copy_in_place(bucket, world["key"]), Manifest=manifest, ConfirmationRequired=True, Tags=tags)
    assert control.get_job_tagging(AccountId=PROVIDER, JobId=job_id)["Tags"] == tags
    control.put_job_tagging(AccountId=PROVIDER, JobId=job_id, Tags=[*tags, {"Key": "owner", "Value": "sre"}])
    assert len(control.get_job_tagging(AccountId=PROVIDER, JobId=job_id)["Tags"]) == 2
    elsewhere = aws.client("s3control", PROVIDER, region=OTHER_REGION)
    with pytest.raises(ClientError) as excinfo:
        elsewhere.describe_job(AccountId=PROVIDER, JobId=job_id)
    assert error_of(excinfo)[0] == "NotFoundException"
    assert job_id not in {j["JobId"] for j in elsewhere.list_jobs(AccountId=PROVIDER).get("Jobs", [])}
    control.update_job_status(AccountId=PROVIDER, JobId=job_id, RequestedJobStatus="Cancelled")
    assert follow(control, job_id)[0]["Status"] == "Cancelled"


@against_both(GAP, raises=ClientError)
def test_job_fails_once_over_half_of_more_than_a_thousand_tasks_failed(aws, world):
    s3, bucket, control = world["s3"], world["bucket"], world["control"]
    manifest = csv_manifest(s3, bucket, [f"{bucket},missing/{i}" for i in range(1100)])
    job_id = create(control, world["role"], copy_in_place(bucket, world["key"]), Manifest=manifest, Report=report(bucket, "FailedTasksOnly"),
                    Tags=[{"Key": "local-aws:task-seconds", "Value": "0"}])
    job, _seen = follow(control, job_id, timeout=240)
    assert job["Status"] == "Failed" and job["FailureReasons"]
    progress = job["ProgressSummary"]
    assert progress["TotalNumberOfTasks"] == 1100 and progress["NumberOfTasksFailed"] == FAILURE_THRESHOLD_TASKS + 1
    _manifest, rows = report_rows(s3, bucket, job_id)  # a failed job whose tasks ran still has its report
    assert len(rows) == FAILURE_THRESHOLD_TASKS + 1 and rows[0][3:6] == ["failed", "404", "NoSuchKey"]


@against_both(GAP, raises=ClientError)
def test_a_bucket_tag_slows_the_jobs_of_that_bucket(aws, world):
    """The knob for kill-and-resume tests of code that creates its own jobs (see the module docstring)."""
    s3, bucket, control = world["s3"], world["bucket"], world["control"]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "local-aws:batch-task-seconds", "Value": "0.4"}]})
    manifest = csv_manifest(s3, bucket, [f"{bucket},data/file%20{i}" for i in range(3)])
    job_id = create(control, world["role"], copy_in_place(bucket, world["key"]), Manifest=manifest)
    follow(control, job_id, until=("Active",))
    started = time.monotonic()
    job, _seen = follow(control, job_id)
    assert job["Status"] == "Complete" and time.monotonic() - started >= 0.8


@against_both(GAP, raises=ClientError)
def test_copy_job_sets_object_lock_storage_class_and_new_tags_as_asked(aws, world, unique_name):
    s3, control = world["s3"], world["control"]
    bucket = unique_name("locked")
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3.put_object(Bucket=bucket, Key="old", Body=b"o", Tagging="a=1", ServerSideEncryption="AES256", ChecksumAlgorithm="SHA256")
    cutoff = datetime.datetime.now(datetime.timezone.utc)
    time.sleep(1.1)  # LastModified has whole seconds
    s3.put_object(Bucket=bucket, Key="new", Body=b"n", Tagging="a=1", ServerSideEncryption="AES256", ChecksumAlgorithm="SHA256")
    until = (cutoff + datetime.timedelta(days=2)).replace(microsecond=0)
    operation = copy_in_place(bucket, world["key"], StorageClass="STANDARD_IA", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until,
                              ObjectLockLegalHoldStatus="ON", NewObjectTagging=[{"Key": "b", "Value": "2"}], ChecksumAlgorithm="CRC32")
    generator = {"S3JobManifestGenerator": {"SourceBucket": f"arn:aws:s3:::{bucket}", "EnableManifestOutput": False,
                                            "Filter": {"CreatedAfter": cutoff}}}
    job, _seen = follow(control, create(control, world["role"], operation, ManifestGenerator=generator))
    assert job["Status"] == "Complete" and job["ProgressSummary"]["NumberOfTasksSucceeded"] == 1
    versions = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert sorted(v["Key"] for v in versions) == ["new", "new", "old"]  # a copy is a new version; "old" was filtered out
    head = s3.head_object(Bucket=bucket, Key="new")
    assert (head["StorageClass"], head["ObjectLockMode"], head["ObjectLockLegalHoldStatus"]) == ("STANDARD_IA", "GOVERNANCE", "ON")
    assert head["ObjectLockRetainUntilDate"] == until and head["SSEKMSKeyId"] == world["key"]
    assert s3.get_object_tagging(Bucket=bucket, Key="new")["TagSet"] == [{"Key": "b", "Value": "2"}]
    assert abs(job["ManifestGenerator"]["S3JobManifestGenerator"]["Filter"]["CreatedAfter"] - cutoff) < datetime.timedelta(seconds=1)


@against_both("an S3 ARN with a Region is refused in a policy unless it names an access point", raises=ClientError)
def test_a_policy_may_scope_job_actions_to_job_arns_with_region_and_account(aws, unique_name):
    """IAM takes `arn:aws:s3:<region>:<account>:job/*` as a Resource (the job resource type of the Service
    Authorization Reference for S3); a bucket ARN with a Region stays refused, as on AWS."""
    iam = aws.client("iam", PROVIDER)
    role = unique_name("job-watcher")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))

    def put(resource):
        iam.put_role_policy(RoleName=role, PolicyName="jobs", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:DescribeJob", "s3:UpdateJobStatus"], "Resource": resource}]}))

    put(f"arn:aws:s3:{REGION}:{PROVIDER}:job/*")
    assert iam.get_role_policy(RoleName=role, PolicyName="jobs")["PolicyDocument"]["Statement"][0]["Resource"].endswith(":job/*")
    put("arn:aws:s3:*:*:job/*")
    with pytest.raises(ClientError) as refused:
        put(f"arn:aws:s3:{REGION}::{unique_name('bucket')}")
    assert error_of(refused)[0] == "MalformedPolicyDocument"
