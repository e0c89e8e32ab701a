"""GET /metrics: what the service counts, read over HTTP, by a real Prometheus, and added
up across uvicorn workers."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from replay_service.service.metrics import MULTIPROCESS_DIR_VARIABLE
from replay_service.service.redis_server import RedisServer
from tests.deploy.prometheus import PrometheusServer
from tests.service.factories import TRACKED_SCHEMA, store_binary, tracked_columns
from tests.support import ServiceProcess

WRITE_KEY = "metrics-test-write-key"
READ_KEY = "metrics-test-read-key"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(http: httpx.Client, **headers: str) -> Samples:
    reply = http.get("/metrics", headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(reply.text)
            for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 for a series not exported (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def create(http: httpx.Client, name: str, **spec: object) -> None:
    reply = http.put(f"/buffers/{name}", json={"capacity": 1_000, "schema": TRACKED_SCHEMA,
                                               **spec})
    assert reply.status_code == 201, reply.text


def store_one(http: httpx.Client, name: str, key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    reply = http.post(f"/buffers/{name}/transitions", headers=headers, json={"transition": {
        "id": 1, "obs": [0.0] * 4, "action": 0, "reward": 1.0, "next_obs": [0.0] * 4,
        "done": False}})
    assert reply.status_code == 200, reply.text
    return reply


def test_stores_samples_and_repeats_are_counted_per_buffer(http: httpx.Client,
                                                           buffer_name: str) -> None:
    create(http, buffer_name, capacity=700)
    store_binary(http, buffer_name, tracked_columns(range(5)))
    store_one(http, buffer_name, key="batch-1")
    store_one(http, buffer_name, key="batch-1")  # a retry: answered from its record
    reply = http.get(f"/buffers/{buffer_name}/sample",
                     params={"batch_size": 4, "num_batches": 3})
    assert reply.status_code == 200
    samples = scrape(http)
    assert value(samples, "replay_transitions_stored_total", buffer=buffer_name) == 6
    assert value(samples, "replay_idempotent_repeats_total", buffer=buffer_name) == 1
    assert value(samples, "replay_transitions_sampled_total", buffer=buffer_name) == 12
    assert value(samples, "replay_buffer_size", buffer=buffer_name) == 6
    assert value(samples, "replay_buffer_capacity", buffer=buffer_name) == 700
    assert value(samples, "replay_redis_up") == 1


def test_requests_are_counted_by_route_template_and_status(http: httpx.Client,
                                                           buffer_name: str) -> None:
    route = "/buffers/{name}/sample"
    missing = {"route": route, "method": "GET", "status": "404"}
    before = scrape(http)
    for _ in range(3):
        assert http.get(f"/buffers/{buffer_name}/sample",
                        params={"batch_size": 1}).status_code == 404
    brewed_status = http.request("PROPFIND", "/healthz").status_code
    after = scrape(http)
    assert value(after, "replay_http_requests_total", **missing) == (
        value(before, "replay_http_requests_total", **missing) + 3)
    latency = {"route": route, "method": "GET"}
    assert value(after, "replay_http_request_duration_seconds_count", **latency) >= (
        value(before, "replay_http_request_duration_seconds_count", **latency) + 3)
    # A client's own method is one label value whatever it sends: no unbounded series.
    brewed = {"route": "/healthz", "method": "other", "status": str(brewed_status)}
    assert value(after, "replay_http_requests_total", **brewed) == (
        value(before, "replay_http_requests_total", **brewed) + 1)
    assert not [labels for _, labels in after if ("route", f"/buffers/{buffer_name}/sample")
                in labels], "the route label is the template, never a buffer's name"


def test_rate_limit_holds_count_waits_and_refusals(http: httpx.Client,
                                                   buffer_name: str) -> None:
    create(http, buffer_name, rate_limit={"min_size": 4})
    store_binary(http, buffer_name, tracked_columns(range(1)))  # an empty one answers 409
    sample = f"/buffers/{buffer_name}/sample"
    assert http.get(sample, params={"batch_size": 2}).status_code == 429
    waited: list[int] = []
    sampler = threading.Thread(target=lambda: waited.append(http.get(
        sample, params={"batch_size": 2, "timeout_s": 20}).status_code))
    sampler.start()
    time.sleep(0.5)  # the sampler is held back by now
    with httpx.Client(base_url=str(http.base_url)) as writer:
        store_binary(writer, buffer_name, tracked_columns(range(1, 4)))
    sampler.join(30)
    assert waited == [200]
    samples = scrape(http)
    holds = "replay_rate_limit_holds_total"
    assert value(samples, holds, buffer=buffer_name, outcome="refused") == 1
    assert value(samples, holds, buffer=buffer_name, outcome="waited") == 1
    assert value(samples, "replay_transitions_sampled_total", buffer=buffer_name) == 2


def test_redis_out_of_reach_reads_zero(tmp_path: Path, logs_dir: Path) -> None:
    with RedisServer(tmp_path / "redis", appendfsync=None) as redis:
        service = ServiceProcess(redis.url, logs_dir, redis_timeout_s=1).start()
        try:
            with httpx.Client(base_url=service.url, timeout=30) as http:
                assert value(scrape(http), "replay_redis_up") == 1
                redis.stop()
                samples = scrape(http)
                assert value(samples, "replay_redis_up") == 0
                assert value(samples, "replay_http_requests_total", route="/metrics",
                             method="GET", status="200") >= 1
        finally:
            service.stop()


@pytest.fixture
def keyed_service(redis_server: RedisServer, logs_dir: Path) -> Iterator[ServiceProcess]:
    service = ServiceProcess(redis_server.url, logs_dir, write_key=WRITE_KEY,
                             read_key=READ_KEY).start()
    yield service
    service.stop()


def test_prometheus_scrapes_the_service_with_its_read_key(
        keyed_service: ServiceProcess, tmp_path: Path, buffer_name: str) -> None:
    with httpx.Client(base_url=keyed_service.url, timeout=30) as http:
        # It names every buffer: as GET /buffers, it needs a key once keys are set.
        assert http.get("/metrics").status_code == 401
        key_file = tmp_path / "read-key"
        key_file.write_text(READ_KEY)
        config = tmp_path / "prometheus.yml"
        config.write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: replay
    authorization: {{type: Bearer, credentials_file: "{key_file}"}}
    static_configs: [{{targets: ["127.0.0.1:{keyed_service.port}"]}}]
""")
        writer = {"Authorization": f"Bearer {WRITE_KEY}"}
        http.headers.update(writer)
        create(http, buffer_name, capacity=50)
        store_binary(http, buffer_name, tracked_columns(range(7)))
        assert http.get(f"/buffers/{buffer_name}/sample",
                        params={"batch_size": 5}).status_code == 200
        with PrometheusServer(config, tmp_path) as prometheus:
            assert prometheus.value_when('up{job="replay"}', 1) == 1
            assert prometheus.value_when(
                f'replay_transitions_stored_total{{buffer="{buffer_name}"}}', 7) == 7
            assert prometheus.value_when(
                f'replay_transitions_sampled_total{{buffer="{buffer_name}"}}', 5) == 5
            assert prometheus.value_when(
                f'replay_buffer_size{{buffer="{buffer_name}"}} / '
                f'replay_buffer_capacity{{buffer="{buffer_name}"}}', 7 / 50) == 7 / 50


