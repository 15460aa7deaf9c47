"""scripts/lib/process.sh: whether a process the scripts started still runs.

The stack, services and cluster scripts decide from it whether to start a part (`up` skips one
that runs) and how long to wait for one to stop. A zombie, dead but not yet reaped, must count
as stopped: `kill -0` still finds it, which made `up` skip a part that was gone.
"""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def _pidfile_running(pid_file: Path) -> bool:
    """Run the library's `pidfile_running` on `pid_file`: True when it succeeds."""
    script = f'. "{ROOT}/scripts/lib/process.sh"; pidfile_running "$1"'
    return subprocess.run(["bash", "-c", script, "check", str(pid_file)]).returncode == 0


def _state(pid: int) -> str:
    """The process's state letter from /proc (R, S, Z...)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.fixture
def child() -> Iterator[subprocess.Popen]:
    """A child process of this test, killed and reaped at the end."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=-1)
    yield proc
    proc.kill()
    proc.wait()


def test_a_running_process_counts(child: subprocess.Popen, tmp_path: Path) -> None:
    pid_file = tmp_path / "part.pid"
    pid_file.write_text(f"{child.pid}\n")

    assert _pidfile_running(pid_file)


def test_a_zombie_does_not_count(child: subprocess.Popen, tmp_path: Path) -> None:
    pid_file = tmp_path / "part.pid"
    pid_file.write_text(f"{child.pid}\n")
    child.stdin.close()  # it exits; unreaped (no wait yet), it stays a zombie
    wait_for(lambda: _state(child.pid) == "Z", 10, "the child a zombie", interval=0.01)

    assert not _pidfile_running(pid_file)
    # kill -0, the check before, still found it.
    assert subprocess.run(["kill", "-0", str(child.pid)]).returncode == 0


def test_no_pid_file_or_no_process_does_not_count(tmp_path: Path) -> None:
    assert not _pidfile_running(tmp_path / "missing.pid")
    gone = subprocess.Popen(["true"])
    gone.wait()
    (tmp_path / "gone.pid").write_text(f"{gone.pid}\n")

    assert not _pidfile_running(tmp_path / "gone.pid")
