# -*- coding: utf-8 -*-
# Copyright: Mattermost, Inc.
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the Mattermost server sends with each upload: its SSE setting, read where it is true.

With `MM_FILESETTINGS_AMAZONS3SSE` on (and an Enterprise licence, which every BYOK customer has), the server sends
`x-amz-server-side-encryption: AES256` on every PutObject, CreateMultipartUpload and server-side CopyObject; an
explicit header overrides the bucket default, so its new and moved files land on SSE-S3, not on the customer key.
The setting lives in the running `Mattermost` custom resource (installation.mattermost.com/v1beta1),
`spec.mattermostEnv`, in the customer's cluster. It is read with `kubectl get` through the kubeconfig the
inventory gives (kubectl handles every authentication a kubeconfig can name). When no kubeconfig is given, the
provisioner's rule stands in: it forces the setting on for every S3 file store but bifrost.
"""

from __future__ import annotations

import json

SSE_VARIABLE = "MM_FILESETTINGS_AMAZONS3SSE"
# Go's strconv.ParseBool, which the server's environment overrides go through.
TRUE_VALUES = ("1", "t", "T", "TRUE", "true", "True")
FALSE_VALUES = ("0", "f", "F", "FALSE", "false", "False")
RESOURCE = "mattermosts.v1beta1.installation.mattermost.com"
RESOURCE_PATH = "/apis/installation.mattermost.com/v1beta1/namespaces/{namespace}/mattermosts/{name}"
SERVER_SENDS_SSE_S3 = "server_sends_sse_s3"
UNREADABLE_CHOICES = ("fail", "provisioner_rule")
FIX = ("turn {variable} off for installation {installation} (value \"false\" in spec.mattermostEnv of its Mattermost custom "
       "resource). Today the provisioner forces it on for every aws-s3 installation and rewrites the custom resource on each "
       "update of the installation, so the lasting fix is a provisioner change; a hand edit of the custom resource lasts "
       "only until the provisioner's next update")


class ClusterUnreadable(Exception):
    """The custom resource could not be read; the message says why."""


def provisioner_rule(filestore: str) -> bool:
    """The provisioner forces the setting on for every S3 file store but bifrost (which it sets back to off)."""
    return filestore != "bifrost"


def setting_from_resource(resource: dict) -> tuple[bool, str]:
    """(sends AES256, why) from a Mattermost custom resource. The last entry of a name wins, as in a pod's env."""
    spec = resource.get("spec") if isinstance(resource, dict) else None
    env = (spec or {}).get("mattermostEnv") or []
    entry = None
    for item in env if isinstance(env, list) else []:
        if isinstance(item, dict) and item.get("name") == SSE_VARIABLE:
            entry = item
    if entry is None:
        return False, f"{SSE_VARIABLE} is not in spec.mattermostEnv: the server's own default (off) applies"
    if "valueFrom" in entry and "value" not in entry:
        return True, f"{SSE_VARIABLE} comes from a valueFrom reference that is not read here: taken as on"
    value = str(entry.get("value", ""))
    if value in FALSE_VALUES:
        return False, f"{SSE_VARIABLE}={value} in spec.mattermostEnv"
    if value in TRUE_VALUES:
        return True, f"{SSE_VARIABLE}={value} in spec.mattermostEnv"
    return True, f"{SSE_VARIABLE}={value!r} in spec.mattermostEnv is not a boolean: taken as on"


def read_resource(run_command, kubectl: str, kubeconfig: str, namespace: str, name: str) -> dict:
    """The custom resource, read with `kubectl get` (discovery, then one GET of the object)."""
    path = RESOURCE_PATH.format(namespace=namespace, name=name)
    rc, out, err = run_command([kubectl, "--kubeconfig", kubeconfig, "--request-timeout", "30s", "get", RESOURCE,
                                name, "--namespace", namespace, "--output", "json"])
    if rc != 0:
        raise ClusterUnreadable((err or out or f"kubectl exited with {rc}").strip())
    try:
        resource = json.loads(out)
    except ValueError as e:
        raise ClusterUnreadable(f"the answer to GET {path} is not JSON: {e}") from e
    if not isinstance(resource, dict) or resource.get("kind") != "Mattermost":
        raise ClusterUnreadable(f"GET {path} did not answer a Mattermost resource")
    return resource


