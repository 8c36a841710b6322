"""A double of the Kubernetes API server, for the Mattermost custom resource only, served beside the local AWS.

The customer's cluster holds the truth about the Mattermost server's SSE setting: the ``Mattermost`` custom
resource (``installation.mattermost.com/v1beta1``, plural ``mattermosts``), field ``spec.mattermostEnv``. There is no
cluster here, so the local AWS also answers the few Kubernetes API paths the collection uses, and the real
``kubectl`` reaches them through a real kubeconfig (``kubeconfig()`` writes one), exactly as on a user's machine:

- ``GET <prefix>/version`` and the discovery documents kubectl reads before ``kubectl get mattermosts...``,
- ``GET|PUT <prefix>/apis/installation.mattermost.com/v1beta1/namespaces/<ns>/mattermosts/<name>`` and ``POST`` to the
  collection (how a test or the demo seeder creates one), with the API server's Status answers
  (404 NotFound, 409 AlreadyExists / Conflict on a stale ``metadata.resourceVersion``, 401 Unauthorized).

Each cluster is a path prefix of the server URL, ``<endpoint>/kube-double/<cluster>`` (kubectl sends no bearer
token over plain HTTP, and the local AWS has no TLS): a request is served from the objects created in its cluster,
and a cluster where nothing was created answers 401 Unauthorized, as a real cluster refuses credentials that are not
its own. ``/moto-api/reset`` empties every cluster. Every other path is AWS's and passes through to moto untouched.
"""
from __future__ import annotations

import copy
import json
import re
import threading
from typing import Any, Callable

