#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_bucket_kms
short_description: Put an S3 bucket and every object already in it on a customer's KMS key
version_added: 0.1.0
description:
  - Sets the bucket's default encryption to SSE-KMS with O(key_arn) (and an S3 Bucket Key, O(bucket_key)) B(before)
    any object is copied, so new writes already land on the key.
  - Optionally (O(deny_other_keys)) merges into the bucket policy a statement, found by its Sid, that refuses
    C(s3:PutObject) asking for SSE-KMS under another key or none (C(aws/s3)); every other statement is kept.
  - Re-encrypts the current version of every existing object (optionally under O(prefix)) in place, with a
    C(CopyObject) onto itself conditional on the ETag just listed (a concurrent writer's object is never overwritten
    with an older body). User metadata, content headers, tags, storage class, checksum algorithm, website redirect,
    object lock retention still running and legal hold, and ACL grants (when the bucket still uses ACLs) are kept; a
    retention whose retain-until date has passed is copied as none (S3 refuses a past date). Objects above
    O(multipart_threshold) are copied part by part (C(UploadPartCopy)) with the same attributes; a failed upload is aborted.
  - On a bucket with ACLs disabled, no object lock and no website hosting, an object costs one request (the copy);
    the listing gives size, ETag, storage class and checksum algorithm. Other buckets add C(GetObjectAcl) and/or
    C(HeadObject) per object; the result names them (RV(extra_reads)).
  - Knowing what is done without reading every object again - the checkpoint (an S3 object, O(checkpoint_bucket), or a
    local file, O(checkpoint_path)) keeps the time at which the bucket default was put on the key (objects modified
    later are on the key), the last key done in listing order, and the counts. An interrupted run resumes after that
    key; a finished bucket re-run lists (about one request per 1,000 objects), copies nothing and reports
    C(changed=false). Without a checkpoint, objects whose key can't be known are read with C(HeadObject).
    O(verify=true) reads every object's key.
  - Objects it can't re-encrypt are reported by key and reason and never stop the bucket - SSE-C objects (only the
    owner of the customer key can copy them) and C(GLACIER)/C(DEEP_ARCHIVE) objects not restored. Objects that fail
    (e.g. access denied) are reported the same way, and fail the module at the end when O(fail_on_object_errors).
  - O(max_seconds) time-boxes a call - it stops, saves the checkpoint and returns C(complete=false) with progress
    (done, total from a first listing pass, rate, time left); call again until C(complete).
  - By default only current versions are re-encrypted; noncurrent versions of a versioned bucket stay under their old
    key (keep the old key enabled, or expire them with a lifecycle rule). O(all_versions=true) re-encrypts them too
    (see the option); AWS's in-place C(UpdateObjectEncryption) would keep version ids, but it accepts only keys of the
    bucket owner's account, so a customer's key needs copies.
  - One run at a time per bucket - with a checkpoint, a run holds a lease in it; a second run (for example one started
    after ansible-playbook was killed while the module it ran kept copying) waits until the first ends or dies (RV(waiting)).
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  bucket:
    description: The bucket name. One of O(bucket) and O(buckets) is required.
    type: str
  buckets:
    description:
      - Several buckets (a customer's) in one call, instead of O(bucket), each worked on as O(bucket) would be, at most
        O(bucket_concurrency) at a time; the other options apply to every bucket. Every bucket's options are checked
        before any bucket changes. One bucket's failure does not stop the others; the call fails with every failed
        bucket's message, and RV(results) has each bucket's outcome.
    type: list
    elements: dict
    suboptions:
      name:
        description: The bucket name.
        type: str
        required: true
      writers_follow_default:
        description: O(writers_follow_default) for this bucket (default the module's).
        type: bool
  bucket_concurrency:
    description: With O(buckets), how many buckets are worked on at once (each with O(concurrency) copies in flight).
    type: int
    default: 4
  key_arn:
    description:
      - Full ARN of the KMS key. Aliases and bare key ids are refused (they resolve in the caller's account, the wrong
        key across accounts).
    type: str
    required: true
  bucket_key:
    description: Enable the S3 Bucket Key (far fewer KMS calls) for the default and for the copies.
    type: bool
    default: true
  deny_other_keys:
    description:
      - Merge a Deny statement (Sid O(policy_sid)) refusing C(s3:PutObject) that asks for SSE-KMS with another
        C(x-amz-server-side-encryption-aws-kms-key-id) or with none (S3 then uses the AWS managed key C(aws/s3), not the
        bucket default) into the bucket policy. Uploads that send no encryption header are allowed (the default applies). C(false) leaves the policy
        alone; an existing statement with the Sid is removed only with O(deny_other_keys=false) and O(remove_deny_statement=true).
    type: bool
    default: false
  remove_deny_statement:
    description: With O(deny_other_keys=false), remove the statement O(policy_sid) if present (the way back).
    type: bool
    default: false
  policy_sid:
    description: The Sid of the deny statement.
    type: str
    default: ByokDenyUploadsUnderOtherKeys
  reencrypt_objects:
    description: Re-encrypt the existing objects. C(false) sets only the default encryption and the policy.
    type: bool
    default: true
  prefix:
    description: Re-encrypt only objects under this prefix.
    type: str
    default: ""
  concurrency:
    description: Copies in flight at once (thread pool size, 1-64).
    type: int
    default: 10
  multipart_threshold:
    description: Objects larger than this many bytes are copied part by part (S3 allows one copy up to 5 GiB). At least 5 MiB.
    type: int
    default: 5368709120
  multipart_part_size:
    description: Part size in bytes for multipart copies (at least 5 MiB).
    type: int
    default: 536870912
  max_seconds:
    description:
      - Stop after this many seconds of copying, counted from the first object (C(complete=false)); a later call resumes.
        Unset - run to the end. Every call handles at least one object.
      - Also the longest a call waits for another run that holds the bucket (RV(waiting)); unset - wait until it ends.
    type: float
  all_versions:
    description:
      - Also re-encrypt the noncurrent versions of a versioned bucket. A copy always becomes the key's newest version, so
        per key the versions not yet on the key are copied oldest to newest (each by its version id) and then the
        version that was current is copied again last - the key's history is reproduced on the key, in order, and the
        current content is current again at the end. Each copy is conditional on the key's newest ETag (C(If-Match) on
        the destination - the listed current one, then our own previous copy), so a write by anyone else meanwhile is
        never reverted - the key stops there with the writer's object current, reported in RV(failed_objects), and a
        re-run finishes it.
      - Trade-offs - the copies get new version ids (the originals keep theirs and stay on the old key until deleted);
        while a key's versions are copied (milliseconds per version), readers of the key briefly see an older version's
        content as current; the current version's content is stored twice (the original when it was already on the key,
        and its copy on top). No way around the brief window was found - S3 has no way to write a noncurrent version.
      - Idempotent - a version counts as done when a later version on the key has its content (matched in order), so a
        re-run copies nothing for such keys. Content is told by the size and the additional checksum S3 keeps with each
        version, never by the ETag (an SSE-KMS object's ETag is new with every write) - a version with a full-object
        checksum of its own is copied with it (S3 carries it over), one without (or with a multipart, composite one) is
        copied with C(ChecksumAlgorithm=SHA256) and its own SHA-256 is computed by reading it (C(GetObject)) when a
        re-run or O(delete_replaced_versions) needs to pair it with its copy. A run killed between a key's copies leaves
        an older version's content current; the next run makes the content that was current before it current again.
        Keys whose current version is a delete marker are skipped and reported (a copy would bring the object back); so
        are noncurrent versions above O(multipart_threshold), SSE-C and archived ones. Delete markers are not
        reproduced. Resumes by key from its own checkpoint. Re-runs read each candidate pair with C(HeadObject)
        (C(ChecksumMode=ENABLED)).
      - A current version above O(multipart_threshold) is copied part by part, and such a copy carries no checksum a
        later run can pair it by - a re-run copies it again.
    type: bool
    default: false
  delete_replaced_versions:
    description:
      - With O(all_versions), delete each original version once its copy is read back with C(HeadObject) under
        O(key_arn) with the original's size and checksum (the way back - none; without it the originals stay, under the
        old key). Versions under object lock retention or legal hold can't be deleted and are reported in
        RV(kept_versions).
      - Originals are deleted newest first; while the original of the current content stays, the older originals of
        its key stay too (a copy without its original would read as another writer's content on the next run).
    type: bool
    default: false
  verify:
    description: Read every object's key with C(HeadObject) instead of trusting the checkpoint (a full verification).
    type: bool
    default: false
  writers_follow_default:
    description:
      - Every writer of the bucket sends no encryption header of its own - for a Mattermost bucket, the server's
        C(MM_FILESETTINGS_AMAZONS3SSE) is known to be off (M(mattermost.byok.mattermost_server_info)). Only then does
        an object modified after the checkpoint's cutoff (and O(cutoff_margin)) count as on the key without being read.
      - V(false) (the default) reads such objects with C(HeadObject), since a writer that names C(AES256) or another key
        overrides the bucket default, and its objects are then copied onto the key like the older ones.
    type: bool
    default: false
  cutoff_margin:
    description:
      - Seconds after the cutoff in which an object is read even when O(writers_follow_default) - bucket configuration
        is eventually consistent on AWS, so a write shortly after C(PutBucketEncryption) may still get the old default.
    type: int
    default: 900
  fail_on_object_errors:
    description:
      - Fail when the finished pass had objects that failed (not the skipped ones, which are reported only). The bucket is
        always processed to the end first; a re-run retries only what is left.
    type: bool
    default: true
  checkpoint_bucket:
    description: Bucket (of the caller's account) that keeps the checkpoint object; survives the AWX job container.
    type: str
  checkpoint_prefix:
    description: Key prefix of the checkpoint objects in O(checkpoint_bucket).
    type: str
    default: byok/s3-reencrypt
  checkpoint_path:
    description: Local directory for the checkpoint instead of O(checkpoint_bucket) (for a workstation run).
    type: path
  engine:
    description:
      - Who copies the objects. V(controller) - this module, one request per object (see above).
        V(batch_job) - an S3 Batch Operations job per storage class (C(S3PutObjectCopy) onto the same keys under
        O(key_arn) with the Bucket Key, metadata and tags copied, its manifest made by S3 with filters - last modified
        before the cutoff, up to 5 GiB, the storage class); the module lists the bucket (one request per 1,000 objects),
        creates and follows the jobs, reads their completion reports and retries their failed tasks itself.
        V(auto) - V(batch_job) from O(batch_job_threshold) objects on, V(controller) below.
      - What a job can't carry stays with the controller - buckets that use ACLs or website hosting and
        O(all_versions) (the reason in RV(engine)); objects above 5 GiB, restored archived objects, objects modified
        after the cutoff (those that a job would have lost something of are listed in RV(by_controller_objects)). SSE-C
        objects fail in the job and are reported skipped by the controller's retry.
      - On an object-lock bucket each object's lock is read (HeadObject); objects with a legal hold or a retention
        still running of their own are copied by the controller (which keeps them), the others by the jobs, from a CSV
        manifest the module writes next to the report (a job copies every object with one lock setting).
      - Needs O(checkpoint_bucket) (the job id is kept in the checkpoint - an interrupted run follows its job and never
        makes a second one; the manifest and report go next to it) and O(batch_job_role_arn). A job runs at once only
        with its plan digest in O(batch_job_confirm), else it waits Suspended. In check mode the jobs
        are planned (RV(engine)) and none is created; a job is created with no confirmation step, so run in check mode
        first to see the plan. A job is never cancelled by this module. A job that fails as a whole hands the bucket to
        the controller engine from the next run on.
    type: str
    choices: [controller, batch_job, auto]
    default: controller
  update_in_place:
    description:
      - When O(key_arn) is a key of the bucket owner's account (the external-key path - the imported key lives in the
        provider account, with the buckets), re-key every version of every object where it is with S3
        C(UpdateObjectEncryption) - no copy, version ids, ETags, dates, storage class (archived objects stay archived),
        metadata, tags, ACLs and object lock untouched. Each version is read first (C(HeadObject)); a re-run changes
        nothing. What S3 refuses (unencrypted objects, an object lock retention still running or a legal hold) is
        copied like O(engine=controller) copies when it is the current version, and reported skipped when it is a
        noncurrent one; SSE-C objects are skipped.
      - A key of another account (a customer's own key) - ignored, objects are copied (RV(engine) says why).
      - With O(engine=batch_job) (or V(auto) from O(batch_job_threshold) versions on), an S3 Batch Operations
        C(S3UpdateObjectEncryption) job (manifest made by S3, needs O(batch_job_role_arn)) re-keys the current versions
        first; its failed tasks are done as above; then the module re-keys the noncurrent versions. A re-run of the
        same key makes no job (each version is read). Its own checkpoint (per bucket, key and scope); O(all_versions)
        doesn't apply.
    type: bool
    default: false
  batch_job_threshold:
    description:
      - With O(engine=auto), the number of objects from which a job copies them - the bucket's daily C(NumberOfObjects)
        storage metric (CloudWatch, one request) where S3 publishes it, else a listing count (one request per 1,000
        objects). With O(update_in_place), versions counted by a listing.
    type: int
    default: 1000000
  batch_job_role_arn:
    description:
      - The IAM role S3 Batch Operations assumes for the jobs (trusts C(batchoperations.s3.amazonaws.com)), in the
        bucket's account; it must be allowed to use O(key_arn) (the customer key policy's statement for it) and to read
        and write the bucket and the report location. Required unless O(engine=controller).
    type: str
  batch_job_confirm:
    description:
      - Plan digests of jobs that may run at once. Check mode shows each job it would create with a short digest (its
        bucket, operation, storage class, key, prefix, size limit, role and object count - RV(engine) C(jobs)); a run
        given that digest creates the job with C(ConfirmationRequired=false). Any other job is created with
        C(ConfirmationRequired=true) - it waits C(Suspended), costing nothing, and the result lists it in
        RV(jobs_awaiting_confirmation) with its digest and the AWS CLI command that lets it run. A later run given the
        digest confirms that job (C(UpdateJobStatus Ready)) instead of creating another. Only jobs of this bucket's own
        run (their ids in its checkpoint) are ever confirmed.
    type: list
    elements: str
    default: []
  batch_job_report_bucket:
    description: Bucket for the jobs' manifests and completion reports; default O(checkpoint_bucket).
    type: str
  batch_job_report_prefix:
    description: Key prefix of the jobs' manifests and completion reports.
    type: str
    default: byok/s3-batch-jobs
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: Counts what would be re-encrypted (objects of unknown state are read with HEAD); changes nothing, saves no checkpoint.
  diff_mode:
    support: full
    description: The default encryption and the bucket policy before and after.
  idempotent:
    support: full
    description: A bucket on the key with its objects done reports C(changed=false).
notes:
  - Old-key material stays needed for noncurrent versions, backups and anything skipped; keep the old key enabled.
  - The progress line RV(progress_line) is meant for a playbook loop over batches.
"""

EXAMPLES = r"""
- name: Put the bucket and its objects on the customer's S3 key, in 10-minute batches
  mattermost.byok.s3_bucket_kms:
    bucket: mattermost-cloud-acme-filestore
    key_arn: arn:aws:kms:us-east-1:111111111111:key/0b5e8d3c-1f00-4a63-9d5e-0a1b2c3d4e5f
    deny_other_keys: true
    checkpoint_bucket: acme-kops-state-store
    max_seconds: 600
  register: s3_batch
  until: s3_batch.complete
  retries: 1000
  delay: 0

- name: Count what would be re-encrypted
  mattermost.byok.s3_bucket_kms:
    bucket: mattermost-cloud-acme-filestore
    key_arn: arn:aws:kms:us-east-1:111111111111:key/0b5e8d3c-1f00-4a63-9d5e-0a1b2c3d4e5f
  check_mode: true

- name: Every bucket of a customer in one call, one batch of at most 10 minutes each
  mattermost.byok.s3_bucket_kms:
    buckets:
      - name: mattermost-acme-filestore
        writers_follow_default: true
      - name: mattermost-acme-exports
    key_arn: "arn:aws:kms:us-east-1:111111111101:key/0acbe000-0000-4000-8000-000000000001"
    max_seconds: 600
  register: batch
"""

RETURN = r"""
cutoff:
  description: When the bucket default was put on the key (the S3 server's clock, epoch seconds); null before the first pass.
  returned: always
  type: float
writers_follow_default:
  description: Whether objects modified after the cutoff (and its margin) were taken as on the key without a read.
  returned: always
  type: bool
complete:
  description: The listing reached the end (false when O(max_seconds) stopped the batch).
  returned: always
  type: bool
scanned:
  description: Objects listed in this call.
  returned: always
  type: int
re_encrypted:
  description: Objects copied onto the key in this call (in check mode - that would be).
  returned: always
  type: int
already_on_key:
  description: Objects found already on the key.
  returned: always
  type: int
skipped_count:
  description: Objects that can't be re-encrypted here (RV(skipped_objects) gives key and reason). Not C(skipped), which
    Ansible would read as the task's status.
  returned: always
  type: int
skipped_objects:
  description: The first 1,000 skipped objects of this call, each C(key) and C(reason) (with O(all_versions), C(key) is
    C(<key>?versionId=<id>)); the rest are counted in RV(skipped_objects_truncated), never held in memory.
  returned: always
  type: list
  elements: dict
skipped_objects_truncated:
  description: Skipped objects beyond the 1,000 listed (counted in RV(skipped_count), not listed).
  returned: always
  type: int
failed_count:
  description: Objects whose copy failed in this call (not C(failed), which Ansible reads as the task's status).
  returned: always
  type: int
failed_objects:
  description: The first 1,000 failed objects of this call, each C(key) and C(reason) (the AWS error); the rest are
    counted in RV(failed_objects_truncated).
  returned: always
  type: list
  elements: dict
failed_objects_truncated:
  description: Failed objects beyond the 1,000 listed (counted in RV(failed_count), not listed).
  returned: always
  type: int
replaced_versions:
  description: With O(all_versions) - original versions (still on the old key) whose copy is already on the key.
  returned: always
  type: int
restored_current:
  description: With O(all_versions) - keys whose current version, already on the key, was copied again after its older
    versions so that it is current again.
  returned: always
  type: int
versions_deleted:
  description: With O(delete_replaced_versions) - original versions deleted after their copy was read back (check mode -
    that would be).
  returned: always
  type: int
versions_kept:
  description: With O(delete_replaced_versions) - originals not deleted (RV(kept_versions) gives why).
  returned: always
  type: int
kept_versions:
  description: The first 1,000 originals kept, each C(key) (C(<key>?versionId=<id>)) and C(reason); the rest counted in
    C(kept_versions_truncated).
  returned: always
  type: list
  elements: dict
jobs_awaiting_confirmation:
  description: Jobs of this call waiting C(Suspended) for confirmation (created without a matching O(batch_job_confirm)
    digest), each C(bucket), C(storage_class), C(id), C(digest) (give it in O(batch_job_confirm) to let it run),
    C(objects) and C(command) (the AWS CLI command that does the same). The bucket is not complete while one waits.
  returned: always
  type: list
  elements: dict
jobs_confirmed:
  description: Suspended jobs of this bucket's run that this call let run (their digest was in O(batch_job_confirm)).
  returned: always
  type: int
by_controller_objects:
  description: With the job engine, the first 1,000 objects of this call the controller copied although the listing
    would have given them to a job, each C(key) and C(reason) (above 5 GiB, a class a job can't write, a legal hold or
    retention of its own); the rest counted in C(by_controller_objects_truncated).
  returned: always
  type: list
  elements: dict
waiting:
  description: Why this call copied nothing (another live run holds the bucket's lease), or null.
  returned: always
  type: str
bytes:
  description: Bytes re-encrypted in this call.
  returned: always
  type: int
seconds:
  description: Seconds spent on the objects.
  returned: always
  type: float
objects_per_second:
  description: Objects scanned per second.
  returned: always
  type: float
requests:
  description: HTTP requests sent for the objects (listing, reads, copies, retries).
  returned: always
  type: int
requests_per_object:
  description: RV(requests) per scanned object.
  returned: always
  type: float
retries:
  description: Requests retried after throttling or a transient error.
  returned: always
  type: int
extra_reads:
  description: Per-object reads this bucket needs besides the copy (ACLs enabled, object lock, website hosting).
  returned: always
  type: list
  elements: str
progress:
  description: C(done), C(total), C(percent), C(rate), C(eta_seconds) over the whole pass (all batches).
  returned: always
  type: dict
progress_line:
  description: One line for people, e.g. C(bucket - 120000/2000000 objects (6.0%), 850 obj/s, ~37 min left).
  returned: always
  type: str
resumed:
  description:
    - Set when this run continued a pass a stopped run left unfinished (killed, or ended by O(max_seconds)); null
      otherwise. The progress line says the same.
  returned: when objects were re-encrypted
  type: dict
  contains:
    after:
      description:
        - The checkpoint's marker this run started after (the last key, or key and version, done before); null when
          the stopped run had saved none yet (this run started from the first key; objects already copied are found
          on the key and not copied again).
      type: raw
    done_before:
      description: Objects the earlier runs of this pass had already read or copied.
      type: int
waited_for_lease:
  description:
    - Set when this run waited for another run's lease on the bucket before copying; null otherwise.
  returned: when objects were re-encrypted
  type: dict
  contains:
    seconds:
      description: How long this run waited.
      type: float
    holder:
      description: The run it waited for (process, host, age of its last checkpoint).
      type: str
encryption:
  description: The default encryption C(before) and C(after).
  returned: always
  type: dict
policy_changed:
  description: Whether the bucket policy was (or would be) changed.
  returned: always
  type: bool
checkpoint:
  description: Where the checkpoint is kept (null without one).
  returned: always
  type: str
results:
  description:
    - With O(buckets), one result per bucket in the list's order, each with the fields above (those of one bucket) and
      C(bucket); a failed bucket has C(failed=true) and C(msg). With O(buckets) and --diff, the diffs are in C(diff), a list.
  returned: with buckets
  type: list
  elements: dict
to_job:
  description: Objects of this call handed to S3 Batch Operations jobs (counted in RV(scanned); their outcome is in
    RV(re_encrypted), RV(skipped_objects) and RV(failed_objects) once the jobs have ended).
  returned: when objects were re-encrypted
  type: int
engine:
  description: The engine of this pass - C(name) (controller, batch_job, update_in_place or update_in_place_job), C(reason) (why, including why a job could
    not be used), C(jobs) (per storage class - the job id, status, task counts and the parameters it was created with;
    in check mode the jobs that would be created).
  returned: when objects were re-encrypted
  type: dict
"""

import json

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    pass  # ByokModule reports the missing SDK

from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import InvalidIdentifier
from ansible_collections.mattermost.byok.plugins.module_utils.aws.module import ByokModule
from ansible_collections.mattermost.byok.plugins.module_utils.fleet.fan_out import fan_out
from ansible_collections.mattermost.byok.plugins.module_utils.kms.keys import resolve_key_arn
from ansible_collections.mattermost.byok.plugins.module_utils.s3.bucket_kms import BucketKms
from ansible_collections.mattermost.byok.plugins.module_utils.s3.bucket_kms import validate_params
from ansible_collections.mattermost.byok.plugins.module_utils.s3.control import s3control_client

MIB = 1024 ** 2


def bucket_result(module, clients, params, errors_as_result=True):
    """One bucket's batch: its result, or its failure as a result (failed, msg)."""
    try:
        result = BucketKms(clients["s3"][params["bucket"]], params, module.check_mode, s3control=clients["s3control"],
                           account_id=clients["account_id"], cloudwatch=clients["cloudwatch"]).apply()
    except (BotoCoreError, ClientError) as e:
        msg = f"{params['bucket']}: AWS call failed; run again to resume from the checkpoint"
        if not errors_as_result:
            module.fail_json_aws(e, msg=msg)
        return {"failed": True, "changed": False, "bucket": params["bucket"], "msg": f"{msg}: {e}"}
    # Ansible reads `skipped` and `failed` in a result as the task's own status (an int becomes a bool): so a bucket
    # with one SSE-C object would show as a skipped task. The object counts go by other names.
    for name in ("skipped", "failed"):
        if name in result:
            result[f"{name}_count"] = result.pop(name)
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = result.pop("diff_parts")
    else:
        result.pop("diff_parts")
    if result["complete"] and result["pass_failed"] and params["fail_on_object_errors"]:
        result.update(failed=True, msg=(f"{params['bucket']}: {result['pass_failed']} object(s) could not be re-encrypted "
                                        f"(failed_objects); run again to retry them. First: {json.dumps(result['failed_objects'][:3])}"))
    return result


def main():
    module = ByokModule(
        argument_spec=dict(
            bucket=dict(type="str"),
            buckets=dict(type="list", elements="dict", options=dict(
                name=dict(type="str", required=True),
                writers_follow_default=dict(type="bool"),
            )),
            bucket_concurrency=dict(type="int", default=4),
            key_arn=dict(type="str", required=True, no_log=False),
            bucket_key=dict(type="bool", default=True),
            deny_other_keys=dict(type="bool", default=False),
            remove_deny_statement=dict(type="bool", default=False),
            policy_sid=dict(type="str", default="ByokDenyUploadsUnderOtherKeys"),
            reencrypt_objects=dict(type="bool", default=True),
            prefix=dict(type="str", default=""),
            concurrency=dict(type="int", default=10),
            multipart_threshold=dict(type="int", default=5 * 1024 * MIB),
            multipart_part_size=dict(type="int", default=512 * MIB),
            max_seconds=dict(type="float"),
            verify=dict(type="bool", default=False),
            all_versions=dict(type="bool", default=False),
            delete_replaced_versions=dict(type="bool", default=False),
            fail_on_object_errors=dict(type="bool", default=True),
            writers_follow_default=dict(type="bool", default=False),
            cutoff_margin=dict(type="int", default=900),
            checkpoint_bucket=dict(type="str"),
            checkpoint_prefix=dict(type="str", default="byok/s3-reencrypt"),
            checkpoint_path=dict(type="path"),
            engine=dict(type="str", default="controller", choices=["controller", "batch_job", "auto"]),
            batch_job_threshold=dict(type="int", default=1000000),
            update_in_place=dict(type="bool", default=False),
            batch_job_role_arn=dict(type="str"),
            batch_job_confirm=dict(type="list", elements="str", default=[], no_log=False),
            batch_job_report_bucket=dict(type="str"),
            batch_job_report_prefix=dict(type="str", default="byok/s3-batch-jobs"),
        ),
        supports_check_mode=True,
        required_one_of=[("bucket", "buckets")],
        mutually_exclusive=[("checkpoint_bucket", "checkpoint_path"), ("bucket", "buckets")],
    )
    params = module.params
    if params["buckets"] is None:
        each = [params]
    else:
        # Every bucket of the customer in one call, each on its own thread (at most bucket_concurrency), with the
        # same options but its own writers_follow_default; every bucket's options checked before any bucket changes.
        if params["bucket_concurrency"] < 1:
            module.fail_json(msg="bucket_concurrency: at least 1")
        common = {k: v for k, v in params.items() if k not in ("buckets", "bucket")}
        each = [dict(common, bucket=b["name"], writers_follow_default=params["writers_follow_default"]
                     if b["writers_follow_default"] is None else b["writers_follow_default"]) for b in params["buckets"]]
    for one in each:
        problem = validate_params(one)
        if problem:
            module.fail_json(msg=problem if params["buckets"] is None else f"{one['bucket']}: {problem}")
    try:
        key_arn = resolve_key_arn(params["key_arn"], "key_arn")
    except InvalidIdentifier as e:
        module.fail_json(msg=str(e))
    for one in each:
        one["key_arn"] = key_arn
    at_once = 1 if params["buckets"] is None else min(params["bucket_concurrency"], len(each))
    # An S3 client per bucket, made here (making clients is not thread-safe): the engine counts a bucket's requests
    # through its client's event hooks, which a shared client would mix between the buckets running side by side.
    clients = {"s3": {one["bucket"]: module.byok_client("s3", max_pool_connections=max(10, params["concurrency"] + 4))
                      for one in each},
               "s3control": None, "account_id": None, "cloudwatch": None}
    try:
        if params["engine"] != "controller" or params["update_in_place"]:
            clients["account_id"] = module.byok_client("sts").get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as e:
        module.fail_json_aws(e, msg="the automation's own account could not be read (sts:GetCallerIdentity)")
    if params["engine"] != "controller":
        clients["s3control"] = s3control_client(module)
    if params["engine"] == "auto":
        clients["cloudwatch"] = module.byok_client("cloudwatch")
    if params["buckets"] is None:
        result = bucket_result(module, clients, params, errors_as_result=False)
        if result.get("failed"):
            module.fail_json(**result)
        module.exit_json(**result)

    results = fan_out(lambda one: dict(bucket_result(module, clients, one), bucket=one["bucket"]), each, at_once)
    outcome = {"changed": any(r.get("changed") for r in results), "results": results}
    if module._diff:  # pylint: disable=protected-access
        outcome["diff"] = [r.pop("diff") for r in results if "diff" in r]
    failed = [r for r in results if r.get("failed")]
    if failed:
        module.fail_json(msg="; ".join(r["msg"] for r in failed), **outcome)
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
