"""Scaling, measured: ingest with 1, 2, 4 and 8 writer processes and sampling with 1 to 4
trainer processes, on one Redis and on a 3-master Redis Cluster (a 3-shard buffer), behind
1 and 3 service replicas; the CPU each part spends per 1,000 transitions; and a model of
the replicas, masters and machines that Ape-X's rates need.

    python -m replay_service.benchmarks.scaling
    python -m replay_service.benchmarks.scaling --quick --configs redis-1 --payloads cartpole

Writers and trainers are separate OS processes, spread round-robin over the replicas; a
writer stores the same batch again and again through the SDK (`store_batch`, waiting for
each answer), a trainer samples through it. Every run lasts `--duration` seconds, all its
processes starting together; CPU is read from /proc for the service and redis-server
processes and from the clients themselves, over the same window. Medians over
`--repeats`. Everything runs on loopback and is stopped at the end, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from queue import Empty
from typing import Any

import httpx
import numpy as np
import orjson
import redis

from replay_service.benchmarks.local_cluster import LocalCluster
from replay_service.benchmarks.markdown import table
from replay_service.benchmarks.request_cost import Service
from replay_service.benchmarks.scaling_model import (
    APE_X,
    Costs,
    PartCosts,
    machines,
    plan,
    render,
    render_machines,
)
from replay_service.benchmarks.suite.payloads import ATARI, PAYLOADS, PONG, Payload
from replay_service.benchmarks.suite.stack import CpuSnapshot
from replay_service.cli.children import ServiceProcess
from replay_service.client.sync_client import ReplayClient
from replay_service.service.redis_server import RedisServer
from replay_service.wire.codec import JSON
from replay_service.wire.schema import Schema

__all__ = ["costs_of", "main"]

CONFIGS = ("redis-1", "redis-3", "cluster-1", "cluster-3")
"""Backend and service replicas: one Redis or a 3-master cluster, 1 or 3 `replay serve`."""
CAPACITY = {"cartpole": 1_000_000, "pong": 100_000, "atari": 20_000}
FILL = {"cartpole": 100_000, "pong": 20_000, "atari": 5_000}
"""Transitions in the buffer before the first run (sampling needs them)."""
START_MARGIN_S = 1.0
"""Between handing a run's processes their task and its start: time to open a client and
make one warm-up call."""
ATTEMPTS = 3
"""Tries of a run whose processes did not all get to work in it."""
READY = "ready"


class Missed(RuntimeError):
    """A run in which some process moved nothing."""


@dataclass(frozen=True)
class Task:
    """One process's part of a run."""

    op: str  # "store" or "sample"
    url: str
    buffer: str
    batch: int
    start_at: float
    """time.monotonic(), the same clock in every process of this machine."""
    stop_at: float
    columns: dict[str, np.ndarray] | None = None
    schema: Schema | None = None


@dataclass(frozen=True)
class Tally:
    transitions: int
    cpu_s: float
    finished_at: float
    late: bool = False
    error: str | None = None


@dataclass
class Row:
    """One run (or the medians of its repeats)."""

    config: str
    payload: str
    op: str
    processes: int
    batch: int
    rate: float
    service_ms: float
    redis_ms: float
    replica_ms: float
    client_ms: float
    busy_cores: float
    """The whole machine's busy cores over the run: 2 is all of this machine."""
    other_cores: float
    """Of those, not ours: other users of the machine."""


@dataclass
class Backend:
    label: str
    url: str
    cluster: bool
    master_ports: list[int]
    pids: dict[str, list[int]]
    """"master" and "replica" redis-server processes."""

    def used_memory(self) -> int:
        total = 0
        for port in self.master_ports:
            client = redis.Redis(port=port)
            try:
                total += int(client.info("memory")["used_memory"])
            finally:
                client.close()
        return total


# The writers' and trainers' processes.


