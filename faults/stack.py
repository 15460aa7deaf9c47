"""The private stack the fault tests break: its own Redis, Elasticsearch, web and queue.

Everything lives under var/faults (Elasticsearch's data in a folder services.sh keys by it) and
on ports of its own, so stopping Redis or killing the queue here never touches the developer's
stack (`make up`) or a `make test` run beside it.
scripts/faults.sh starts Redis and Elasticsearch with the same settings and stops them all.
"""

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var" / "faults"
LOG = VAR / "log"
RUN = VAR / "run"
RESULTS = VAR / "results.json"

# Keep these in step with scripts/faults.sh.
REDIS_PORT = 6391
ES_HTTP_PORT = 9251
ES_TRANSPORT_PORT = 9351
WEB_PORT = 8051
SLOW_ES_PORT = 9291  # faults/proxy.py: a slow Elasticsearch in front of the private one

BASE_URL = f"http://127.0.0.1:{WEB_PORT}"
REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}/0"
REDIS_CACHE_URL = f"redis://127.0.0.1:{REDIS_PORT}/1"
ES_URL = f"http://127.0.0.1:{ES_HTTP_PORT}"
INDEX_ALIAS = "faults-messages"
# The queue's name: its keys are q:{<name>}:* (and django-q2 salts its task signatures with it).
QUEUE_NAME = "faults"
# Set explicitly (not local.py's default) so the token tests can forge with the real key.
JWT_SIGNING_KEY = "faults-jwt-signing-key-" + "0123456789abcdef" * 3  # 64 bytes: fine for HS512 too
# Set explicitly too, so the key-rotation test knows the key the queued tasks were signed with.
SECRET_KEY = "faults-django-secret-key-" + "0123456789abcdef" * 3
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
SERVICES = str(ROOT / "scripts" / "services.sh")

STOP_GRACE_SECONDS = 20


def services_env() -> dict[str, str]:
    """Environment for scripts/services.sh: the private ports and folder, no *_URL overrides."""
    env = dict(os.environ)
    # A URL in the environment makes services.sh skip that part instead of starting ours.
    env.pop("REDIS_URL", None)
    env.pop("ELASTICSEARCH_URL", None)
    env.update(
        PYLOGGER_VAR=str(VAR),
        REDIS_PORT=str(REDIS_PORT),
        ES_HTTP_PORT=str(ES_HTTP_PORT),
        ES_TRANSPORT_PORT=str(ES_TRANSPORT_PORT),
    )
    return env


