# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The S3 Batch Operations planner: which engine, which objects a job takes, the CreateJob request, the report."""

from __future__ import annotations

from datetime import datetime, timezone

import botocore.session
import pytest

from ansible_collections.mattermost.byok.plugins.module_utils.s3 import batch_job as job
from ansible_collections.mattermost.byok.plugins.module_utils.s3.reencrypt import BucketTraits
from ansible_collections.mattermost.byok.plugins.module_utils.s3.reencrypt import lock_fits

KEY = "arn:aws:kms:us-east-1:111111111111:key/0b5e8d3c-1f00-4a63-9d5e-0a1b2c3d4e5f"
ROLE = "arn:aws:iam::222222222222:role/byok-s3-batch"
CUTOFF = 1_700_000_000.6
GIB = 1024 ** 3


def item(key="a", size=10, storage="STANDARD", modified=CUTOFF - 100, restore=None):
    entry = {"Key": key, "Size": size, "StorageClass": storage, "ETag": '"e"',
             "LastModified": datetime.fromtimestamp(int(modified), tz=timezone.utc)}
    if restore is not None:
        entry["RestoreStatus"] = restore
    return entry


@pytest.mark.parametrize("engine,objects,traits,all_versions,expected,why", [
    ("controller", 10 ** 9, BucketTraits(), False, "controller", "engine=controller"),
    ("auto", 999, BucketTraits(), False, "controller", "below batch_job_threshold"),
    ("auto", 1000, BucketTraits(), False, "batch_job", "at or above"),
    ("auto", None, BucketTraits(), False, "batch_job", "at or above"),
    ("batch_job", 1, BucketTraits(), False, "batch_job", "engine=batch_job"),
    ("batch_job", 1, BucketTraits(), True, "controller", "all_versions"),
    ("batch_job", 1, BucketTraits(acls_enabled=True), False, "controller", "uses ACLs"),
    ("auto", 5000, BucketTraits(object_lock=True), False, "batch_job", "each object's lock is read"),
    ("batch_job", 1, BucketTraits(website=True), False, "controller", "redirect location"),
])
def test_choose_engine(engine, objects, traits, all_versions, expected, why):
    chosen, reason = job.choose_engine(engine, 1000, objects, traits, all_versions)
    assert chosen == expected and why in reason


@pytest.mark.parametrize("entry,writers,expected,why", [
    (item(), False, "job", ""),
    (item(storage="STANDARD_IA"), False, "job", ""),
    (item(storage="INTELLIGENT_TIERING"), False, "job", ""),
    (item(storage="GLACIER_IR"), False, "job", ""),
    (item(size=5 * GIB), False, "job", ""),  # exactly the single-copy limit: one copy
    (item(size=5 * GIB + 1), False, "controller", "part by part"),
    (item(storage="GLACIER"), False, "skipped", "restore it first"),
    (item(storage="DEEP_ARCHIVE", restore={"IsRestoreInProgress": True}), False, "skipped", "restore it first"),
    (item(storage="GLACIER", restore={"IsRestoreInProgress": False, "RestoreExpiryDate": datetime(2030, 1, 1)}),
     False, "controller", "restored GLACIER"),
    (item(storage="REDUCED_REDUNDANCY"), False, "controller", "REDUCED_REDUNDANCY"),
    (item(modified=CUTOFF), False, "controller", "after the bucket default"),  # the cutoff's own second
    (item(modified=CUTOFF + 5000), True, "controller", "after the bucket default"),
    (item(modified=CUTOFF - 1), False, "job", ""),
])
def test_route(entry, writers, expected, why):
    where, reason = job.route(entry, CUTOFF, 900, writers, job.SINGLE_COPY_LIMIT)
    assert where == expected and why in reason


def test_route_without_cutoff_keeps_everything_on_the_controller():
    assert job.route(item(), None, 0, True, job.SINGLE_COPY_LIMIT)[0] == "controller"


