"""Auto Scaling launches on another account's KMS key, and the grant that makes them work.

AWS behaviour reproduced (EC2 Auto Scaling user guide, "Required AWS KMS key policy for use with encrypted volumes",
https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html; re:Post
knowledge-center/kms-launch-ec2-instance):
- The Auto Scaling service-linked role of the group's account launches the instances. For a customer managed key
  in another account, that role can use the key only through a grant created from the group's account; without
  it the instance is terminated at launch with ``Client.InternalError: Client error on launch`` and never joins
  the group (kubernetes/kops#11545).
- CreateGrant with a Name is idempotent: "When this value is present, you can retry a CreateGrant request with
  identical parameters; if the grant already exists, the original GrantId is returned without creating a new
  grant" (KMS API reference, CreateGrant ``Name``). Plain moto makes a new grant every time.
- ListRetirableGrants "can include grants on KMS keys owned by other AWS accounts" whose retiring principal is in
  the caller's account (KMS API reference, ListRetirableGrants, cross-account use); plain moto looks only at the
  caller's own keys. That is how an account finds again the grants it made on a customer's key, since it may not
  be allowed to call ListGrants there.
"""
from __future__ import annotations

from typing import Any

from moto.autoscaling.models import FakeAutoScalingGroup
from moto.ec2.models.instances import StateReason
from moto.kms.models import Key, KmsBackend

from ._patching import require, wrap
from .kms_keys import find_key, iter_region_backends, parse_kms_arn

AUTOSCALING_SLR = "arn:aws:iam::{account}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
# What EBS asks of KMS on the launching principal's behalf for an encrypted volume.
LAUNCH_OPERATIONS = frozenset({"CreateGrant", "Decrypt", "GenerateDataKeyWithoutPlaintext"})
LAUNCH_FAILURE_CODE = "Client.InternalError"
LAUNCH_FAILURE_MESSAGE = f"{LAUNCH_FAILURE_CODE}: Client error on launch"


def _grants_cover(key: Key, grantee: str) -> bool:
    operations = set()
    for grant in key.grants.values():
        if grant.grantee_principal == grantee:
            operations |= set(grant.operations or [])
    return LAUNCH_OPERATIONS <= operations


def missing_launch_grants(group: FakeAutoScalingGroup) -> list[str]:
    """Keys of other accounts that the group's launch template names and its service-linked role has no grant on."""
    template = group.ec2_launch_template
    if template is None:
        return []
    version = template.get_version(template.default_version_number)
    account, region = group.autoscaling_backend.account_id, group.region
    grantee = AUTOSCALING_SLR.format(account=account)
    missing = []
    for mapping in version.data.get("BlockDeviceMappings") or []:
        ref = (mapping.get("Ebs") or {}).get("KmsKeyId")
        arn = parse_kms_arn(ref)
        if not arn or arn.account == account:
            continue
        key = find_key(account, region, ref)
        if key is not None and not _grants_cover(key, grantee):
            missing.append(ref)
    return missing


def apply() -> None:
    require(FakeAutoScalingGroup, "set_desired_capacity")

    @wrap(Key, "add_grant")
    def add_grant(original, self, name, grantee_principal, operations, constraints, retiring_principal):
        if name:
            for grant in self.grants.values():
                if (grant.name, grant.grantee_principal, sorted(grant.operations or []), grant.constraints or {},
                        grant.retiring_principal) == (name, grantee_principal, sorted(operations or []), constraints or {},
                                                      retiring_principal):
                    return grant
        return original(self, name, grantee_principal, operations, constraints, retiring_principal)

    @wrap(KmsBackend, "list_retirable_grants")
    def list_retirable_grants(original, self, retiring_principal):
        grants = list(original(self, retiring_principal))
        for backend in iter_region_backends(self.region_name):
            if backend is not self:
                grants += original(backend, retiring_principal)
        return grants

    @wrap(FakeAutoScalingGroup, "replace_autoscaling_group_instances")
    def replace_instances(original, self, *args: Any, **kwargs: Any):
        missing = missing_launch_grants(self)
        before = {s.instance.id for s in self.instance_states}
        original(self, *args, **kwargs)
        if not missing:
            return
        for state in [s for s in self.instance_states if s.instance.id not in before]:
            state.instance.terminate()
            state.instance.state_reason = StateReason(LAUNCH_FAILURE_MESSAGE, LAUNCH_FAILURE_CODE)
            state.instance._reason = LAUNCH_FAILURE_MESSAGE  # pylint: disable=protected-access
        self.instance_states = [s for s in self.instance_states if s.instance.id in before]
