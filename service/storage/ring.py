"""Fixed-width records in a ring of slots: the two hot-path Redis calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from replay_service.service.errors import ApiError, BufferNotFound, NotEnoughTransitions
from replay_service.service.storage import keys
from replay_service.service.storage.meta import BufferMeta
from replay_service.service.storage.registry import StaleMeta
from replay_service.service.storage.scripts import Scripts
from replay_service.wire.errors import ErrorCode

_GONE, _STALE, _TOO_FEW, _KEY_REUSED, _REPEATED, _NOT_HELD = 1, 2, 3, 4, 5, 6
_RATE_LIMITED, _NOT_PRIORITIZED = 7, 8


@dataclass(frozen=True)
class Inserted:
    count: int
    first_slot: int
    total_inserted: int
    size: int
    repeated: bool = False
    """The idempotency key was seen before: this is the first store's answer, unchanged."""


@dataclass(frozen=True)
class IdempotencyKey:
    key: str
    body_digest: str
    ttl_s: int


class IdempotencyKeyReused(ApiError):
    code = ErrorCode.IDEMPOTENCY_KEY_REUSED

    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key '{key}' was already used for a different body; "
                         "use a new key for each batch", field="idempotency-key")


@dataclass(frozen=True)
class Sampled:
    records: bytes
    slots: np.ndarray
    size: int
    total_inserted: int
    probabilities: np.ndarray | None = None
    """Prioritized buffers: the chance each drawn slot had, p_i^alpha / sum_j p_j^alpha."""


class RateLimited(Exception):
    """The buffer's rate limit holds this sample back for now."""

    def __init__(self, excess: int, size: int, total_inserted: int, total_sampled: int) -> None:
        super().__init__(f"{excess} transitions over the rate limit")
        self.excess = excess
        self.size = size
        self.total_inserted = total_inserted
        self.total_sampled = total_sampled


class NotPrioritized(ApiError):
    code = ErrorCode.NOT_PRIORITIZED

    def __init__(self, name: str) -> None:
        super().__init__(f"buffer '{name}' samples uniformly: it has no priorities (create it "
                         'with "prioritized": {"alpha": 0.6} for prioritized replay)',
                         field="prioritized")

class Ring:
    """Each call is one Lua script: one round trip, atomic against other writers."""

    def __init__(self, scripts: Scripts) -> None:
        self._scripts = scripts

    async def insert(self, meta: BufferMeta, records: bytes, count: int,
                     idempotency: IdempotencyKey | None = None,
                     priorities: np.ndarray | None = None) -> Inserted:
        """Write `count` packed records; `priorities` (prioritized buffers) are the
        writer's own, else each new slot gets the highest priority seen so far."""
        key_args: list[int | str]
        if idempotency is None:  # the script takes a key either way, and ignores this one
            record_key, key_args = meta.meta_key, [0, "", 0]
        else:
            record_key = keys.idempotency(meta.name, meta.incarnation, idempotency.key)
            key_args = [1, idempotency.body_digest, idempotency.ttl_s]
        reply = await self._scripts.insert(
            keys=[meta.meta_key, record_key, *meta.script_keys[1:]],
            args=[meta.incarnation, count, records, *key_args,
                  priorities.astype("<f8").tobytes() if priorities is not None else ""])
        if reply[0] == _KEY_REUSED:
            assert idempotency is not None
            raise IdempotencyKeyReused(idempotency.key)
        _raise_for_status(meta, reply)
        status, first_slot, total, stored = reply
        return Inserted(count=stored, first_slot=first_slot, total_inserted=total,
                        size=min(total, meta.capacity), repeated=status == _REPEATED)

    async def read_range(self, meta: BufferMeta, first: int, count: int) -> Sampled:
        """Transitions `first` .. `first + count - 1` in insertion order (0 is the first ever
        inserted), as long as the ring still holds them all."""
        reply = await self._scripts.read_range(keys=meta.script_keys,
                                               args=[meta.incarnation, first, count])
        if reply[0] == _NOT_HELD:
            raise RangeNotHeld(first, count, reply[1], reply[2])
        _raise_for_status(meta, reply)
        _, size, total, runs = reply
        records = b"".join(runs)
        slots = np.arange(first, first + count, dtype=np.int64) % meta.capacity
        return Sampled(records=records, slots=slots, size=size, total_inserted=total)

    async def sample(self, meta: BufferMeta, batch_size: int, batches: int, *,
                     with_replacement: bool, seed: int) -> Sampled:
        """`batches` minibatches of `batch_size` slots, one after the other."""
        if meta.prioritized:
            reply = await self._scripts.sample_prioritized(
                keys=meta.script_keys, args=[meta.incarnation, batch_size, batches, seed])
        else:
            reply = await self._scripts.sample(
                keys=meta.script_keys,
                args=[meta.incarnation, batch_size, batches, int(with_replacement), seed])
        if reply[0] == _TOO_FEW:
            raise NotEnoughTransitions(meta.name, batch_size, reply[1], with_replacement)
        if reply[0] == _RATE_LIMITED:
            raise RateLimited(*reply[1:5])
        _raise_for_status(meta, reply)
        size, total, records, slots = reply[1], reply[2], b"".join(reply[3]), reply[4]
        probabilities = None
        if meta.prioritized:
            probabilities = np.frombuffer(reply[5], dtype="<f8") / float(reply[6])
        return Sampled(records=records, slots=np.asarray(slots, dtype=np.int64), size=size,
                       total_inserted=total, probabilities=probabilities)

    async def update_priorities(self, meta: BufferMeta, slots: np.ndarray,
                                inserted: np.ndarray, priorities: np.ndarray) -> tuple[int, int]:
        """Set new priorities; returns (set, skipped because the slot was overwritten)."""
        reply = await self._scripts.update_priorities(keys=meta.script_keys, args=[
            meta.incarnation, *(np.asarray(values, "<f8").tobytes()
                                for values in (slots, inserted, priorities))])
        if reply[0] == _NOT_PRIORITIZED:
            raise NotPrioritized(meta.name)
        _raise_for_status(meta, reply)
        return int(reply[1]), int(reply[2])


class RangeNotHeld(ApiError):
    code = ErrorCode.RANGE_NOT_HELD

    def __init__(self, first: int, count: int, oldest: int, total: int) -> None:
        super().__init__(f"transitions {first} to {first + count - 1} (counted from the first "
                         f"ever inserted) are not held: the buffer holds {oldest} to {total - 1}",
                         field="first", oldest=oldest, total_inserted=total)


def _raise_for_status(meta: BufferMeta, reply: list[Any]) -> None:
    if reply[0] == _GONE:
        raise BufferNotFound(meta.name)
    if reply[0] == _STALE:
        raise StaleMeta
