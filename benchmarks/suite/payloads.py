"""The transitions every subject stores and samples: CartPole-sized and Atari-sized.

Each payload is a schema plus a pool of random transitions drawn once from a fixed
seed; batches and fills are cut from the pool, so every subject handles the same
bytes. Random Atari frames do not compress, unlike real ones: the figures are the
worst case for any compression on the way.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from replay_service.service.storage import records
from replay_service.wire.schema import Schema

__all__ = ["ATARI", "CARTPOLE", "PAYLOADS", "Payload"]

_POOL_ROWS = 1024


@dataclass(frozen=True)
class Payload:
    name: str
    schema: Schema
    fills: tuple[int, ...]
    """Buffer fills sampling is measured at; the first also takes the stores."""
    json_max_batch: int
    """Larger batches skip JSON: tens of MB of JSON numbers per request say nothing new."""

    @property
    def record_size(self) -> int:
        return self.schema.record_size

    @cached_property
    def pool(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(sum(map(ord, self.name)))
        columns = {}
        for name, spec in self.schema.fields.items():
            shape = (_POOL_ROWS, *spec.shape)
            dtype = spec.numpy_dtype
            if dtype.kind == "f":
                columns[name] = rng.standard_normal(shape, dtype=np.float32).astype(dtype)
            elif dtype.kind == "b":
                columns[name] = rng.random(shape) < 0.05
            else:
                high = min(int(np.iinfo(dtype.name).max), 255)
                columns[name] = rng.integers(0, high, shape, dtype=dtype, endpoint=True)
        return columns

    def columns(self, count: int, start: int = 0) -> dict[str, np.ndarray]:
        """`count` transitions, cut from the pool from row `start` on (wrapping)."""
        rows = (start + np.arange(count)) % _POOL_ROWS
        return {name: column[rows] for name, column in self.pool.items()}

    def records(self, count: int, start: int = 0) -> bytes:
        """The same transitions packed as the service packs them: fixed-width records."""
        return records.pack(self.schema, self.columns(count, start), count)

    def chunk_rows(self, chunk_bytes: int = 16 * 1024 * 1024) -> int:
        """Transitions per request or pipeline when filling a buffer."""
        return max(1, min(65_536, chunk_bytes // self.record_size))


def _schema(frame: list[int], frame_dtype: str) -> Schema:
    obs = {"dtype": frame_dtype, "shape": frame}
    return Schema.model_validate({"fields": {
        "obs": obs, "action": {"dtype": "int64"}, "reward": {"dtype": "float32"},
        "next_obs": obs, "done": {"dtype": "bool"}}})


CARTPOLE = Payload("cartpole", _schema([4], "float32"), fills=(10_000, 1_000_000),
                   json_max_batch=1 << 30)
ATARI = Payload("atari", _schema([84, 84, 4], "uint8"), fills=(20_000,), json_max_batch=32)
PAYLOADS = {payload.name: payload for payload in (CARTPOLE, ATARI)}
