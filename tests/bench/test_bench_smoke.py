"""`replay bench` in its smallest configuration: every row of the table comes out, and no
measurement fails. The figures themselves are not checked: the full bench is not a test."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from replay_service.benchmarks.suite.plan import Config, cases, payloads, subjects
from replay_service.benchmarks.suite.report import render
from replay_service.cli.children import REPLAY

from tests.support import REPO

pytestmark = pytest.mark.slow  # starting the two services alone takes seconds

# CartPole only: an Atari sample of 1024 moves 58 MB however small the fill.
SMOKE = ["--quick", "--only", "cartpole", "--scale", "0.002", "--seconds", "0.02",
         "--repeats", "1", "--clients", "1,2", "--workers", "2"]


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, dict[str, object]]:
    saved = tmp_path_factory.mktemp("bench") / "bench.json"
    done = subprocess.run([*REPLAY, "bench", *SMOKE, "--json", str(saved)],
                          cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, done.stderr, json.loads(saved.read_text())


def test_bench_prints_every_section(bench_run: tuple[str, str, dict[str, object]]) -> None:
    table, progress, _ = bench_run
    for title in ("STORE: transitions stored per second", "SAMPLE: transitions sampled per "
                  "second", "SAMPLE LATENCY", "CPU per 1k transitions", "REDIS MEMORY",
                  "PRIORITIZED vs UNIFORM", "TARGETS", "REFERENCE: Reverb"):
        assert title in table
    assert "ERR" not in table and "ERRORS" not in table
    assert "filling bench-cartpole" in progress


def test_bench_prints_a_row_per_case(bench_run: tuple[str, str, dict[str, object]]) -> None:
    table, _, saved = bench_run
    config = Config(seconds=0.02, repeats=1, workers=2, clients=(1, 2), scale=0.002,
                    quick=True, only=frozenset({"cartpole"}))
    planned = [case for payload in payloads(config) for case in cases(config, payload)]
    rows = [line.split() for line in table.splitlines()]
    for case in planned:
        fill = [f"{case.fill:,}"] if case.fill is not None else []
        label = [case.payload, str(case.batch), *fill, str(case.clients)]
        # rates, latencies (samples) and CPU: each case has its rows
        assert sum(row[:len(label)] == label for row in rows) >= (
            3 if case.op == "sample" else 2), case
    measurements = saved["measurements"]
    assert isinstance(measurements, list)
    assert {m["subject"]["key"] for m in measurements} == {s.key for s in subjects(config)}


def test_bench_prints_every_target_with_a_verdict(
        bench_run: tuple[str, str, dict[str, object]]) -> None:
    table, _, _ = bench_run
    section = table.split("TARGETS", 1)[1].split("REFERENCE", 1)[0].strip().splitlines()
    rows = section[[line.startswith("target ") for line in section].index(True) + 1:]
    verdicts = [line.rsplit(None, 1)[-1] for line in rows]
    assert len(verdicts) >= 9
    assert set(verdicts) <= {"PASS", "FAIL"}
    reference = table.split("REFERENCE", 1)[1]
    for row in ("insert, 1 client", "insert, 4 clients", "sample batch 256",
                "server memory per 45-byte transition"):
        assert row in reference


def test_bench_times_prioritized_replay_beside_uniform(
        bench_run: tuple[str, str, dict[str, object]]) -> None:
    _, _, saved = bench_run
    rows = saved["prioritized"]
    assert isinstance(rows, list)
    assert {row["operation"]: row["uniform"] is not None for row in rows} == {
        "store 256": True, "sample 256": True, "sample a round (128 x 64)": True,
        "update a round's priorities": False}
    assert all(row["prioritized"] > 0 for row in rows)


def test_render_survives_no_measurements() -> None:
    from replay_service.benchmarks.suite.results import Results

    text = render(Results(Config(), {}, []))
    assert "TARGETS" in text and "n/a" in text


def test_unknown_only_word_is_refused() -> None:
    done = subprocess.run([*REPLAY, "bench", "--only", "cartpol"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "cartpol" in done.stderr


def test_suite_lives_in_benchmarks() -> None:
    assert (Path(REPO) / "benchmarks" / "suite" / "__init__.py").exists()