def worker_stores(directory: Path, pid: int, buffer: str) -> float:
    """What one worker process counted as stored, read from its own metric file alone."""
    alone = directory.parent / f"worker-{pid}"
    alone.mkdir(exist_ok=True)
    source = directory / f"counter_{pid}.db"
    if not source.exists():
        return 0.0
    shutil.copy(source, alone / source.name)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(alone))  # type: ignore[no-untyped-call]
    return registry.get_sample_value("replay_transitions_stored_total",
                                     {"buffer": buffer}) or 0.0


def test_counters_add_up_across_workers(redis_server: RedisServer, logs_dir: Path,
                                        buffer_name: str) -> None:
    service = ServiceProcess(redis_server.url, logs_dir, workers=2).start()
    try:
        workers = [child for child in psutil.Process(os.getpid()).children(recursive=True)
                   if MULTIPROCESS_DIR_VARIABLE in child.environ()]
        directories = {child.environ()[MULTIPROCESS_DIR_VARIABLE] for child in workers}
        assert len(directories) == 1, "one directory for every worker of the run"
        directory = Path(directories.pop())
        assert directory.is_dir()
        with httpx.Client(base_url=service.url, timeout=30) as http:
            create(http, buffer_name)
        stores = 0
        # A fresh connection per store lets either worker accept it; store until both
        # have, so that the total is a sum over two processes' files.
        while stores < 400:
            with httpx.Client(base_url=service.url, timeout=30) as http:
                store_one(http, buffer_name)
            stores += 1
            per_worker = [worker_stores(directory, worker.pid, buffer_name)
                          for worker in workers]
            if stores >= 20 and sum(count > 0 for count in per_worker) >= 2:
                break
        assert sum(count > 0 for count in per_worker) >= 2, per_worker
        assert sum(per_worker) == stores
        for _ in range(6):  # whichever worker answers the scrape adds up every worker's
            with httpx.Client(base_url=service.url, timeout=30) as http:
                samples = scrape(http)
            assert value(samples, "replay_transitions_stored_total",
                         buffer=buffer_name) == stores
            assert value(samples, "replay_buffer_size", buffer=buffer_name) == stores
    finally:
        service.stop()
    assert not directory.exists(), "the run's metric files go with it"
