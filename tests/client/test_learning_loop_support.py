"""What a distributed learner needs beyond store and sample: many minibatches per
request, weights flowing from trainer to collectors, and episode reports."""

from __future__ import annotations

import asyncio

import numpy as np

from replay_service import AsyncReplayClient, Episode, ReplayClient
from tests.client.test_store_and_sample import cartpole_rows
from tests.support import ServiceProcess


def filled_client(service: ServiceProcess, name: str, count: int = 50) -> ReplayClient:
    client = ReplayClient(service.url, buffer=name)
    for row in cartpole_rows(count):
        client.store_row(row)
    client.flush()
    return client


def test_sample_many_minibatches_in_one_call(service: ServiceProcess, buffer_name: str) -> None:
    with filled_client(service, buffer_name) as B:
        batch = B.sample(64, num_batches=16)
    assert batch.obs.shape == (16, 64, 4)
    assert batch.action.shape == (16, 64)
    assert batch.indices.shape == (16, 64)
    assert batch.obs.dtype == np.float32


def test_weights_flow_from_publisher_to_fetcher_once_per_version(service: ServiceProcess,
                                                                 buffer_name: str) -> None:
    layer = np.arange(8, dtype=np.float32).reshape(2, 4)
    with filled_client(service, buffer_name) as trainer, \
            ReplayClient(service.url, buffer=buffer_name) as collector:
        assert collector.fetch_weights() is None  # nothing published yet
        assert trainer.publish_weights({"layers.0.weight": layer},
                                       {"gradient_steps": "128"}) == 1
        first = collector.fetch_weights()
        assert first is not None
        np.testing.assert_array_equal(first.tensors["layers.0.weight"], layer)
        assert (first.version, first.metadata) == (1, {"gradient_steps": "128"})
        assert collector.fetch_weights(first) is None  # unchanged: no body sent
        trainer.publish_weights({"layers.0.weight": layer * 2})
        second = collector.fetch_weights(first)
        assert second is not None and second.version == 2
        np.testing.assert_array_equal(second.tensors["layers.0.weight"], layer * 2)


def test_episode_reports_are_read_back_in_order(service: ServiceProcess,
                                                buffer_name: str) -> None:
    with filled_client(service, buffer_name) as B:
        B.record_episodes([Episode(12.0, 12, "c0"), Episode(30.0, 30, "c1")])
        page = B.episodes()
        assert [(e.episode_return, e.length, e.source) for e in page.episodes] == [
            (12.0, 12, "c0"), (30.0, 30, "c1")]
        B.record_episodes([Episode(7.0, 7, "c0")])
        newer = B.episodes(after=page.last_id)
        assert [e.episode_return for e in newer.episodes] == [7.0]


def test_async_client_exchanges_weights_and_samples_many(service: ServiceProcess,
                                                        buffer_name: str) -> None:
    filled_client(service, buffer_name).close()

    async def scenario() -> None:
        async with AsyncReplayClient(service.url, buffer=buffer_name) as B:
            await B.publish_weights({"w": np.ones(3, np.float32)})
            weights = await B.fetch_weights()
            assert weights is not None and await B.fetch_weights(weights) is None
            batch = await B.sample(8, num_batches=4)
            assert batch.reward.shape == (4, 8)
            await B.record_episodes([Episode(1.0, 1, "a")])
            assert len((await B.episodes()).episodes) == 1

    asyncio.run(scenario())
