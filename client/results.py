"""What the SDK's calls return: plain, immutable values."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from replay_service.wire.schema import Prioritized, RateLimit, Schema

__all__ = ["Batch", "BufferInfo", "Episode", "EpisodePage", "SizeInfo", "StoreResult", "Weights"]


@dataclass(frozen=True)
class StoreResult:
    """One stored batch: its slots start at `first_slot` and wrap at `capacity`."""

    stored: int
    first_slot: int
    size: int
    capacity: int
    total_inserted: int


@dataclass(frozen=True)
class SizeInfo:
    """The counters of a buffer, read together in one call."""

    size: int
    capacity: int
    total_inserted: int
    total_sampled: int


@dataclass(frozen=True)
class BufferInfo(SizeInfo):
    """A buffer as the service describes it; `schema` is None until its first store,
    `prioritized` and `rate_limit` None for a uniform buffer sampled without limit."""

    name: str
    schema: Schema | None
    created_at: float
    prioritized: Prioritized | None = None
    rate_limit: RateLimit | None = None
    shards: int = 1
    per_shard: tuple[SizeInfo, ...] | None = None
    """A sharded buffer: each shard's counters, in order (the ones above are their sums)."""


class Batch(Mapping[str, np.ndarray]):
    """A sampled minibatch: one array per field, batch dimension first.

    `indices` holds the slot each transition was read from (int64); `size` and
    `total_inserted` are the buffer's counters when the batch was drawn.

    Fields read as items (`batch["obs"]`) or attributes (`batch.obs`); an attribute
    of the batch itself (`indices`, `size`, `total_inserted`, or a Mapping method)
    wins over a field of the same name, which items still reach. `len(batch)` is the
    number of fields, as for any mapping; the number of transitions is
    `len(batch.indices)`.
    """

    __slots__ = ("_columns", "indices", "inserted", "size", "total_inserted", "weights")

    def __init__(self, columns: Mapping[str, np.ndarray], indices: np.ndarray, *, size: int,
                 total_inserted: int, weights: np.ndarray | None = None,
                 inserted: np.ndarray | None = None) -> None:
        self._columns = dict(columns)
        self.indices = indices
        self.size = size
        self.total_inserted = total_inserted
        self.weights = weights
        """Prioritized buffers: importance-sampling weights (None when uniform)."""
        self.inserted = inserted
        """Prioritized buffers: the insertion numbers to pass back with new priorities."""

    def __getitem__(self, name: str) -> np.ndarray:
        return self._columns[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)

    def __getattr__(self, name: str) -> np.ndarray:
        # Only reached when normal lookup fails; private names never mean a field,
        # which also keeps copy and pickle from recursing before _columns is set.
        if not name.startswith("_"):
            try:
                return self._columns[name]
            except KeyError:
                pass
        raise AttributeError(f"the batch has no field '{name}'; its fields are "
                             f"{list(self._columns)}")

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}: {column.dtype}{list(column.shape)}"
                           for name, column in self._columns.items())
        return f"Batch({fields}; size={self.size}, total_inserted={self.total_inserted})"


@dataclass(frozen=True)
class Weights:
    """One published version of a policy's weights.

    Pass it back to `fetch_weights` to be sent only a newer version: the service
    compares `etag` and answers without a body while it is still the newest.
    """

    tensors: dict[str, np.ndarray]
    metadata: dict[str, str]
    version: int
    etag: str


@dataclass(frozen=True)
class Episode:
    """A finished episode as a collector reported it; `id` orders them."""

    episode_return: float
    length: int
    source: str
    id: str = ""


@dataclass(frozen=True)
class EpisodePage:
    """Episodes after some id, oldest first; pass `last_id` to read only newer ones."""

    episodes: list[Episode]
    last_id: str
