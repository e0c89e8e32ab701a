"""Fixed-width records in a ring of slots (and, in a compressed buffer, each slot's
frame beside its record): writing them, and reading them in order.

Drawing slots at random is the samplers' job (samplers.py); both go through the
same scripts' layout of segments (lua/layout.lua).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from replay_service.service.errors import IdempotencyKeyReused, RangeNotHeld
from replay_service.service.storage import keys
from replay_service.service.storage.meta import BufferMeta
from replay_service.service.storage.replication import ReplicatedWrites
from replay_service.service.storage.scripts import Scripts
from replay_service.service.storage.status import Status, status_of
from replay_service.wire.frames import Frames


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


@dataclass(frozen=True)
class Read:
    records: bytes
    slots: np.ndarray
    size: int
    total_inserted: int
    frames: Frames | None = None


class Ring:
    """Each call is one Lua script: one round trip, atomic against other writers."""

    def __init__(self, scripts: Scripts, replicated: ReplicatedWrites | None = None) -> None:
        self._scripts = scripts
        self._replicated = replicated
        """Set: a store is answered once enough replicas hold it (REPLAY_REPLICA_ACKS)."""

    async def insert(self, meta: BufferMeta, records: bytes, count: int,
                     idempotency: IdempotencyKey | None = None,
                     priorities: np.ndarray | None = None,
                     frames: Frames | None = None) -> Inserted:
        """Write `count` packed records, and their frames in a compressed buffer;
        `priorities` (prioritized buffers) are the writer's own, else each new slot gets
        the highest priority seen so far."""
        key_args: list[int | str]
        if idempotency is None:  # the script takes a key either way, and ignores this one
            record_key, key_args = meta.meta_key, [0, "", 0]
        else:
            record_key = keys.idempotency(meta.name, meta.incarnation, idempotency.key)
            key_args = [1, idempotency.body_digest, idempotency.ttl_s]
        script_keys: list[bytes | str] = [*meta.script_keys, record_key]
        args = [meta.incarnation, count, records, *key_args,
                priorities.astype("<f8").tobytes() if priorities is not None else "",
                *((frames.data, frames.sizes.astype("<u4").tobytes()) if frames else ("", ""))]
        if self._replicated is None:
            reply = await self._scripts.insert(keys=script_keys, args=args)
        else:
            reply = await self._replicated.run(self._scripts.insert, script_keys, args)
        status = status_of(reply, meta.name)
        if status is Status.KEY_REUSED:
            assert idempotency is not None
            raise IdempotencyKeyReused(idempotency.key)
        _, first_slot, total, stored = reply
        return Inserted(count=stored, first_slot=first_slot, total_inserted=total,
                        size=min(total, meta.capacity), repeated=status is Status.REPEATED)

    async def read_range(self, meta: BufferMeta, first: int, count: int) -> Read:
        """Transitions `first` .. `first + count - 1` in insertion order (0 is the first ever
        inserted), as long as the ring still holds them all."""
        reply = await self._scripts.read_range(keys=meta.script_keys,
                                               args=[meta.incarnation, first, count])
        if status_of(reply, meta.name) is Status.NOT_HELD:
            raise RangeNotHeld(first, count, reply[1], reply[2])
        size, total, runs = reply[1:4]
        slots = np.arange(first, first + count, dtype=np.int64) % meta.capacity
        return Read(records=b"".join(runs), slots=slots, size=size, total_inserted=total,
                    frames=frames_in(reply, meta))


def frames_in(reply: list[Any], meta: BufferMeta) -> Frames | None:
    """A reading script's frames and their sizes, its last two items in a compressed
    buffer (lua/layout.lua's read_frames)."""
    if not meta.compressed:
        return None
    return Frames(reply[-2], np.frombuffer(reply[-1], dtype="<u4"))