def test_manifest_filter_matches_route_at_the_cutoff_second():
    before = job.created_before(CUTOFF)
    assert before == datetime.fromtimestamp(1_700_000_000, tz=timezone.utc)
    for seconds in (-2, -1, 0, 1):
        entry = item(modified=int(CUTOFF) + seconds)
        assert (entry["LastModified"] < before) == (job.route(entry, CUTOFF, 0, False, job.SINGLE_COPY_LIMIT)[0] == "job")


def request(**changes):
    args = dict(account_id="222222222222", bucket="mattermost-cloud-acme", key_arn=KEY, bucket_key=True, prefix="",
                cutoff=CUTOFF, storage_class="STANDARD_IA", role_arn=ROLE, report_bucket="acme-state", report_prefix="byok/jobs/")
    args.update(changes)
    return job.create_job_request(**args)


def test_create_job_request_is_valid_for_the_s3control_model():
    model = botocore.session.get_session().get_service_model("s3control").operation_model("CreateJob")
    from botocore.validate import ParamValidator
    report = ParamValidator().validate(request(prefix="data/"), model.input_shape)
    assert not report.has_errors(), report.generate_report()


def test_create_job_request_copies_in_place_under_the_key_with_filters():
    r = request(prefix="data/")
    copy = r["Operation"]["S3PutObjectCopy"]
    assert copy["TargetResource"] == "arn:aws:s3:::mattermost-cloud-acme"
    assert copy["MetadataDirective"] == "COPY" and "NewObjectTagging" not in copy  # tags copied
    assert copy["SSEAwsKmsKeyId"] == KEY and copy["BucketKeyEnabled"] is True and copy["StorageClass"] == "STANDARD_IA"
    assert "TargetKeyPrefix" not in copy and "AccessControlGrants" not in copy and "ObjectLockMode" not in copy
    gen = r["ManifestGenerator"]["S3JobManifestGenerator"]
    assert gen["SourceBucket"] == "arn:aws:s3:::mattermost-cloud-acme" and gen["ExpectedBucketOwner"] == "222222222222"
    assert gen["Filter"] == {"CreatedBefore": job.created_before(CUTOFF), "ObjectSizeLessThanBytes": 5 * GIB + 1,
                             "MatchAnyStorageClass": ["STANDARD_IA"], "KeyNameConstraint": {"MatchAnyPrefix": ["data/"]}}
    assert r["Report"]["ReportScope"] == "FailedTasksOnly" and r["Report"]["Bucket"] == "arn:aws:s3:::acme-state"
    assert r["Report"]["Prefix"].startswith("byok/jobs/mattermost-cloud-acme/")
    assert r["ConfirmationRequired"] is False and r["RoleArn"] == ROLE
    assert "KeyNameConstraint" not in request()["ManifestGenerator"]["S3JobManifestGenerator"]["Filter"]


def test_token_is_stable_per_run_and_distinct_per_class_key_cutoff_attempt():
    assert request()["ClientRequestToken"] == request()["ClientRequestToken"]
    tokens = {request(**c)["ClientRequestToken"] for c in
              ({}, {"storage_class": "STANDARD"}, {"key_arn": KEY[:-1] + "0"}, {"cutoff": CUTOFF + 1}, {"attempt": 1},
               {"prefix": "x/"}, {"bucket": "other-bucket"})}
    assert len(tokens) == 7
    assert all(1 <= len(t) <= 64 for t in tokens)
    r = request()
    assert r["ClientRequestToken"] in r["Description"] and len(r["Description"]) <= 256
    assert request(cutoff=CUTOFF + 0.3)["ClientRequestToken"] == r["ClientRequestToken"]  # same second


def test_plan_entry_names_the_parameters():
    entry = job.plan_entry(request())
    assert entry["storage_class"] == "STANDARD_IA" and entry["key_arn"] == KEY and entry["role_arn"] == ROLE
    assert entry["created_before"] == "2023-11-14T22:13:20+00:00" and entry["report"].startswith("s3://acme-state/byok/jobs/")


