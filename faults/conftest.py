"""Session fixtures: the private stack (services, migrations, index, web, queue) and clients.

Run through scripts/faults.sh, which also stops the private Redis and Elasticsearch at the end;
the web server and the queue cluster are this session's subprocesses and stop with it.
"""

from collections.abc import Iterator

import pytest

from faults.api import Accounts, Api
from faults.probes import results
from faults.stack import RESULTS, Stack
from tests.support.waiting import wait_for

READY_SECONDS = 120
# The pusher's first draw is always 10 (tests/support/sources.py), so every message takes the
# long way: validator, 4 s in the retry inbox, then tracker.
ALL_RETRIED = {
    "VALIDATOR_RANDOM_SOURCE": "tests.support.sources.scripted",
    "RANDOM_ATTEMPT_1": "10",
}


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The private stack, started; web and queue are stopped after the session."""
    RESULTS.unlink(missing_ok=True)  # the summary reports this session only
    stack = Stack()
    stack.services("start")  # idempotent: scripts/faults.sh has usually started them already
    stack.manage("migrate", "--noinput", "-v", "0")
    stack.manage("init_index")
    stack.start_web()
    stack.start_queue()
    try:
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="session")
def api(stack: Stack) -> Api:
    """An HTTP client for the private web server."""
    return Api()


@pytest.fixture(scope="session")
def accounts(api: Api) -> Accounts:
    """Registers users; remembers every password sent, for the secrets scan."""
    return Accounts(api)


@pytest.fixture
def all_retried(stack: Stack, api: Api) -> Iterator[None]:
    """Web and queue run with ALL_RETRIED for the test, and as usual again after it."""
    stack.restart(web=ALL_RETRIED, queue=ALL_RETRIED)
    wait_for(api.ready, READY_SECONDS, "GET /readyz answers 200", interval=0.5)
    try:
        yield
    finally:
        stack.restart()
        wait_for(api.ready, READY_SECONDS, "GET /readyz answers 200", interval=0.5)


@pytest.fixture(autouse=True)
def _ready(api: Api) -> None:
    """Start every test with every part ready: an earlier test may have broken one."""
    wait_for(api.ready, READY_SECONDS, "GET /readyz answers 200", interval=0.5)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the secrets scan last, so the logs it reads hold everything the suite did."""
    items.sort(key=lambda item: item.module.__name__.endswith("test_security_secrets"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what each fault test measured (also in var/faults/results.json)."""
    rows = results()
    if not rows:
        return
    terminalreporter.section("faults: measured")
    for row in rows:
        fields = ", ".join(f"{key}={value}" for key, value in row.items() if key != "fault")
        terminalreporter.write_line(f"{row['fault']}: {fields}")
