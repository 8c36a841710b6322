"""A test double of the kops CLI subset that BYOK drives, backed by the local AWS.

It is not kops. It implements, with kops's argument forms and kops-like messages and exit codes:

    kops version
    kops get cluster [NAME] --name C --state s3://B[/P] -o yaml|json
    kops get instancegroups [IG...] --name C --state s3://B[/P] -o yaml|json
    kops get C --state s3://B[/P] -o yaml|json          (the cluster and its instance groups)
    kops replace -f FILE --state s3://B[/P] [--force]
    kops update cluster --name C --state s3://B[/P] [--yes] [--target direct|terraform --out DIR]
    kops rolling-update cluster --name C --state s3://B[/P] [--yes] [--instance-group IG ...]

State lives where kops keeps it: `s3://<bucket>/<prefix>/<cluster>/config` and `.../instancegroup/<ig>` (v1alpha2
YAML) in the emulator's S3. `update cluster --yes` renders each instance group's launch template
(`<ig>.<cluster>`) as kops's awsmodel does - the root volume carries `KmsKeyId` only when
`rootVolumeEncryption: true` and a key are both set; extra `volumes[]` pass `key` as they are - and when the block
device mappings differ it writes a new launch-template version and makes it the default (kops's launch-template
task does both). `spec.additionalPolicies.<node|master>` (a JSON list of statements) becomes the role's inline policy
`additional.<role>s.<cluster>`, as kops's IAM model names it, written when it differs. The Auto Scaling groups follow
`$Latest`. An etcd member whose `kmsKeyId` differs from its volume's
key fails the direct target with kops's `Field cannot be changed: KmsKeyID`; the terraform target writes
`kubernetes.tf` (an `aws_ebs_volume` per etcd member with its `kms_key_id`, an `aws_launch_template` per group) and
changes nothing in AWS, as kops does. `rolling-update cluster` marks an instance NeedsUpdate when it was launched
from another version than the group's current one (EC2's `aws:ec2launchtemplate:version` tag) and, with --yes,
replaces it through Auto Scaling (terminate without decrementing capacity), control plane first, re-attaching the
etcd volumes to the new control-plane instance as etcd-manager does.

Credentials, region and endpoint come from the environment (AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, ...), as for
kops. When the environment names an endpoint (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL) and static keys, the state
store is read and written with a small signed-HTTP client (s3_state.py) instead of boto3: a real kops starts in a
fraction of the time boto3 takes to import, and benchmarks of the playbook should not be dominated by the double's
start-up. Otherwise, or with KOPS_DOUBLE_STATE_CLIENT=boto3, boto3 is used; `update cluster` and `rolling-update`
use boto3 for EC2 and Auto Scaling. Both retry as kops's own AWS clients do: the state store with the SDK's default
standard retryer (3 attempts, AWS_MAX_ATTEMPTS honoured), EC2 and Auto Scaling in adaptive mode with 13 attempts.
Every invocation is appended to $KOPS_DOUBLE_LOG (JSON lines) when that is set, so tests can assert what was run.
"""
