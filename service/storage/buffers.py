"""The buffer operations the routes call: validate, pack, and hand to the ring."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from client.codec import DecodedBatch, conform, infer_schema
from service.errors import BufferNotFound, PayloadTooLarge
from service.storage.meta import BufferMeta
from service.storage.registry import BufferRegistry, StaleMeta
from service.storage.ring import IdempotencyKey, Inserted, Ring

T = TypeVar("T")


@dataclass(frozen=True)
class Stored:
    capacity: int
    inserted: Inserted


@dataclass(frozen=True)
class SampledBatch:
    columns: dict[str, np.ndarray]
    slots: np.ndarray
    size: int
    total_inserted: int


class Buffers:
    def __init__(self, registry: BufferRegistry, ring: Ring, *, max_batch: int) -> None:
        self.registry = registry
        self._ring = ring
        self._max_batch = max_batch
        # Seeds for the sampling script: a per-process generator seeded from the OS,
        # so replicas and workers never share a sequence.
        self._seeds = random.Random()

    async def store(self, name: str, batch: DecodedBatch,
                    idempotency: IdempotencyKey | None = None) -> Stored:
        async def store_into(meta: BufferMeta) -> Stored:
            if meta.schema is None:
                meta = await self.registry.adopt_schema(meta, infer_schema(batch))
            assert meta.schema is not None
            columns, count = conform(meta.schema, batch)
            if count > self._max_batch:
                raise PayloadTooLarge(f"{count} transitions in one store; the limit is "
                                      f"{self._max_batch} (REPLAY_MAX_BATCH)", field="transitions")
            inserted = await self._ring.insert(meta, meta.schema.pack(columns, count), count,
                                               idempotency)
            return Stored(capacity=meta.capacity, inserted=inserted)

        return await self._on_current(name, store_into)

    async def sample(self, name: str, batch_size: int, num_batches: int | None, *,
                     with_replacement: bool) -> SampledBatch:
        """One minibatch, columns shaped [batch_size, ...]; or, with `num_batches`, that
        many in one round trip, shaped [num_batches, batch_size, ...]."""
        async def sample_from(meta: BufferMeta) -> SampledBatch:
            sampled = await self._ring.sample(meta, batch_size, num_batches or 1,
                                              with_replacement=with_replacement,
                                              seed=self._seeds.getrandbits(31))
            if meta.schema is None:  # cached before another replica's first store
                meta = await self.registry.get(name, fresh=True)
            assert meta.schema is not None
            columns, slots = meta.schema.unpack(sampled.records), sampled.slots
            if num_batches is not None:
                lead = (num_batches, batch_size)
                columns = {key: value.reshape(lead + value.shape[1:])
                           for key, value in columns.items()}
                slots = slots.reshape(lead)
            return SampledBatch(columns=columns, slots=slots, size=sampled.size,
                                total_inserted=sampled.total_inserted)

        return await self._on_current(name, sample_from)

    async def read(self, name: str, first: int, count: int) -> SampledBatch:
        """Transitions in insertion order, for exports: see Ring.read_range."""
        async def read_from(meta: BufferMeta) -> SampledBatch:
            read = await self._ring.read_range(meta, first, count)
            if meta.schema is None:  # cached before another replica's first store
                meta = await self.registry.get(name, fresh=True)
            assert meta.schema is not None
            return SampledBatch(columns=meta.schema.unpack(read.records), slots=read.slots,
                                size=read.size, total_inserted=read.total_inserted)

        return await self._on_current(name, read_from)

    async def _on_current(self, name: str, operation: Callable[[BufferMeta], Awaitable[T]]) -> T:
        """Run on the cached metadata; once more on fresh metadata if it went stale."""
        try:
            return await operation(await self.registry.get(name))
        except (StaleMeta, BufferNotFound):
            self.registry.forget(name)
        return await operation(await self.registry.get(name, fresh=True))
