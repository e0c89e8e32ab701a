"""One run of the suite: start the servers, fill the buffers, measure every case on
every subject (repetitions interleaved, so a disturbance hits one repetition of each
rather than every repetition of one), stop everything."""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import redis

from replay_service.benchmarks.suite import prioritized
from replay_service.benchmarks.suite.drivers import Target, Task
from replay_service.benchmarks.suite.payloads import Payload
from replay_service.benchmarks.suite.plan import (
    Case,
    Config,
    RawForm,
    Subject,
    applies,
    cases,
    payloads,
    prioritized_fills,
    subjects,
)
from replay_service.benchmarks.suite.pool import ClientPool, Outcome
from replay_service.benchmarks.suite.results import Measurement, Memory, Repetition, Results
from replay_service.benchmarks.suite.stack import CpuSnapshot, Profiler, Stack

__all__ = ["run"]

Progress = Callable[[str], None]


def run(config: Config, progress: Progress, profile_dir: Path | None = None) -> Results:
    started = time.perf_counter()
    chosen = subjects(config)
    results = Results(config, _environment(), chosen)
    workers = sorted({1} | {s.workers for s in chosen if s.workers})
    with tempfile.TemporaryDirectory(prefix="replay-bench-") as scratch:
        progress(f"starting redis-server and the service with {' and '.join(map(str, workers))}"
                 f" uvicorn worker(s); {max(config.clients)} client process(es)")
        with Stack(Path(scratch), workers) as stack, ClientPool(config.clients) as pool:
            results.environment["redis_version"] = stack.version()
            profiler = Profiler(profile_dir) if profile_dir else None
            bench = _Bench(config, stack, pool, profiler, progress)
            for payload in payloads(config):
                planned = list(cases(config, payload))
                if planned:
                    bench.payload(payload, planned, chosen, results)
            if fills := prioritized_fills(config):
                results.prioritized = prioritized.measure(
                    stack.http, fills, repeats=20 if config.quick else 100, progress=progress)
    results.seconds = time.perf_counter() - started
    return results


