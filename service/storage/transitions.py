"""The transition operations the routes call: validate and pack, then hand to the ring
(writes, ordered reads) or to the buffer's sampler (draws, priorities)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from replay_service.service.errors import (
    BufferNotFound,
    BufferReplaced,
    InvalidPriority,
    InvalidShard,
    PayloadTooLarge,
    RateLimitExceeded,
)
from replay_service.service.metrics import ServiceMetrics
from replay_service.service.storage import records
from replay_service.service.storage.meta import BufferMeta
from replay_service.service.storage.registry import BufferRegistry
from replay_service.service.storage.ring import IdempotencyKey, Inserted, Ring
from replay_service.service.storage.samplers import (
    PRIORITY_FIELD,
    RateLimited,
    Sampler,
    Samplers,
)
from replay_service.service.storage.scripts import Scripts
from replay_service.service.storage.sharded import ShardedRing, ShardedSampler, Shards
from replay_service.service.storage.status import RESTARTS, StaleMeta
from replay_service.wire import frames as compression
from replay_service.wire.codec import DecodedBatch, WireError, conform, infer_schema
from replay_service.wire.errors import ErrorCode
from replay_service.wire.frames import COMPRESSED_TENSOR, Frames
from replay_service.wire.schema import Schema

T = TypeVar("T")

_RATE_POLL_S = 0.01


@dataclass(frozen=True)
class Stored:
    capacity: int
    inserted: Inserted


@dataclass(frozen=True)
class SampledBatch:
    columns: dict[str, np.ndarray]
    """Every field; or, when `frames` is set, the fields kept uncompressed."""
    slots: np.ndarray
    size: int
    total_inserted: int
    weights: np.ndarray | None = None
    """Prioritized buffers: importance-sampling weights, the largest of each minibatch 1."""
    inserted: np.ndarray | None = None
    """Prioritized buffers: which transition ever inserted each slot held (for updates)."""
    frames: Frames | None = None
    """Compressed buffers read without inflating: each transition's frame."""


