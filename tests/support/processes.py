"""Stopping the server subprocesses the tests start: politely first, then their whole group."""

import contextlib
import os
import signal
import subprocess


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
