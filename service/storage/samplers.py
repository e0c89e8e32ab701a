"""How a buffer chooses what to hand out: uniformly, or in proportion to priority.

A buffer's sampler is fixed when it is created (`prioritized` in its metadata), so
`Samplers.of` picks it once per request from the metadata and nothing downstream
asks again. The sampler also owns what only one kind has: priorities.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from replay_service.service.errors import (
    InvalidPriority,
    NotEnoughTransitions,
    NotPrioritized,
    ReplacementRequired,
)
from replay_service.service.storage.meta import BufferMeta
from replay_service.service.storage.ring import frames_in
from replay_service.service.storage.scripts import Scripts
from replay_service.service.storage.status import Status, status_of
from replay_service.wire.frames import Frames

PRIORITY_FIELD = "_priority"
"""The column a writer sends its own priorities in; the service never stores it as data."""


@dataclass(frozen=True)
class Drawn:
    """`batches` minibatches one after the other, flat: the caller shapes them."""

    records: bytes
    slots: np.ndarray
    size: int
    total_inserted: int
    weights: np.ndarray | None = None
    """Prioritized buffers: importance-sampling weights, the largest of each minibatch 1."""
    inserted: np.ndarray | None = None
    """Prioritized buffers: which transition ever inserted each slot held (for updates)."""
    frames: Frames | None = None
    """Compressed buffers: each slot's frame, in the order of `slots`."""


class RateLimited(Exception):
    """The buffer's rate limit holds this sample back for now."""

    def __init__(self, excess: int, size: int, total_inserted: int, total_sampled: int) -> None:
        super().__init__(f"{excess} transitions over the rate limit")
        self.excess = excess
        self.size = size
        self.total_inserted = total_inserted
        self.total_sampled = total_sampled


class Sampler(ABC):
    def __init__(self, scripts: Scripts) -> None:
        self._scripts = scripts

    @abstractmethod
    async def draw(self, meta: BufferMeta, batch_size: int, batches: int, *,
                   with_replacement: bool, beta: float, seed: int) -> Drawn:
        """`batches` minibatches of `batch_size` slots, in one script."""

    @abstractmethod
    def check_priorities(self, meta: BufferMeta, priorities: np.ndarray) -> None:
        """Refuse priorities a writer or a learner sends that this buffer cannot take."""

    @abstractmethod
    async def update_priorities(self, meta: BufferMeta, slots: np.ndarray,
                                inserted: np.ndarray, priorities: np.ndarray) -> tuple[int, int]:
        """Set new priorities; returns (set, skipped because the slot was overwritten)."""


class UniformSampler(Sampler):
    async def draw(self, meta: BufferMeta, batch_size: int, batches: int, *,
                   with_replacement: bool, beta: float, seed: int) -> Drawn:
        reply = await self._scripts.sample(
            keys=meta.script_keys,
            args=[meta.incarnation, batch_size, batches, int(with_replacement), seed])
        return _drawn(meta, reply, batch_size, with_replacement)

    def check_priorities(self, meta: BufferMeta, priorities: np.ndarray) -> None:
        raise NotPrioritized(meta.name)

    async def update_priorities(self, meta: BufferMeta, slots: np.ndarray,
                                inserted: np.ndarray, priorities: np.ndarray) -> tuple[int, int]:
        raise NotPrioritized(meta.name)


class PrioritizedSampler(Sampler):
    async def draw(self, meta: BufferMeta, batch_size: int, batches: int, *,
                   with_replacement: bool, beta: float, seed: int) -> Drawn:
        if not with_replacement:
            raise replacement_required()
        reply = await self._scripts.sample_prioritized(
            keys=meta.script_keys, args=[meta.incarnation, batch_size, batches, seed])
        drawn = _drawn(meta, reply, batch_size, with_replacement)
        probabilities = np.frombuffer(reply[5], dtype="<f8") / float(reply[6])
        return dataclasses.replace(
            drawn, weights=importance_weights(probabilities, drawn.size, beta, batch_size),
            inserted=insertion_numbers(drawn.slots, drawn.total_inserted, meta.capacity))

    def check_priorities(self, meta: BufferMeta, priorities: np.ndarray) -> None:
        if priorities.ndim != 1 or priorities.dtype.kind not in "iuf":
            raise InvalidPriority("priorities must be one number per transition",
                                  field=PRIORITY_FIELD)
        if not np.isfinite(priorities).all() or (priorities < 0).any():
            raise InvalidPriority("priorities must be finite and not negative",
                                  field=PRIORITY_FIELD)

    async def update_priorities(self, meta: BufferMeta, slots: np.ndarray,
                                inserted: np.ndarray, priorities: np.ndarray) -> tuple[int, int]:
        self.check_priorities(meta, priorities)
        reply = await self._scripts.update_priorities(keys=meta.script_keys, args=[
            meta.incarnation, *(np.asarray(values, "<f8").tobytes()
                                for values in (slots, inserted, priorities))])
        status_of(reply, meta.name)
        return int(reply[1]), int(reply[2])


def replacement_required() -> ReplacementRequired:
    return ReplacementRequired("prioritized sampling draws with replacement; leave replace "
                               "out", field="replace")


class Samplers:
    """One sampler of each kind, shared by every buffer of that kind (they hold no state
    of their own)."""

    def __init__(self, scripts: Scripts) -> None:
        self._uniform = UniformSampler(scripts)
        self._prioritized = PrioritizedSampler(scripts)

    def of(self, meta: BufferMeta) -> Sampler:
        return self._prioritized if meta.prioritized else self._uniform


def _drawn(meta: BufferMeta, reply: list[Any], batch_size: int,
           with_replacement: bool) -> Drawn:
    """The records and slots of a sampling script's reply, or why there are none."""
    status = status_of(reply, meta.name)
    if status is Status.TOO_FEW:
        raise NotEnoughTransitions(meta.name, batch_size, reply[1], with_replacement)
    if status is Status.RATE_LIMITED:
        raise RateLimited(*reply[1:5])
    return Drawn(records=b"".join(reply[3]), slots=np.asarray(reply[4], dtype=np.int64),
                 size=reply[1], total_inserted=reply[2], frames=frames_in(reply, meta))


def importance_weights(probabilities: np.ndarray, size: int, beta: float,
                        batch_size: int) -> np.ndarray:
    """(N * P(i))^-beta, scaled so the largest weight of each minibatch is 1 (so weights
    only ever scale updates down)."""
    weights = (size * probabilities) ** -beta
    per_batch = weights.reshape(-1, batch_size)
    return np.asarray(per_batch / per_batch.max(axis=1, keepdims=True),
                      dtype=np.float32).ravel()


def insertion_numbers(slots: np.ndarray, total_inserted: int, capacity: int) -> np.ndarray:
    """Slot s holds the newest transition whose insertion number is congruent to s."""
    numbers: np.ndarray = slots + capacity * ((total_inserted - 1 - slots) // capacity)
    return numbers