def server_settings(installations: list[dict], buckets: list[str], read, on_unreadable: str = "fail") -> dict:
    """Per installation what its server sends, and per bucket whether every writer follows the bucket default.

    `read(kubeconfig, namespace, name)` returns the custom resource or raises ClusterUnreadable. Returns
    {installations, buckets, findings, errors}; `errors` (cluster unreadable with on_unreadable=fail) name the variable.
    """
    results, findings, errors = [], [], []
    for index, inst in enumerate(installations):
        where = inst.get("sse_setting") or {}
        field = f"byok_mattermost_installations[{index}].sse_setting"
        record = {"id": inst["id"], "filestore": inst.get("filestore"), "buckets": list(inst.get("buckets") or []),
                  "namespace": where.get("namespace"), "name": where.get("name")}
        if not where.get("kubeconfig"):
            sends = provisioner_rule(inst.get("filestore"))
            record.update(source="provisioner_rule", sends_sse_s3=sends,
                          detail=(f"no kubeconfig ({field}.kubeconfig or byok_ebs_kubeconfig): the cluster was not read; the "
                                  f"provisioner's rule says {SSE_VARIABLE} is {'on' if sends else 'off'} for {inst.get('filestore')}"))
        else:
            try:
                resource = read(where["kubeconfig"], where["namespace"], where["name"])
                sends, why = setting_from_resource(resource)
                record.update(source="cluster", sends_sse_s3=sends,
                              detail=f"Mattermost {where['namespace']}/{where['name']}: {why}")
            except ClusterUnreadable as e:
                variable = where.get("kubeconfig_variable") or f"{field}.kubeconfig"
                message = (f"{field}: the Mattermost custom resource {where['namespace']}/{where['name']} of installation "
                           f"{inst['id']} could not be read with the kubeconfig {where['kubeconfig']} ({variable}): {e}")
                if on_unreadable != "provisioner_rule":
                    errors.append(message + "; fix the kubeconfig or the namespace/name, or set "
                                  "byok_s3_server_setting_unreadable=provisioner_rule to go on with the provisioner's rule")
                    record.update(source="unreadable", sends_sse_s3=None, detail=message)
                    results.append(record)
                    continue
                sends = provisioner_rule(inst.get("filestore"))
                record.update(source="provisioner_rule", sends_sse_s3=sends,
                              detail=f"{message}; the provisioner's rule says {SSE_VARIABLE} is {'on' if sends else 'off'}")
        if record["sends_sse_s3"]:
            findings.append({
                "status": SERVER_SENDS_SSE_S3, "installation": inst["id"], "setting": SSE_VARIABLE, "source": record["source"],
                "buckets": record["buckets"],
                "message": (f"installation {inst['id']}: the Mattermost server sends x-amz-server-side-encryption: AES256 "
                            f"({record['detail']}), which overrides the bucket default: its new, moved and copied files land "
                            f"on SSE-S3, not on the customer key, in {', '.join(record['buckets'])}"),
                "fix": FIX.format(variable=SSE_VARIABLE, installation=inst["id"])})
        results.append(record)
    per_bucket = {}
    for bucket in buckets:
        writers = [r for r in results if bucket in r["buckets"]]
        follows = bool(writers) and all(r["sends_sse_s3"] is False for r in writers)
        if not writers:
            why = "no installation in byok_mattermost_installations writes it: what its writers send is unknown"
        elif follows:
            why = "every installation writing it sends no encryption header"
        else:
            why = "installation(s) " + ", ".join(r["id"] for r in writers if r["sends_sse_s3"] is not False) + " send AES256 or are unknown"
        per_bucket[bucket] = {"writers_follow_default": follows, "installations": [r["id"] for r in writers],
                              "server_sends_sse_s3": [r["id"] for r in writers if r["sends_sse_s3"]], "why": why}
    return {"installations": results, "buckets": per_bucket, "findings": findings, "errors": errors}


STOPGAP_WARNING = ("{installation}: {variable} set to false in the Mattermost custom resource {namespace}/{name} as a stopgap. "
                   "The provisioner rewrites spec.mattermostEnv on its next update of the installation and turns it back on: "
                   "the lasting fix is a provisioner change")


def with_setting_off(resource: dict) -> tuple[dict, bool]:
    """The resource with every entry of the setting replaced by one `false` (where the last one was), and whether
    that changes anything."""
    import copy  # pylint: disable=import-outside-toplevel
    new = copy.deepcopy(resource)
    env = new.setdefault("spec", {}).get("mattermostEnv")
    env = env if isinstance(env, list) else []
    kept, placed = [], False
    last = max((i for i, e in enumerate(env) if isinstance(e, dict) and e.get("name") == SSE_VARIABLE), default=None)
    for i, entry in enumerate(env):
        if isinstance(entry, dict) and entry.get("name") == SSE_VARIABLE:
            if i == last:
                kept.append({"name": SSE_VARIABLE, "value": "false"})
                placed = True
            continue
        kept.append(entry)
    if not placed:
        kept.append({"name": SSE_VARIABLE, "value": "false"})
    new["spec"]["mattermostEnv"] = kept
    return new, kept != env


def replace_resource(run_command, kubectl: str, kubeconfig: str, resource: dict) -> dict:
    """`kubectl replace` (a PUT carrying metadata.resourceVersion: refused if the resource changed since it was read).

    --validate=false: the object is the one just read with one value changed, so there is nothing for kubectl's
    OpenAPI field check to find; the API server still validates it against the CRD's schema."""
    rc, out, err = run_command([kubectl, "--kubeconfig", kubeconfig, "--request-timeout", "30s", "replace", "--validate=false",
                                "--filename", "-", "--output", "json"], data=json.dumps(resource))
    if rc != 0:
        raise ClusterUnreadable((err or out or f"kubectl exited with {rc}").strip())
    return json.loads(out)
