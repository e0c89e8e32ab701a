"""AsyncReplayClient does what ReplayClient does, awaited."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import numpy as np
import pytest

from replay_service import (
    AsyncReplayClient,
    BufferNotFound,
    Conflict,
    ConnectionFailed,
    NotEnoughTransitions,
    RetryPolicy,
)
from replay_service.service.redis_server import free_port
from tests.support import ServiceProcess


def row(i: int) -> dict[str, Any]:
    return {"obs": np.full(4, i, dtype=np.float64), "action": i % 2, "reward": float(i),
            "next_obs": np.full(4, i + 1, dtype=np.float64), "done": i % 5 == 4}


def held(http: httpx.Client, name: str) -> int:
    response = http.get(f"/buffers/{name}/size")
    return int(response.json()["size"]) if response.status_code == 200 else 0


def test_async_store_and_sample_the_seed_loop(service: ServiceProcess,
                                              buffer_name: str) -> None:
    async def loop() -> None:
        async with AsyncReplayClient(service.url, buffer_name) as B:
            for i in range(50):
                await B.store(**row(i))
            await B.flush()
            assert (await B.size()).size == 50
            batch = await B.sample(32)
            assert batch.obs.shape == (32, 4) and batch.obs.dtype == np.float32
            assert batch.action.dtype == np.int64
            assert batch.reward.dtype == np.float32
            assert batch.done.dtype == np.bool_
            np.testing.assert_array_equal(batch.reward, batch.indices.astype(np.float32))
            info = await B.info()
            assert info.schema is not None and list(info.schema.fields) == list(row(0))

    asyncio.run(loop())


def test_async_store_flushes_by_count_and_by_time(service: ServiceProcess, http: httpx.Client,
                                                  buffer_name: str) -> None:
    async def loop() -> None:
        async with AsyncReplayClient(service.url, buffer_name, flush_every=4,
                                     flush_interval_s=0.2) as B:
            for i in range(6):
                await B.store_row(row(i))
            deadline = time.monotonic() + 5  # sealed by count, sent by the sender task
            while held(http, buffer_name) < 4:
                assert time.monotonic() < deadline, "the sealed batch was never sent"
                await asyncio.sleep(0.05)
            for _ in range(100):  # by time: the task sends the other 2 while we wait
                await asyncio.sleep(0.05)
                if (await B.size()).size == 6:
                    break
            assert (await B.size()).size == 6

    asyncio.run(loop())


def test_async_context_manager_leaves_nothing_behind(service: ServiceProcess,
                                                     http: httpx.Client,
                                                     buffer_name: str) -> None:
    async def loop() -> None:
        async with AsyncReplayClient(service.url, buffer_name, flush_interval_s=60) as B:
            for i in range(7):
                await B.store_row(row(i))

    asyncio.run(loop())
    assert held(http, buffer_name) == 7


def test_async_unsent_counts_the_pending_rows_and_the_outbox(service: ServiceProcess,
                                                            buffer_name: str) -> None:
    async def loop() -> None:
        async with AsyncReplayClient(service.url, buffer_name, flush_every=2,
                                     flush_interval_s=60) as B:
            await B.store_row(row(0))
            assert B.unsent == 1  # pending here
            await B.store_row(row(1))
            await B.store_row(row(2))
            assert B.unsent == 3  # two sealed, not yet sent: the sender task has not run
            await B.flush()
            assert B.unsent == 0

    asyncio.run(loop())


def test_async_errors_are_typed(service: ServiceProcess, buffer_name: str) -> None:
    async def loop() -> None:
        async with AsyncReplayClient(service.url, buffer_name) as B:
            with pytest.raises(BufferNotFound, match="does not exist"):
                await B.sample(4)
            await B.store_batch({name: [value] for name, value in row(0).items()})
            with pytest.raises(NotEnoughTransitions) as caught:
                await B.sample(4, replace=False)
            assert caught.value.size == 1
            await B.delete()
            with pytest.raises(BufferNotFound):
                await B.size()

    asyncio.run(loop())


def test_async_background_flush_error_is_raised_by_the_next_call(
        service: ServiceProcess, http: httpx.Client, buffer_name: str) -> None:
    assert http.put(f"/buffers/{buffer_name}", json={"capacity": 10}).status_code == 201

    async def loop() -> None:
        async with AsyncReplayClient(service.url, buffer_name, capacity=20,
                                     flush_interval_s=0.1) as B:
            await B.store_row(row(0))
            await asyncio.sleep(1.0)  # ten flush intervals: the flush task has failed by now
            with pytest.raises(Conflict, match="exists with capacity 10, not 20") as caught:
                await B.flush()
            assert caught.value.dropped == 1

    asyncio.run(loop())


def test_async_unreachable_service_raises_connection_failed() -> None:
    async def loop() -> None:
        B = AsyncReplayClient(f"http://127.0.0.1:{free_port()}", "cartpole", timeout_s=2,
                              retry=RetryPolicy(call_deadline_s=0.5))
        with pytest.raises(ConnectionFailed):
            await B.size()
        await B.close()

    asyncio.run(loop())
