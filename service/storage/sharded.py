"""Buffers spread over several rings ("shards"), so that one buffer can outgrow one
Redis master: each shard is a buffer of its own, under its own hash tag, which a
cluster places on its own master.

The capacity is split over the shards. A store lands whole in one shard, in that
shard's one atomic script (so idempotent stores stay exact), and stores spread evenly:
an idempotency key picks its shard by hash, so a retry meets its first try; other
stores go round the shards in turn. Eviction is oldest-first within each shard.

A sample reads every shard's size (and, prioritized, its total priority) first, then
draws how many transitions come from each in proportion to it, and reads the shards
concurrently: uniform sampling stays uniform over every held transition, and
prioritized sampling proportional to priority^alpha over the whole buffer. The slots
a sharded buffer answers with run over the whole capacity, shard after shard, so
priority updates find their shard by the slot alone.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast
from zlib import crc32

import numpy as np

from replay_service.service.errors import BufferNotFound, NotEnoughTransitions, NotPrioritized
from replay_service.service.storage import keys
from replay_service.service.storage.meta import BufferMeta, Counters
from replay_service.service.storage.ring import IdempotencyKey, Inserted, Read, Ring, frames_in
from replay_service.service.storage.samplers import (
    Drawn,
    RateLimited,
    Sampler,
    Samplers,
    importance_weights,
    insertion_numbers,
    replacement_required,
)
from replay_service.service.storage.scripts import Scripts
from replay_service.service.storage.status import StaleMeta, status_of
from replay_service.wire.frames import Frames

if TYPE_CHECKING:
    from replay_service.service.storage.registry import BufferRegistry

T = TypeVar("T")

MAX_SHARDS = 64
"""Every sample of a sharded buffer runs a script on each shard: keep that bounded."""
_FULL_SHARDS_KEPT = 10_000


def shard_capacities(capacity: int, shards: int) -> list[int]:
    """The capacity split as evenly as it goes, the first shards taking the remainder."""
    share, extra = divmod(capacity, shards)
    return [share + (index < extra) for index in range(shards)]


def shard_names(name: str, incarnation: str, count: int,
                master_of: Callable[[str], str] | None, masters: Sequence[str]) -> list[str]:
    """The shards' names. On a cluster (`master_of` names the master of a key's slot)
    shard i goes to masters[i % len(masters)]: its salt is the first that puts its
    hash tag there, so racing creates agree and shards sit on every master in turn."""
    names = []
    for index in range(count):
        for salt in itertools.count():
            candidate = keys.shard(name, incarnation, index, salt)
            if master_of is None or master_of(keys.meta(candidate)) == masters[
                    index % len(masters)]:
                break
        names.append(candidate)
    return names


@dataclass(frozen=True)
class Shard:
    index: int
    meta: BufferMeta
    offset: int
    """Its slot 0 is the buffer's slot `offset`: shards' slots follow one another."""


def offsets(capacities: Sequence[int]) -> list[int]:
    return [0, *itertools.accumulate(capacities)][:-1]


class Shards:
    """The shards of a sharded buffer, as metadata each ring script can take: fetched
    (and cached) by the registry under their own names."""

    def __init__(self, registry: BufferRegistry) -> None:
        self._registry = registry

    async def of(self, meta: BufferMeta) -> list[Shard]:
        capacities = shard_capacities(meta.capacity, len(meta.shards))
        metas = await asyncio.gather(*(self._shard(meta, name) for name in meta.shards))
        return [Shard(index, shard, offset) for index, (shard, offset) in enumerate(
            zip(metas, offsets(capacities), strict=True))]

    async def counters(self, shard: Shard) -> Counters:
        return await on_shard(self._registry.counters(shard.meta.name))

    async def _shard(self, meta: BufferMeta, name: str) -> BufferMeta:
        """A shard whose schema is the buffer's: one cached before the buffer's first
        store set it is read again, and one a first store did not reach yet (it was cut
        short) adopts it now."""
        shard = await on_shard(self._registry.get(name))
        if shard.schema is None and meta.schema is not None:
            shard = await on_shard(self._registry.get(name, fresh=True))
            if shard.schema is None:
                shard = await on_shard(self._registry.adopt_schema(shard, meta.schema))
        return shard


async def on_shard(run: Awaitable[T]) -> T:
    """What a shard answers; a shard gone means its buffer is (being) deleted or was
    re-created, which the caller learns as stale metadata, never as a missing shard."""
    try:
        return await run
    except BufferNotFound:
        raise StaleMeta from None


class ShardedRing:
    """Stores into one shard, and reads one shard in its insertion order."""

    def __init__(self, ring: Ring, shards: Shards) -> None:
        self._ring = ring
        self._shards = shards
        # Round the shards in turn from a random start, so replicas do not crowd one.
        self._turn = itertools.count(random.randrange(MAX_SHARDS))

    async def insert(self, meta: BufferMeta, records: bytes, count: int,
                     idempotency: IdempotencyKey | None = None,
                     priorities: np.ndarray | None = None,
                     frames: Frames | None = None) -> Inserted:
        """The buffer's size and total come back summed over its shards: the other
        shards' counters are read while the store runs. A repeated store (its key seen
        before) answers its first slot and count unchanged, and the counters of now."""
        shards = await self._shards.of(meta)
        index = (crc32(idempotency.key.encode()) if idempotency else next(self._turn)) % len(
            shards)
        target = shards[index]
        others = [shard for shard in shards if shard is not target]
        inserted, counters = await asyncio.gather(
            on_shard(self._ring.insert(target.meta, records, count, idempotency, priorities,
                                       frames)),
            asyncio.gather(*(self._shards.counters(shard) for shard in others)))
        if inserted.repeated:  # the shard's counters then are the first try's: read them now
            counters.append(await self._shards.counters(target))
        else:
            counters.append(Counters(capacity=0, size=inserted.size, total_sampled=0,
                                     total_inserted=inserted.total_inserted))
        return Inserted(count=inserted.count, first_slot=target.offset + inserted.first_slot,
                        total_inserted=sum(part.total_inserted for part in counters),
                        size=sum(part.size for part in counters), repeated=inserted.repeated)

    async def read_range(self, meta: BufferMeta, shard: int, first: int, count: int) -> Read:
        """Shard `shard`'s transitions `first` .. `first + count - 1` in its insertion
        order; slots as the buffer numbers them."""
        held = (await self._shards.of(meta))[shard]
        read = await on_shard(self._ring.read_range(held.meta, first, count))
        return Read(records=read.records, slots=read.slots + held.offset, size=read.size,
                    total_inserted=read.total_inserted, frames=read.frames)


@dataclass(frozen=True)
class _State:
    size: int
    total_inserted: int
    total_sampled: int
    mass: float


class ShardedSampler(Sampler):
    """Shares each minibatch out among the shards, draws every share where its shard
    lives, and puts the minibatch together in a random order."""

    def __init__(self, scripts: Scripts, shards: Shards, samplers: Samplers) -> None:
        super().__init__(scripts)
        self._shards = shards
        self._samplers = samplers
        self._full: dict[str, _State] = {}
        """Shards seen full, by name (a ring never shrinks, and a re-created buffer's
        shards have new names): what a full uniform buffer's draws are shared by."""

    async def draw(self, meta: BufferMeta, batch_size: int, batches: int, *,
                   with_replacement: bool, beta: float, seed: int) -> Drawn:
        shards = await self._shards.of(meta)
        states = await self._states(meta, shards)
        size = sum(state.size for state in states)
        total = sum(state.total_inserted for state in states)
        sampled = sum(state.total_sampled for state in states)
        wanted = batch_size * batches
        excess = _held_back(meta, size, total, sampled, wanted)
        if excess is not None:
            raise RateLimited(excess, size, total, sampled)
        rng = np.random.default_rng(seed)
        sizes = np.array([state.size for state in states], dtype=np.int64)
        if meta.prioritized:
            if not with_replacement:
                raise replacement_required()
            masses = np.array([state.mass for state in states])
            if size == 0 or masses.sum() <= 0:
                raise NotEnoughTransitions(meta.name, batch_size, size, with_replacement)
            which = rng.choice(len(shards), size=wanted, p=masses / masses.sum())
        elif with_replacement:
            if size == 0:
                raise NotEnoughTransitions(meta.name, batch_size, size, with_replacement)
            which = rng.choice(len(shards), size=wanted, p=sizes / size)
        else:
            if batch_size > size:
                raise NotEnoughTransitions(meta.name, batch_size, size, with_replacement)
            which = np.concatenate([rng.permutation(np.repeat(
                np.arange(len(shards)), rng.multivariate_hypergeometric(sizes, batch_size)))
                for _ in range(batches)])
        shares = which.reshape(batches, batch_size)
        replies = await asyncio.gather(*(
            self._draw_share(shard, shares, with_replacement, int(rng.integers(2**31)))
            for shard in shards))
        return _assembled(meta, shards, states, replies, which, batch_size, beta)

    async def _states(self, meta: BufferMeta, shards: list[Shard]) -> list[_State]:
        """Every shard's size (and priority), read in one round trip; a full uniform
        buffer without a rate limit is shared by its shards' capacities, known already,
        which saves that round trip (the counters answered are then the drawn shards'
        own and the others' as last read)."""
        if meta.prioritized is None and meta.rate_limit is None:
            known = [self._full.get(shard.meta.name) for shard in shards]
            if all(state is not None for state in known):
                return cast(list[_State], known)
        states = await asyncio.gather(*(self._state(shard) for shard in shards))
        if len(self._full) > _FULL_SHARDS_KEPT:
            self._full.clear()
        self._full.update({shard.meta.name: state for shard, state in zip(
            shards, states, strict=True) if state.size == shard.meta.capacity})
        return states

    async def _state(self, shard: Shard) -> _State:
        reply: list[Any] = await on_shard(self._scripts.shard_state(
            keys=shard.meta.script_keys, args=[shard.meta.incarnation]))
        status_of(reply, shard.meta.name)
        return _State(size=int(reply[1]), total_inserted=int(reply[2]),
                      total_sampled=int(reply[3]), mass=float(reply[4]))

    async def _draw_share(self, shard: Shard, shares: np.ndarray, with_replacement: bool,
                          seed: int) -> list[Any] | None:
        """The shard's share of every minibatch, in one script; None when it has none."""
        counts = (shares == shard.index).sum(axis=1)
        wanted = int(counts.sum())
        if wanted == 0:
            return None
        meta = shard.meta
        if meta.prioritized:
            run = self._scripts.sample_prioritized(
                keys=meta.script_keys, args=[meta.incarnation, wanted, 1, seed])
        elif with_replacement:
            run = self._scripts.sample(keys=meta.script_keys,
                                       args=[meta.incarnation, wanted, 1, 1, seed])
        else:
            run = self._scripts.sample(keys=meta.script_keys, args=[
                meta.incarnation, int(counts.max()), len(counts), 0, seed,
                ",".join(map(str, counts.tolist()))])
        reply: list[Any] = await on_shard(run)
        status_of(reply, meta.name)  # shards have no rate limit, and none shrinks
        return reply

    def check_priorities(self, meta: BufferMeta, priorities: np.ndarray) -> None:
        self._samplers.of(meta).check_priorities(meta, priorities)

    async def update_priorities(self, meta: BufferMeta, slots: np.ndarray,
                                inserted: np.ndarray, priorities: np.ndarray) -> tuple[int, int]:
        if not meta.prioritized:
            raise NotPrioritized(meta.name)
        self.check_priorities(meta, priorities)
        shards = await self._shards.of(meta)
        starts = np.array([shard.offset for shard in shards])
        held = (slots >= 0) & (slots < meta.capacity)
        which = np.searchsorted(starts, slots, side="right") - 1
        prioritized = self._samplers.of(meta)
        updates = [on_shard(prioritized.update_priorities(
            shard.meta, slots[mine] - shard.offset, inserted[mine], priorities[mine]))
            for shard in shards if (mine := held & (which == shard.index)).any()]
        results = await asyncio.gather(*updates)
        outside = int((~held).sum())
        return sum(done for done, _ in results), outside + sum(skip for _, skip in results)


