"""Prometheus metrics: what the service counts as it works, and `GET /metrics`.

Counters and histograms live in process memory and cost a dictionary look-up and an
addition on the hot path: no Redis round trip is added to a store or a sample. With
several uvicorn workers (`REPLAY_WORKERS` > 1) every worker is a process of its own, so
`replay serve` makes a fresh directory per run and names it in PROMETHEUS_MULTIPROC_DIR
before the workers start (`multiprocess_directory`); prometheus-client's multiprocess
mode then keeps each worker's values in files there, and whichever worker answers a
scrape adds up every worker's.

What Redis holds (buffer sizes and capacities, whether Redis answers) is read when
scraped, not counted: it is the same whichever worker or replica answers, and stays
right for buffers that other replicas write or delete.

`/metrics` takes the same API keys as the rest of the API (the read key will do): it
names every buffer and its size, which `GET /buffers` also keeps behind the read key.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from time import perf_counter
from typing import cast

from fastapi import APIRouter, FastAPI, Request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from replay_service.service.storage import keys
from replay_service.service.storage.ring import Inserted

__all__ = ["MULTIPROCESS_DIR_VARIABLE", "RequestMetrics", "ServiceMetrics", "install_metrics",
           "multiprocess_directory"]

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# From a small store or sample on loopback (about a millisecond) to a sample that waits
# out a rate limit (up to 60 s).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0, 30.0, 60.0)
UNMATCHED_ROUTE = "unmatched"
# Anything else a client sends as a method is counted as one label value, so no client
# can grow the number of series without bound.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


@contextmanager
def multiprocess_directory(workers: int) -> Iterator[None]:
    """For `replay serve`, around starting the workers: with more than one, a fresh
    directory for their metric files, named in the environment they inherit, and removed
    when they are gone (files from an earlier run would be added to this one's counts)."""
    if workers <= 1:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="replay-metrics-") as directory:
        os.environ[MULTIPROCESS_DIR_VARIABLE] = directory
        try:
            yield
        finally:
            del os.environ[MULTIPROCESS_DIR_VARIABLE]


class ServiceMetrics:
    """The counters and histograms of one service process, and the scrape's answer."""

    def __init__(self) -> None:
        # prometheus-client picks its value store when imported, from the same variable.
        self.multiprocess = MULTIPROCESS_DIR_VARIABLE in os.environ
        self._values = CollectorRegistry()
        if self.multiprocess:
            # Every worker's files, this one's included: registering the metrics
            # themselves as well would count this worker twice.
            MultiProcessCollector(self._values)  # type: ignore[no-untyped-call]
        own = None if self.multiprocess else self._values
        self.requests = Counter(
            "replay_http_requests", "HTTP requests answered, by route template, method and "
            "status.", ["route", "method", "status"], registry=own)
        self.latency = Histogram(
            "replay_http_request_duration_seconds", "Time from a request's arrival to the end "
            "of its answer, by route template and method.", ["route", "method"],
            buckets=LATENCY_BUCKETS, registry=own)
        self.stored = Counter("replay_transitions_stored", "Transitions stored, by buffer.",
                              ["buffer"], registry=own)
        self.sampled = Counter("replay_transitions_sampled", "Transitions sampled, by buffer.",
                               ["buffer"], registry=own)
        self.rate_limit_holds = Counter(
            "replay_rate_limit_holds", "Sample requests a buffer's rate limit held back, by "
            "outcome: 'waited' (then answered) or 'refused' (answered 429).",
            ["buffer", "outcome"], registry=own)
        self.idempotent_repeats = Counter(
            "replay_idempotent_repeats", "Stores answered from their Idempotency-Key's record "
            "instead of being stored again (a client's retry).", ["buffer"], registry=own)
        self._request_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._sampled: dict[str, Counter] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        series = self._request_series.get((route, method, status))
        if series is None:
            series = (self.requests.labels(route, method, str(status)),
                      self.latency.labels(route, method))
            self._request_series[(route, method, status)] = series
        series[0].inc()
        series[1].observe(seconds)

    def count_store(self, buffer: str, inserted: Inserted) -> None:
        if inserted.repeated:
            self.idempotent_repeats.labels(buffer).inc()
        else:
            self.stored.labels(buffer).inc(inserted.count)

    def count_sample(self, buffer: str, transitions: int, *, waited: bool) -> None:
        sampled = self._sampled.get(buffer)
        if sampled is None:  # labels() cost 5 us a request; the child stays the same
            sampled = self._sampled[buffer] = self.sampled.labels(buffer)
        sampled.inc(transitions)
        if waited:
            self.rate_limit_holds.labels(buffer, "waited").inc()

    def count_refusal(self, buffer: str) -> None:
        self.rate_limit_holds.labels(buffer, "refused").inc()

    async def exposition(self, redis: Redis) -> bytes:
        """The text a scrape gets: every worker's counts, then what Redis holds now."""
        storage = CollectorRegistry()
        storage.register(await StorageSnapshot.read(redis))
        return generate_latest(self._values) + generate_latest(storage)


