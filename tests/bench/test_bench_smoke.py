"""`replay bench` in its smallest configuration: every row of the table comes out, no
measurement fails, and every ratio to the ceiling divides by the fastest raw Redis form.
The figures themselves are not checked: the full bench is not a test."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from replay_service.benchmarks.suite.plan import (
    RAW_FORMS,
    Case,
    Config,
    Subject,
    cases,
    payloads,
    subjects,
)
from replay_service.benchmarks.suite.report import ceiling, render, targets
from replay_service.benchmarks.suite.results import Measurement, Repetition, Results
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
                  "second", "SAMPLE LATENCY", "PER REQUEST, one client",
                  "CPU per 1k transitions", "REDIS MEMORY", "PRIORITIZED vs UNIFORM",
                  "TARGETS", "REFERENCE: Reverb"):
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


def test_bench_measures_every_raw_form(bench_run: tuple[str, str, dict[str, object]]) -> None:
    table, _, saved = bench_run
    measurements = saved["measurements"]
    assert isinstance(measurements, list)
    measured = {(m["subject"]["key"], m["case"]["op"]) for m in measurements}
    for key in RAW_FORMS:
        assert {(key, "store"), (key, "sample")} <= measured
    headers = [line.split() for line in table.splitlines() if line.startswith("payload ")]
    rate_headers = [header for header in headers if "st/ceil" in header]
    assert len(rate_headers) == 2  # store and sample
    for header in rate_headers:
        assert {*RAW_FORMS, "ceiling", "sdk/ceil"} <= set(header)


def test_bench_ratios_divide_by_the_fastest_raw_form(
        bench_run: tuple[str, str, dict[str, object]]) -> None:
    """Each row's ceiling and st/ceil against the medians the run saved."""
    table, _, saved = bench_run
    measurements = saved["measurements"]
    assert isinstance(measurements, list)
    rates: dict[tuple[tuple[object, ...], str], float] = {
        (tuple(m["case"].values()), m["subject"]["key"]): m["median"]["rate"]
        for m in measurements}
    rows = {tuple(line.split()[:4 if op == "sample" else 3]): line.split()
            for op in ("store", "sample")
            for line in table.split(f"{op.upper()}: ", 1)[1].split("\n\n", 1)[0].splitlines()[2:]}
    checked = 0
    for case, key in rates:
        if key != "st-1w":
            continue
        op, payload, batch, clients, fill = case
        label = (payload, str(batch), *([f"{fill:,}"] if op == "sample" else []), str(clients))
        raw = {form: rates[(case, form)] for form in RAW_FORMS}
        best = max(raw, key=raw.__getitem__)
        best_form, st_ceil = rows[label][-4:-2]
        assert best_form == best, (label, raw)
        assert st_ceil == f"{rates[(case, key)] / raw[best]:.2f}", (label, raw)
        checked += 1
    assert checked >= 8


def _measured(case: Case, key: str, rate: float) -> Measurement:
    rep = Repetition(rate=rate, p50_ms=1.0, p99_ms=2.0, ops=10, transitions=1000,
                     window_s=1.0, service_cpu_s=None, redis_cpu_s=0.1, client_cpu_s=0.1,
                     foreign_cores=0.0, load=0.0)
    return Measurement(case, next(s for s in subjects(Config()) if s.key == key), [rep])


def test_ceiling_and_targets_take_the_fastest_raw_form() -> None:
    """The pipeline is the slowest form here: a ceiling taken from it would double the
    ratios."""
    sample = Case("sample", "cartpole", 256, 1, 10_000)
    store = Case("store", "cartpole", 256, 1)
    figures = {sample: {"raw-pipe": 100e3, "raw-lua": 200e3, "raw-hash": 400e3, "st-1w": 100e3},
               store: {"raw-pipe": 800e3, "raw-lua": 900e3, "raw-hash": 600e3, "st-1w": 90e3}}
    chosen: list[Subject] = subjects(Config())
    results = Results(Config(), {}, chosen, [_measured(case, key, rate)
                                             for case, row in figures.items()
                                             for key, rate in row.items()])
    assert ceiling(results, sample) == ("raw-hash", 400e3)
    assert ceiling(results, store) == ("raw-lua", 900e3)
    found = {(target.what.split(":")[0], target.subject): target.value
             for target in targets(results)}
    assert found[("sample b256 cartpole fill 10,000, 1 client", "st-1w")] == pytest.approx(0.25)
    assert found[("store b256 cartpole, 1 client", "st-1w")] == pytest.approx(0.1)
    text = render(results)
    assert any(line.split()[-4:-2] == ["raw-hash", "0.25"] for line in text.splitlines())
    assert any(line.split()[-4:-2] == ["raw-lua", "0.10"] for line in text.splitlines())
    assert "fastest of raw-pipe, raw-lua, raw-hash" in text


def test_only_redis_keeps_every_raw_form() -> None:
    chosen = subjects(Config(only=frozenset({"redis"})))
    assert [(s.key, s.form) for s in chosen] == list(RAW_FORMS.items())


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


def test_the_pong_payload_keeps_frames_compressed_and_is_held_to_its_targets() -> None:
    """Real Pong frames in a compressed buffer: measured by the SDK, the service and the
    raw hash only (fixed-width strings cannot hold frames), with its memory and the
    SDK's speed over uncompressed Atari (the same run) among the targets."""
    done = subprocess.run(
        [*REPLAY, "bench", "--quick", "--only", "pong,atari", "--only", "sdk,st-1w,raw-hash",
         "--scale", "0.002", "--seconds", "0.02", "--repeats", "1", "--clients", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    memory = next(row for row in rows if row[:1] == ["pong"] and "B" in row)
    assert float(memory[4]) < 1_000  # bytes per transition in Redis, of 56,461 raw
    pong_rates = [row for row in rows if row[:1] == ["pong"] and "raw-hash" in row]
    assert pong_rates and all("raw-pipe" not in row for row in pong_rates)
    for op in ("store", "sample"):
        for batch in (32, 256):
            assert any(line.startswith(f"{op} b{batch} pong compressed")
                       for line in done.stdout.splitlines())