def _work(tasks: Any, results: Any, parent: int) -> None:
    """A pool process: run tasks until told to stop, or until the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us, in its own time
    results.put(READY)  # imports done: a run's window is no longer spent on them
    while os.getppid() == parent:
        try:
            task = tasks.get(timeout=1.0)
        except Empty:
            continue
        if task is None:
            return
        try:
            results.put(_perform(task))
        except Exception as error:  # reported to the parent, which fails the run
            results.put(Tally(0, 0.0, time.monotonic(), error=repr(error)))


def _perform(task: Task) -> Tally:
    with ReplayClient(task.url, task.buffer, schema=task.schema) as client:
        def call() -> None:
            if task.op == "store":
                assert task.columns is not None
                client.store_batch(task.columns, wait=True)
            else:
                client.sample(task.batch)

        call()  # a warm-up: the connection, the buffer's schema
        late = time.monotonic() > task.start_at
        time.sleep(max(0.0, task.start_at - time.monotonic()))
        started = time.process_time()
        calls = 0
        while time.monotonic() < task.stop_at:
            call()
            calls += 1
        return Tally(calls * task.batch, time.process_time() - started, time.monotonic(), late)


class Pool:
    """Client processes (spawned: no threads or connections inherited), one task queue
    each, kept for a configuration's runs."""

    def __init__(self, size: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._tasks = [context.Queue() for _ in range(size)]
        self._results = context.Queue()
        self._processes = [context.Process(target=_work, args=(queue, self._results,
                                                               os.getpid()), daemon=True)
                           for queue in self._tasks]
        for process in self._processes:
            process.start()
        for _ in self._processes:
            if self._results.get(timeout=120) != READY:
                raise RuntimeError("a client process answered before it was ready")

    def hand_out(self, tasks: list[Task]) -> None:
        if len(tasks) > len(self._tasks):
            raise ValueError(f"{len(tasks)} tasks for {len(self._tasks)} processes")
        for queue, task in zip(self._tasks, tasks, strict=False):
            queue.put(task)

    def collect(self, count: int, timeout_s: float) -> list[Tally]:
        """The tallies of the last `count` tasks handed out."""
        deadline = time.monotonic() + timeout_s
        tallies = [self._results.get(timeout=max(0.1, deadline - time.monotonic()))
                   for _ in range(count)]
        failed = [tally.error for tally in tallies if tally.error]
        if failed:
            raise RuntimeError(f"{len(failed)} of {count} processes failed: {failed[0]}")
        return tallies

    def close(self) -> None:
        for queue in self._tasks:
            queue.put(None)
        for process in self._processes:
            process.join(5)
            if process.is_alive():
                process.terminate()
                process.join(5)


# The servers.


@contextmanager
def _backend(kind: str, folder: Path, cluster_replicas: int) -> Iterator[Backend]:
    with ExitStack() as stack:
        if kind == "redis":
            server = stack.enter_context(RedisServer(folder / "redis", appendfsync=None))
            label, url, ports = "one Redis", server.url, [server.port]
        else:
            cluster = stack.enter_context(LocalCluster(folder / "cluster",
                                                       replicas=cluster_replicas))
            label = "3-master cluster" + (f", {cluster_replicas} replica each"
                                          if cluster_replicas else "")
            url, ports = cluster.url, [node.port for node in cluster.nodes]
        nodes = [_node(port) for port in ports]
        yield Backend(label, url, kind != "redis",
                      [port for port, _, role in nodes if role == "master"],
                      {"master": [pid for _, pid, role in nodes if role == "master"],
                       "replica": [pid for _, pid, role in nodes if role != "master"]})


def _node(port: int) -> tuple[int, int, str]:
    """A redis-server's port, process id and role."""
    client = redis.Redis(port=port)
    try:
        return (port, int(client.info("server")["process_id"]),
                str(client.info("replication")["role"]))
    finally:
        client.close()


@contextmanager
def _services(backend: Backend, count: int, folder: Path) -> Iterator[list[Service]]:
    """`count` `replay serve` processes of one worker each, on the backend."""
    settings: dict[str, object] = {"redis_cluster": "true"} if backend.cluster else {}
    processes = [ServiceProcess(backend.url, folder, **settings) for _ in range(count)]
    for process in processes:  # only what is set here: no key, limit or URL of the user's
        assert process.env is not None
        for name in [name for name in process.env if name.startswith("REPLAY_")]:
            if name.removeprefix("REPLAY_").lower() not in settings:
                del process.env[name]
    with ExitStack() as stack:
        for process in processes:
            stack.callback(process.stop)
        with ThreadPoolExecutor(count) as starting:  # each takes seconds
            for started in [starting.submit(process.start, 90) for process in processes]:
                started.result()
        yield [Service(f"replica {i}", process.url, process.pid or 0, 1)
               for i, process in enumerate(processes)]


def _create(url: str, name: str, payload: Payload, capacity: int, shards: int) -> int:
    """PUT the buffer; returns its shards. A service that does not know `shards` yet
    (422) gets a buffer of one ring, with a warning."""
    body: dict[str, object] = {"capacity": capacity,
                               "schema": payload.schema.model_dump(mode="json")}
    if shards > 1:
        body["shards"] = shards
    reply = httpx.put(f"{url}/buffers/{name}", content=orjson.dumps(body),
                      headers={"content-type": JSON}, timeout=60)
    if reply.status_code == 422 and shards > 1 and "shards" in reply.text:
        _progress(f"the service does not know `shards` yet: {name} is one ring")
        return _create(url, name, payload, capacity, 1)
    if reply.status_code not in (200, 201):
        raise RuntimeError(f"PUT /buffers/{name}: {reply.status_code} {reply.text[:500]}")
    return shards


def _fill(url: str, name: str, payload: Payload, count: int) -> None:
    step = payload.chunk_rows()
    with ReplayClient(url, name, schema=payload.schema, timeout_s=300) as client:
        for start in range(0, count, step):
            client.store_batch(payload.columns(min(step, count - start), start), wait=True)


def _size(url: str, name: str) -> int:
    reply = httpx.get(f"{url}/buffers/{name}/size", timeout=60)
    reply.raise_for_status()
    return int(reply.json()["size"])


# Runs.


@dataclass(frozen=True)
class Options:
    configs: list[str]
    payloads: list[Payload]
    writers: list[int]
    trainers: list[int]
    store_batch: int
    sample_batches: list[int]
    duration_s: float
    repeats: int
    shards: int
    cluster_replicas: int
    fill_scale: float


def _measure(pool: Pool, services: list[Service], backend: Backend, config: str,
             payload: Payload, buffer: str, op: str, processes: int, batch: int,
             duration_s: float) -> Row:
    start_at = time.monotonic() + START_MARGIN_S
    stop_at = start_at + duration_s
    tasks = [Task(op, services[i % len(services)].url, buffer, batch, start_at, stop_at,
                  payload.columns(batch, i * batch) if op == "store" else None,
                  payload.schema if op == "store" else None)
             for i in range(processes)]
    service_pids = [pid for service in services for pid in service.pids]
    ours = service_pids + backend.pids["master"] + backend.pids["replica"]
    pool.hand_out(tasks)
    time.sleep(max(0.0, start_at - time.monotonic()))
    before = CpuSnapshot.take(ours)
    tallies = pool.collect(processes, duration_s + 120)
    after = CpuSnapshot.take(ours)
    wall = max(tally.finished_at for tally in tallies) - start_at
    if any(tally.late for tally in tallies):
        _progress(f"  {sum(tally.late for tally in tallies)} process(es) started late")
    if not all(tally.transitions for tally in tallies):
        raise Missed(f"a process moved nothing in its {duration_s:g} s: it started after "
                     "the run's end (a busy machine?)")
    moved = sum(tally.transitions for tally in tallies)
    per_1k = 1e6 / max(1, moved)  # seconds -> ms per 1,000 transitions
    service = after.used_since(before, service_pids)
    masters = after.used_since(before, backend.pids["master"])
    replicas = after.used_since(before, backend.pids["replica"])
    client = sum(tally.cpu_s for tally in tallies)
    busy = (after.busy_s - before.busy_s) / wall
    return Row(config, payload.name, op, processes, batch, moved / wall, service * per_1k,
               masters * per_1k, replicas * per_1k, client * per_1k, busy,
               busy - (service + masters + replicas + client) / wall)


def _attempts(pool: Pool, services: list[Service], backend: Backend, config: str,
              payload: Payload, buffer: str, op: str, processes: int, batch: int,
              duration_s: float) -> Row:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _measure(pool, services, backend, config, payload, buffer, op, processes,
                            batch, duration_s)
        except Missed as missed:
            if attempt == ATTEMPTS:
                raise
            _progress(f"  {missed}; again")
    raise AssertionError("unreachable")


def _median(rows: list[Row]) -> Row:
    first = rows[0]
    values = {name: statistics.median(getattr(row, name) for row in rows)
              for name in ("rate", "service_ms", "redis_ms", "replica_ms", "client_ms",
                           "busy_cores", "other_cores")}
    return Row(first.config, first.payload, first.op, first.processes, first.batch, **values)


@dataclass
class Measured:
    config: str
    title: str
    rows: list[Row]
    repetitions: list[Row]
    bytes_per_transition: dict[str, float]


def _configuration(config: str, options: Options, folder: Path) -> Measured:
    kind, replicas = config.split("-")
    with ExitStack() as stack:
        _progress(f"[{config}] starting the backend and {replicas} service replica(s)")
        backend = stack.enter_context(_backend(kind, folder / config, options.cluster_replicas))
        services = stack.enter_context(_services(backend, int(replicas), folder / config))
        pool = Pool(max(options.writers + options.trainers))
        stack.callback(pool.close)
        rows, repetitions, memory = [], [], {}
        shards_used = set()
        for payload in options.payloads:
            buffer = f"scaling-{payload.name}"
            fill = max(1_000, int(FILL[payload.name] * options.fill_scale))
            before = backend.used_memory()
            shards_used.add(_create(services[0].url, buffer, payload, CAPACITY[payload.name],
                                    options.shards if backend.cluster else 1))
            _progress(f"[{config}] filling {buffer} with {fill:,} transitions")
            _fill(services[0].url, buffer, payload, fill)
            plan = [("store", count, options.store_batch) for count in options.writers] + [
                ("sample", count, batch) for batch in options.sample_batches
                for count in options.trainers]
            for op, count, batch in plan:
                runs = []
                for repeat in range(options.repeats):
                    row = _attempts(pool, services, backend, config, payload, buffer, op,
                                    count, batch, options.duration_s)
                    runs.append(row)
                    _progress(f"[{config}] {payload.name} {op} b{batch}, {count} process(es), "
                              f"{repeat + 1}/{options.repeats}: {row.rate:,.0f}/s, machine "
                              f"{row.busy_cores:.2f} cores busy")
                repetitions.extend(runs)
                rows.append(_median(runs))
            held = _size(services[0].url, buffer)  # the ingest runs filled it further
            memory[payload.name] = (backend.used_memory() - before) / held
        shards = "/".join(str(s) for s in sorted(shards_used))
        title = (f"{backend.label}, {replicas} service replica(s)"
                 + (f", buffer of {shards} shard(s)" if backend.cluster else ""))
        return Measured(config, title, rows, repetitions, memory)


def _render(measured: Measured, duration_s: float, repeats: int) -> str:
    header = ["payload", "op", "batch", "procs", "transitions/s", "x 1 proc", "service",
              "redis", "redis repl", "client", "busy cores", "others' cores"]
    rows = []
    first: dict[tuple[str, str, int], float] = {}
    for row in measured.rows:
        base = first.setdefault((row.payload, row.op, row.batch), row.rate)
        rows.append([row.payload, row.op, row.batch, row.processes, f"{row.rate:,.0f}",
                     f"{row.rate / base:.2f}" if base else "-", f"{row.service_ms:.1f}",
                     f"{row.redis_ms:.1f}", f"{row.replica_ms:.1f}", f"{row.client_ms:.1f}",
                     f"{row.busy_cores:.2f}", f"{row.other_cores:.2f}"])
    return (f"\n{measured.config}: {measured.title}. CPU ms per 1,000 transitions by part; "
            f"medians of {repeats} run(s) of {duration_s:g} s\n\n" + table(header, rows))


def costs_of(measured: Measured, payload: Payload, sample_batch: int) -> Costs:
    """A configuration's per-part costs for one payload: the median over its process
    counts (stores; samples of `sample_batch`)."""
    def part(op: str, batch: int | None) -> PartCosts:
        rows = [row for row in measured.rows if row.payload == payload.name and row.op == op
                and (batch is None or row.batch == batch)]
        return PartCosts(*(statistics.median(getattr(row, name) for row in rows)
                           for name in ("service_ms", "redis_ms", "replica_ms", "client_ms")))

    return Costs(payload.name, part("store", None), part("sample", sample_batch),
                 measured.bytes_per_transition[payload.name],
                 wire_bytes_in=len(payload.body(64)) / 64)


def _model(measured: list[Measured], options: Options, cores: int, utilisation: float,
           master_memory_gb: float, config: str | None) -> str:
    preferred = [config] if config else ["cluster-3", "cluster-1", "redis-3", "redis-1"]
    chosen = next((m for name in preferred for m in measured if m.config == name),
                  measured[-1])
    batch = 512 if 512 in options.sample_batches else max(options.sample_batches)
    costs = [costs_of(chosen, payload, batch) for payload in options.payloads]
    inputs = table(["payload", "op", "service", "redis", "redis repl", "client",
                    "Redis bytes per transition"], [
        [c.payload, op, f"{getattr(c, op).service:.1f}", f"{getattr(c, op).redis:.1f}",
         f"{getattr(c, op).replica:.1f}", f"{getattr(c, op).client:.1f}",
         f"{c.bytes_per_transition:,.0f}"]
        for c in costs for op in ("store", "sample")])
    replicas = options.cluster_replicas if chosen.config.startswith("cluster") else 0
    plans = [plan(c, APE_X, cores_per_machine=cores, utilisation=utilisation,
                  master_memory_gb=master_memory_gb, redis_replicas=replicas) for c in costs]
    given = "\n\n".join(render_machines(c.payload, [
        machines(c, count, cores_per_machine=cores, utilisation=utilisation,
                 master_memory_gb=master_memory_gb, redis_replicas=replicas)
        for count in (1, 2, 4, 8)]) for c in costs)
    rates = APE_X
    mix = rates.sampled_per_s / rates.stored_per_s
    return "\n".join([
        f"\nMODEL: {rates.name}, {rates.stored_per_s:,.0f} transitions/s stored (batches of "
        f"{options.store_batch}) and {rates.sampled_per_s:,.0f}/s sampled (batches of "
        f"{batch}), {rates.capacity:,} kept, for each payload; machines of {cores} cores "
        f"planned to {utilisation:.0%}, {master_memory_gb:g} GB of data per master, "
        f"{replicas} replica(s) per master",
        f"\ninputs: CPU ms per 1,000 transitions, medians over the process counts of "
        f"{chosen.config} ({chosen.title})\n", inputs, "", render(plans, utilisation),
        f"\nWHAT N MACHINES GIVE at {rates.name}'s mix ({mix:.2f} sampled per stored "
        "transition), a core per process\n", given])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="Short: 1 s runs, 1 repeat, 1 and 2 processes, small fills.")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help=f"Comma-separated, of {', '.join(CONFIGS)}.")
    parser.add_argument("--payloads", default="cartpole,pong", help="Comma-separated, of "
                        "cartpole, pong (compressed Atari frames; atari without ale-py), atari.")
    parser.add_argument("--writers", help="Writer process counts (default 1,2,4,8).")
    parser.add_argument("--trainers", help="Trainer process counts (default 1,2,3,4).")
    parser.add_argument("--store-batch", type=int, default=50,
                        help="Transitions per store (Ape-X's actors send 50 at a time).")
    parser.add_argument("--sample-batches", default="512",
                        help="Comma-separated sample sizes (Ape-X's learner: 512).")
    parser.add_argument("--duration", type=float, help="Seconds per run (default 5).")
    parser.add_argument("--repeats", type=int, help="Runs per point (default 3).")
    parser.add_argument("--shards", type=int, default=3,
                        help="Shards of the cluster's buffers (1: one ring).")
    parser.add_argument("--cluster-replicas", type=int, default=1,
                        help="Replicas per master in the cluster.")
    parser.add_argument("--cores", type=int, default=16, help="Cores per machine, in the model.")
    parser.add_argument("--utilisation", type=float, default=0.7,
                        help="Share of each core the model plans to use.")
    parser.add_argument("--master-memory-gb", type=float, default=25.0,
                        help="Data per Redis master, in the model.")
    parser.add_argument("--model-config", choices=CONFIGS, help="The configuration whose "
                        "costs the model takes (default: the first measured of cluster-3, "
                        "cluster-1, redis-3, redis-1).")
    parser.add_argument("--json", type=Path, help="Also write every run here.")
    args = parser.parse_args()
    quick = args.quick
    options = Options(
        configs=_names(args.configs, CONFIGS),
        payloads=[_payload(name) for name in _names(args.payloads, tuple(PAYLOADS))],
        writers=_counts(args.writers or ("1,2" if quick else "1,2,4,8")),
        trainers=_counts(args.trainers or ("1,2" if quick else "1,2,3,4")),
        store_batch=args.store_batch, sample_batches=_counts(args.sample_batches),
        duration_s=args.duration or (1.0 if quick else 5.0),
        repeats=args.repeats or (1 if quick else 3), shards=args.shards,
        cluster_replicas=args.cluster_replicas, fill_scale=0.1 if quick else 1.0)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop everything, as Ctrl-C
    measured = []
    try:
        with tempfile.TemporaryDirectory(prefix="replay-scaling-") as scratch:
            for config in options.configs:
                measured.append(_configuration(config, options, Path(scratch)))
                print(_render(measured[-1], options.duration_s, options.repeats), flush=True)
    except KeyboardInterrupt:
        _progress("interrupted: every process stopped")
        sys.exit(130)
    print(_model(measured, options, args.cores, args.utilisation, args.master_memory_gb,
                 args.model_config))
    if args.json:
        args.json.write_text(orjson.dumps({
            "options": {**asdict(options), "payloads": [p.name for p in options.payloads]},
            "configurations": [asdict(m) for m in measured]},
            option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode())


def _names(text: str, known: tuple[str, ...]) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(known))
    if unknown or not names:
        raise SystemExit(f"unknown {', '.join(unknown) or 'empty list'}: choose of "
                         f"{', '.join(known)}")
    return names


def _counts(text: str) -> list[int]:
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or min(counts) < 1:
        raise SystemExit(f"{text!r}: give positive counts, comma-separated")
    return counts


def _payload(name: str) -> Payload:
    if name == "pong" and not PONG.available:
        _progress("no ale-py: Atari-sized transitions are random frames, uncompressed")
        return ATARI
    return PAYLOADS[name]


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