@dataclass(frozen=True)
class BufferGauges:
    size: int
    capacity: int


@dataclass(frozen=True, eq=False)  # a registry keys its collectors by identity
class StorageSnapshot(Collector):
    """Whether Redis answered, and each buffer's size and capacity, as read for a scrape."""

    redis_up: bool
    buffers: dict[str, BufferGauges]

    @classmethod
    async def read(cls, redis: Redis) -> StorageSnapshot:
        """Two round trips whatever the number of buffers: their names, then one pipeline
        of their counters."""
        try:
            names = sorted(member.decode() for member in cast(
                set[bytes], await redis.smembers(keys.REGISTRY)))
            async with redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hmget(keys.meta(name), ["capacity", "total_inserted"])
                replies = cast(list[list[bytes | None]], await pipe.execute())
        except (RedisError, OSError):
            return cls(redis_up=False, buffers={})
        buffers = {name: BufferGauges(size=min(int(inserted), int(capacity)),
                                      capacity=int(capacity))
                   for name, (capacity, inserted) in zip(names, replies, strict=True)
                   if capacity is not None and inserted is not None}  # None: deleted meanwhile
        return cls(redis_up=True, buffers=buffers)

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("replay_redis_up", "1 if Redis answered this scrape, else 0.")
        up.add_metric([], 1.0 if self.redis_up else 0.0)
        size = GaugeMetricFamily("replay_buffer_size", "Transitions a buffer holds.",
                                 labels=["buffer"])
        capacity = GaugeMetricFamily("replay_buffer_capacity",
                                     "Transitions a buffer can hold before overwriting.",
                                     labels=["buffer"])
        for name, gauges in self.buffers.items():
            size.add_metric([name], gauges.size)
            capacity.add_metric([name], gauges.capacity)
        return [up, size, capacity]


class RequestMetrics:
    """ASGI middleware counting and timing every HTTP request by its route template
    (`/buffers/{name}/sample`, never the buffer's name), method and status."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = perf_counter()
        status = 500  # what the server answers when the app raises before answering

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, send_noting_status)
        finally:
            # The router writes the route it matched into the scope it was handed.
            route = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            self._metrics.observe_request(route, method, status, perf_counter() - started)


router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    service_metrics: ServiceMetrics = request.app.state.metrics
    redis: Redis = request.app.state.redis
    return Response(await service_metrics.exposition(redis), media_type=CONTENT_TYPE_LATEST)


def install_metrics(app: FastAPI) -> None:
    """Count every request from here on, and serve `GET /metrics`. Install it last, so
    that it is the outermost middleware and counts what the others answer too."""
    service_metrics = ServiceMetrics()
    app.state.metrics = service_metrics
    app.add_middleware(RequestMetrics, metrics=service_metrics)
    app.include_router(router)
