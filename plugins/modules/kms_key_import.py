#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kms_key_import
short_description: Keep a customer's own key material imported into a provider-managed KMS key (Origin EXTERNAL)
version_added: 0.1.0
description:
  - The external key path of BYOK. The customer hands over 256 bits of key material instead of a KMS key; this
    module keeps that material imported into a symmetric KMS key with C(Origin=EXTERNAL) in the caller's account
    and region, which the provider then uses for the customer's data stores like any other key.
  - B(Key) - found by O(alias). When no key has the alias, a C(SYMMETRIC_DEFAULT) C(ENCRYPT_DECRYPT) key with
    C(Origin=EXTERNAL) is created with O(description) and O(tags), and the alias is pointed at it. There is never a
    second key; if the alias cannot be created, the new key (which holds nothing yet) is scheduled for deletion.
    An alias that points at a key of another origin, spec, or a multi-Region key is refused.
  - B(Import) - the material is wrapped on the managed host with the RSA public key KMS returns from
    C(GetParametersForImport) (C(RSAES_OAEP_SHA_256), O(wrapping_key_spec)), then sent with C(ImportKeyMaterial) and
    the expiration of O(expiration_model). Neither the material nor its wrapped form is returned, logged or written
    anywhere.
  - B(Idempotence) - AWS never reveals imported material, so the module cannot tell whether the key holds the
    material given. When the key holds material (C(Enabled) or C(Disabled)) with the wanted O(expiration_model) that
    does not expire within O(reimport_within_days) (or whose end is already O(valid_to)), nothing is done and
    C(changed) is false, whatever material was given. It imports when the key is C(PendingImport), when the
    material expires within O(reimport_within_days), when the expiration model or O(valid_to) differ, or with
    O(force_reimport). Re-importing the same material moves its end date; other material is refused by AWS, and the
    module fails saying the key was imported with other material.
  - B(state=absent_material) deletes the imported material (C(DeleteImportedKeyMaterial)). The key then becomes
    C(PendingImport) and every service using it loses access until the same material is imported again. Needs
    O(allow_delete_material=true).
  - Every input is checked before any AWS call; errors name the option.
author:
  - Mattermost Infrastructure SRE (@mattermost)
