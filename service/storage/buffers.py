"""The buffer operations the routes call: validate, pack, and hand to the ring."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from replay_service.service.errors import ApiError, BufferNotFound, PayloadTooLarge
from replay_service.service.storage import records
from replay_service.service.storage.meta import BufferMeta
from replay_service.service.storage.registry import BufferRegistry, StaleMeta
from replay_service.service.storage.ring import (
    IdempotencyKey,
    Inserted,
    NotPrioritized,
    RateLimited,
    Ring,
)
from replay_service.wire.codec import DecodedBatch, conform, infer_schema
from replay_service.wire.errors import ErrorCode
from replay_service.wire.schema import Schema

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
    weights: np.ndarray | None = None
    """Prioritized buffers: importance-sampling weights, the largest of each minibatch 1."""
    inserted: np.ndarray | None = None
    """Prioritized buffers: which transition ever inserted each slot held (for updates)."""


class RateLimitExceeded(ApiError):
    code = ErrorCode.RATE_LIMITED

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class UnusableField(ApiError):
    code = ErrorCode.INVALID_PRIORITY

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
        priorities = batch.columns.get(PRIORITY_FIELD)
        if priorities is not None:
            batch = DecodedBatch({key: value for key, value in batch.columns.items()
                                  if key != PRIORITY_FIELD}, batch.exact_dtypes)

        async def store_into(meta: BufferMeta) -> Stored:
            if priorities is not None:
                _check_priorities(meta, priorities)
            if meta.schema is None:
                # Check the batch against the schema it implies before adopting it, so a
                # refused first store leaves the buffer as it was.
                inferred = infer_schema(batch)
                self._conform(inferred, batch)
                meta = await self.registry.adopt_schema(meta, inferred)
            assert meta.schema is not None
            columns, count = self._conform(meta.schema, batch)
            if priorities is not None and len(priorities) != count:
                raise UnusableField(f"{len(priorities)} priorities for {count} transitions",
                                    field=PRIORITY_FIELD)
            packed = records.pack(meta.schema, columns, count)
            inserted = await self._ring.insert(meta, packed, count, idempotency, priorities)
            return Stored(capacity=meta.capacity, inserted=inserted)

        return await self._on_current(name, store_into)

    def _conform(self, schema: Schema, batch: DecodedBatch) -> tuple[dict[str, np.ndarray], int]:
        columns, count = conform(schema, batch)
        if count > self._max_batch:
            raise PayloadTooLarge(f"{count} transitions in one store; the limit is "
                                  f"{self._max_batch} (REPLAY_MAX_BATCH)", field="transitions")
        return columns, count

    async def sample(self, name: str, batch_size: int, num_batches: int | None, *,
                     with_replacement: bool, beta: float, wait_s: float) -> SampledBatch:
        """One minibatch, columns shaped [batch_size, ...]; or, with `num_batches`, that
        many in one round trip, shaped [num_batches, batch_size, ...]. A rate limit is
        waited out for up to `wait_s`, then answered with 429."""
        deadline = time.monotonic() + wait_s

        async def sample_from(meta: BufferMeta) -> SampledBatch:
            if meta.prioritized and not with_replacement:
                raise UnusableField("prioritized sampling draws with replacement; leave "
                                    "replace out", field="replace")
            while True:
                try:
                    sampled = await self._ring.sample(meta, batch_size, num_batches or 1,
                                                      with_replacement=with_replacement,
                                                      seed=self._seeds.getrandbits(31))
                    break
                except RateLimited as limited:
                    if time.monotonic() >= deadline:
                        raise _rate_limit_error(meta, limited) from None
                    await asyncio.sleep(min(_RATE_POLL_S, deadline - time.monotonic()))
            if meta.schema is None:  # cached before another replica's first store
                meta = await self.registry.get(name, fresh=True)
            assert meta.schema is not None
            columns, slots = records.unpack(meta.schema, sampled.records), sampled.slots
            weights = inserted = None
            if sampled.probabilities is not None:
                weights = _importance_weights(sampled.probabilities, sampled.size, beta,
                                              batch_size)
                inserted = _insertion_numbers(slots, sampled.total_inserted, meta.capacity)
            if num_batches is not None:
                lead = (num_batches, batch_size)
                columns = {key: value.reshape(lead + value.shape[1:])
                           for key, value in columns.items()}
                slots = slots.reshape(lead)
                weights = weights.reshape(lead) if weights is not None else None
                inserted = inserted.reshape(lead) if inserted is not None else None
            return SampledBatch(columns=columns, slots=slots, size=sampled.size,
                                total_inserted=sampled.total_inserted, weights=weights,
                                inserted=inserted)

        return await self._on_current(name, sample_from)

    async def update_priorities(self, name: str, slots: np.ndarray, inserted: np.ndarray,
                                priorities: np.ndarray) -> tuple[int, int]:
        async def update(meta: BufferMeta) -> tuple[int, int]:
            _check_priorities(meta, priorities)
            return await self._ring.update_priorities(meta, slots, inserted, priorities)

        return await self._on_current(name, update)

    async def read(self, name: str, first: int, count: int) -> SampledBatch:
        """Transitions in insertion order, for exports: see Ring.read_range."""
        async def read_from(meta: BufferMeta) -> SampledBatch:
            read = await self._ring.read_range(meta, first, count)
            if meta.schema is None:  # cached before another replica's first store
                meta = await self.registry.get(name, fresh=True)
            assert meta.schema is not None
            return SampledBatch(columns=records.unpack(meta.schema, read.records), slots=read.slots,
                                size=read.size, total_inserted=read.total_inserted)

        return await self._on_current(name, read_from)

    async def _on_current(self, name: str, operation: Callable[[BufferMeta], Awaitable[T]]) -> T:
        """Run on the cached metadata; once more on fresh metadata if it went stale."""
        try:
            return await operation(await self.registry.get(name))
        except (StaleMeta, BufferNotFound):
            self.registry.forget(name)
        return await operation(await self.registry.get(name, fresh=True))


PRIORITY_FIELD = "_priority"
_RATE_POLL_S = 0.01


def _check_priorities(meta: BufferMeta, priorities: np.ndarray) -> None:
    if not meta.prioritized:
        raise NotPrioritized(meta.name)
    if priorities.ndim != 1 or priorities.dtype.kind not in "iuf":
        raise UnusableField("priorities must be one number per transition",
                            field=PRIORITY_FIELD)
    if not np.isfinite(priorities).all() or (priorities < 0).any():
        raise UnusableField("priorities must be finite and not negative", field=PRIORITY_FIELD)


def _importance_weights(probabilities: np.ndarray, size: int, beta: float,
                        batch_size: int) -> np.ndarray:
    """(N * P(i))^-beta, scaled so the largest weight of each minibatch is 1 (so weights
    only ever scale updates down)."""
    weights = (size * probabilities) ** -beta
    per_batch = weights.reshape(-1, batch_size)
    return np.asarray(per_batch / per_batch.max(axis=1, keepdims=True),
                      dtype=np.float32).ravel()


def _insertion_numbers(slots: np.ndarray, total_inserted: int, capacity: int) -> np.ndarray:
    """Slot s holds the newest transition whose insertion number is congruent to s."""
    numbers: np.ndarray = slots + capacity * ((total_inserted - 1 - slots) // capacity)
    return numbers


def _rate_limit_error(meta: BufferMeta, limited: RateLimited) -> RateLimitExceeded:
    limit = meta.rate_limit
    assert limit is not None
    if limited.size < limit.min_size:
        reason = f"it holds {limited.size} transitions of the {limit.min_size} it needs first"
    else:
        reason = (f"{limited.total_sampled} sampled against {limited.total_inserted} inserted "
                  f"would pass {limit.samples_per_insert} samples per insert (tolerance "
                  f"{limit.tolerance:g}) by {limited.excess}")
    return RateLimitExceeded(f"buffer '{meta.name}' is rate limited: {reason}; retry later",
                             field="batch_size", excess=limited.excess)
