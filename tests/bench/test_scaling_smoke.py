"""benchmarks/scaling.py in its quick form, on one Redis and on a 3-master cluster, one
replica each, CartPole only: every run moves transitions, every part's CPU is measured,
the model is printed, and no process it started outlives it (Ctrl-C included)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support import REPO

pytestmark = pytest.mark.slow  # a Redis, a 6-node cluster and their services: ~35 s

COMMAND = [sys.executable, "-m", "replay_service.benchmarks.scaling", "--quick",
           "--payloads", "cartpole", "--writers", "1,2", "--trainers", "1",
           "--duration", "0.5"]
TAG = "SCALING_SMOKE_TAG"
"""Set in the benchmark's environment, inherited by the Python processes it starts (not
named REPLAY_*: the benchmark gives its services no variable of that name but its own)."""


def environment(tag: str, scratch: Path) -> dict[str, str]:
    """The tag, and a scratch folder of the test's own: redis-server writes its title over
    its environment, but works in its data folder, under the scratch one."""
    return {**os.environ, TAG: tag, "TMPDIR": str(scratch)}


def started_by(tag: str, scratch: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if (process.environ().get(TAG) == tag
                    or Path(process.cwd()).is_relative_to(scratch)):
                found.append(process)
        except psutil.Error:
            continue
    return found


def left_behind(tag: str, scratch: Path, timeout_s: float = 10.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout_s
    while (remaining := started_by(tag, scratch)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return remaining


def rows_of(section: str) -> Iterator[dict[str, str]]:
    """The table rows of one configuration's section, as header -> cell."""
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    for line in lines[2:]:
        yield dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")),
                       strict=True))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tag, scratch = uuid.uuid4().hex, tmp_path_factory.mktemp("scaling")
    done = subprocess.run([*COMMAND, "--configs", "redis-1,cluster-1"], cwd=REPO,
                          capture_output=True, text=True, timeout=240,
                          env=environment(tag, scratch))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert not left_behind(tag, scratch)
    yield done.stdout, done.stderr


def section(stdout: str, config: str) -> str:
    start = stdout.index(f"\n{config}: ")
    end = stdout.find("\n\n", stdout.index("|", start))
    return stdout[start:end if end >= 0 else None]


@pytest.mark.parametrize("config", ["redis-1", "cluster-1"])
def test_scaling_measures_every_part(run: tuple[str, str], config: str) -> None:
    rows = list(rows_of(section(run[0], config)))
    assert [(row["op"], row["procs"]) for row in rows] == [
        ("store", "1"), ("store", "2"), ("sample", "1")]
    for row in rows:
        assert float(row["transitions/s"].replace(",", "")) > 0, row
        for part in ("service", "redis", "client", "busy cores"):
            assert float(row[part]) > 0, (part, row)
        if config == "cluster-1" and row["op"] == "store":
            assert float(row["redis repl"]) > 0, row  # the replicas apply every store
        elif config == "redis-1":
            assert float(row["redis repl"]) == 0, row


def test_scaling_prints_the_model(run: tuple[str, str]) -> None:
    stdout, progress = run
    model = stdout[stdout.index("\nMODEL: Ape-X"):]
    assert "cluster-1" in model.split("\n\n")[1]  # the cluster's costs are its inputs
    given = list(rows_of(model[model.index("WHAT N MACHINES GIVE"):]))
    stored = [float(row["stored/s"].replace(",", "")) for row in given]
    assert [row["machines"] for row in given] == ["1", "2", "4", "8"]
    assert 0 < stored[0] < stored[1] < stored[2] < stored[3]
    assert "[cluster-1] cartpole store b50, 2 process(es)" in progress


def test_scaling_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    with subprocess.Popen([*COMMAND, "--configs", "cluster-1", "--duration", "1.5"],
                          cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, env=environment(tag, tmp_path)) as process:
        try:
            assert process.stderr is not None
            for line in process.stderr:  # bounded: the benchmark's own progress lines
                if "store b50, 1 process(es)" in line or "Traceback" in line:
                    break
            running = started_by(tag, tmp_path)
            assert {"python", "redis-server"} <= {p.name() for p in running}, running
            os.kill(process.pid, signal.SIGINT)  # as Ctrl-C, to the benchmark alone
            assert process.wait(60) == 130
        finally:
            if process.poll() is None:
                process.kill()
    assert not left_behind(tag, tmp_path)
