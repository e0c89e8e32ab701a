"""What one request costs: service CPU, client CPU and wall time per request, for the
hot endpoints (CartPole-sized, and Atari-sized stores and samples), on this tree's
service beside an older commit's (`--baseline REV`) and beside the same app under
granian (`--granian`); then what each HTTP client adds around the same call on one
keep-alive connection (the standard library, httpcore, httpx, the SDK).

    python -m replay_service.benchmarks.request_cost --baseline 55032ec --granian
    python -m replay_service.benchmarks.request_cost --baseline 55032ec --workers 2

Every service runs on one private redis-server, in its defaults, with `--workers`
workers (1: one process). Rounds interleave the services and cases, so a disturbance
of this shared machine hits one round of each rather than every round of one;
medians are quoted.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpcore
import httpx
import numpy as np
import orjson
import psutil

from replay_service.benchmarks.suite.payloads import ATARI, CARTPOLE, Payload
from replay_service.benchmarks.suite.stack import CpuSnapshot
from replay_service.cli.children import ServiceProcess
from replay_service.client.sync_client import ReplayClient
from replay_service.service.redis_server import RedisServer, free_port
from replay_service.wire.codec import JSON, SAFETENSORS, encode_safetensors

FILL = 10_000
ATARI_FILL = 2_000
BATCHES = (1, 32, 256)
ATARI_SHARE = 10
"""Atari requests move 1.8 MB (a sample of 32) where CartPole's move 1.5 KB: a tenth as
many per round."""


@dataclass
class Service:
    """One service under test: a label, its URL, and the processes whose CPU is its."""

    label: str
    url: str
    pid: int
    workers: int

    @property
    def pids(self) -> list[int]:
        children = psutil.Process(self.pid).children(recursive=True)
        return [self.pid, *(child.pid for child in children)]


@dataclass
class Tally:
    wall_us: list[float] = field(default_factory=list)
    service_us: list[float] = field(default_factory=list)
    client_us: list[float] = field(default_factory=list)

    def median(self, name: str) -> float:
        values: list[float] = getattr(self, name)
        return statistics.median(values)


Request = Callable[[], None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", metavar="REV", help="Also measure the service of this "
                        "git revision of the repository (built into a scratch folder).")
    parser.add_argument("--granian", action="store_true",
                        help="Also serve this tree's app with granian instead of uvicorn.")
    parser.add_argument("--requests", type=int, default=300, help="Requests per round.")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--workers", type=int, default=1,
                        help="uvicorn (or granian) workers of every service.")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="replay-request-cost-") as scratch, \
            ExitStack() as stack:
        folder = Path(scratch)
        redis = stack.enter_context(RedisServer(folder / "redis", appendfsync=None))
        workers = options.workers
        services = [stack.enter_context(_uvicorn("this tree", redis.url, folder, None,
                                                 workers))]
        if options.baseline:
            site = _build(options.baseline, folder)
            services.append(stack.enter_context(
                _uvicorn(options.baseline, redis.url, folder, site, workers)))
        if options.granian:
            services.append(stack.enter_context(_granian(redis.url, folder, workers)))
        print(f"{len(services)} service(s) of {workers} worker(s) on Redis {redis.url}; "
              f"{options.rounds} rounds of {options.requests} requests per case (Atari: a "
              f"{ATARI_SHARE}th)", file=sys.stderr)
        _server_table(services, options.requests, options.rounds)
        _client_table(services[0], options.requests, options.rounds)


def _server_table(services: list[Service], count: int, rounds: int) -> None:
    with ExitStack() as stack:
        cases: dict[str, dict[str, Request]] = {}
        for service in services:
            connection = http.client.HTTPConnection(service.url.removeprefix("http://"))
            stack.callback(connection.close)
            for name, request in _cases(connection, service.label.replace(" ", "-")).items():
                cases.setdefault(name, {})[service.label] = request
        tallies = _measure({(case, label): request for case, by_service in cases.items()
                            for label, request in by_service.items()},
                           {service.label: service for service in services}, count, rounds)
    labels = [service.label for service in services]
    print(f"\nSERVICE CPU per request, us (wall per request, us), {_workers(services)}, "
          "client: http.client keep-alive; medians")
    print(f"{'case':24s}" + "".join(f"{label:>24s}" for label in labels)
          + ("".join(f"{'cpu ' + label + '/' + labels[0]:>22s}" for label in labels[1:])))
    for case in cases:
        row = f"{case:24s}"
        for label in labels:
            tally = tallies[(case, label)]
            row += f"{tally.median('service_us'):>13.0f} ({tally.median('wall_us'):>6.0f})  "
        first = tallies[(case, labels[0])].median("service_us")
        row += "".join(f"{tallies[(case, label)].median('service_us') / first:>22.2f}"
                       for label in labels[1:])
        print(row)


def _client_table(service: Service, count: int, rounds: int) -> None:
    """The same two calls through each client, against one service."""
    host = service.url.removeprefix("http://")
    standard = http.client.HTTPConnection(host)
    pool = httpcore.ConnectionPool(max_connections=1)
    client = httpx.Client(base_url=service.url)
    sdk = ReplayClient(service.url, "cost-sdk", capacity=FILL)
    sdk.store_batch(CARTPOLE.columns(FILL), wait=True)
    stdlib_sample = "/buffers/cost-sdk/sample?batch_size=32"
    accept = {"accept": SAFETENSORS}

    def stdlib(path: str, headers: dict[str, str]) -> Request:
        def call() -> None:
            standard.request("GET", path, headers=headers)
            answer = standard.getresponse()
            answer.read()
            assert answer.status == 200, answer.status
        return call

    def core(path: str, headers: dict[str, str]) -> Request:
        url = service.url + path
        pairs = list(headers.items())

        def call() -> None:
            assert pool.request("GET", url, headers=pairs).status == 200
        return call

    def full(path: str, headers: dict[str, str]) -> Request:
        def call() -> None:
            client.get(path, headers=headers).raise_for_status()
        return call

    requests = {}
    for name, path, headers in (("healthz", "/healthz", {}),
                                ("sample b32", stdlib_sample, accept)):
        requests[(name, "http.client")] = stdlib(path, headers)
        requests[(name, "httpcore")] = core(path, headers)
        requests[(name, "httpx")] = full(path, headers)
    requests[("sample b32", "SDK")] = lambda: None if sdk.sample(32) else None
    try:
        tallies = _measure(requests, {label: service for _, label in requests}, count,
                           rounds)
    finally:
        sdk.close()
        client.close()
        pool.close()
        standard.close()
    print("\nCLIENTS on one keep-alive connection to this tree's service: wall per request, "
          "us / client CPU per request, us; medians")
    kinds = ["http.client", "httpcore", "httpx", "SDK"]
    print(f"{'call':14s}" + "".join(f"{kind:>20s}" for kind in kinds))
    for name in ("healthz", "sample b32"):
        row = f"{name:14s}"
        for kind in kinds:
            tally = tallies.get((name, kind))
            row += (f"{tally.median('wall_us'):>11.0f} / {tally.median('client_us'):>5.0f}"
                    if tally else f"{'-':>20s}")
        print(row)


def _measure(requests: dict[tuple[str, str], Request], services: dict[str, Service],
             count: int, rounds: int) -> dict[tuple[str, str], Tally]:
    tallies = {key: Tally() for key in requests}
    for key, request in requests.items():  # warm every path once
        for _ in range(3 if key[0].startswith("atari") else max(20, count // 10)):
            request()
    for number in range(rounds):
        print(f"round {number + 1}/{rounds}", file=sys.stderr)
        for key, request in requests.items():
            pids = services[key[1]].pids
            before = CpuSnapshot.take(pids)
            started_cpu = time.process_time()
            started = time.perf_counter()
            times = max(1, count // ATARI_SHARE) if key[0].startswith("atari") else count
            for _ in range(times):
                request()
            wall = time.perf_counter() - started
            client = time.process_time() - started_cpu
            service = CpuSnapshot.take(pids).used_since(before)
            tally = tallies[key]
            tally.wall_us.append(wall / times * 1e6)
            tally.client_us.append(client / times * 1e6)
            tally.service_us.append(service / times * 1e6)
    return tallies


def _cases(connection: http.client.HTTPConnection, prefix: str) -> dict[str, Request]:
    """The hot operations on two fresh buffers of this service (uniform, prioritized)."""
    uniform, prioritized, atari = f"cost-{prefix}", f"cost-{prefix}-per", f"cost-{prefix}-atari"

    def call(method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None, status: int = 200) -> bytes:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        data = answer.read()
        if answer.status != status:
            raise RuntimeError(f"{method} {path}: {answer.status} {data[:300]!r}")
        return data

    def fill(name: str, payload: Payload, count: int, **extra: object) -> None:
        schema = payload.schema.model_dump(mode="json")
        call("PUT", f"/buffers/{name}", orjson.dumps({"capacity": count, "schema": schema,
                                                      **extra}), {"content-type": JSON},
             status=201)
        step = payload.chunk_rows()
        for start in range(0, count, step):
            call("POST", f"/buffers/{name}/transitions", encode_safetensors(
                payload.columns(min(step, count - start), start)),
                {"content-type": SAFETENSORS})

    fill(uniform, CARTPOLE, FILL)
    fill(prioritized, CARTPOLE, FILL, prioritized={"alpha": 0.6})
    fill(atari, ATARI, ATARI_FILL)
    weights = call("PUT", f"/buffers/{uniform}/weights", encode_safetensors(
        {"w": np.zeros(1000, np.float32)}), {"content-type": SAFETENSORS})
    etag = f'"{orjson.loads(weights)["etag"]}"'
    binary = {"accept": SAFETENSORS}
    bodies = {batch: encode_safetensors(CARTPOLE.columns(batch)) for batch in BATCHES}
    sampled = orjson.loads(call("GET", f"/buffers/{prioritized}/sample?batch_size=32"))
    update = orjson.dumps({"indices": sampled["indices"], "inserted": sampled["inserted"],
                           "priorities": [0.5] * 32})

    def get(path: str, headers: dict[str, str] | None = None, status: int = 200) -> Request:
        return lambda: None if call("GET", path, headers=headers, status=status) else None

    def post(path: str, body: bytes, content_type: str) -> Request:
        headers = {"content-type": content_type}
        return lambda: None if call("POST", path, body, headers) else None

    cases = {f"sample b{batch}": get(f"/buffers/{uniform}/sample?batch_size={batch}", binary)
             for batch in BATCHES}
    cases["sample b32 JSON"] = get(f"/buffers/{uniform}/sample?batch_size=32")
    cases["prioritized b32"] = get(f"/buffers/{prioritized}/sample?batch_size=32", binary)
    cases.update({f"store b{batch}": post(f"/buffers/{uniform}/transitions", bodies[batch],
                                          SAFETENSORS) for batch in BATCHES})
    cases["atari sample b32"] = get(f"/buffers/{atari}/sample?batch_size=32", binary)
    cases["atari store b32"] = post(f"/buffers/{atari}/transitions",
                                    encode_safetensors(ATARI.columns(32)), SAFETENSORS)
    cases["priorities b32"] = post(f"/buffers/{prioritized}/priorities", update, JSON)
    cases["weights fetch (304)"] = get(f"/buffers/{uniform}/weights",
                                       {"if-none-match": etag}, status=304)
    cases["healthz"] = get("/healthz")
    return cases


def _build(revision: str, folder: Path) -> Path:
    """That revision's package, installed (without dependencies) into a folder of its own,
    to be put first on the baseline service's PYTHONPATH."""
    source, site = folder / "baseline-source", folder / "baseline-site"
    source.mkdir()
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], check=True,
                          capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent).stdout.strip()
    archive = subprocess.run(["git", "archive", revision], check=True, capture_output=True,
                             cwd=root).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    print(f"building {revision} into {site}", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(source)], check=True)
    return site


