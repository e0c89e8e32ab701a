"""The servers of one run, started on free loopback ports and stopped at its end: a
private redis-server (no persistence) and the service with 1 and with N uvicorn
workers on it; and what is measured on them: CPU time, memory, profiles."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import cast

import httpx
import psutil
import redis

from replay_service.benchmarks.suite.drivers import RawRing, raw_ring
from replay_service.benchmarks.suite.payloads import Payload
from replay_service.benchmarks.suite.plan import RawForm
from replay_service.benchmarks.suite.raw_hash import HashRing
from replay_service.benchmarks.suite.replies import checked
from replay_service.cli.children import ServiceProcess
from replay_service.service.redis_server import RedisServer
from replay_service.wire.codec import SAFETENSORS

__all__ = ["CpuSnapshot", "Profiler", "Stack"]

# Settings of the user's environment that would change what is measured.
_UNSET = ("REPLAY_WRITE_KEY", "REPLAY_READ_KEY", "REPLAY_MAX_BODY_BYTES", "REPLAY_MAX_BATCH",
          "REPLAY_MAX_SAMPLE", "REPLAY_MAX_CAPACITY", "REPLAY_SEGMENT_BYTES")


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds so far: per process of ours, and of the whole machine."""

    per_pid: dict[int, float]
    busy_s: float

    @classmethod
    def take(cls, pids: list[int]) -> CpuSnapshot:
        per_pid = {}
        for pid in pids:
            seconds = _cpu_seconds(pid)
            if seconds is not None:
                per_pid[pid] = seconds
        machine = psutil.cpu_times()  # guest time is counted in user time already
        busy = (machine.user + machine.nice + machine.system + getattr(machine, "irq", 0.0)
                + getattr(machine, "softirq", 0.0) + getattr(machine, "steal", 0.0))
        return cls(per_pid, busy)

    def used_since(self, before: CpuSnapshot, pids: list[int] | None = None) -> float:
        chosen = self.per_pid if pids is None else [pid for pid in pids if pid in self.per_pid]
        return sum(self.per_pid[pid] - before.per_pid.get(pid, 0.0) for pid in chosen)


def _cpu_seconds(pid: int) -> float | None:
    """CPU time of a process's live threads, to the nanosecond from /proc/<pid>/task/*/
    schedstat where Linux has it (cpu_times counts 10 ms ticks: too coarse for short
    measurements)."""
    try:
        nanoseconds = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as stat:
                nanoseconds += int(stat.read().split()[0])
        return nanoseconds / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