GROUP = "installation.mattermost.com"
VERSION = "v1beta1"
PLURAL = "mattermosts"
PREFIX = re.compile(r"^/kube-double/([a-z0-9][a-z0-9-]*)(/.*)?$")
OBJECT_PATH = re.compile(rf"^/apis/{re.escape(GROUP)}/{VERSION}/namespaces/([a-z0-9-]+)/{PLURAL}(?:/([a-z0-9.-]+))?/?$")
# Discovery, as kubectl reads it before `kubectl get <resource>`: the core group and the Mattermost group.
DISCOVERY = {
    "/api": {"kind": "APIVersions", "versions": ["v1"],
             "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "namespaces", "singularName": "namespace", "namespaced": False, "kind": "Namespace",
         "verbs": ["get", "list"], "shortNames": ["ns"]}]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        {"name": GROUP, "versions": [{"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION}],
         "preferredVersion": {"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION}}]},
    f"/apis/{GROUP}/{VERSION}": {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{GROUP}/{VERSION}", "resources": [
        {"name": PLURAL, "singularName": "mattermost", "namespaced": True, "kind": "Mattermost",
         "verbs": ["get", "list", "update", "patch"], "shortNames": ["mm"]}]},
}
VERSION_INFO = {"major": "1", "minor": "29", "gitVersion": "v1.29.0-byok-kube-double", "platform": "linux/amd64"}


class Clusters:
    """Objects per cluster (bearer token), in memory, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, dict[tuple[str, str], dict]] = {}
        self._version = 0

    def reset(self) -> None:
        with self._lock:
            self._objects.clear()

    def known(self, token: str) -> bool:
        with self._lock:
            return token in self._objects

    def get(self, token: str, namespace: str, name: str) -> dict | None:
        with self._lock:
            found = self._objects.get(token, {}).get((namespace, name))
            return copy.deepcopy(found) if found else None

    def create(self, token: str, namespace: str, obj: dict) -> tuple[int, dict]:
        name = (obj.get("metadata") or {}).get("name")
        if not name:
            return 422, status(422, "Invalid", "metadata.name: Required value")
        with self._lock:
            objects = self._objects.setdefault(token, {})
            if (namespace, name) in objects:
                return 409, status(409, "AlreadyExists", f'{PLURAL}.{GROUP} "{name}" already exists')
            return 201, self._store(objects, namespace, name, obj)

    def replace(self, token: str, namespace: str, name: str, obj: dict) -> tuple[int, dict]:
        with self._lock:
            objects = self._objects.get(token, {})
            current = objects.get((namespace, name))
            if current is None:
                return 404, not_found(name)
            sent = (obj.get("metadata") or {}).get("resourceVersion")
            if sent and sent != current["metadata"]["resourceVersion"]:
                return 409, status(409, "Conflict", f'Operation cannot be fulfilled on {PLURAL}.{GROUP} "{name}": the object has '
                                                    "been modified; please apply your changes to the latest version and try again")
            return 200, self._store(objects, namespace, name, obj)

    def _store(self, objects: dict, namespace: str, name: str, obj: dict) -> dict:
        self._version += 1
        stored = copy.deepcopy(obj)
        stored.setdefault("apiVersion", f"{GROUP}/{VERSION}")
        stored.setdefault("kind", "Mattermost")
        metadata = stored.setdefault("metadata", {})
        metadata.update({"name": name, "namespace": namespace, "resourceVersion": str(self._version)})
        objects[(namespace, name)] = stored
        return copy.deepcopy(stored)


def status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def not_found(name: str) -> dict:
    return status(404, "NotFound", f'{PLURAL}.{GROUP} "{name}" not found')


CLUSTERS = Clusters()
REASONS = {200: "OK", 201: "Created", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
           422: "Unprocessable Entity"}


def handle(environ: dict, clusters: Clusters = CLUSTERS) -> tuple[int, Any] | None:
    """(HTTP status, JSON body) for a Kubernetes request, None for anything else (AWS)."""
    prefixed = PREFIX.match(environ.get("PATH_INFO", ""))
    if prefixed is None:
        return None
    token, path = prefixed.group(1), prefixed.group(2) or "/"
    method = environ.get("REQUEST_METHOD", "GET")
    if path == "/version":
        return 200, VERSION_INFO
    if path in DISCOVERY:
        return 200, DISCOVERY[path]
    match = OBJECT_PATH.match(path)
    if not match:
        return 404, status(404, "NotFound", "the server could not find the requested resource")
    namespace, name = match.groups()
    if method == "POST" and name is None:
        return clusters.create(token, namespace, _body(environ))
    if not clusters.known(token):
        return 401, status(401, "Unauthorized", "Unauthorized")
    if name is None:
        return 405, status(405, "MethodNotAllowed", "list is not served by this double")
    if method == "GET":
        found = clusters.get(token, namespace, name)
        return (200, found) if found else (404, not_found(name))
    if method == "PUT":
        return clusters.replace(token, namespace, name, _body(environ))
    return 405, status(405, "MethodNotAllowed", f"{method} is not served by this double")


def _body(environ: dict) -> dict:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = {}
    return body if isinstance(body, dict) else {}


def middleware(app: Callable) -> Callable:
    """WSGI app that answers the Kubernetes paths and passes everything else to `app`."""

    def serve(environ: dict, start_response: Callable) -> Any:
        if environ.get("PATH_INFO") == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
            CLUSTERS.reset()
        answer = handle(environ)
        if answer is None:
            return app(environ, start_response)
        code, body = answer
        payload = json.dumps(body).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
        start_response(f"{code} {REASONS.get(code, 'Error')}", headers)
        return [payload]

    return serve


def install(moto_server: Any) -> None:
    """Serve the Kubernetes paths from moto's server process (its DomainDispatcherApplication)."""
    dispatcher = moto_server.DomainDispatcherApplication
    if getattr(dispatcher, "_byok_kube_double", False):
        return
    original = dispatcher.__call__

    def call(self, environ, start_response):
        return middleware(lambda e, s: original(self, e, s))(environ, start_response)

    dispatcher.__call__ = call
    dispatcher._byok_kube_double = True  # pylint: disable=protected-access


# --- for tests and the demo seeder -----------------------------------------------------------------------------

def server_url(endpoint_url: str, cluster: str) -> str:
    return f"{endpoint_url.rstrip('/')}/kube-double/{cluster}"


def kubeconfig(endpoint_url: str, cluster: str) -> str:
    """A kubeconfig (YAML is a superset of JSON) for one cluster of the double."""
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": cluster, "preferences": {},
        "clusters": [{"name": cluster, "cluster": {"server": server_url(endpoint_url, cluster)}}],
        "users": [{"name": f"{cluster}-admin", "user": {"token": f"kube-double-{cluster}"}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": f"{cluster}-admin"}}]}, indent=1)


def mattermost_resource(installation_id: str, env: dict[str, str], namespace: str | None = None, name: str | None = None) -> dict:
    """A Mattermost custom resource as the provisioner writes it, with `env` as spec.mattermostEnv."""
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Mattermost",
            "metadata": {"name": name or installation_id, "namespace": namespace or installation_id,
                         "labels": {"installation": installation_id}},
            "spec": {"image": "mattermost/mattermost-enterprise-edition", "replicas": 2, "size": "1000users",
                     "fileStore": {"external": {"url": "s3.amazonaws.com", "bucket": f"{installation_id}-filestore",
                                                "secret": f"{installation_id}-iam-access-key"}},
                     "mattermostEnv": [{"name": k, "value": v} for k, v in env.items()]}}


def put_resource(endpoint_url: str, cluster: str, resource: dict) -> dict:
    """Create or replace a Mattermost resource in a cluster of the double (seeding, tests)."""
    import urllib.error  # pylint: disable=import-outside-toplevel
    import urllib.request  # pylint: disable=import-outside-toplevel
    namespace, name = resource["metadata"]["namespace"], resource["metadata"]["name"]
    base = f"{server_url(endpoint_url, cluster)}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
    headers = {"Content-Type": "application/json"}

    def send(method: str, url: str, body: dict) -> dict:
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    try:
        return send("POST", base, resource)
    except urllib.error.HTTPError as e:
        if e.code != 409:
            raise
    current = get_resource(endpoint_url, cluster, namespace, name)
    replaced = copy.deepcopy(resource)
    replaced["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    return send("PUT", f"{base}/{name}", replaced)


def get_resource(endpoint_url: str, cluster: str, namespace: str, name: str) -> dict:
    import urllib.request  # pylint: disable=import-outside-toplevel
    url = f"{server_url(endpoint_url, cluster)}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}"
    request = urllib.request.Request(url)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())