class TransitionStore:
    """Runs each operation on the buffer's cached metadata, and once more on fresh
    metadata when a script says it went stale."""

    def __init__(self, registry: BufferRegistry, scripts: Scripts, ring: Ring, *,
                 max_batch: int, max_inflated_bytes: int, metrics: ServiceMetrics) -> None:
        self._registry = registry
        self._metrics = metrics
        self._ring = ring
        self._samplers = Samplers(scripts)
        shards = Shards(registry)
        self._sharded_ring = ShardedRing(ring, shards)
        self._sharded_sampler = ShardedSampler(scripts, shards, self._samplers)
        self._max_batch = max_batch
        self._max_inflated_bytes = max_inflated_bytes
        """Compressed bodies may inflate to what an uncompressed body may hold, no more."""
        # Seeds for the sampling scripts: a per-process generator seeded from the OS,
        # so replicas and workers never share a sequence.
        self._seeds = random.Random()

    async def store(self, name: str, batch: DecodedBatch,
                    idempotency: IdempotencyKey | None = None) -> Stored:
        priorities = batch.columns.get(PRIORITY_FIELD)
        sent_frames = compression.frames_of(batch.columns)
        if priorities is not None or sent_frames is not None:
            batch = DecodedBatch({key: value for key, value in batch.columns.items()
                                  if key not in _NOT_FIELDS}, batch.exact_dtypes)

        async def store_into(meta: BufferMeta) -> Stored:
            if priorities is not None:
                self._sampler(meta).check_priorities(meta, priorities)
            if meta.schema is None:
                if sent_frames is not None:
                    raise WireError(ErrorCode.INVALID_SCHEMA, "the buffer has no schema "
                                    "yet to inflate frames with: declare one (PUT) whose "
                                    "fields say how they are compressed", field=COMPRESSED_TENSOR)
                # Check the batch against the schema it implies before adopting it, so a
                # refused first store leaves the buffer as it was.
                inferred = infer_schema(batch)
                self._conform(inferred, batch)
                meta = await self._registry.adopt_schema(meta, inferred)
            assert meta.schema is not None
            columns, count, frames = self._conform_with_frames(meta.schema, batch, sent_frames)
            if priorities is not None and len(priorities) != count:
                raise InvalidPriority(f"{len(priorities)} priorities for {count} transitions",
                                      field=PRIORITY_FIELD)
            packed = records.pack(meta.schema, columns, count)
            ring = self._sharded_ring if meta.shards else self._ring
            inserted = await ring.insert(meta, packed, count, idempotency, priorities, frames)
            return Stored(capacity=meta.capacity, inserted=inserted)

        stored = await self._on_current(name, store_into)
        self._metrics.count_store(name, stored.inserted)
        return stored

    def _conform(self, schema: Schema, batch: DecodedBatch) -> tuple[dict[str, np.ndarray], int]:
        columns, count = conform(schema, batch)
        if count > self._max_batch:
            raise PayloadTooLarge(f"{count} transitions in one store; the limit is "
                                  f"{self._max_batch} (REPLAY_MAX_BATCH)", field="transitions")
        return columns, count

    def _conform_with_frames(self, schema: Schema, batch: DecodedBatch, sent: Frames | None
                             ) -> tuple[dict[str, np.ndarray], int, Frames | None]:
        """The batch's columns checked against the schema, and the frames to keep: the
        ones sent, once each inflated and checked like any column, or, for compressed
        fields sent plain (any language may), made here."""
        if schema.frame_dtype is None:
            if sent is not None:
                raise WireError(ErrorCode.UNKNOWN_FIELD, f"'{COMPRESSED_TENSOR}': the "
                                "buffer's schema compresses no field", field=COMPRESSED_TENSOR)
            return (*self._conform(schema, batch), None)
        if sent is None:
            columns, count = self._conform(schema, batch)
            return columns, count, compression.compress(schema, columns, count)
        both = [name for name in schema.frame_dtype.names or () if name in batch.columns]
        if both:
            raise WireError(ErrorCode.INVALID_BODY, f"field '{both[0]}' came as a column and "
                            f"in {COMPRESSED_TENSOR}; send it one way", field=both[0])
        if len(sent) > self._max_batch:
            raise PayloadTooLarge(f"{len(sent)} transitions in one store; the limit is "
                                  f"{self._max_batch} (REPLAY_MAX_BATCH)", field="transitions")
        if len(sent) * schema.frame_size > self._max_inflated_bytes:
            raise PayloadTooLarge(f"{len(sent)} frames would inflate to "
                                  f"{len(sent) * schema.frame_size} bytes, over the "
                                  f"{self._max_inflated_bytes} a body may hold "
                                  "(REPLAY_MAX_BODY_BYTES)", field=COMPRESSED_TENSOR)
        if _any_value_is_valid(schema):
            # Any bytes are valid integers: check the frames inflate right, keep nothing,
            # and let the schema check see stand-ins of the right shape (no memory).
            compression.check(schema, sent)
            inflated = {name: np.broadcast_to(np.zeros((), spec.numpy_dtype),
                                              (len(sent), *spec.shape))
                        for name, spec in schema.fields.items() if spec.compression}
        else:  # bools and floats have values to check
            inflated = compression.decompress(schema, sent)
        columns, count = self._conform(schema, DecodedBatch({**batch.columns, **inflated},
                                                            batch.exact_dtypes))
        return columns, count, sent

    async def sample(self, name: str, batch_size: int, num_batches: int | None, *,
                     with_replacement: bool, beta: float, wait_s: float,
                     inflate: bool = True) -> SampledBatch:
        """One minibatch, columns shaped [batch_size, ...]; or, with `num_batches`, that
        many in one round trip, shaped [num_batches, batch_size, ...]. A rate limit is
        waited out for up to `wait_s`, then answered with 429. A compressed buffer's
        frames are inflated into columns unless `inflate` is false."""
        deadline = time.monotonic() + wait_s
        waited = False

        async def sample_from(meta: BufferMeta) -> SampledBatch:
            nonlocal waited
            sampler = self._sampler(meta)
            while True:
                try:
                    drawn = await sampler.draw(meta, batch_size, num_batches or 1,
                                               with_replacement=with_replacement, beta=beta,
                                               seed=self._seeds.getrandbits(31))
                    break
                except RateLimited as limited:
                    if time.monotonic() >= deadline:
                        self._metrics.count_refusal(name)
                        raise _rate_limit_error(meta, limited) from None
                    waited = True
                    await asyncio.sleep(min(_RATE_POLL_S, deadline - time.monotonic()))
            schema = await self._schema(meta)
            batch = SampledBatch(columns=_columns(schema, drawn.records, drawn.frames, inflate),
                                 slots=drawn.slots, size=drawn.size,
                                 total_inserted=drawn.total_inserted, weights=drawn.weights,
                                 inserted=drawn.inserted,
                                 frames=None if inflate else drawn.frames)
            return batch if num_batches is None else _in_minibatches(batch, num_batches)

        batch = await self._on_current(name, sample_from)
        self._metrics.count_sample(name, batch_size * (num_batches or 1), waited=waited)
        return batch

    async def update_priorities(self, name: str, slots: np.ndarray, inserted: np.ndarray,
                                priorities: np.ndarray) -> tuple[int, int]:
        async def update(meta: BufferMeta) -> tuple[int, int]:
            return await self._sampler(meta).update_priorities(meta, slots, inserted,
                                                               priorities)

        return await self._on_current(name, update)

    async def read(self, name: str, first: int, count: int, inflate: bool = True,
                   shard: int | None = None) -> SampledBatch:
        """Transitions in insertion order, for exports: see Ring.read_range. A sharded
        buffer's shards each have their own order: `shard` names the one to read."""
        async def read_from(meta: BufferMeta) -> SampledBatch:
            shards = len(meta.shards) or 1
            if meta.shards and shard is None:
                raise InvalidShard(f"buffer '{name}' has {shards} shards, each with its own "
                                   f"insertion order: name one (0 to {shards - 1})")
            if shard is not None and shard >= shards:
                raise InvalidShard(f"buffer '{name}' has {shards} shard"
                                   f"{'s' if shards > 1 else ''}: 0 to {shards - 1}")
            if meta.shards:
                read = await self._sharded_ring.read_range(meta, shard or 0, first, count)
            else:
                read = await self._ring.read_range(meta, first, count)
            schema = await self._schema(meta)
            return SampledBatch(columns=_columns(schema, read.records, read.frames, inflate),
                                slots=read.slots, size=read.size,
                                total_inserted=read.total_inserted,
                                frames=None if inflate else read.frames)

        return await self._on_current(name, read_from)

    def _sampler(self, meta: BufferMeta) -> Sampler:
        return self._sharded_sampler if meta.shards else self._samplers.of(meta)

    async def _schema(self, meta: BufferMeta) -> Schema:
        """The schema records were read with; fetched when the metadata was cached before
        another replica's first store set it."""
        if meta.schema is None:
            meta = await self._registry.get(meta.name, fresh=True)
        assert meta.schema is not None
        return meta.schema

    async def _on_current(self, name: str, operation: Callable[[BufferMeta], Awaitable[T]]) -> T:
        """The operation on the cached metadata; on metadata read afresh when that is
        stale, and again while other requests delete and re-create the buffer between
        the read and the operation's script (a buffer gone answers 404)."""
        try:
            return await operation(await self._registry.get(name))
        except (StaleMeta, BufferNotFound):
            self._registry.forget(name)
        for _ in range(RESTARTS):
            try:
                return await operation(await self._registry.get(name, fresh=True))
            except StaleMeta:
                self._registry.forget(name)
        raise BufferReplaced(name)


