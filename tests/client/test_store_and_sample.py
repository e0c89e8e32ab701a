"""The classic replay loop against the service: store, flush, count, sample."""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np
import pytest

from replay_service import ReplayClient, Schema
from tests.support import ServiceProcess

CARTPOLE_DTYPES = {"obs": (np.float32, (4,)), "action": (np.int64, ()),
                   "reward": (np.float32, ()), "next_obs": (np.float32, (4,)),
                   "done": (np.bool_, ())}


def cartpole_rows(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """Transitions as a gymnasium loop hands them over: float64 arrays, Python scalars."""
    rng = np.random.default_rng(seed)
    return [{"obs": rng.standard_normal(4), "action": int(rng.integers(2)),
             "reward": float(i), "next_obs": rng.standard_normal(4), "done": i % 10 == 9}
            for i in range(count)]


def held(http: httpx.Client, name: str) -> int:
    response = http.get(f"/buffers/{name}/size")
    return int(response.json()["size"]) if response.status_code == 200 else 0


def test_store_and_sample_the_seed_loop_end_to_end(service: ServiceProcess,
                                                   buffer_name: str) -> None:
    rows = cartpole_rows(100)
    with ReplayClient(service.url, buffer=buffer_name) as B:
        for row in rows:
            B.store(row["obs"], row["action"], row["reward"], row["next_obs"], row["done"])
        B.flush()
        assert len(B) == 100

        batch = B.sample(64)
        assert set(batch) == set(CARTPOLE_DTYPES)
        for name, (dtype, shape) in CARTPOLE_DTYPES.items():
            assert batch[name].dtype == dtype, name
            assert batch[name].shape == (64, *shape), name
        assert batch.indices.dtype == np.int64
        assert batch.indices.shape == (64,)
        assert ((batch.indices >= 0) & (batch.indices < 100)).all()
        assert (batch.size, batch.total_inserted) == (100, 100)
        with pytest.raises(AttributeError, match="its fields are"):
            batch.value  # noqa: B018
        with pytest.raises(TypeError):
            batch["obs"] = batch.next_obs  # type: ignore[operator]

        # One writer fills slots in store order, so slot i holds the i-th transition.
        everything = B.sample(100, replace=False)
        for slot, obs, action, reward, done in zip(everything.indices, everything.obs,
                                                   everything.action, everything.reward,
                                                   everything.done, strict=True):
            row = rows[slot]
            np.testing.assert_array_equal(obs, np.float32(row["obs"]))
            assert (action, reward, done) == (row["action"], row["reward"], row["done"])


def test_store_creates_the_buffer_with_the_inferred_schema(service: ServiceProcess,
                                                           buffer_name: str) -> None:
    with ReplayClient(service.url, buffer_name, capacity=500) as B:
        for row in cartpole_rows(3):
            B.store_row(row)
        B.flush()
        info = B.info()
    assert (info.name, info.capacity, info.size) == (buffer_name, 500, 3)
    assert info.schema is not None
    assert {name: (spec.dtype, spec.shape) for name, spec in info.schema.fields.items()} == {
        "obs": ("float32", [4]), "action": ("int64", []), "reward": ("float32", []),
        "next_obs": ("float32", [4]), "done": ("bool", [])}


def test_store_flushes_by_count_without_flush(service: ServiceProcess, http: httpx.Client,
                                              buffer_name: str) -> None:
    with ReplayClient(service.url, buffer_name, flush_every=10, flush_interval_s=60) as B:
        for row in cartpole_rows(25):
            B.store_row(row)
        deadline = time.monotonic() + 5  # sealed by count, sent by the background sender
        while held(http, buffer_name) < 20:
            assert time.monotonic() < deadline, "the sealed batches were never sent"
            time.sleep(0.05)
        time.sleep(0.3)
        assert len(B) == 20  # the 5 rows still pending here are not counted
    assert held(http, buffer_name) == 25


def test_store_flushes_by_time_in_the_background(service: ServiceProcess, http: httpx.Client,
                                                 buffer_name: str) -> None:
    with ReplayClient(service.url, buffer_name, flush_every=1000, flush_interval_s=0.2) as B:
        for row in cartpole_rows(5):
            B.store_row(row)
        deadline = time.monotonic() + 5
        # Stored, and the answer read: the service may hold the rows a moment before the
        # sender has settled their batch.
        while held(http, buffer_name) < 5 or B.unsent:
            assert time.monotonic() < deadline, "the pending rows were never flushed"
            time.sleep(0.05)
        assert B.flush() is None  # nothing left to send


def test_context_manager_leaves_nothing_behind(service: ServiceProcess, http: httpx.Client,
                                               buffer_name: str) -> None:
    with ReplayClient(service.url, buffer_name, flush_interval_s=60) as B:
        for row in cartpole_rows(7):
            B.store_row(row)
    assert held(http, buffer_name) == 7


def test_context_manager_flushes_when_left_by_an_exception(
        service: ServiceProcess, http: httpx.Client, buffer_name: str) -> None:
    try:
        with ReplayClient(service.url, buffer_name, flush_interval_s=60) as B:
            for row in cartpole_rows(3):
                B.store_row(row)
            raise KeyError("the environment crashed")
    except KeyError:
        pass
    assert held(http, buffer_name) == 3


def test_store_batch_sends_after_the_pending_rows(service: ServiceProcess,
                                                  buffer_name: str) -> None:
    with ReplayClient(service.url, buffer_name, flush_interval_s=60) as B:
        for row in cartpole_rows(3):
            B.store_row(row)
        result = B.store_batch({"obs": np.zeros((2, 4)), "action": [1, 0],
                                "reward": [10.0, 20.0], "next_obs": np.ones((2, 4)),
                                "done": [False, True]})
        assert (result.stored, result.first_slot, result.size) == (2, 3, 5)
        assert B.flush() is None
        batch = B.sample(5, replace=False)
    by_slot = dict(zip(batch.indices.tolist(), batch.reward.tolist(), strict=True))
    assert by_slot == {0: 0.0, 1: 1.0, 2: 2.0, 3: 10.0, 4: 20.0}


def test_store_with_a_declared_schema_uses_its_dtypes(service: ServiceProcess,
                                                      buffer_name: str) -> None:
    schema = Schema.model_validate({"fields": {
        "obs": {"dtype": "uint8", "shape": [2, 2]},
        "action": {"dtype": "int32"},
        "reward": {"dtype": "float64", "allow_nonfinite": True},
    }})
    with ReplayClient(service.url, buffer_name, schema=schema, capacity=50) as B:
        B.store_row({"obs": [[0, 255], [1, 2]], "action": 3, "reward": float("nan")})
        B.store_row({"obs": [[4, 5], [6, 7]], "action": -1, "reward": 0.5})
        B.flush()
        assert B.info().schema == schema
        batch = B.sample(2, replace=False)
    assert [batch[name].dtype.name for name in ("obs", "action", "reward")] == [
        "uint8", "int32", "float64"]
    order = np.argsort(batch.indices)
    np.testing.assert_array_equal(batch.obs[order], [[[0, 255], [1, 2]], [[4, 5], [6, 7]]])
    np.testing.assert_array_equal(batch.reward[order], [np.nan, 0.5])


def test_store_copies_arrays_the_caller_reuses(service: ServiceProcess,
                                               buffer_name: str) -> None:
    obs = np.zeros(4, dtype=np.float32)
    with ReplayClient(service.url, buffer_name, flush_interval_s=60) as B:
        for step in range(3):
            obs[:] = step  # an environment writing into the same array each step
            B.store(obs, 0, 0.0, obs, False)
        B.flush()
        batch = B.sample(3, replace=False)
    assert sorted(batch.obs[:, 0].tolist()) == [0.0, 1.0, 2.0]


def test_store_after_delete_creates_the_buffer_again(service: ServiceProcess,
                                                     buffer_name: str) -> None:
    with ReplayClient(service.url, buffer_name, flush_every=2) as B:
        for row in cartpole_rows(2):
            B.store_row(row)
        B.delete()  # sends the first two before deleting
        for row in cartpole_rows(2):
            B.store_row(row)
        B.flush()
        assert B.size().total_inserted == 2


def test_create_declares_the_buffer_before_any_store(service: ServiceProcess,
                                                     buffer_name: str) -> None:
    with ReplayClient(service.url, buffer_name, capacity=64) as B:
        info = B.create()
        assert (info.capacity, info.size, info.schema) == (64, 0, None)
        assert B.create().created_at == info.created_at  # idempotent
        size = B.size()
    assert (size.size, size.capacity, size.total_inserted, size.total_sampled) == (0, 64, 0, 0)