def _held_back(meta: BufferMeta, size: int, total: int, sampled: int, count: int
               ) -> int | None:
    """The buffer's rate limit over all its shards, as lua/rate_limit.lua judges one
    ring: how many transitions the sample would take beyond what it allows, or None.
    Shards themselves have no limit; two samplers racing may pass it together."""
    limit = meta.rate_limit
    if limit is None:
        return None
    excess: float = count
    if size >= limit.min_size:
        if limit.samples_per_insert is None:
            return None
        excess = sampled + count - (limit.samples_per_insert * (total - limit.min_size)
                                    + limit.tolerance)
    return int(np.ceil(excess)) if excess > 0 else None


def _frames(reply: list[Any], shard: Shard) -> Frames:
    frames = frames_in(reply, shard.meta)
    assert frames is not None  # the shard of a compressed buffer is compressed
    return frames


def _assembled(meta: BufferMeta, shards: list[Shard], states: list[_State],
               replies: list[list[Any] | None], which: np.ndarray, batch_size: int,
               beta: float) -> Drawn:
    """The shards' draws as one flat minibatch sequence: position j takes the next draw
    of shard which[j] (each shard's draws come in minibatch order). Size and total are
    the whole buffer's, from the draws where a shard was drawn from."""
    drawn = [(shard, reply) for shard, reply in zip(shards, replies, strict=True) if reply]
    size = sum(int(reply[1]) if reply else state.size
               for state, reply in zip(states, replies, strict=True))
    total = sum(int(reply[2]) if reply else state.total_inserted
                for state, reply in zip(states, replies, strict=True))
    order = np.empty(which.size, dtype=np.int64)
    order[np.argsort(which, kind="stable")] = np.arange(which.size)
    record_size = meta.schema.record_size if meta.schema else 0
    records = b"".join(b"".join(reply[3]) for _, reply in drawn)
    if record_size:
        records = np.frombuffer(records, np.uint8).reshape(-1, record_size)[order].tobytes()
    slots = np.concatenate([np.asarray(reply[4], np.int64) + shard.offset
                            for shard, reply in drawn])[order]
    frames = None
    if meta.compressed:
        pieces = [piece for shard, reply in drawn for piece in _frames(reply, shard).split()]
        frames = Frames.join([bytes(pieces[i]) for i in order])
    if not meta.prioritized:
        return Drawn(records=records, slots=slots, size=size, total_inserted=total,
                     frames=frames)
    mass = sum(float(reply[6]) for _, reply in drawn)
    probabilities = np.concatenate([np.frombuffer(reply[5], "<f8") for _, reply in drawn])
    numbers = np.concatenate([
        insertion_numbers(np.asarray(reply[4], np.int64), int(reply[2]), shard.meta.capacity)
        for shard, reply in drawn])
    return Drawn(records=records, slots=slots, size=size, total_inserted=total, frames=frames,
                 weights=importance_weights(probabilities[order] / mass, size, beta,
                                            batch_size),
                 inserted=numbers[order])
