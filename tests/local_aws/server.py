"""Run moto's server with the local AWS extensions applied.

    python -m tests.local_aws.server --host 127.0.0.1 --port 5000     (from the repository root)

It is moto's own ``moto_server`` (same Flask/werkzeug app, same /moto-api endpoints), with the fidelity
extensions from ``tests.local_aws.extensions`` patched in first. If a patched moto internal is missing (moto was
upgraded), it stops at start-up with an error naming it. ``--plain`` serves unmodified moto (moto's own server
main, no extension applied), for comparisons. Both stop at once on SIGTERM: there is nothing to save.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from moto import server as moto_server

from . import extensions, kube_double
from .extensions._patching import replace


def exit_now(signum: int, frame: Any) -> None:  # pylint: disable=unused-argument
    """SIGTERM/SIGINT: all state is in memory, so skip the interpreter teardown (seconds with moto's data loaded)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # pylint: disable=protected-access


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.local_aws.server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port to listen on (default 5000)")
    parser.add_argument("--plain", action="store_true", help="serve plain moto, without the extensions")
    parser.add_argument("--verbose", action="store_true", help="keep werkzeug's per-request log")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.plain:
        try:
            extensions.apply()
        except extensions.MotoInternalsChanged as exc:
            print(f"local AWS: {exc}", file=sys.stderr)
            return 2
        kube_double.install(moto_server)  # the Mattermost custom resource's API paths (tests/local_aws/kube_double.py)
    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
    replace(moto_server, "signal_handler", exit_now)  # moto's main() installs it for SIGINT and SIGTERM
    moto_server.main(["--host", args.host, "--port", str(args.port)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