def test_find_job_by_description_newest_and_none():
    d = "byok s3 b STANDARD t"
    jobs = [{"JobId": "1", "Description": d, "CreationTime": datetime(2026, 1, 1, tzinfo=timezone.utc)},
            {"JobId": "2", "Description": d, "CreationTime": datetime(2026, 1, 2, tzinfo=timezone.utc)},
            {"JobId": "3", "Description": "byok s3 b STANDARD other", "CreationTime": datetime(2026, 1, 3, tzinfo=timezone.utc)}]
    assert job.find_job(jobs, d)["JobId"] == "2"
    assert job.find_job(jobs, "nothing") is None
    assert job.find_job([], d) is None


def test_job_progress_and_line():
    p = job.job_progress({"JobId": "j1", "Status": "Active",
                          "ProgressSummary": {"TotalNumberOfTasks": 10, "NumberOfTasksSucceeded": 4, "NumberOfTasksFailed": 1}})
    assert p == {"id": "j1", "status": "Active", "total": 10, "succeeded": 4, "failed": 1, "failure_reasons": []}
    line = job.job_line("b", [dict(p, storage_class="STANDARD")])
    assert line.startswith("b: 5/10 objects (50.0%)") and "STANDARD job j1 Active" in line
    assert "5/? objects" in job.job_line("b", [dict(p, storage_class="STANDARD", total=None)])


def test_report_failed_tasks_decodes_keys_and_keeps_errors():
    text = ('mattermost-cloud-acme,ok.txt,,succeeded,200,,Successful\n'
            'mattermost-cloud-acme,data/sse+c%2B.bin,,failed,400,InvalidRequest,"The object was stored using a form of '
            'Server Side Encryption, ..."\n'
            'mattermost-cloud-acme,gone,v1,failed,404,NoSuchKey,\n')
    failed = job.report_failed_tasks(text)
    assert [f["key"] for f in failed] == ["data/sse c+.bin", "gone"]
    assert failed[1]["version_id"] == "v1" and "NoSuchKey" in failed[1]["error"] and "InvalidRequest" in failed[0]["error"]
    assert job.report_failed_tasks("") == []


def test_report_result_files():
    manifest = {"Format": "Report_CSV_20180820", "ReportCreationDate": "2026-01-01T00:00:00.000Z",
                "Results": [{"TaskExecutionStatus": "failed", "Bucket": "acme-state", "Key": "p/job-1/results/a.csv"},
                            {"TaskExecutionStatus": "succeeded", "Bucket": "acme-state", "Key": "p/job-1/results/b.csv"}]}
    assert job.report_result_files(manifest) == [("acme-state", "p/job-1/results/a.csv", "failed"),
                                                 ("acme-state", "p/job-1/results/b.csv", "succeeded")]


@pytest.mark.parametrize("url,expected", [
    ("http://123456789012.127.0.0.1:5000/v20180820/jobs", "http://127.0.0.1:5000/v20180820/jobs"),
    ("http://123456789012.localhost:5000/v20180820/jobs/x", "http://localhost:5000/v20180820/jobs/x"),
    ("https://123456789012.s3-control.us-east-1.amazonaws.com/v20180820/jobs",
     "https://123456789012.s3-control.us-east-1.amazonaws.com/v20180820/jobs"),
    ("http://999999999999.127.0.0.1:5000/v20180820/jobs", "http://999999999999.127.0.0.1:5000/v20180820/jobs"),
])
def test_s3control_account_label_dropped_only_for_a_local_endpoint(url, expected):
    from ansible_collections.mattermost.byok.plugins.module_utils.s3.control import strip_account_prefix
    assert strip_account_prefix(url, "123456789012") == expected


def test_checkpoint_of_the_in_place_engine_is_its_own():
    from ansible_collections.mattermost.byok.plugins.module_utils.s3.checkpoint import checkpoint_name
    names = {checkpoint_name("b", KEY, "", False), checkpoint_name("b", KEY, "", True), checkpoint_name("b", KEY, "", False, True)}
    assert len(names) == 3 and checkpoint_name("b", KEY, "", False, True).endswith("/all.in-place.json")


def params(**changes):
    p = {"bucket": "mattermost-acme", "concurrency": 10, "multipart_threshold": 5 * GIB, "multipart_part_size": 512 * 1024 ** 2,
         "max_seconds": None, "checkpoint_bucket": "acme-state", "engine": "batch_job", "batch_job_role_arn": ROLE,
         "batch_job_threshold": 1000000}
    p.update(changes)
    return p


