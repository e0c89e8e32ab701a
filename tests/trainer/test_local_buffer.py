from __future__ import annotations

import numpy as np
import pytest

from replay_service.trainer.local_buffer import LocalReplayBuffer


def columns(start: int, count: int) -> dict[str, np.ndarray]:
    ids = np.arange(start, start + count)
    return {"obs": np.stack([ids, -ids], axis=1).astype(np.float32), "action": ids,
            "done": ids % 2 == 0}


def test_sample_shapes_and_dtypes() -> None:
    buffer = LocalReplayBuffer(100, seed=0)
    buffer.add(columns(0, 10))
    batch = buffer.sample(batch_size=8, num_batches=3)
    assert batch["obs"].shape == (3, 8, 2) and batch["obs"].dtype == np.float32
    assert batch["action"].shape == (3, 8) and batch["done"].dtype == np.bool_
    assert buffer.sample(4)["obs"].shape == (1, 4, 2)
    # Rows stay together: each sampled obs belongs to its sampled action.
    np.testing.assert_array_equal(batch["obs"][..., 0], batch["action"])


def test_ring_overwrites_oldest() -> None:
    buffer = LocalReplayBuffer(5, seed=0)
    buffer.add(columns(0, 3))
    buffer.add(columns(3, 4))  # wraps: 5 and 6 replace 0 and 1
    assert len(buffer) == 5 and buffer.total_inserted == 7 and buffer.cursor == 2
    np.testing.assert_array_equal(buffer.columns["action"], [5, 6, 2, 3, 4])
    assert set(np.unique(buffer.sample(64, 4)["action"])) == {2, 3, 4, 5, 6}


def test_batch_longer_than_capacity_keeps_newest() -> None:
    buffer = LocalReplayBuffer(4, seed=0)
    buffer.add(columns(0, 1))
    buffer.add(columns(1, 10))
    assert sorted(buffer.columns["action"]) == [7, 8, 9, 10]
    assert buffer.cursor == 3  # 11 inserted into 4 slots, as if added one at a time
    np.testing.assert_array_equal(buffer.columns["action"], [8, 9, 10, 7])


def test_rejects_mismatched_fields_and_empty_sampling() -> None:
    buffer = LocalReplayBuffer(4)
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(1)
    buffer.add(columns(0, 2))
    with pytest.raises(ValueError, match="fields"):
        buffer.add({"obs": np.zeros((1, 2), np.float32)})
    with pytest.raises(ValueError, match="shape"):
        buffer.add({**columns(0, 1), "obs": np.zeros((1, 3), np.float32)})
