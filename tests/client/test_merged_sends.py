"""Batches queued behind a slow send leave together: fewer requests, same transitions.

`store_batch(..., wait=False)` is how one thread stores fast: the batch joins the
outbox and the background sender merges what queued up behind the request in
flight. Merging must never change what is stored, its order, or what a key names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis

from replay_service import AsyncReplayClient, ReplayClient
from replay_service.client.outbox import Outbox, SealedBatch
from replay_service.client.results import StoreResult
from replay_service.service.redis_server import RedisServer
from tests.support import ServiceProcess

BATCH = 100
BATCHES = 60


def numbered(start: int, count: int) -> dict[str, np.ndarray]:
    """Transitions whose reward is their position in the store order."""
    reward = np.arange(start, start + count, dtype=np.float32)
    return {"obs": np.tile(reward[:, None], (1, 4)), "action": (reward % 2).astype(np.int64),
            "reward": reward, "done": reward % 10 == 9}


def requests_stored(redis_server: RedisServer, name: str) -> int:
    """Each store request leaves one idempotency record in Redis."""
    client = redis.Redis.from_url(redis_server.url)
    try:
        return sum(1 for _ in client.scan_iter(f"replay:{{{name}}}:idem:*", count=1000))
    finally:
        client.close()


def assert_stored_in_order(client: ReplayClient, total: int) -> None:
    everything = client.read(0, total)
    np.testing.assert_array_equal(everything.reward, np.arange(total, dtype=np.float32))
    np.testing.assert_array_equal(everything.obs[:, 3], everything.reward)
    assert everything.total_inserted == total


def test_unawaited_batches_are_merged_and_stored_once_in_order(
        service: ServiceProcess, redis_server: RedisServer, buffer_name: str) -> None:
    with ReplayClient(service.url, buffer_name) as client:
        for start in range(0, BATCH * BATCHES, BATCH):
            columns = numbered(start, BATCH)
            assert client.store_batch(columns, wait=False) is None
            columns["reward"][:] = -1  # the caller reuses its arrays at once
        client.flush()
        assert client.unsent == 0
        assert_stored_in_order(client, BATCH * BATCHES)
    # The first request also creates the buffer: the rest queue up behind it.
    assert requests_stored(redis_server, buffer_name) < BATCHES // 2


def test_batches_a_caller_waits_on_or_keyed_by_the_caller_leave_alone() -> None:
    outbox = Outbox(1_000, "block")
    awaited = SealedBatch(numbered(0, 10), 10, awaited=True)
    loose = [SealedBatch(numbered(10 * i, 10), 10) for i in range(1, 4)]
    keyed = SealedBatch(numbered(40, 10), 10, key="import-0", keyed=True)
    for batch in (awaited, *loose, keyed):
        outbox.add(batch)

    assert outbox.next_to_send() is awaited
    outbox.settle_head()
    merged = outbox.next_to_send()
    assert merged is not None and merged.parts == loose and merged.count == 30
    assert merged.key not in {batch.key for batch in loose}
    np.testing.assert_array_equal(merged.columns["reward"], np.arange(10, 40))
    assert outbox.next_to_send() is merged, "a batch once handed out never changes"
    merged.result = StoreResult(stored=30, first_slot=10, size=40, capacity=100,
                                total_inserted=40)
    outbox.settle_head()
    assert all(batch.result is merged.result for batch in loose)
    assert outbox.next_to_send() is keyed
    assert outbox.unsent == 10


def test_merges_stop_at_the_row_and_byte_bounds_and_at_a_change_of_shape() -> None:
    outbox = Outbox(10_000, "block", merge_rows=25, merge_bytes=1 << 20)
    for i in range(4):
        outbox.add(SealedBatch(numbered(10 * i, 10), 10))
    wider = numbered(40, 10)
    wider["obs"] = np.zeros((10, 5), np.float32)
    outbox.add(SealedBatch(wider, 10))
    counts = []
    while (batch := outbox.next_to_send()) is not None:
        counts.append(batch.count)
        outbox.settle_head()
    assert counts == [20, 20, 10]


@pytest.fixture
def small_batches_service(redis_server: RedisServer, tmp_path: Path
                          ) -> Iterator[ServiceProcess]:
    service = ServiceProcess(redis_server.url, tmp_path, max_batch=250).start()
    yield service
    service.stop()


def test_a_merge_the_service_refuses_as_too_large_is_sent_in_its_parts(
        small_batches_service: ServiceProcess, buffer_name: str) -> None:
    with ReplayClient(small_batches_service.url, buffer_name) as client:
        for start in range(0, BATCH * BATCHES, BATCH):
            client.store_batch(numbered(start, BATCH), wait=False)
        client.flush()
        assert_stored_in_order(client, BATCH * BATCHES)


def test_the_async_client_merges_too(service: ServiceProcess, redis_server: RedisServer,
                                     buffer_name: str) -> None:
    async def store_all() -> np.ndarray:
        async with AsyncReplayClient(service.url, buffer_name) as client:
            for start in range(0, BATCH * BATCHES, BATCH):
                await client.store_batch(numbered(start, BATCH), wait=False)
            await client.flush()
            return (await client.read(0, BATCH * BATCHES)).reward

    np.testing.assert_array_equal(asyncio.run(store_all()), np.arange(BATCH * BATCHES))
    assert requests_stored(redis_server, buffer_name) < BATCHES // 2