@pytest.mark.parametrize("changes,fragment", [
    ({"batch_job_role_arn": None}, "batch_job_role_arn: engine=batch_job needs"),
    ({"batch_job_role_arn": "byok-s3-batch"}, "batch_job_role_arn"),
    ({"engine": "auto", "batch_job_role_arn": "arn:aws:iam::222222222222:user/u"}, "batch_job_role_arn: engine=auto"),
    ({"checkpoint_bucket": None}, "checkpoint_bucket: engine=batch_job keeps its job"),
    ({"engine": "auto", "batch_job_threshold": 0}, "batch_job_threshold"),
])
def test_job_engine_arguments_refused_before_any_change(changes, fragment):
    from ansible_collections.mattermost.byok.plugins.module_utils.s3.bucket_kms import validate_params
    assert fragment in (validate_params(params(**changes)) or "")


def test_job_engine_arguments_accepted_and_controller_needs_none():
    from ansible_collections.mattermost.byok.plugins.module_utils.s3.bucket_kms import validate_params
    assert validate_params(params()) is None
    assert validate_params(params(engine="controller", batch_job_role_arn=None, checkpoint_bucket=None)) is None


def test_update_encryption_job_request_is_valid_and_keeps_every_attribute():
    from botocore.validate import ParamValidator
    model = botocore.session.get_session().get_service_model("s3control").operation_model("CreateJob")
    r = job.update_encryption_job_request(account_id="222222222222", bucket="mattermost-ext", key_arn=KEY, bucket_key=True,
                                          prefix="", started=CUTOFF, role_arn=ROLE, report_bucket="state", report_prefix="p")
    report = ParamValidator().validate(r, model.input_shape)
    assert not report.has_errors(), report.generate_report()
    assert r["Operation"] == {"S3UpdateObjectEncryption": {"ObjectEncryption": {"SSEKMS": {"KMSKeyArn": KEY, "BucketKeyEnabled": True}}}}
    assert "Filter" not in r["ManifestGenerator"]["S3JobManifestGenerator"]  # every object: the key is read per version later
    entry = job.plan_entry(r)
    assert entry["storage_class"] == job.IN_PLACE and entry["operation"] == "S3UpdateObjectEncryption" and entry["key_arn"] == KEY
    with_prefix = job.update_encryption_job_request(account_id="222222222222", bucket="mattermost-ext", key_arn=KEY, bucket_key=True,
                                                    prefix="d/", started=CUTOFF, role_arn=ROLE, report_bucket="state", report_prefix="p")
    assert with_prefix["ManifestGenerator"]["S3JobManifestGenerator"]["Filter"] == {"KeyNameConstraint": {"MatchAnyPrefix": ["d/"]}}
    assert with_prefix["ClientRequestToken"] != r["ClientRequestToken"]
    assert r["ClientRequestToken"] != request()["ClientRequestToken"]


def test_object_count_from_the_daily_storage_metric():
    day = datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert job.object_count_from_metric([]) is None
    assert job.object_count_from_metric([{"Timestamp": day, "Average": 1200.0},
                                         {"Timestamp": day.replace(day=2), "Average": 1500.0}]) == 1500
    assert job.object_count_from_metric([{"Timestamp": day}]) is None


def test_create_job_request_with_a_written_manifest_is_valid_and_has_no_generator():
    manifest = {"arn": "arn:aws:s3:::state/byok/s3-batch-jobs/b/lock-manifests/1/STANDARD.csv", "etag": "abc", "objects": 2}
    request = job.create_job_request(account_id="222222222222", bucket="b", key_arn=KEY, bucket_key=True, prefix="",
                                     cutoff=CUTOFF, storage_class="STANDARD", role_arn=ROLE, report_bucket="state",
                                     report_prefix="byok/s3-batch-jobs", manifest=manifest)
    assert "ManifestGenerator" not in request
    assert request["Manifest"] == {"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
                                   "Location": {"ObjectArn": manifest["arn"], "ETag": "abc"}}
    model = botocore.session.get_session().get_service_model("s3control").operation_model("CreateJob")
    from botocore.validate import ParamValidator
    report = ParamValidator().validate(request, model.input_shape)
    assert not report.has_errors(), report.generate_report()
    entry = job.plan_entry(request)
    assert entry["manifest"] == manifest["arn"] and "created_before" not in entry
    # the same run parameters give the same token as with a generated manifest: a killed run finds its job again
    assert request["ClientRequestToken"] == job.job_token("b", KEY, "", CUTOFF, "STANDARD")


