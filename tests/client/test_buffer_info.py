"""info() and create() describe a buffer as the service does, its sampling options
included: a trainer reads them back to know what kind of buffer it was handed."""

from __future__ import annotations

import asyncio

from replay_service import (
    AsyncReplayClient,
    BufferInfo,
    Prioritized,
    RateLimit,
    ReplayClient,
)
from tests.support import ServiceProcess

PRIORITIZED = Prioritized(alpha=0.7)
RATE_LIMIT = RateLimit(min_size=4, samples_per_insert=2.5, tolerance=16.0)


def read_back_async(url: str, buffer: str) -> BufferInfo:
    async def read() -> BufferInfo:
        async with AsyncReplayClient(url, buffer) as B:
            return await B.info()

    return asyncio.run(read())


def test_both_clients_read_back_the_prioritized_and_rate_limit_options(
        service: ServiceProcess, buffer_name: str) -> None:
    with ReplayClient(service.url, buffer_name, capacity=64, prioritized=PRIORITIZED,
                      rate_limit=RATE_LIMIT) as B:
        created = B.create()
        info = B.info()
    described = read_back_async(service.url, buffer_name)
    for answer in (created, info, described):
        assert (answer.prioritized, answer.rate_limit) == (PRIORITIZED, RATE_LIMIT)
        assert (answer.name, answer.capacity) == (buffer_name, 64)


def test_a_uniform_buffer_without_a_rate_limit_has_neither_option(
        service: ServiceProcess, buffer_name: str) -> None:
    with ReplayClient(service.url, buffer_name, capacity=64) as B:
        B.create()
        info = B.info()
    described = read_back_async(service.url, buffer_name)
    for answer in (info, described):
        assert (answer.prioritized, answer.rate_limit) == (None, None)
