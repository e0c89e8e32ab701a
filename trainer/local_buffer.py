"""An in-process replay buffer: numpy columns in a ring, sampled uniformly with replacement.

It is the baseline the replay service is measured against and the buffer of the
reference loop, and it samples in the same layout the service returns for many
minibatches at once: every field shaped [num_batches, batch_size, ...].
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["LocalReplayBuffer"]


class LocalReplayBuffer:
    """A ring of `capacity` transitions; columns are allocated from the first `add`."""

    def __init__(self, capacity: int, seed: int | np.random.Generator | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.rng = np.random.default_rng(seed)
        self.columns: dict[str, np.ndarray] = {}
        self.cursor = 0
        self.size = 0
        self.total_inserted = 0

    def __len__(self) -> int:
        return self.size

    def _allocate(self, batch: Mapping[str, np.ndarray]) -> None:
        self.columns = {name: np.zeros((self.capacity, *np.shape(values)[1:]),
                                       dtype=np.asarray(values).dtype)
                        for name, values in batch.items()}

    def add(self, batch: Mapping[str, np.ndarray]) -> None:
        """Append a batch of columns (batch dimension first), overwriting the oldest when full.

        Raises:
            ValueError: fields, per-transition shapes or lengths differ from the first batch.
        """
        if not batch:
            raise ValueError("a batch needs at least one field")
        if not self.columns:
            self._allocate(batch)
        if set(batch) != set(self.columns):
            raise ValueError(f"fields {sorted(batch)} differ from {sorted(self.columns)}")
        lengths = {len(values) for values in batch.values()}
        if len(lengths) != 1:
            raise ValueError(f"columns of one batch must have one length, got {sorted(lengths)}")
        count = lengths.pop()
        # A batch longer than the ring leaves only its newest `capacity` transitions.
        skip = max(count - self.capacity, 0)
        slots = (self.cursor + skip + np.arange(count - skip)) % self.capacity
        for name, values in batch.items():
            column = self.columns[name]
            values = np.asarray(values)
            if values.shape[1:] != column.shape[1:]:
                raise ValueError(f"field {name!r}: shape {values.shape[1:]} per transition, "
                                 f"expected {column.shape[1:]}")
            column[slots] = values[skip:]
        self.cursor = (self.cursor + count) % self.capacity
        self.size = min(self.size + count, self.capacity)
        self.total_inserted += count

    def sample(self, batch_size: int, num_batches: int = 1) -> dict[str, np.ndarray]:
        """Uniform with replacement; every field shaped [num_batches, batch_size, ...].

        Raises:
            ValueError: the buffer is empty.
        """
        if self.size == 0:
            raise ValueError("cannot sample from an empty buffer")
        indices = self.rng.integers(0, self.size, size=(num_batches, batch_size))
        return {name: column[indices] for name, column in self.columns.items()}
