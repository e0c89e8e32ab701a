"""Client processes: one per concurrent client, so the GIL of one never limits the others.

The processes start once per run and keep their connections between measurements.
For a measurement with c clients, clients 0..c-1 each get a task, warm up, and meet
at a barrier with the parent (which starts its CPU accounting there); then each
runs its operation back to back for the task's seconds and reports what it did.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

import numpy as np

from replay_service.benchmarks.suite.drivers import ClientState, Task

__all__ = ["ClientPool", "Outcome"]

_BARRIER_TIMEOUT_S = 600.0


@dataclass
class Outcome:
    """What one client did in one measurement."""

    transitions: int = 0
    ops: int = 0
    elapsed_s: float = 0.0
    cpu_s: float = 0.0
    latencies_s: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    error: str | None = None


def _measure(task: Task, state: ClientState, barrier: Any) -> Outcome:
    try:
        operation = state.operation(task)
        if state.warm(task):  # the first time: opens connections, the SDK learns the schema
            warm_until = time.perf_counter() + min(0.1, task.seconds / 10)
            operation()
            while time.perf_counter() < warm_until:
                operation()
            state.settle(task)
    except Exception:
        barrier.abort()
        return Outcome(error=traceback.format_exc(limit=4))
    try:
        barrier.wait(_BARRIER_TIMEOUT_S)
    except threading.BrokenBarrierError:
        return Outcome(error="another client failed to start")
    latencies: list[float] = []
    transitions = 0
    cpu = time.process_time()
    start = time.perf_counter()
    end = start + task.seconds
    try:
        now = start
        while now < end:
            transitions += operation()
            then, now = now, time.perf_counter()
            latencies.append(now - then)
        state.settle(task)  # transitions count once stored, not once queued
        now = time.perf_counter()
    except Exception:
        return Outcome(error=traceback.format_exc(limit=4))
    return Outcome(transitions=transitions, ops=len(latencies), elapsed_s=now - start,
                   cpu_s=time.process_time() - cpu,
                   latencies_s=np.asarray(latencies, dtype=np.float32))


def _serve(connection: Connection, barriers: dict[int, Any]) -> None:
    state = ClientState()
    try:
        while (task := connection.recv()) is not None:
            connection.send(_measure(task, state, barriers[task.case.clients]))
    finally:
        state.close()


class ClientPool:
    def __init__(self, clients: tuple[int, ...]) -> None:
        context = multiprocessing.get_context("spawn")
        self._barriers = {count: context.Barrier(count + 1) for count in set(clients)}
        self._connections: list[Connection] = []
        self._processes: list[Any] = []
        for _ in range(max(clients)):
            ours, theirs = context.Pipe()
            process = context.Process(target=_serve, args=(theirs, self._barriers),
                                      daemon=True, name="bench-client")
            process.start()
            theirs.close()
            self._connections.append(ours)
            self._processes.append(process)

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes]

    def run(self, tasks: list[Task], on_start: Callable[[], None]) -> list[Outcome]:
        """Run one task per client at once; `on_start` runs as the clients start."""
        barrier = self._barriers[len(tasks)]
        for connection, task in zip(self._connections, tasks, strict=False):
            connection.send(task)
        try:
            barrier.wait(_BARRIER_TIMEOUT_S)
            on_start()
        except threading.BrokenBarrierError:
            pass
        outcomes: list[Outcome] = [connection.recv() for connection in
                                   self._connections[:len(tasks)]]
        if barrier.broken:
            barrier.reset()
        return outcomes

    def close(self) -> None:
        for connection in self._connections:
            try:
                connection.send(None)
            except (BrokenPipeError, OSError):
                pass
        for process in self._processes:
            process.join(30)
            if process.is_alive():
                process.terminate()
                process.join(5)
        for connection in self._connections:
            connection.close()

    def __enter__(self) -> ClientPool:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
