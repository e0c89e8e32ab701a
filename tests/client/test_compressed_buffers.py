"""The SDK on a compressed buffer: it compresses on the writer's side and inflates on the
reader's, so the service and Redis only ever move the small form, and the arrays a
trainer samples are exactly the ones a collector stored."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np

from replay_service import AsyncReplayClient, ReplayClient, Schema
from replay_service.client.snapshot import export_buffer, import_buffer
from replay_service.wire.codec import SAFETENSORS, decode_safetensors, read_safetensors_metadata
from replay_service.wire.frames import COMPRESSED_SIZES_TENSOR, COMPRESSED_TENSOR
from tests.atari_frames import PONG_SCHEMA, pong_batch
from tests.support import ServiceProcess

SCHEMA = Schema.model_validate(PONG_SCHEMA)


def sorted_by_id(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    order = np.argsort(batch["id"])
    return {name: np.asarray(batch[name])[order] for name in SCHEMA.fields}


def assert_same(got: dict[str, np.ndarray], sent: dict[str, np.ndarray]) -> None:
    for name in SCHEMA.fields:
        assert got[name].dtype == sent[name].dtype, name
        assert np.array_equal(got[name], sent[name]), name


def test_rows_stored_one_by_one_sample_back_exactly(service: ServiceProcess,
                                                    buffer_name: str) -> None:
    sent = pong_batch(range(60))
    with ReplayClient(service.url, buffer_name, capacity=100, schema=SCHEMA,
                      flush_every=32) as B:
        for i in range(60):
            B.store(**{name: column[i] for name, column in sent.items()})
        B.flush()
        batch = B.sample(60, replace=False)
        assert batch.obs.shape == (60, 4, 84, 84) and batch.obs.flags.c_contiguous
        assert_same(sorted_by_id(dict(batch)), sent)
        minibatches = B.sample(8, num_batches=4)
        assert minibatches.obs.shape == (4, 8, 4, 84, 84)
        assert minibatches.indices.shape == (4, 8)
        held = sent["obs"][minibatches["id"].ravel()]
        assert np.array_equal(minibatches.obs.reshape(-1, 4, 84, 84), held)


def test_only_frames_cross_the_network(service: ServiceProcess, buffer_name: str) -> None:
    """What the SDK sends is what Redis keeps: a sample asked for as frames is small."""
    with ReplayClient(service.url, buffer_name, capacity=100, schema=SCHEMA) as B:
        B.store_batch(pong_batch(range(50)))
    with httpx.Client(base_url=service.url) as http:
        answer = http.get(f"/buffers/{buffer_name}/sample",
                          params={"batch_size": 50, "replace": False, "compressed": True},
                          headers={"accept": SAFETENSORS})
    tensors = decode_safetensors(answer.content).columns
    assert tensors[COMPRESSED_SIZES_TENSOR].max() < 1_000
    assert len(answer.content) < 50 * 1_000


def test_the_async_client_inflates_too(service: ServiceProcess, buffer_name: str) -> None:
    sent = pong_batch(range(40))

    async def run() -> dict[str, np.ndarray]:
        async with AsyncReplayClient(service.url, buffer_name, capacity=100,
                                     schema=SCHEMA) as B:
            await B.store_batch(sent)
            return dict(await B.sample(40, replace=False))

    assert_same(sorted_by_id(asyncio.run(run())), sent)


def test_a_json_client_stores_plain_rows_the_service_compresses(
        service: ServiceProcess, buffer_name: str) -> None:
    sent = pong_batch(range(4))
    with ReplayClient(service.url, buffer_name, capacity=10, schema=SCHEMA, binary=False) as B:
        B.store_batch(sent)
        assert_same(sorted_by_id(dict(B.sample(4, replace=False))), sent)


def test_an_export_keeps_the_frames_and_an_import_restores_them(
        service: ServiceProcess, buffer_name: str, tmp_path: Path) -> None:
    path = tmp_path / "pong.safetensors"
    with ReplayClient(service.url, buffer_name, capacity=50, schema=SCHEMA) as B:
        for first in range(0, 90, 30):
            B.store_batch(pong_batch(range(first, first + 30)))
        exported = export_buffer(B, path, chunk=16)
    assert exported.transitions == 50
    body = path.read_bytes()
    assert read_safetensors_metadata(body)["compressed"] == "zstd frames"
    tensors = decode_safetensors(body).columns
    assert "obs" not in tensors and tensors[COMPRESSED_SIZES_TENSOR].shape == (50,)
    assert len(body) < 50 * 1_000 and COMPRESSED_TENSOR in tensors

    with ReplayClient(service.url, f"{buffer_name}-restored") as restored:
        import_buffer(restored, path, chunk=16)
        import_buffer(restored, path, chunk=16)  # again: nothing stored twice
        assert len(restored) == 50
        assert_same(sorted_by_id(dict(restored.read(0, 50))), pong_batch(range(40, 90)))