class _Bench:
    def __init__(self, config: Config, stack: Stack, pool: ClientPool,
                 profiler: Profiler | None, progress: Progress) -> None:
        self.config = config
        self.stack = stack
        self.pool = pool
        self.profiler = profiler
        self.progress = progress
        self.redis_pid = stack.redis_pid
        self.service_pids = {count: stack.service_pids(count) for count in stack.services}
        self.seed = 0

    def payload(self, payload: Payload, planned: list[Case], chosen: list[Subject],
                results: Results) -> None:
        store_fill = self.config.fill(payload.fills[0])
        fills = sorted({store_fill} | {case.fill for case in planned if case.fill is not None})
        layouts = _layouts(chosen)
        targets: dict[int, Target] = {}
        try:
            for fill in fills:
                targets[fill] = self._prepare(payload, fill, layouts, results)
            for op in ("store", "sample"):
                section = [case for case in planned if case.op == op]
                if not section:
                    continue
                if self.profiler:
                    self.profiler.start(self.stack, f"{payload.name}-{op}")
                try:
                    for case in section:
                        target = targets[case.fill if case.fill is not None else store_fill]
                        here = [s for s in chosen if applies(s, case, payload, self.config)]
                        results.measurements += self._case(case, here, target)
                finally:
                    if self.profiler:
                        self.profiler.stop()
        finally:
            for fill, target in targets.items():
                self.stack.delete_buffer(target.buffer)
                for form in layouts:
                    self.stack.raw_ring(form, payload, target.buffer, fill).delete()

    def _prepare(self, payload: Payload, fill: int, layouts: list[RawForm],
                 results: Results) -> Target:
        name = f"bench-{payload.name}-{fill}"
        megabytes = fill * payload.record_size / 1e6
        rings = {"pipeline": "the raw segment strings", "hash": "the raw hash"}
        self.progress(f"filling {name}: {fill:,} transitions, {megabytes:,.1f} MB of records, "
                      "through the service" + "".join(f" and into {rings[form]}"
                                                      for form in layouts))
        before = self.stack.used_memory(settle=True)
        self.stack.create_buffer(payload, name, fill)
        self.stack.fill_buffer(payload, name, fill)
        service_bytes = (self.stack.used_memory(settle=True) - before) / fill
        raw_bytes: dict[RawForm, float] = {}
        for form in (form for form in layouts if form == "hash" or not payload.compressed):
            before = self.stack.used_memory(settle=True)
            self.stack.fill_raw(self.stack.raw_ring(form, payload, name, fill), payload, fill)
            raw_bytes[form] = (self.stack.used_memory(settle=True) - before) / fill
        results.memory.append(Memory(payload.name, fill, payload.record_size, service_bytes,
                                     raw_bytes.get("pipeline"), raw_bytes.get("hash")))
        return Target(name, capacity=fill, fill=fill, redis_url=self.stack.redis_server.url,
                      urls=self.stack.urls)

    def _case(self, case: Case, here: list[Subject], target: Target) -> list[Measurement]:
        measurements = [Measurement(case, subject) for subject in here]
        total = self.config.repeats
        for index in range(total):
            self._round(case, measurements, target, f"{index + 1}/{total}")
        for index in range(self.config.extra_repeats):
            shaky = [m for m in measurements if m.worth_repeating and not m.error]
            if not shaky:
                break
            self._round(case, shaky, target, f"extra {index + 1}")
        return measurements

    def _round(self, case: Case, measurements: list[Measurement], target: Target,
               label: str) -> None:
        line = f"{case.label} | {label:>7}:"
        for measurement in measurements:
            rep = self._once(case, measurement.subject, target)
            measurement.repetitions.append(rep)
            mark = " ERROR" if rep.error else ("!" if rep.disturbed else "")
            line += f"  {measurement.subject.key} {_short(rep.rate)}{mark}"
        self.progress(line)
        for measurement in measurements:
            if measurement.repetitions[-1].error:
                self.progress(f"  {measurement.subject.key}: {measurement.repetitions[-1].error}")

    def _once(self, case: Case, subject: Subject, target: Target) -> Repetition:
        tasks = []
        for index in range(case.clients):
            self.seed += 1
            tasks.append(Task(subject, case, target, self.config.seconds, index, self.seed))
        service = self.service_pids.get(subject.workers or 0, [])
        ours = [os.getpid(), self.redis_pid, *self.pool.pids,
                *(pid for pids in self.service_pids.values() for pid in pids),
                *(self.profiler.pids if self.profiler else [])]
        marks: dict[str, Any] = {}

        def on_start() -> None:
            marks["cpu"] = CpuSnapshot.take(ours)
            marks["time"] = time.perf_counter()
            self.stack.reset_stats()

        outcomes = self.pool.run(tasks, on_start)
        if "cpu" not in marks:
            return _failed(outcomes)
        end = CpuSnapshot.take(ours)
        window = time.perf_counter() - marks["time"]
        start: CpuSnapshot = marks["cpu"]
        errors = [outcome.error for outcome in outcomes if outcome.error]
        if errors:
            return _failed(outcomes)
        transitions = sum(outcome.transitions for outcome in outcomes)
        elapsed = max(outcome.elapsed_s for outcome in outcomes)
        latencies = np.concatenate([outcome.latencies_s for outcome in outcomes]) * 1e3
        foreign = (end.busy_s - start.busy_s) - end.used_since(start)
        return Repetition(
            rate=transitions / elapsed, p50_ms=float(np.percentile(latencies, 50)),
            p99_ms=float(np.percentile(latencies, 99)), ops=len(latencies),
            transitions=transitions, window_s=window,
            service_cpu_s=end.used_since(start, service) if service else None,
            redis_cpu_s=end.used_since(start, [self.redis_pid]),
            client_cpu_s=sum(outcome.cpu_s for outcome in outcomes),
            foreign_cores=max(0.0, foreign / window), load=os.getloadavg()[0],
            redis_commands=self.stack.command_stats())


def _layouts(chosen: list[Subject]) -> list[RawForm]:
    """The raw rings to fill: the pipeline's segment strings (the script reads the same
    ones) and the hash, as far as the chosen subjects use them."""
    forms = {subject.form for subject in chosen}
    layouts: list[RawForm] = []
    if forms & {"pipeline", "script"}:
        layouts.append("pipeline")
    if "hash" in forms:
        layouts.append("hash")
    return layouts


def _failed(outcomes: list[Outcome]) -> Repetition:
    error = next((o.error for o in outcomes if o.error), "the clients did not start")
    return Repetition(rate=0.0, p50_ms=0.0, p99_ms=0.0, ops=0, transitions=0, window_s=0.0,
                      service_cpu_s=None, redis_cpu_s=0.0, client_cpu_s=0.0, foreign_cores=0.0,
                      load=os.getloadavg()[0], error=error)


def _short(rate: float) -> str:
    if rate >= 1e6:
        return f"{rate / 1e6:.2f}M"
    if rate >= 1e3:
        return f"{rate / 1e3:.1f}k"
    return f"{rate:.0f}"


def _environment() -> dict[str, Any]:
    from redis.utils import HIREDIS_AVAILABLE

    def has(module: str) -> bool:
        try:
            __import__(module)
        except ImportError:
            return False
        return True

    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "load_at_start": os.getloadavg()[0], "redis_py": redis.__version__,
            "hiredis": HIREDIS_AVAILABLE, "uvloop": has("uvloop"), "httptools": has("httptools"),
            "started": time.strftime("%Y-%m-%d %H:%M:%S")}
