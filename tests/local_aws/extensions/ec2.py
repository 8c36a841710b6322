"""EC2/EBS: KMS keys checked and stored as ARNs; launch-template launches get exactly the template's volumes.

What AWS does with a KmsKeyId that is missing, disabled or pending deletion/import (the EC2 API reference,
CreateVolume/CopySnapshot "KmsKeyId": "Amazon Web Services authenticates the KMS key asynchronously. Therefore,
if you specify an ID, alias, or ARN that is not valid, the action can appear to complete, but eventually fails."):
- CreateVolume answers with the volume in ``creating``, then creation fails (EBS ``createVolume`` event with
  result ``failed``, https://docs.aws.amazon.com/ebs/latest/userguide/ebs-cloud-watch-events.html) and the volume
  is gone: DescribeVolumes reports InvalidVolume.NotFound.
- CopySnapshot answers with the snapshot id; the copy ends in state ``error`` (the ``snapshot_completed`` waiter's
  failure state).
- RunInstances / Auto Scaling launches: the instance goes to ``terminated`` with state reason
  ``Client.InvalidKMSKey.InvalidState`` ("The KMS key provided is in an incorrect state"), as reported for
  launches with unusable keys (kubernetes/kops#11545; EC2 Auto Scaling "key policy requirements" page).
Everything is instant here, so the end state is reached before the call returns.

CreateLaunchTemplateVersion (EC2 API reference, "SourceVersion"): "If you specify this parameter, the new version
inherits the launch parameters from the source version. If you specify additional launch parameters for the new
version, they overwrite any corresponding launch parameters inherited from the source version." Moto ignores
SourceVersion (the new version holds only the given parameters) and keeps a given UserData as a plain string, on
which its Auto Scaling launches fail with HTTP 500.
"""
from __future__ import annotations

import copy
import inspect
from typing import Any

from moto.autoscaling.models import FakeAutoScalingGroup
from moto.ec2.models.elastic_block_store import EBSBackend, Volume
from moto.ec2.models.instances import Instance, InstanceBackend, StateReason
from moto.ec2.responses.elastic_block_store import ElasticBlockStore
from moto.ec2.responses.launch_templates import LaunchTemplates
from moto.ec2.utils import convert_tag_spec
from moto.ec2.utils import parse_user_data

from ._patching import require, wrap
from .kms_keys import find_key, key_problem

INVALID_KMS_KEY_STATE = "Client.InvalidKMSKey.InvalidState"
INVALID_KMS_KEY_MESSAGE = f"{INVALID_KMS_KEY_STATE}: The KMS key provided is in an incorrect state"


def _checked_key_arn(backend: EBSBackend, ref: str) -> tuple[str, str | None]:
    """(ARN to store, None) for a usable key, else (ref as given, why EBS fails)."""
    if problem := key_problem(backend.account_id, backend.region_name, ref):
        return ref, problem[1]
    return find_key(backend.account_id, backend.region_name, ref).arn, None


class _CreatingVolume:
    """How CreateVolume reports a volume whose creation will fail: as returned, in state ``creating``."""

    state = status = "creating"

    def __init__(self, volume: Any):
        self._volume = volume

    def __getattr__(self, name: str) -> Any:
        return getattr(self._volume, name)


def _template_root_device(backend: InstanceBackend, image_id: str | None, template: Any) -> str | None:
    ami = backend.amis.get(image_id or template.image_id)
    return ami.root_device_name if ami else None


def _fail_launch_if_key_unusable(backend: InstanceBackend, instance: Instance) -> None:
    """Terminate an instance whose volumes could not be created with their KMS key, as EC2 does."""
    volumes = [backend.volumes.get(mapping.volume_id) for _device, mapping in instance.get_block_device_mapping]
    failed = [v for v in volumes if v is not None and getattr(v, "byok_kms_failure", None)]
    if not failed:
        return
    instance.terminate()
    instance.state_reason = StateReason(INVALID_KMS_KEY_MESSAGE, INVALID_KMS_KEY_STATE)
    instance._reason = INVALID_KMS_KEY_MESSAGE  # pylint: disable=protected-access
    for volume in failed:  # these volumes never came into existence
        if volume.attachment is None:
            backend.volumes.pop(volume.id, None)