_NOT_FIELDS = frozenset({PRIORITY_FIELD, compression.COMPRESSED_TENSOR,
                         compression.COMPRESSED_SIZES_TENSOR})


def _any_value_is_valid(schema: Schema) -> bool:
    """Whether the compressed fields are all integers, which no value can make invalid."""
    return all(spec.numpy_dtype.kind in "iu" for spec in schema.fields.values()
               if spec.compression)


def _columns(schema: Schema, packed: bytes, frames: Frames | None, inflate: bool
             ) -> dict[str, np.ndarray]:
    """The records' columns, and the frames' inflated into theirs when asked, in schema
    order."""
    columns = records.unpack(schema, packed)
    if frames is None or not inflate:
        return columns
    columns.update(compression.decompress(schema, frames))
    return {name: columns[name] for name in schema.fields}


def _in_minibatches(batch: SampledBatch, num_batches: int) -> SampledBatch:
    """Every array given a leading [num_batches, batch_size] in place of its first axis."""
    def shaped(values: np.ndarray) -> np.ndarray:
        return values.reshape((num_batches, -1) + values.shape[1:])

    return SampledBatch(
        columns={key: shaped(value) for key, value in batch.columns.items()},
        slots=shaped(batch.slots), size=batch.size, total_inserted=batch.total_inserted,
        weights=shaped(batch.weights) if batch.weights is not None else None,
        inserted=shaped(batch.inserted) if batch.inserted is not None else None,
        frames=Frames(batch.frames.data, shaped(batch.frames.sizes))
        if batch.frames is not None else None)


def _rate_limit_error(meta: BufferMeta, limited: RateLimited) -> RateLimitExceeded:
    assert meta.rate_limit is not None  # only a rate limit holds samples back
    return RateLimitExceeded(meta.name, meta.rate_limit, excess=limited.excess,
                             size=limited.size, total_inserted=limited.total_inserted,
                             total_sampled=limited.total_sampled)
