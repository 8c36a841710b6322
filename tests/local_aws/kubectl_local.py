"""kubectl for the demo inventory: the real kubectl, pointed at the local AWS's Kubernetes double.

The demo's kubeconfigs (inventories/demo/kubeconfigs/) name the server ``http://local-aws.invalid/kube-double/<cluster>``
because the local AWS's port changes from run to run. This wrapper copies the kubeconfig given with
``--kubeconfig``, puts the running local AWS (``$BYOK_LOCAL_AWS_ENDPOINT`` or ``$AWS_ENDPOINT_URL``) in place of
``http://local-aws.invalid``, and runs the real kubectl with the copy. Everything else is kubectl's own doing.
Without an endpoint it changes nothing, and kubectl fails to reach local-aws.invalid, as it should.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

PLACEHOLDER = "http://local-aws.invalid"


def real_kubectl() -> str | None:
    wrapper_dir = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin"))
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if os.path.realpath(p or ".") != wrapper_dir)
    return os.environ.get("BYOK_REAL_KUBECTL") or shutil.which("kubectl", path=path)


def main(argv: list[str]) -> int:
    kubectl = real_kubectl()
    if not kubectl:
        print("kubectl (local AWS wrapper): no kubectl on PATH", file=sys.stderr)
        return 127
    endpoint = (os.environ.get("BYOK_LOCAL_AWS_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL") or "").rstrip("/")
    args = list(argv)
    with tempfile.TemporaryDirectory(prefix="byok-kubectl-") as work:
        for i, arg in enumerate(args):
            path = args[i + 1] if arg == "--kubeconfig" and i + 1 < len(args) else (
                arg.split("=", 1)[1] if arg.startswith("--kubeconfig=") else None)
            if path and endpoint and os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                copy = os.path.join(work, "kubeconfig")
                with open(copy, "w", encoding="utf-8") as f:
                    f.write(text.replace(PLACEHOLDER, endpoint))
                os.chmod(copy, 0o600)
                if arg == "--kubeconfig":
                    args[i + 1] = copy
                else:
                    args[i] = f"--kubeconfig={copy}"
                break
        return subprocess.run([kubectl, *args], check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
