"""Fixed-width records in a ring of slots: the two hot-path Redis calls."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.errors import BufferNotFound, NotEnoughTransitions
from service.storage.meta import BufferMeta
from service.storage.registry import StaleMeta
from service.storage.scripts import Scripts

_GONE, _STALE, _TOO_FEW = 1, 2, 3


@dataclass(frozen=True)
class Inserted:
    first_slot: int
    total_inserted: int
    size: int


@dataclass(frozen=True)
class Sampled:
    records: bytes
    slots: np.ndarray
    size: int
    total_inserted: int


class Ring:
    """Each call is one Lua script: one round trip, atomic against other writers."""

    def __init__(self, scripts: Scripts) -> None:
        self._scripts = scripts

    async def insert(self, meta: BufferMeta, records: bytes, count: int) -> Inserted:
        reply = await self._scripts.insert(keys=meta.script_keys,
                                           args=[meta.incarnation, count, records])
        _raise_for_status(meta, reply)
        _, first_slot, total = reply
        return Inserted(first_slot=first_slot, total_inserted=total,
                        size=min(total, meta.capacity))

    async def sample(self, meta: BufferMeta, batch_size: int, batches: int, *,
                     with_replacement: bool, seed: int) -> Sampled:
        """`batches` minibatches of `batch_size` slots, one after the other."""
        reply = await self._scripts.sample(
            keys=meta.script_keys,
            args=[meta.incarnation, batch_size, batches, int(with_replacement), seed])
        if reply[0] == _TOO_FEW:
            raise NotEnoughTransitions(meta.name, batch_size, reply[1], with_replacement)
        _raise_for_status(meta, reply)
        _, size, total, records, slots = reply
        return Sampled(records=records, slots=np.asarray(slots, dtype=np.int64), size=size,
                       total_inserted=total)


def _raise_for_status(meta: BufferMeta, reply: list[object]) -> None:
    if reply[0] == _GONE:
        raise BufferNotFound(meta.name)
    if reply[0] == _STALE:
        raise StaleMeta
