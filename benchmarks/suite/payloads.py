"""The transitions every subject stores and samples: CartPole-sized, Atari-sized, and
real Pong frames kept compressed.

Each payload is a schema plus a pool of transitions made once from a fixed seed;
batches and fills are cut from the pool, so every subject handles the same bytes.
CartPole and Atari are random numbers (random Atari frames do not compress: the
uncompressed path's figures); Pong is real random play through the standard
preprocessing, in a buffer whose frames are compressed (needs ale-py, the `atari` extra).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from replay_service.service.storage import records
from replay_service.wire.codec import encode_safetensors
from replay_service.wire.frames import COMPRESSED_SIZES_TENSOR, COMPRESSED_TENSOR, compress
from replay_service.wire.schema import Schema

__all__ = ["ATARI", "CARTPOLE", "PAYLOADS", "PONG", "Payload"]

_POOL_ROWS = 1024
_INFLATED_BYTES = 128 * 1024 * 1024
"""Half the service's default body limit, which a compressed store may inflate to."""


@dataclass(frozen=True)
class Payload:
    name: str
    schema: Schema
    fills: tuple[int, ...]
    """Buffer fills sampling is measured at; the first also takes the stores."""
    json_max_batch: int
    """Larger batches skip JSON: tens of MB of JSON numbers per request say nothing new."""
    game: str | None = None
    """The ALE game whose real frames fill the pool; None: random numbers."""

    @property
    def compressed(self) -> bool:
        return self.schema.frame_dtype is not None

    @property
    def record_size(self) -> int:
        """One transition's bytes, uncompressed."""
        return self.schema.transition_size

    @property
    def available(self) -> bool:
        """Whether this machine can make the pool (a game needs ale-py)."""
        if self.game is None:
            return True
        try:
            import ale_py  # noqa: F401
        except ImportError:
            return False
        return True

    @cached_property
    def pool(self) -> dict[str, np.ndarray]:
        if self.game is not None:
            return _played(self.game, _POOL_ROWS, seed=sum(map(ord, self.name)))
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

    def stored(self, count: int, start: int = 0) -> list[bytes]:
        """What Redis keeps per slot of a compressed buffer: the record and the frame."""
        rows = (start + np.arange(count)) % _POOL_ROWS
        return [self._stored_pool[row] for row in rows]

    @cached_property
    def _stored_pool(self) -> list[bytes]:
        packed = records.pack(self.schema, self.pool, _POOL_ROWS)
        size = self.schema.record_size
        frames = compress(self.schema, self.pool, _POOL_ROWS).split()
        return [packed[i * size:(i + 1) * size] + bytes(frame) for i, frame in enumerate(frames)]

    def body(self, count: int, start: int = 0) -> bytes:
        """A store's safetensors body as the SDK sends it: compressed fields as frames."""
        columns = self.columns(count, start)
        if not self.compressed:
            return encode_safetensors(columns)
        rows = (start + np.arange(count)) % _POOL_ROWS
        frames = [self._stored_pool[row][self.schema.record_size:] for row in rows]
        plain = {name: column for name, column in columns.items()
                 if self.schema.fields[name].compression is None}
        return encode_safetensors({
            **plain, COMPRESSED_TENSOR: np.frombuffer(b"".join(frames), np.uint8),
            COMPRESSED_SIZES_TENSOR: np.array([len(frame) for frame in frames], np.uint32)})

    def chunk_rows(self, chunk_bytes: int = 16 * 1024 * 1024) -> int:
        """Transitions per request or pipeline when filling a buffer."""
        rows = chunk_bytes // self.record_size
        if self.compressed:  # small on the wire, but the service inflates each request's
            stored = np.mean([len(item) for item in self._stored_pool])
            rows = min(int(chunk_bytes // stored), _INFLATED_BYTES // self.record_size)
        return max(1, min(65_536, int(rows)))


def _played(game: str, count: int, seed: int) -> dict[str, np.ndarray]:
    """`count` transitions of random play of an ALE game, preprocessed as collectors do."""
    from replay_service.client.collector.envs import make_env

    env = make_env(game)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    rows = []
    for _ in range(count):
        action = int(env.action_space.sample())
        next_obs, reward, terminated, truncated, _ = env.step(action)
        rows.append((obs, action, reward, next_obs, terminated))
        obs = env.reset()[0] if terminated or truncated else next_obs
    env.close()
    dtypes = (np.uint8, np.int64, np.float32, np.uint8, np.bool_)
    return {name: np.asarray([row[i] for row in rows], dtype)
            for i, (name, dtype) in enumerate(zip(("obs", "action", "reward", "next_obs", "done"),
                                                  dtypes, strict=True))}


def _schema(frame: list[int], frame_dtype: str, compression: str | None = None) -> Schema:
    obs = {"dtype": frame_dtype, "shape": frame, "compression": compression}
    return Schema.model_validate({"fields": {
        "obs": obs, "action": {"dtype": "int64"}, "reward": {"dtype": "float32"},
        "next_obs": obs, "done": {"dtype": "bool"}}})


CARTPOLE = Payload("cartpole", _schema([4], "float32"), fills=(10_000, 1_000_000),
                   json_max_batch=1 << 30)
ATARI = Payload("atari", _schema([84, 84, 4], "uint8"), fills=(20_000,), json_max_batch=32)
PONG = Payload("pong", _schema([4, 84, 84], "uint8", "zstd"), fills=(20_000,), json_max_batch=0,
               game="ALE/Pong-v5")
PAYLOADS = {payload.name: payload for payload in (CARTPOLE, ATARI, PONG)}