options:
  alias:
    description:
      - The alias the key is found by on every run, C(alias/<name>). Names under C(alias/aws/) belong to AWS.
      - The alias is the key's identity for this module, so keep it stable per customer and region.
    type: str
    required: true
  state:
    description:
      - V(present) ensures the key exists and holds the material, importing it when needed.
      - V(absent_material) deletes the key's imported material (the key itself stays, C(PendingImport)).
    type: str
    choices: [present, absent_material]
    default: present
  key_material:
    description:
      - The customer's key material, the base64 of exactly 32 bytes (C(openssl rand -base64 32) makes such a value).
      - Keep it in an AWX credential or ansible-vault, never in clear text in git or inventory.
      - Exactly one of O(key_material) and O(key_material_path) with O(state=present). Ignored with
        O(state=absent_material).
    type: str
  key_material_path:
    description:
      - A file on the managed host holding the key material, as the 32 raw bytes or their base64.
      - The file is read by the module; it is not copied anywhere and its content is never logged or returned.
      - Exactly one of O(key_material) and O(key_material_path) with O(state=present). Ignored with
        O(state=absent_material).
    type: path
  expiration_model:
    description:
      - V(KEY_MATERIAL_EXPIRES) - KMS deletes the material at its end date (O(valid_to) or O(valid_days)) and the key
        becomes unusable until it is imported again. AWS allows at most 365 days, so re-import on a schedule.
      - V(KEY_MATERIAL_DOES_NOT_EXPIRE) - the material stays until deleted.
    type: str
    choices: [KEY_MATERIAL_EXPIRES, KEY_MATERIAL_DOES_NOT_EXPIRE]
    default: KEY_MATERIAL_EXPIRES
  valid_to:
    description:
      - End of the material's validity, an ISO 8601 date (midnight UTC) or date and time (UTC unless it has an
        offset), in the future and at most 365 days ahead.
      - A fixed date is compared with the key's C(ValidTo); a difference re-imports.
      - With O(expiration_model=KEY_MATERIAL_EXPIRES), one of O(valid_to) and O(valid_days) is required.
    type: str
  valid_days:
    description:
      - Days of validity counted from each import, 1 to 365. V(365) gives 365 days less 15 minutes, a margin
        for clock skew against the limit AWS enforces.
      - Must be more than O(reimport_within_days), or every run would re-import.
    type: int
  reimport_within_days:
    description:
      - Re-import when the material expires within this many days. Run the module on a schedule more often than
        this (weekly, say) so the material never lapses.
    type: int
    default: 30
  force_reimport:
    description:
      - Import even when the key holds material that is not due. This is the only way to prove that the key holds
        the given material; AWS refuses other material.
    type: bool
    default: false
  allow_delete_material:
    description:
      - Must be V(true) for O(state=absent_material). Deleting the material makes every resource encrypted with the
        key inaccessible until the same material is imported again.
    type: bool
    default: false
  wrapping_key_spec:
    description: Size of the RSA key KMS wraps the material with in transit (C(WrappingKeySpec)).
    type: str
    choices: [RSA_2048, RSA_3072, RSA_4096]
    default: RSA_4096
  description:
    description: Description of the key, set when the key is created (an existing key's is left alone).
    type: str
    default: Mattermost Cloud Dedicated BYOK - customer-supplied key material (Origin EXTERNAL)
  tags:
    description: Tags of the key, set when the key is created (an existing key's are left alone).
    type: dict
  multi_region:
    description:
      - Only V(false). Multi-Region keys need the material imported into the primary and then into every replica,
        which this module does not do; a multi-Region key found under the alias is refused.
    type: bool
    default: false
notes:
  - The material is wrapped on the managed host and reaches KMS only wrapped. With O(key_material) it travels from
    the controller to the managed host inside the module arguments, like any no_log secret; with
    O(key_material_path) it is read on the managed host only. The import token and wrapping key are fetched for each
    import and discarded afterwards (they are valid for 24 hours).
  - Automatic key rotation is not available for keys with imported material.
  - On AWS, alarm on the CloudWatch metric C(SecondsUntilKeyMaterialExpires) in addition to running this module
    on a schedule.
seealso:
  - name: Importing key material into AWS KMS keys
    description: How AWS KMS handles imported key material.
    link: https://docs.aws.amazon.com/kms/latest/developerguide/importing-keys.html
  - module: amazon.aws.kms_key_info
requirements:
  - cryptography
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: Reads the key and reports truthfully whether it would create the key, import, delete material or
      do nothing, with the predicted key; changes nothing.
  diff_mode:
    support: full
    description: Before and after of the key state, expiration model and ValidTo. Never the material.
  idempotent:
    support: full
    description: A second run with the same input reports no change until the material is due for re-import.
"""

EXAMPLES = r"""
- name: Keep the customer's key material imported, valid a year from each import
  mattermost.byok.kms_key_import:
    alias: alias/mattermost-byok-acme
    key_material: "{{ acme_key_material }}"  # from an AWX credential or ansible-vault
    expiration_model: KEY_MATERIAL_EXPIRES
    valid_days: 365
    reimport_within_days: 30
    tags:
      customer: acme
  register: acme_key

- name: The key ARN for the data stores
  ansible.builtin.debug:
    msg: "{{ acme_key.key.arn }} (material expires in {{ acme_key.expires_in_days }} days)"

- name: Material from a file the customer's secure transfer left on the host, never expiring
  mattermost.byok.kms_key_import:
    alias: alias/mattermost-byok-globex
    key_material_path: /run/byok/globex.key
    expiration_model: KEY_MATERIAL_DOES_NOT_EXPIRE

- name: Prove the key holds this material (AWS refuses other material)
  mattermost.byok.kms_key_import:
    alias: alias/mattermost-byok-acme
    key_material: "{{ acme_key_material }}"
    valid_days: 365
    force_reimport: true

- name: Revoke access (the key becomes unusable until the same material is imported again)
  mattermost.byok.kms_key_import:
    alias: alias/mattermost-byok-acme
    state: absent_material
    allow_delete_material: true
"""

RETURN = r"""
key:
  description: The key after the run (predicted in check mode); null when there is no key (O(state=absent_material)).
  returned: always
  type: dict
  contains:
    arn:
      description: Key ARN; null in check mode when the key would be created.
      type: str
      sample: arn:aws:kms:us-east-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab
    key_id:
      description: Key id; null in check mode when the key would be created.
      type: str
    alias:
      description: The alias the key is found by.
      type: str
      sample: alias/mattermost-byok-acme
    key_state:
      description: C(Enabled), C(Disabled) or C(PendingImport).
      type: str
    origin:
      description: Always C(EXTERNAL).
      type: str
    expiration_model:
      description: Expiration model of the imported material; null when the key holds none.
      type: str
    valid_to:
      description: When the imported material expires (ISO 8601, UTC); null when it does not or the key holds none.
      type: str
      sample: "2027-01-31T00:00:00+00:00"
created:
  description: Whether the key was (or in check mode would be) created.
  returned: always
  type: bool
imported:
  description: Whether key material was (or in check mode would be) imported.
  returned: always
  type: bool
material_deleted:
  description: Whether the imported material was (or in check mode would be) deleted.
  returned: always
  type: bool
reason:
  description: Why the module did what it did, in words.
  returned: always
  type: str
  sample: key material is imported and valid to 2027-01-31T00:00:00+00:00 (300 days, beyond reimport_within_days=30)
expires_in_days:
  description: Whole days until the material expires; null when it does not expire or the key holds none.
  returned: always
  type: int
reimport_due:
  description: The key holds no material, or its material expires within O(reimport_within_days).
  returned: always
  type: bool
"""

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # ByokModule reports the missing SDK

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code

from ansible_collections.mattermost.byok.plugins.module_utils.kms import key_import as ki
from ansible_collections.mattermost.byok.plugins.module_utils.aws.module import ByokModule

# A key created here whose alias then fails holds nothing yet; it is scheduled for deletion with the shortest wait.
ORPHAN_DELETION_DAYS = 7


def describe_by_alias(module, kms, alias):
    try:
        return kms.describe_key(KeyId=alias, aws_retry=True)["KeyMetadata"]
    except is_boto3_error_code("NotFoundException"):
        return None
    except (BotoCoreError, ClientError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg=f"Cannot describe the key of {alias}")


def create_key(module, kms, alias):
    """A new EXTERNAL key with the alias pointed at it; if the alias fails, the key is scheduled for deletion."""
    params = module.params
    tags = [{"TagKey": str(k), "TagValue": str(v)} for k, v in (params["tags"] or {}).items()]
    try:
        metadata = kms.create_key(
            Description=params["description"], KeyUsage="ENCRYPT_DECRYPT", KeySpec="SYMMETRIC_DEFAULT", Origin="EXTERNAL",
            MultiRegion=False, Tags=tags, aws_retry=True,
        )["KeyMetadata"]
    except (BotoCoreError, ClientError) as e:
        module.fail_json_aws(e, msg=f"Cannot create an EXTERNAL key for {alias}")
    try:
        kms.create_alias(AliasName=alias, TargetKeyId=metadata["KeyId"], aws_retry=True)
    except (BotoCoreError, ClientError) as e:
        cleanup = f"the new key {metadata['Arn']} (no material) is scheduled for deletion"
        try:
            kms.schedule_key_deletion(KeyId=metadata["Arn"], PendingWindowInDays=ORPHAN_DELETION_DAYS, aws_retry=True)
        except (BotoCoreError, ClientError):
            cleanup = f"the new key {metadata['Arn']} (no material) is left behind; schedule its deletion"
        if is_boto3_error_code("AlreadyExistsException", e=e):
            module.fail_json_aws(e, msg=f"{alias} was created by someone else meanwhile; {cleanup}. Re-run to use the key it names")
        module.fail_json_aws(e, msg=f"Cannot create {alias}; {cleanup}")
    return metadata


def import_material(module, kms, metadata, material, plan, now):
    """GetParametersForImport, wrap here, ImportKeyMaterial. The wrapped material lives only in this call."""
    arn = metadata["Arn"]
    spec = module.params["wrapping_key_spec"]
    try:
        parameters = kms.get_parameters_for_import(KeyId=arn, WrappingAlgorithm=ki.WRAPPING_ALGORITHM, WrappingKeySpec=spec, aws_retry=True)
    except (BotoCoreError, ClientError) as e:
        module.fail_json_aws(e, msg=f"Cannot get the import parameters (wrapping key and token) of {arn}")
    try:
        wrapped = ki.wrap_key_material(material, parameters["PublicKey"], spec)
    except ki.KeyImportError as e:
        module.fail_json(msg=str(e))
    request = dict(KeyId=arn, ImportToken=parameters["ImportToken"], EncryptedKeyMaterial=wrapped, ExpirationModel=plan.model)
    valid_to = plan.valid_to_at(now)
    if valid_to is not None:
        request["ValidTo"] = valid_to
    if ki.has_material(metadata):
        # A re-import: AWS must compare with the material the key holds, never stage the input as new material.
        request["ImportType"] = "EXISTING_KEY_MATERIAL"
    try:
        kms.import_key_material(aws_retry=True, **request)
    except is_boto3_error_code("IncorrectKeyMaterialException") as e:
        module.fail_json_aws(
            e, msg=f"{arn} ({module.params['alias']}): this key was imported with other material. AWS accepts only the material "
            "first imported into a key; check that key_material is the customer's material for this key, or use a new alias "
            "for a new key (and re-encrypt the data stores with it)"
        )
    except (BotoCoreError, ClientError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg=f"Cannot import key material into {arn}")


def delete_material(module, kms, metadata):
    try:
        kms.delete_imported_key_material(KeyId=metadata["Arn"], aws_retry=True)
    except (BotoCoreError, ClientError) as e:
        module.fail_json_aws(e, msg=f"Cannot delete the imported key material of {metadata['Arn']}")


def read_back(module, kms, arn):
    try:
        return kms.describe_key(KeyId=arn, aws_retry=True)["KeyMetadata"]
    except (BotoCoreError, ClientError) as e:
        module.fail_json_aws(e, msg=f"Cannot describe {arn}")


def validate(module, now):
    """Every input check, before any AWS call. Returns (material, plan); both None for absent_material."""
    p = module.params
    ki.validate_alias(p["alias"])
    if p["multi_region"]:
        raise ki.KeyImportError("multi_region: only false is supported; multi-Region keys need the material imported "
                                "into the primary and every replica, which this module does not do")
    if p["reimport_within_days"] < 0:
        raise ki.KeyImportError("reimport_within_days: must be 0 or more days")
    if p["state"] == "absent_material":
        if not p["allow_delete_material"]:
            raise ki.KeyImportError(
                "allow_delete_material: must be true for state=absent_material; deleting the material makes everything "
                "encrypted with the key inaccessible until the same material is imported again"
            )
        return None, None
    plan = ki.plan_expiry(p["expiration_model"], p["valid_to"], p["valid_days"], now)
    if plan.valid_days is not None and plan.valid_days <= p["reimport_within_days"]:
        raise ki.KeyImportError(
            f"valid_days: {plan.valid_days} is not more than reimport_within_days={p['reimport_within_days']}, so every run "
            "would re-import; raise valid_days or lower reimport_within_days"
        )
    material, secrets = ki.select_material(p["key_material"], p["key_material_path"])
    module.no_log_values.update(secrets)
    return material, plan


def main():
    module = ByokModule(
        argument_spec=dict(
            alias=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent_material"]),
            key_material=dict(type="str", no_log=True),
            key_material_path=dict(type="path"),
            expiration_model=dict(type="str", default=ki.EXPIRES, choices=list(ki.EXPIRATION_MODELS)),
            valid_to=dict(type="str"),
            valid_days=dict(type="int"),
            reimport_within_days=dict(type="int", default=30),
            force_reimport=dict(type="bool", default=False),
            allow_delete_material=dict(type="bool", default=False),
            wrapping_key_spec=dict(type="str", default="RSA_4096", choices=list(ki.WRAPPING_KEY_BITS)),
            description=dict(type="str", default="Mattermost Cloud Dedicated BYOK - customer-supplied key material (Origin EXTERNAL)"),
            tags=dict(type="dict"),
            multi_region=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    if not ki.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"))
    alias = module.params["alias"]
    now = ki.utcnow()
    try:
        material, plan = validate(module, now)
    except ki.KeyImportError as e:
        module.fail_json(msg=str(e))

    kms = module.byok_client("kms")
    before = describe_by_alias(module, kms, alias)
    if before is not None:
        try:
            ki.check_key_fits(before, alias)
        except ki.KeyImportError as e:
            module.fail_json(msg=str(e), key=ki.key_view(before, alias))

    if module.params["state"] == "present":
        decision = ki.decide_present(before, plan, module.params["reimport_within_days"], module.params["force_reimport"], now)
    else:
        decision = ki.decide_absent_material(before)

    after = before
    if decision.action in (ki.CREATE_AND_IMPORT, ki.IMPORT):
        after = ki.after_import(before, plan, now)
        if not module.check_mode:
            target = before if before is not None else create_key(module, kms, alias)
            import_material(module, kms, target, material, plan, now)
            after = read_back(module, kms, target["Arn"])
    elif decision.action == ki.DELETE_MATERIAL:
        after = ki.after_delete(before)
        if not module.check_mode:
            delete_material(module, kms, before)
            after = read_back(module, kms, before["Arn"])

    expires_in_days, reimport_due = ki.material_status(after, module.params["reimport_within_days"], ki.utcnow())
    if after is not None and after.get("KeyState") == "Disabled":
        module.warn(f"{alias}: the key is Disabled; it holds the material but serves nothing until enabled (aws kms enable-key)")
    if module.params["state"] == "present" and reimport_due:
        hint = "; a fixed valid_to does not move on re-import, give a later one" if plan.valid_to is not None else ""
        module.warn(f"{alias}: the key material expires in {expires_in_days} days, within reimport_within_days="
                    f"{module.params['reimport_within_days']}{hint}")
    result = dict(
        changed=decision.action != ki.NOTHING,
        created=decision.action == ki.CREATE_AND_IMPORT,
        imported=decision.action in (ki.CREATE_AND_IMPORT, ki.IMPORT),
        material_deleted=decision.action == ki.DELETE_MATERIAL,
        reason=decision.reason,
        key=ki.key_view(after, alias),
        expires_in_days=expires_in_days,
        reimport_due=reimport_due,
    )
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = dict(before=ki.diff_view(before), after=ki.diff_view(after))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
