"""The server subprocesses the tests start: a free port, a health probe, and stopping them
politely first, then their whole group."""

import contextlib
import os
import signal
import socket
import subprocess

import httpx


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    """Whether the server at `url` answers its /healthz with 200."""
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def process_group_stop(proc: subprocess.Popen, *, grace: float) -> None:
    """SIGTERM `proc`, give it `grace` seconds, then SIGKILL whatever is left of its group.

    `proc` must lead a process group of its own (started with `start_new_session=True`).
    """
    proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)
