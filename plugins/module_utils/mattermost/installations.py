# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The customer's Mattermost installations (`byok_mattermost_installations`): validated and normalized.

Pure: no AWS or cluster call. Each problem names its variable (`byok_mattermost_installations[0].filestore`) and
the fix. Only a file store of the customer's own (`aws-s3`) can carry the customer's key: the provisioner's shared
ones (`aws-multitenant-s3`, `bifrost`) keep every installation of a VPC in one bucket.
"""

from __future__ import annotations

import re

from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import InvalidIdentifier
from ansible_collections.mattermost.byok.plugins.module_utils.aws.arns import parse_arn

VARIABLE = "byok_mattermost_installations"
FILESTORES = ("aws-s3", "aws-multitenant-s3", "bifrost")
OWN_FILESTORE = "aws-s3"
SHARED_REASON = ("a shared bucket (every installation of the VPC under its own prefix) cannot carry one customer's key; "
                 "only an installation with its own bucket (filestore aws-s3) can be put on the customer's key - "
                 "move the installation to an aws-s3 file store first, or leave it out of BYOK")
IN_CLUSTER = ("minio-operator", "local-ephemeral")
FIELDS = ("id", "filestore", "buckets", "s3_identity_arn", "sse_setting", "canary_credentials")
SSE_FIELDS = ("namespace", "name", "kubeconfig")
CANARY_FIELDS = ("secret", "role_arn")
INSTALLATION_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# Kubernetes object names (RFC 1123 label for namespaces, subdomain for names).
K8S_NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
K8S_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")


def validate_installations(value, buckets: list[str], provider_account: str | None, default_kubeconfig, errors: list) -> list[dict]:
    """Normalized installations; every problem is appended to `errors`.

    `buckets` are the customer's byok_s3_buckets: an installation may only name those. `default_kubeconfig` is
    byok_ebs_kubeconfig (where the setting is read when the entry names no kubeconfig of its own).
    """
    error = errors.append
    if value is None:
        return []
    if not isinstance(value, list):
        error(f"{VARIABLE}: must be a list of installations (id, filestore, buckets, s3_identity_arn, ...)")
        return []
    installations = []
    seen_ids: set = set()
    for i, item in enumerate(value):
        field = f"{VARIABLE}[{i}]"
        if not isinstance(item, dict):
            error(f"{field}: must be a mapping with id, filestore, buckets and s3_identity_arn")
            continue
        count = len(errors)
        for name in item:
            if name not in FIELDS:
                error(f"{field}.{name}: unknown field; an installation has {', '.join(FIELDS)}")
        ident = item.get("id")
        if not isinstance(ident, str) or not INSTALLATION_ID_RE.match(ident):
            error(f"{field}.id: {ident!r} is not an installation id (the provisioner's id: lowercase letters and digits)")
            ident = None
        elif ident in seen_ids:
            error(f"{field}.id: installation {ident} is listed twice; give each installation once")
        else:
            seen_ids.add(ident)
        filestore = item.get("filestore")
        if filestore in IN_CLUSTER:
            error(f"{field}.filestore: {filestore} keeps the files in the cluster, on its EBS volumes (the ebs step covers "
                  f"them), not in S3; leave this installation out of {VARIABLE}")
        elif filestore not in FILESTORES:
            error(f"{field}.filestore: {filestore!r} is not one of {', '.join(FILESTORES)} (the provisioner's file store type)")
        elif filestore != OWN_FILESTORE:
            error(f"{field}.filestore: {filestore} is refused for BYOK: {SHARED_REASON}")
        own_buckets = _buckets(item.get("buckets"), buckets, field, error)
        identity = _identity(item.get("s3_identity_arn"), provider_account, field, error)
        setting = _sse_setting(item.get("sse_setting"), ident, default_kubeconfig, field, error)
        canary = _canary(item.get("canary_credentials"), field, error)
        if len(errors) == count and ident:
            installations.append({"id": ident, "filestore": filestore, "buckets": own_buckets, "s3_identity_arn": identity,
                                  "sse_setting": setting, "canary_credentials": canary})
    return installations


def _buckets(value, known: list[str], field: str, error) -> list[str]:
    if not isinstance(value, list) or not value:
        error(f"{field}.buckets: list the byok_s3_buckets this installation's server writes (at least one)")
        return []
    names = []
    for j, name in enumerate(value):
        if not isinstance(name, str) or name not in known:
            error(f"{field}.buckets[{j}]: {name!r} is not in byok_s3_buckets; add the bucket there, or fix the name")
        elif name not in names:
            names.append(name)
    return names


def _identity(value, provider_account: str | None, field: str, error) -> str | None:
    name = f"{field}.s3_identity_arn"
    try:
        arn = parse_arn(value, name)
    except InvalidIdentifier as e:
        error(f"{e}; give the installation's S3 identity (the IAM user the provisioner made for its bucket), "
              f"arn:aws:iam::<provider account>:user/<name>")
        return None
    if arn.service != "iam" or arn.resource_type not in ("user", "role") or not arn.resource_id:
        error(f"{name}: {value!r} is not an IAM user or role ARN (arn:aws:iam::<account>:user/<name> or :role/<name>)")
        return None
    if provider_account and arn.account_id != provider_account:
        error(f"{name}: {value} is in account {arn.account_id}, but the server's identity lives in the provider account "
              f"{provider_account} (byok_provider_account_id)")
        return None
    return value


def _sse_setting(value, ident: str | None, default_kubeconfig, field: str, error) -> dict:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        error(f"{field}.sse_setting: must be a mapping with namespace, name and kubeconfig (each optional)")
        value = {}
    for name in value:
        if name not in SSE_FIELDS:
            error(f"{field}.sse_setting.{name}: unknown field; use {', '.join(SSE_FIELDS)}")
    namespace = value.get("namespace", ident)
    if namespace is not None and (not isinstance(namespace, str) or not K8S_NAMESPACE_RE.match(namespace)):
        error(f"{field}.sse_setting.namespace: {namespace!r} is not a Kubernetes namespace name")
    name = value.get("name", ident)
    if name is not None and (not isinstance(name, str) or not K8S_NAME_RE.match(name)):
        error(f"{field}.sse_setting.name: {name!r} is not a Kubernetes object name (the Mattermost custom resource)")
    kubeconfig = value.get("kubeconfig", default_kubeconfig) or None
    if kubeconfig is not None and not isinstance(kubeconfig, str):
        error(f"{field}.sse_setting.kubeconfig: {kubeconfig!r} must be the path of a kubeconfig file")
        kubeconfig = None
    source = "sse_setting.kubeconfig" if value.get("kubeconfig") else ("byok_ebs_kubeconfig" if kubeconfig else None)
    return {"namespace": namespace, "name": name, "kubeconfig": kubeconfig, "kubeconfig_variable":
            f"{field}.{source}" if source == "sse_setting.kubeconfig" else source}


def _canary(value, field: str, error) -> dict | None:
    if value is None:
        return None
    name = f"{field}.canary_credentials"
    if not isinstance(value, dict):
        error(f"{name}: must be a mapping with secret (a Secrets Manager secret) or role_arn (a role to assume)")
        return None
    for key in value:
        if key not in CANARY_FIELDS:
            error(f"{name}.{key}: unknown field; use secret or role_arn")
    given = [k for k in CANARY_FIELDS if value.get(k)]
    if len(given) != 1:
        error(f"{name}: give exactly one of secret (the Secrets Manager secret holding the server's access key) or "
              f"role_arn (a role with the server's permissions)")
        return None
    if given == ["secret"]:
        secret = value["secret"]
        if not isinstance(secret, str) or not (SECRET_NAME_RE.match(secret) or secret.startswith("arn:")):
            error(f"{name}.secret: {secret!r} is not a Secrets Manager secret name or ARN")
            return None
        if secret.startswith("arn:"):
            try:
                arn = parse_arn(secret, f"{name}.secret")
            except InvalidIdentifier as e:
                error(str(e))
                return None
            if arn.service != "secretsmanager":
                error(f"{name}.secret: {secret} is a {arn.service} ARN, not a Secrets Manager secret")
                return None
        return {"secret": secret}
    try:
        arn = parse_arn(value["role_arn"], f"{name}.role_arn")
    except InvalidIdentifier as e:
        error(str(e))
        return None
    if arn.service != "iam" or arn.resource_type != "role":
        error(f"{name}.role_arn: {value['role_arn']!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
        return None
    return {"role_arn": value["role_arn"]}
