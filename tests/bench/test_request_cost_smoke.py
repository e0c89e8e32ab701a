"""benchmarks/request_cost.py in its smallest run: this tree's service beside a built
revision's and beside granian, every table filled. The figures are not checked."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import REPO

pytestmark = pytest.mark.slow  # builds a revision's package and starts three services


def test_request_cost_prints_every_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "replay_service.benchmarks.request_cost", "--baseline", "HEAD",
         "--granian", "--rounds", "1", "--requests", "3"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    table = done.stdout
    assert "SERVICE CPU per request" in table and "CLIENTS on one keep-alive" in table
    header = next(line for line in table.splitlines() if line.startswith("case"))
    assert "this tree" in header and "HEAD" in header and "granian" in header
    for case in ("sample b1", "sample b256", "store b32", "priorities b32",
                 "weights fetch (304)", "healthz"):
        row = next(line for line in table.splitlines() if line.startswith(case))
        assert len(row.split()) >= 8, row  # three services' figures and two ratios