def django_env(**extra: str) -> dict[str, str]:
    """Environment for the Django processes (web, queue, manage.py) of the private stack."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "REDIS_URL": REDIS_URL,
        "REDIS_CACHE_URL": REDIS_CACHE_URL,
        "ELASTICSEARCH_URL": ES_URL,
        "TRACKER_INDEX_ALIAS": INDEX_ALIAS,
        "DATABASE_URL": f"sqlite:///{VAR / 'db.sqlite3'}",
        "Q_CLUSTER_NAME": QUEUE_NAME,
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "JWT_SIGNING_KEY": JWT_SIGNING_KEY,
        # The suite registers and logs in far more than a person would.
        "THROTTLE_LOGIN": "100000/min",
        "THROTTLE_LOGIN_ADDRESS": "100000/min",
        "THROTTLE_REGISTER": "100000/min",
        "LOG_LEVEL": "INFO",
        **extra,
    }


class Stack:
    """Starts, stops, pauses and kills the parts of the private stack."""

    def __init__(self) -> None:
        self.processes: dict[str, subprocess.Popen] = {}
        self._logs: list[IO[bytes]] = []
        for folder in (LOG, RUN):
            folder.mkdir(parents=True, exist_ok=True)

    # --- Redis and Elasticsearch, through scripts/services.sh ----------------------------
    def services(self, command: str) -> None:
        """Run `scripts/services.sh <command>` against the private folder and ports."""
        subprocess.run([SERVICES, command], cwd=ROOT, env=services_env(), check=True)  # noqa: S603

    @contextlib.contextmanager
    def stopped(self, part: str) -> Iterator[float]:
        """Stop `part` (redis or es) for the block; start it again however the block ends.

        Yields the monotonic time the part was down.
        """
        self.services(f"stop-{part}")
        try:
            yield time.monotonic()
        finally:
            self.services(f"start-{part}")

    @contextlib.contextmanager
    def redis_killed(self) -> Iterator[float]:
        """SIGKILL Redis (no shutdown, no final AOF write) for the block; start it again after.

        Yields the monotonic time it died.
        """
        pid_file = RUN / "redis.pid"
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGKILL)
        # Not our child (it daemonized): wait until the kernel has let the process go.
        while Path(f"/proc/{pid}").exists():
            time.sleep(0.01)
        died = time.monotonic()
        pid_file.unlink()  # a dead Redis leaves its pid file; services.sh would trust it
        try:
            yield died
        finally:
            self.services("start-redis")

    def manage(self, *args: str) -> str:
        """Run a manage.py command with the private stack's settings; return what it printed."""
        done = subprocess.run(  # noqa: S603
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=django_env(),
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        )
        return done.stdout

    # --- web and queue, as subprocesses of this session ----------------------------------
    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        """Start `argv` in its own process group, logging to var/faults/log/<name>.log.

        `env` is added to the stack's environment (`django_env`).
        """
        log = (LOG / f"{name}.log").open("ab")
        self._logs.append(log)
        process = subprocess.Popen(  # noqa: S603
            argv,
            cwd=ROOT,
            env=django_env(**env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a group of its own: one signal reaches every child
        )
        self.processes[name] = process
        # A pid file in var/faults/run: `services.sh stop` ends it if this session dies.
        (RUN / f"{name}.pid").write_text(str(process.pid))
        return process

    def start_web(self, **env: str) -> None:
        """Run gunicorn with two workers on the private port, with `env` added."""
        self._spawn(
            "web",
            [
                GUNICORN,
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{WEB_PORT}",
                "--workers",
                "2",
                # Its own: by default every gunicorn takes ~/.gunicorn/gunicorn.ctl from the
                # one before, `make up`'s included.
                "--control-socket",
                str(RUN / "web.ctl"),
            ],
            env,
        )

    def start_queue(self, **env: str) -> subprocess.Popen:
        """Run `manage.py qcluster`, with `env` added."""
        return self._spawn("queue", [PYTHON, "manage.py", "qcluster"], env)

    def restart(
        self, *, web: dict[str, str] | None = None, queue: dict[str, str] | None = None
    ) -> None:
        """Stop web and queue, then start them with these additions to the environment.

        Callers wait for /readyz themselves: the processes take a few seconds to start.
        """
        for name in ("web", "queue"):
            self.stop(name)
        self.start_web(**(web or {}))
        self.start_queue(**(queue or {}))

    def stop(self, name: str) -> None:
        """SIGTERM the main process (it stops its children in order), then SIGKILL its group."""
        process = self.processes.pop(name, None)
        if process is None:
            return
        # A paused group would never act on the SIGTERM.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGCONT)
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_GRACE_SECONDS)
        self.kill(name, process)

    def kill(self, name: str, process: subprocess.Popen | None = None) -> None:
        """SIGKILL the whole process group of `name`: no clean-up of any kind."""
        process = process or self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        (RUN / f"{name}.pid").unlink(missing_ok=True)

    @contextlib.contextmanager
    def queue_paused(self) -> Iterator[None]:
        """SIGSTOP every process of the queue cluster for the block, so work stays queued."""
        group = self.processes["queue"].pid
        os.killpg(group, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(group, signal.SIGCONT)

    def cpu_seconds(self, name: str) -> float:
        """CPU time used so far by every process of `name`'s group, reaped children included.

        Read from /proc/<pid>/stat (utime, stime, cutime, cstime), so the sentinel, the pusher,
        the monitor and every worker of a queue cluster count.
        """
        group = self.processes[name].pid
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue  # the process ended meanwhile
            # Fields after the command name: state, ppid, pgrp, ... utime is the 12th.
            fields = text[text.rindex(")") + 2 :].split()
            if int(fields[2]) == group:
                ticks += sum(int(value) for value in fields[11:15])
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop_all(self) -> None:
        """Stop web and queue and close their logs."""
        for name in list(self.processes):
            self.stop(name)
        for log in self._logs:
            log.close()