class Stack:
    def __init__(self, scratch: Path, workers: list[int]) -> None:
        self.scratch = scratch
        self.workers = workers
        self._exit = ExitStack()
        self.redis_server = RedisServer(scratch / "redis", appendfsync=None)
        self.services: dict[int, ServiceProcess] = {}
        self.redis: redis.Redis = cast(redis.Redis, None)
        self.http: httpx.Client = cast(httpx.Client, None)

    def start(self) -> Stack:
        try:
            self._exit.enter_context(self.redis_server)
            self.redis = redis.Redis.from_url(self.redis_server.url)
            self._exit.callback(self.redis.close)
            for count in self.workers:
                service = ServiceProcess(self.redis_server.url, self.scratch, workers=count)
                assert service.env is not None
                for name in _UNSET:
                    service.env.pop(name, None)
                self._exit.callback(service.stop)
                self.services[count] = service
            with ThreadPoolExecutor(len(self.services)) as starting:  # each takes seconds
                for started in [starting.submit(service.start, 60)
                                for service in self.services.values()]:
                    started.result()
            self.http = httpx.Client(base_url=self.urls[min(self.services)], timeout=300)
            self._exit.callback(self.http.close)
        except BaseException:
            self._exit.close()
            raise
        return self

    def stop(self) -> None:
        self._exit.close()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    @property
    def urls(self) -> dict[int, str]:
        return {count: service.url for count, service in self.services.items()}

    # Processes and CPU.

    def service_pids(self, workers: int) -> list[int]:
        """The `replay serve` process and its uvicorn workers."""
        port = str(self.services[workers].port)
        for child in psutil.Process().children():
            try:
                command = child.cmdline()
                if "serve" in command and port in command:
                    return [child.pid] + [c.pid for c in child.children(recursive=True)]
            except psutil.Error:
                continue
        return []

    @property
    def redis_pid(self) -> int:
        return int(self.redis.info("server")["process_id"])

    # Redis.

    def used_memory(self, settle: bool = False, timeout_s: float = 5.0) -> int:
        """INFO memory's used_memory. With `settle`, once it holds still: after a large
        write Redis keeps the client's query buffer for a moment (uncounted in
        mem_clients_normal) before its cron shrinks it."""
        reading = int(self.redis.info("memory")["used_memory"])
        deadline = time.monotonic() + timeout_s
        steady = 0
        while settle and steady < 2 and time.monotonic() < deadline:
            time.sleep(0.15)
            previous = reading
            reading = int(self.redis.info("memory")["used_memory"])
            steady = steady + 1 if reading == previous else 0
        return reading

    def reset_stats(self) -> None:
        self.redis.config_resetstat()

    def command_stats(self) -> dict[str, dict[str, float]]:
        stats = cast(dict[str, dict[str, float]], self.redis.info("commandstats"))
        return {name.removeprefix("cmdstat_"): {"calls": value["calls"], "usec": value["usec"]}
                for name, value in stats.items()}

    def version(self) -> str:
        return str(self.redis.info("server")["redis_version"])

    # Buffers.

    def create_buffer(self, payload: Payload, name: str, capacity: int) -> None:
        checked(self.http.put(f"/buffers/{name}", json={
            "capacity": capacity, "schema": payload.schema.model_dump(mode="json")}))

    def fill_buffer(self, payload: Payload, name: str, count: int) -> None:
        """Through the service, in large safetensors bodies with no idempotency key."""
        step = payload.chunk_rows()
        bodies: dict[int, bytes] = {}
        for start in range(0, count, step):
            rows = min(step, count - start)
            if rows not in bodies:
                bodies[rows] = payload.body(rows, start % 1024)
            checked(self.http.post(f"/buffers/{name}/transitions", content=bodies[rows],
                               headers={"content-type": SAFETENSORS}))

    def delete_buffer(self, name: str) -> None:
        self.http.delete(f"/buffers/{name}")

    def raw_ring(self, form: RawForm, payload: Payload, name: str, capacity: int) -> RawRing:
        return raw_ring(form, self.redis, name, capacity, payload.record_size)

    def fill_raw(self, ring: RawRing, payload: Payload, count: int) -> None:
        step = payload.chunk_rows()
        for start in range(0, count, step):
            rows = min(step, count - start)
            if isinstance(ring, HashRing) and payload.compressed:
                ring.store_each(payload.stored(rows, start % 1024))
            else:
                ring.store(payload.records(rows, start % 1024))


class Profiler:
    """py-spy recording the service processes (with their uvicorn workers) into collapsed
    stacks, one file per service and section; summarise with `python -m
    benchmarks.suite.profiles`."""

    def __init__(self, directory: Path, rate: int = 200) -> None:
        self.directory = directory
        self.rate = rate
        self._running: list[subprocess.Popen[bytes]] = []
        directory.mkdir(parents=True, exist_ok=True)

    def start(self, stack: Stack, section: str) -> None:
        for workers in stack.services:
            pids = stack.service_pids(workers)
            if not pids:
                continue
            output = self.directory / f"service-{workers}w-{section}.txt"
            self._running.append(subprocess.Popen(
                ["py-spy", "record", "--pid", str(pids[0]), "--subprocesses", "--nonblocking",
                 "--rate", str(self.rate), "--format", "raw", "--output", str(output)],
                stdout=subprocess.DEVNULL, stderr=(self.directory / "py-spy.log").open("ab")))

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._running]

    def stop(self) -> None:
        for process in self._running:
            process.send_signal(signal.SIGINT)
        for process in self._running:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._running = []