def _workers(services: list[Service]) -> str:
    return "one process each" if services[0].workers == 1 else (
        f"{services[0].workers} workers each (CPU: all of a service's processes)")


@contextmanager
def _uvicorn(label: str, redis_url: str, folder: Path, site: Path | None,
             workers: int) -> Iterator[Service]:
    service = ServiceProcess(redis_url, folder, workers=workers)
    assert service.env is not None
    if site is not None:
        # First on the path, before the editable install's finder; and no working
        # directory on it (this checkout's replay_service/ would be found there).
        service.env.update(PYTHONPATH=str(site), PYTHONSAFEPATH="1")
    service.start(60)
    try:
        assert service.pid is not None
        yield Service(label, service.url, service.pid, workers)
    finally:
        service.stop()


@contextmanager
def _granian(redis_url: str, folder: Path, workers: int) -> Iterator[Service]:
    port = free_port()
    log = (folder / "granian.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--workers", str(workers),
         "replay_service.service.app:create_server"],
        env={**os.environ, "REPLAY_REDIS_URL": redis_url}, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("granian did not start: "
                                   + (folder / "granian.log").read_text()[-2000:])
            time.sleep(0.1)
        yield Service("granian", url, process.pid, workers)
    finally:
        process.terminate()
        process.wait(15)
        log.close()


if __name__ == "__main__":
    main()