def test_manifest_csv_and_lock_key_parts_round_trip_odd_keys():
    keys = {"STANDARD": {"a b", "c+d", "ü/é", "x,y"}, "STANDARD_IA": {"plain"}}
    assert job.read_lock_keys_part(job.lock_keys_part(keys)) == keys
    text = job.manifest_csv("bkt", ["a b", "a b", "c+d", "x,y"])
    assert text == "bkt,a%20b\nbkt,c%2Bd\nbkt,x%2Cy\n"  # each key once, sorted, URL-encoded (no raw comma or plus)
    assert job.manifest_csv("bkt", []) == ""


def _head(now="Mon, 07 Dec 2026 01:00:00 GMT", **fields):
    return {"ResponseMetadata": {"HTTPHeaders": {"date": now}}, **fields}


@pytest.mark.parametrize("head,fits,why", [
    (_head(), True, ""),
    (_head(ObjectLockLegalHoldStatus="ON"), False, "legal hold ON"),
    (_head(ObjectLockLegalHoldStatus="OFF"), False, "legal hold OFF"),
    (_head(ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=datetime(2026, 12, 9, tzinfo=timezone.utc)), False,
     "GOVERNANCE retention until 2026-12-09"),
    (_head(ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=datetime(2027, 1, 1, tzinfo=timezone.utc)), False, "COMPLIANCE"),
    # expired by S3's clock: neither copy sends it, both get what a new version gets
    (_head(ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=datetime(2026, 12, 6, tzinfo=timezone.utc)), True, ""),
    (_head(WebsiteRedirectLocation="/elsewhere"), False, "website redirect"),
])
def test_lock_fits_only_what_a_job_copy_keeps_identically(head, fits, why):
    assert lock_fits(head) == (fits, why) if fits else (lock_fits(head)[0] is False and why in lock_fits(head)[1])


def test_plan_digest_names_the_plan_not_the_cutoff():
    base = job.plan_entry(job.create_job_request(account_id="222222222222", bucket="b", key_arn=KEY, bucket_key=True, prefix="",
                                                 cutoff=CUTOFF, storage_class="STANDARD", role_arn=ROLE, report_bucket="state",
                                                 report_prefix="byok/s3-batch-jobs"))
    later = job.plan_entry(job.create_job_request(account_id="222222222222", bucket="b", key_arn=KEY, bucket_key=True, prefix="",
                                                  cutoff=CUTOFF + 3600, storage_class="STANDARD", role_arn=ROLE, report_bucket="state",
                                                  report_prefix="byok/s3-batch-jobs"))
    digest = job.plan_digest("b", base, 10)
    assert len(digest) == 12 and int(digest, 16) >= 0
    # check mode before the bucket's first run has another cutoff than that run: the same digest
    assert job.plan_digest("b", later, 10) == digest
    assert job.plan_digest("b", base, 11) != digest  # an object more
    assert job.plan_digest("c", base, 10) != digest
    for field, value in (("storage_class", "STANDARD_IA"), ("key_arn", KEY + "x"), ("bucket_key", False), ("prefix", "p/"),
                         ("role_arn", ROLE + "2"), ("operation", "S3UpdateObjectEncryption")):
        assert job.plan_digest("b", {**base, field: value}, 10) != digest, field


def test_confirm_command_and_awaiting():
    assert job.confirm_command("222222222222", "abc", "eu-west-1") == (
        "aws s3control update-job-status --account-id 222222222222 --job-id abc --requested-job-status Ready --region eu-west-1")
    assert job.awaiting_confirmation({"status": "Suspended"}) and not job.awaiting_confirmation({"status": "Active"})