def apply() -> None:
    require(Instance, "get_block_device_mapping")

    @wrap(LaunchTemplates, "describe_launch_templates")
    def describe_launch_templates(original, self):
        # AWS pages DescribeLaunchTemplates with NextToken; moto cuts the list at MaxResults (default 15) and
        # gives no token, so a paginating reader silently misses templates.
        page_size = self._get_int_param("MaxResults") or 1000  # pylint: disable=protected-access
        start = int(self._get_param("NextToken") or 0)  # pylint: disable=protected-access
        get_int = self._get_int_param  # pylint: disable=protected-access
        self._get_int_param = lambda name, default=None: 10 ** 9 if name == "MaxResults" else get_int(name, default)
        try:
            response = original(self)
        finally:
            del self._get_int_param
        templates = response.result["LaunchTemplates"]
        response.result["LaunchTemplates"] = templates[start:start + page_size]
        if start + page_size < len(templates):
            response.result["NextToken"] = str(start + page_size)
        return response

    @wrap(Volume, "__init__")
    def volume_init(original, self, *args, **kwargs):
        # DescribeVolumes always carries SnapshotId, "" for a volume not made from a snapshot; moto leaves it out,
        # which breaks readers such as amazon.aws.ec2_vol_info that index it.
        original(self, *args, **kwargs)
        if self.snapshot_id is None:
            self.snapshot_id = ""
    create_volume_signature = inspect.signature(EBSBackend.create_volume)

    @wrap(EBSBackend, "create_volume")
    def create_volume(original, self, *args, **kwargs):
        call = create_volume_signature.bind(self, *args, **kwargs)
        call.apply_defaults()
        arguments = call.arguments
        # A volume from an encrypted snapshot keeps the snapshot's key unless another is given (moto drops it).
        if arguments["snapshot_id"] and not arguments["kms_key_id"]:
            snapshot = self.get_snapshot(arguments["snapshot_id"])
            if snapshot.encrypted and snapshot.kms_key_id:
                arguments["encrypted"], arguments["kms_key_id"] = True, snapshot.kms_key_id
        volume = original(*call.args, **call.kwargs)
        if volume.encrypted and volume.kms_key_id:
            volume.kms_key_id, volume.byok_kms_failure = _checked_key_arn(self, volume.kms_key_id)
        return volume

    @wrap(EBSBackend, "create_snapshot")
    def create_snapshot(original, self, *args, **kwargs):
        # A snapshot of an encrypted volume is encrypted with the volume's key (moto leaves KmsKeyId empty).
        snapshot = original(self, *args, **kwargs)
        if snapshot.volume.encrypted and not snapshot.kms_key_id:
            snapshot.kms_key_id = snapshot.volume.kms_key_id
        return snapshot

    @wrap(EBSBackend, "copy_snapshot")
    def copy_snapshot(original, self, *args, **kwargs):
        snapshot = original(self, *args, **kwargs)
        if snapshot.kms_key_id:
            snapshot.kms_key_id, failure = _checked_key_arn(self, snapshot.kms_key_id)
            if failure:
                snapshot.status = "error"
                snapshot.state_message = failure
        return snapshot

    @wrap(ElasticBlockStore, "create_volume")
    def create_volume_response(original, self):
        result = original(self)
        volume = result.result
        if getattr(volume, "byok_kms_failure", None):
            self.ec2_backend.volumes.pop(volume.id, None)
            result = type(result)(_CreatingVolume(volume))
        return result

    @wrap(InstanceBackend, "run_instances")
    def run_instances(original, self, image_id, *args, **kwargs):
        template = self._get_template_from_args(kwargs["launch_template"]) if kwargs.get("launch_template") else None  # pylint: disable=protected-access
        template_devices = (template.data.get("BlockDeviceMappings") or []) if template else []
        root_device = _template_root_device(self, image_id, template) if template else None
        # When the template maps the root device (or the AMI is unknown here, so the template is all we know),
        # its mappings are the instance's volumes; moto would add its own 8 GiB unencrypted root volume.
        maps_root = root_device is None or root_device in {m.get("DeviceName") for m in template_devices}
        if template_devices and maps_root and "block_device_mappings" not in kwargs:
            kwargs["block_device_mappings"] = template_devices
        if template:
            # Template TagSpecifications for "volume" apply unless the request tags volumes itself.
            template_volume_tags = convert_tag_spec(template.data.get("TagSpecifications", [])).get("volume")
            tags = kwargs.setdefault("tags", {})
            if template_volume_tags and not tags.get("volume"):
                tags["volume"] = dict(template_volume_tags)
        reservation = original(self, image_id, *args, **kwargs)
        for instance in reservation.instances:
            if template_devices and root_device is None:
                instance.root_device_name = template_devices[0].get("DeviceName", instance.root_device_name)
            _fail_launch_if_key_unusable(self, instance)
        return reservation

    @wrap(FakeAutoScalingGroup, "replace_autoscaling_group_instances")
    def replace_instances(original, self, *args, **kwargs):
        # A launch that failed on its KMS key never joins the group.
        original(self, *args, **kwargs)
        self.instance_states = [s for s in self.instance_states if s.instance.state_reason.code != INVALID_KMS_KEY_STATE]

    @wrap(LaunchTemplates, "create_launch_template_version")
    def create_launch_template_version(original, self):
        # The new version: the source version's parameters (when SourceVersion is given), the given ones over them.
        get_param = self._get_param  # pylint: disable=protected-access
        given = dict(get_param("LaunchTemplateData", {}) or {})
        if "UserData" in given:
            given["UserData"] = parse_user_data(get_param("LaunchTemplateData.UserData"))
        data = given
        source = get_param("SourceVersion")
        if source is not None:
            name, template_id = get_param("LaunchTemplateName"), get_param("LaunchTemplateId")
            template = self.ec2_backend.get_launch_template(template_id) if template_id else self.ec2_backend.get_launch_template_by_name(name)
            data = {**copy.deepcopy(template.get_version(source).data), **given}
        self._get_param = lambda key, default=None: data if key == "LaunchTemplateData" else get_param(key, default)
        try:
            return original(self)
        finally:
            del self._get_param
