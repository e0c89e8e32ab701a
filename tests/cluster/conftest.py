"""The failover tally (tests/cluster/test_failover.py) in the terminal summary."""

from __future__ import annotations

import pytest

from tests.cluster.tally import FAILOVERS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FAILOVERS.rows:
        return
    terminalreporter.section("failover tally")
    for line in FAILOVERS.lines():
        terminalreporter.write_line(line)
