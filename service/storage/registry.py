"""Creating, finding, listing and deleting buffers."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from collections.abc import Sequence
from contextlib import suppress
from typing import Any, cast

from redis.asyncio import Redis, RedisCluster

from replay_service.service.errors import (
    BufferConflict,
    BufferNotFound,
    BufferReplaced,
    InvalidRateLimit,
    LimitExceeded,
    TooManyBuffers,
)
from replay_service.service.storage import keys
from replay_service.service.storage.memory import UNLIMITED, Budget, MemoryBudget
from replay_service.service.storage.meta import BufferMeta, Counters, slots_per_segment
from replay_service.service.storage.scripts import Scripts
from replay_service.service.storage.sharded import MAX_SHARDS, shard_capacities, shard_names
from replay_service.service.storage.status import RESTARTS, StaleMeta, Status, status_of
from replay_service.wire.schema import Prioritized, RateLimit, Schema

# Every script call names every Redis string of its ring, so their number is bounded.
MAX_SEGMENTS = 4_096


def _check_layout(meta: BufferMeta) -> None:
    capacity = _ring_capacity(meta.capacity, len(meta.shards) or 1)
    segments = -(-capacity // meta.slots_per_segment)
    if segments > MAX_SEGMENTS:
        shards = f" in each of {len(meta.shards)} shards" if meta.shards else ""
        raise LimitExceeded(
            f"{capacity} transitions{shards} of {meta.bytes_per_slot:g} bytes would take "
            f"{segments} Redis strings of REPLAY_SEGMENT_BYTES; at most {MAX_SEGMENTS}: lower "
            "the capacity (or raise REPLAY_SEGMENT_BYTES)", field="capacity")


def _ring_capacity(capacity: int, shards: int) -> int:
    """The largest ring a buffer of `shards` shards holds."""
    return shard_capacities(capacity, shards)[0]


def _check_shards(shards: int, capacity: int) -> None:
    if shards > MAX_SHARDS:
        raise LimitExceeded(f"{shards} shards; at most {MAX_SHARDS}", field="shards")
    if shards > capacity:
        raise LimitExceeded(f"{shards} shards for a capacity of {capacity}: each shard holds "
                            "at least one transition", field="shards")


def _never_sampled(meta: BufferMeta, defaulted: bool) -> InvalidRateLimit | None:
    """A rate limit waiting for more transitions than the ring holds would answer 429 to
    every sample forever: the error refusing it, if so."""
    min_size = meta.rate_limit.min_size if meta.rate_limit else 0
    if min_size <= meta.capacity:
        return None
    which = " (the default capacity, REPLAY_DEFAULT_CAPACITY)" if defaulted else ""
    return InvalidRateLimit(
        f"rate_limit.min_size {min_size} is over the capacity {meta.capacity}{which}: the "
        f"buffer would never be sampled because it can never hold more than {meta.capacity} "
        "transitions; lower min_size or raise the capacity", field="rate_limit.min_size")


class BufferRegistry:
    """Buffer metadata in Redis, cached in-process.

    The metadata of a buffer never changes once its schema is set, so the hot
    path reads it from the cache; the incarnation check in every script catches
    the one way it can go stale (delete and re-create elsewhere).
    """

    def __init__(self, redis: Redis, scripts: Scripts, memory: MemoryBudget, *,
                 segment_bytes: int, max_buffers: int, cluster: bool = False):
        self._redis = redis
        self._scripts = scripts
        self._memory = memory
        self._segment_bytes = segment_bytes
        self._max_buffers = max_buffers
        self._cluster = cluster
        self._cache: dict[str, BufferMeta] = {}

    def _shared_keys(self, name: str) -> tuple[str, str]:
        """The registry and the reservations as the scripts take them. On a cluster a
        script reaches only its buffer's slot, so it gets the buffer's own entries
        instead: the shared registry is then written after the script, and memory is not
        reserved across buffers (each master's maxmemory refuses what does not fit). A
        shard is listed with its buffer, never among the buffers."""
        if self._cluster:
            return keys.own_registry(name), keys.own_reservation(name)
        if keys.is_shard(name):
            return keys.own_registry(name), keys.RESERVATIONS
        return keys.REGISTRY, keys.RESERVATIONS

    async def create(self, name: str, capacity: int | None, schema: Schema | None, *,
                     default_capacity: int, prioritized: Prioritized | None = None,
                     rate_limit: RateLimit | None = None, shards: int | None = None
                     ) -> tuple[BufferMeta, bool]:
        """Create a buffer, or accept an existing one that matches; True if created.

        Left out (None), capacity, schema, `prioritized` (else uniform sampling),
        `rate_limit` and `shards` (else one ring) match whatever an existing buffer has;
        given, they must match it. The buffer, its registry entry and its memory
        reservation appear in one script, so racing creates and deletes leave the
        reservations exact (on one Redis; see `_shared_keys` for a cluster). A sharded
        buffer's shards are created first, each the same way; a create that finds the
        buffer made meanwhile deletes the shards it made.
        """
        for _ in range(RESTARTS):
            try:
                return await self._create(name, capacity, schema,
                                          default_capacity=default_capacity,
                                          prioritized=prioritized, rate_limit=rate_limit,
                                          shards=shards)
            except (StaleMeta, BufferNotFound):
                # deleted (and perhaps created again) between two steps: start over
                self.forget(name)
        raise BufferReplaced(name)

    async def _create(self, name: str, capacity: int | None, schema: Schema | None, *,
                      default_capacity: int, prioritized: Prioritized | None,
                      rate_limit: RateLimit | None, shards: int | None
                      ) -> tuple[BufferMeta, bool]:
        new_capacity = capacity or default_capacity
        if shards is not None:
            _check_shards(shards, new_capacity)
        incarnation = secrets.token_hex(8)
        wanted = BufferMeta(name=name, incarnation=incarnation, capacity=new_capacity,
                            schema=schema, created_at=time.time(),
                            slots_per_segment=slots_per_segment(
                                schema, _ring_capacity(new_capacity, shards or 1),
                                self._segment_bytes),
                            prioritized=prioritized, rate_limit=rate_limit,
                            shards=tuple(self._shard_names(name, incarnation, shards))
                            if shards and shards > 1 else ())
        deadlock = _never_sampled(wanted, defaulted=capacity is None)
        if deadlock is not None:
            if capacity is not None:
                raise deadlock
            try:  # only an existing, larger buffer can match a capacity left out
                existing = await self.get(name, fresh=True)
            except BufferNotFound:
                raise deadlock from None
            return await self._matching(existing, capacity, schema, prioritized,
                                        rate_limit, shards), False
        if schema is not None:
            _check_layout(wanted)
        budget = await self._memory.current() if schema is not None else UNLIMITED
        if self._cluster:
            await self._check_room(name)
        made = [await self._create_shard(wanted, shard, shard_capacity, budget)
                for shard, shard_capacity in zip(
                    wanted.shards, shard_capacities(new_capacity, len(wanted.shards) or 1),
                    strict=False)]
        reply = await self._run_create(wanted, budget)
        status = status_of(reply, name)
        if status is not Status.CREATED:
            await self._delete_shards(made)
        if self._cluster and status in (Status.CREATED, Status.EXISTS):
            # Also for an existing buffer: it heals a create cut short before this step.
            await self._redis.sadd(keys.REGISTRY, name)
        if status is Status.TOO_MANY:
            raise TooManyBuffers(f"the service holds {self._max_buffers} buffers, its limit; "
                                 "delete one or raise REPLAY_MAX_BUFFERS")
        if status is Status.REFUSED:
            raise budget.refusal(name, new_capacity, wanted.bytes_per_slot, reply[1])
        meta = await self.get(name, fresh=True)
        if status is Status.CREATED:
            return meta, True
        return await self._matching(meta, capacity, schema, prioritized, rate_limit,
                                    shards), False

    def _shard_names(self, name: str, incarnation: str, count: int) -> list[str]:
        """On a cluster, shard i goes to the i-th master (in order of address) in turn."""
        if not self._cluster:
            return shard_names(name, incarnation, count, None, ())
        cluster = cast(RedisCluster, self._redis)
        masters = sorted(node.name for node in cluster.get_primaries())

        def master_of(key: str) -> str:
            node = cluster.get_node_from_key(key)
            assert node is not None  # a cluster whose slots are all covered
            return node.name

        return shard_names(name, incarnation, count, master_of, masters)

    async def _run_create(self, meta: BufferMeta, budget: Budget) -> list[Any]:
        reply: list[Any] = await self._scripts.create(
            keys=[meta.meta_key, *self._shared_keys(meta.name)],
            args=[meta.name, meta.reserved_bytes, budget.reservable, self._max_buffers,
                  *(part for pair in meta.new_hash().items() for part in pair)])
        return reply

    async def _create_shard(self, buffer: BufferMeta, name: str, capacity: int,
                            budget: Budget) -> str:
        """One shard of a buffer being created: a uniform or prioritized ring of its
        share of the capacity, with no rate limit (the buffer's is judged over all its
        shards). A shard the memory budget refuses undoes the ones made before it."""
        shard = BufferMeta(name=name, incarnation=secrets.token_hex(8), capacity=capacity,
                           schema=buffer.schema, created_at=buffer.created_at,
                           slots_per_segment=slots_per_segment(buffer.schema, capacity,
                                                               self._segment_bytes),
                           prioritized=buffer.prioritized)
        reply = await self._run_create(shard, budget)
        if status_of(reply, name) is Status.REFUSED:
            made = buffer.shards[:buffer.shards.index(name)]
            await self._delete_shards(made)
            raise budget.refusal(buffer.name, buffer.capacity, buffer.bytes_per_slot
                                 or shard.bytes_per_slot, reply[1])
        return name

    async def _delete_shards(self, names: Sequence[str]) -> None:
        for name in names:
            with suppress(BufferNotFound):
                await self._delete_one(name)

    async def _check_room(self, name: str) -> None:
        """On a cluster the limit on buffers is checked before the create, not in its
        script: racing creates can pass it by a few."""
        if await self._redis.scard(keys.REGISTRY) >= self._max_buffers and not (
                await self._redis.exists(keys.meta(name))):
            raise TooManyBuffers(f"the service holds {self._max_buffers} buffers, its limit; "
                                 "delete one or raise REPLAY_MAX_BUFFERS")

    async def _matching(self, meta: BufferMeta, capacity: int | None, schema: Schema | None,
                        prioritized: Prioritized | None, rate_limit: RateLimit | None,
                        shards: int | None) -> BufferMeta:
        """The existing buffer, if what was asked for matches it (adopting the schema
        asked for when it has none yet); else BufferConflict naming the first mismatch."""
        name = meta.name
        if capacity is not None and meta.capacity != capacity:
            raise BufferConflict(f"buffer '{name}' exists with capacity {meta.capacity}, not "
                                 f"{capacity}; delete it first to change it", field="capacity")
        for field, given, held in (("prioritized", prioritized, meta.prioritized),
                                   ("rate_limit", rate_limit, meta.rate_limit),
                                   ("shards", shards, len(meta.shards) or 1)):
            if given is not None and given != held:
                raise BufferConflict(f"buffer '{name}' exists with {field}={held}, not {given}; "
                                     "delete it first to change it", field=field)
        if schema is not None:
            if meta.schema is None:
                meta = await self.adopt_schema(meta, schema)
            if meta.schema != schema:
                raise BufferConflict(f"buffer '{name}' exists with another schema: "
                                     f"{meta.schema.canonical_json() if meta.schema else None}",
                                     field="schema")
        return meta

    async def get(self, name: str, *, fresh: bool = False) -> BufferMeta:
        if not fresh and name in self._cache:
            return self._cache[name]
        fields = cast(dict[bytes, bytes], await self._redis.hgetall(keys.meta(name)))
        if not fields:
            self._cache.pop(name, None)
            raise BufferNotFound(name)
        meta = BufferMeta.from_hash(name, fields)
        self._cache[name] = meta
        return meta

    def forget(self, name: str) -> None:
        """Drop a buffer's cached metadata, and its shards'."""
        meta = self._cache.pop(name, None)
        for shard in meta.shards if meta else ():
            self._cache.pop(shard, None)

    async def adopt_schema(self, meta: BufferMeta, schema: Schema) -> BufferMeta:
        """Set the schema of a buffer created without one, reserving the memory its ring
        now needs in the same script; the first writer wins and only it reserves."""
        adopted = dataclasses.replace(meta, schema=schema, slots_per_segment=slots_per_segment(
            schema, _ring_capacity(meta.capacity, len(meta.shards) or 1), self._segment_bytes))
        _check_layout(adopted)
        budget = await self._memory.current()
        reply = await self._scripts.adopt_schema(
            keys=[meta.meta_key, self._shared_keys(meta.name)[1]],
            args=[meta.incarnation, schema.canonical_json(), schema.record_size,
                  adopted.slots_per_segment, meta.name, adopted.reserved_bytes,
                  budget.reservable, int(adopted.compressed)])
        if status_of(reply, meta.name) is Status.REFUSED:
            raise budget.refusal(meta.name, meta.capacity, adopted.bytes_per_slot, reply[1])
        adopted = await self.get(meta.name, fresh=True)
        if adopted.incarnation != meta.incarnation:  # deleted and created again meanwhile
            raise StaleMeta
        for name in adopted.shards:  # each takes the schema that won, if it has none yet
            shard = await self.get(name, fresh=True)
            if shard.schema is None:
                assert adopted.schema is not None
                await self.adopt_schema(shard, adopted.schema)
        return adopted

    async def delete(self, name: str) -> None:
        """Remove the metadata, every segment, the registry entry and the memory
        reservation in one script (on a cluster, the shared registry entry right after);
        then a sharded buffer's shards, each the same way."""
        try:
            meta = await self._delete_one(name)
            await self._delete_shards(meta.shards)
        finally:
            if self._cluster:  # gone or not: no entry may outlive its buffer
                await self._redis.srem(keys.REGISTRY, name)
            self.forget(name)

    async def _delete_one(self, name: str) -> BufferMeta:
        """One buffer (or shard) gone in one script, which refuses (stale) if a first
        store adopted a schema, and so changed the segment layout, since the metadata
        was read: read again and retry. Returns what was deleted."""
        registry, reservations = self._shared_keys(name)
        while True:
            meta = await self.get(name, fresh=True)
            others = [key for key in meta.all_keys if key != meta.meta_key]
            reply = await self._scripts.delete(
                keys=[meta.meta_key, registry, reservations, *others],
                args=[name, meta.incarnation, meta.slots_per_segment])
            try:
                status_of(reply, name)
            except StaleMeta:
                continue
            self._cache.pop(name, None)
            return meta

    async def names(self) -> list[str]:
        members = cast(set[bytes], await self._redis.smembers(keys.REGISTRY))
        return sorted(member.decode() for member in members)

    async def counters(self, name: str) -> Counters:
        """A buffer's counters; a sharded buffer's summed over its shards (each shard's
        kept beside the sums)."""
        capacity, inserted, sampled, shards = cast(list[bytes | None], await self._redis.hmget(
            keys.meta(name), ["capacity", "total_inserted", "total_sampled", "shards"]))
        if capacity is None:
            raise BufferNotFound(name)
        assert inserted is not None and sampled is not None  # created with the capacity
        if shards:
            try:
                parts = await asyncio.gather(*(self.counters(shard)
                                               for shard in shards.decode().split(",")))
            except BufferNotFound:  # deleted meanwhile
                raise BufferNotFound(name) from None
            return Counters(capacity=int(capacity), size=sum(part.size for part in parts),
                            total_inserted=sum(part.total_inserted for part in parts),
                            total_sampled=sum(part.total_sampled for part in parts),
                            shards=tuple(parts))
        return Counters(capacity=int(capacity), size=min(int(inserted), int(capacity)),
                        total_inserted=int(inserted), total_sampled=int(sampled))
