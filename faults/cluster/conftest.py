"""Prints what the cluster fault test measured (also in var/cluster/faults.json)."""

import json

import pytest

from faults.cluster.cluster import RESULTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per figure, one per fault."""
    if not RESULTS.exists():
        return
    figures = json.loads(RESULTS.read_text())
    terminalreporter.section(f"cluster faults: measured ({RESULTS})")
    for key, value in figures.items():
        if key == "faults":
            for fault, row in value.items():
                fields = ", ".join(f"{name}={measured}" for name, measured in row.items())
                terminalreporter.write_line(f"{fault}: {fields}")
        else:
            terminalreporter.write_line(f"{key}: {value}")
