"""Manage a background local AWS for development and the demo: scripts/local-aws <command>.

    start     start the server on a free 127.0.0.1 port (reuses a running one), write .local-aws/env
    stop      stop it (SIGTERM, then SIGKILL); fine when it is not running
    status    say whether it runs and where (exit 1 when it does not)
    reset     wipe all state (POST /moto-api/reset)
    endpoint  print the endpoint URL
    env       print shell lines that point the AWS SDKs and CLI at it:  eval "$(scripts/local-aws env)"

State lives in .local-aws/ (override with LOCAL_AWS_DIR): server.pid, server.log, endpoint, env.
Other modules add commands with :func:`subcommand`; the modules named in SUBCOMMAND_MODULES are loaded
when present (tests.local_aws.demo_fleet provides ``seed``).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .harness import REPO_ROOT, LocalAWS, LocalAWSError, answers, free_port, server_command, wait_until_answering

SUBCOMMAND_MODULES = ("tests.local_aws.demo_fleet",)
STOP_TIMEOUT = 10.0


@dataclass
class Subcommand:
    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    configure: Callable[[argparse.ArgumentParser], None] | None = None


SUBCOMMANDS: dict[str, Subcommand] = {}


def subcommand(name: str, help: str, configure: Callable[[argparse.ArgumentParser], None] | None = None):  # pylint: disable=redefined-builtin
    """Register ``run(args) -> exit code`` as ``scripts/local-aws <name>``; ``configure`` adds its arguments."""
    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        SUBCOMMANDS[name] = Subcommand(name, help, run, configure)
        return run
    return register


class StateDir:
    """The files in .local-aws/ that describe the background server."""

    def __init__(self, path: Path | None = None):
        self.path = path or Path(os.environ.get("LOCAL_AWS_DIR") or REPO_ROOT / ".local-aws")
        self.pid_file = self.path / "server.pid"
        self.log_file = self.path / "server.log"
        self.endpoint_file = self.path / "endpoint"
        self.env_file = self.path / "env"

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def endpoint(self) -> str | None:
        try:
            return self.endpoint_file.read_text().strip() or None
        except OSError:
            return None

    def clear(self) -> None:
        for path in (self.pid_file, self.endpoint_file, self.env_file):
            path.unlink(missing_ok=True)


def is_our_server(pid: int | None) -> bool:
    """The pid is alive and runs tests.local_aws.server (guards against a recycled pid)."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True  # no /proc (macOS): trust the pid file
    return b"tests.local_aws.server" in cmdline


def running_endpoint(state: StateDir) -> str | None:
    """The recorded endpoint, if its server is alive and answering."""
    endpoint = state.endpoint()
    if endpoint and is_our_server(state.pid()) and answers(endpoint):
        return endpoint
    return None


def env_lines(endpoint: str) -> str:
    return "\n".join([
        f"export AWS_ENDPOINT_URL={endpoint}",
        "export AWS_ACCESS_KEY_ID=testing",
        "export AWS_SECRET_ACCESS_KEY=testing",
        "export AWS_DEFAULT_REGION=us-east-1",
        "export AWS_REGION=us-east-1",
        "unset AWS_PROFILE AWS_SESSION_TOKEN",
    ]) + "\n"


def require_running(state: StateDir) -> str:
    endpoint = running_endpoint(state)
    if endpoint is None:
        raise LocalAWSError("local AWS is not running (scripts/local-aws start)")
    return endpoint


@subcommand("start", "start the local AWS in the background (or reuse the running one)")
def cmd_start(args: argparse.Namespace) -> int:
    state = StateDir()
    endpoint = running_endpoint(state)
    if endpoint:
        print(f"local AWS already running at {endpoint} (pid {state.pid()})")
        return 0
    stop_server(state)  # a stale pid file or a server that no longer answers
    state.path.mkdir(parents=True, exist_ok=True)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with open(state.log_file, "ab") as log:
        # Its own session, so the server outlives this command and a Ctrl-C in the calling shell.
        process = subprocess.Popen(  # pylint: disable=consider-using-with
            server_command("127.0.0.1", port), cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    state.pid_file.write_text(f"{process.pid}\n")
    state.endpoint_file.write_text(f"{endpoint}\n")
    try:
        wait_until_answering(endpoint, process, state.log_file)
    except LocalAWSError:
        stop_server(state)
        raise
    state.env_file.write_text(env_lines(endpoint))
    print(f"local AWS running at {endpoint} (pid {process.pid}); environment in {state.env_file}")
    return 0


def stop_server(state: StateDir) -> bool:
    """Stop the recorded server; True if one was running."""
    pid = state.pid()
    was_running = is_our_server(pid)
    if was_running:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while is_our_server(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.05)
        if is_our_server(pid):
            os.kill(pid, signal.SIGKILL)
            _reap(pid)
    state.clear()
    return was_running


def _reap(pid: int) -> None:
    """Collect the exit status when the server is our child (start and stop in one process, e.g. tests)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


@subcommand("stop", "stop the local AWS (no error when it is not running)")
def cmd_stop(args: argparse.Namespace) -> int:
    print("local AWS stopped" if stop_server(StateDir()) else "local AWS was not running")
    return 0


@subcommand("status", "show whether the local AWS is running (exit 1 when not)")
def cmd_status(args: argparse.Namespace) -> int:
    state = StateDir()
    endpoint = running_endpoint(state)
    if endpoint is None:
        print("local AWS is not running")
        return 1
    print(f"local AWS running at {endpoint} (pid {state.pid()})")
    return 0


@subcommand("reset", "wipe all accounts and regions (POST /moto-api/reset)")
def cmd_reset(args: argparse.Namespace) -> int:
    LocalAWS(require_running(StateDir())).reset()
    print("local AWS reset: all accounts and regions are empty")
    return 0


@subcommand("endpoint", "print the endpoint URL")
def cmd_endpoint(args: argparse.Namespace) -> int:
    print(require_running(StateDir()))
    return 0


@subcommand("env", "print shell export lines for the AWS SDKs and CLI")
def cmd_env(args: argparse.Namespace) -> int:
    sys.stdout.write(env_lines(require_running(StateDir())))
    return 0


def load_subcommand_modules() -> None:
    for name in SUBCOMMAND_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the module exists but something it imports does not
                raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/local-aws", description="Manage the project's local AWS (moto with BYOK extensions).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for command in SUBCOMMANDS.values():
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        if command.configure:
            command.configure(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    load_subcommand_modules()
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except LocalAWSError as exc:
        print(f"local-aws: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    # Run the importable module, not this __main__ copy, so that modules registering commands with
    # ``from tests.local_aws.control import subcommand`` fill the registry main() reads.
    from tests.local_aws import control  # pylint: disable=import-self

    sys.exit(control.main())
