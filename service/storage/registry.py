"""Creating, finding, listing and deleting buffers."""

from __future__ import annotations

import dataclasses
import secrets
import time
from typing import cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from replay_service.service.errors import (
    BufferConflict,
    BufferNotFound,
    LimitExceeded,
    TooManyBuffers,
)
from replay_service.service.storage import keys
from replay_service.service.storage.memory import MemoryBudget
from replay_service.service.storage.meta import BufferMeta, Counters, slots_per_segment
from replay_service.service.storage.scripts import Scripts
from replay_service.wire.schema import Prioritized, RateLimit, Schema

_STALE = 2


# Every script call names every Redis string of its ring, so their number is bounded.
MAX_SEGMENTS = 4_096


def _check_layout(meta: BufferMeta) -> None:
    segments = -(-meta.capacity // meta.slots_per_segment)
    if segments > MAX_SEGMENTS:
        raise LimitExceeded(
            f"{meta.capacity} transitions of {meta.bytes_per_slot:g} bytes would take "
            f"{segments} Redis strings of REPLAY_SEGMENT_BYTES; at most {MAX_SEGMENTS}: lower "
            "the capacity (or raise REPLAY_SEGMENT_BYTES)", field="capacity")


class StaleMeta(Exception):
    """The buffer was deleted and re-created since this process cached it."""


class BufferRegistry:
    """Buffer metadata in Redis, cached in-process.

    The metadata of a buffer never changes once its schema is set, so the hot
    path reads it from the cache; the incarnation check in every script catches
    the one way it can go stale (delete and re-create elsewhere).
    """

    def __init__(self, redis: Redis, scripts: Scripts, memory: MemoryBudget, *,
                 segment_bytes: int, max_buffers: int):
        self._redis = redis
        self._scripts = scripts
        self._memory = memory
        self._segment_bytes = segment_bytes
        self._max_buffers = max_buffers
        self._cache: dict[str, BufferMeta] = {}

    async def create(self, name: str, capacity: int | None, schema: Schema | None, *,
                     default_capacity: int, prioritized: Prioritized | None = None,
                     rate_limit: RateLimit | None = None) -> tuple[BufferMeta, bool]:
        """Create a buffer, or accept an existing one that matches; True if created.

        Left out (None), capacity, schema, `prioritized` (else uniform sampling) and
        `rate_limit` match whatever an existing buffer has; given, they must match it.
        """
        if await self._redis.scard(keys.REGISTRY) >= self._max_buffers and not await self._exists(
                name):
            raise TooManyBuffers(f"the service holds {self._max_buffers} buffers, its limit; "
                                 "delete one or raise REPLAY_MAX_BUFFERS")
        new_capacity = capacity or default_capacity
        wanted = BufferMeta(name=name, incarnation=secrets.token_hex(8), capacity=new_capacity,
                            schema=schema, created_at=time.time(),
                            slots_per_segment=slots_per_segment(schema, new_capacity,
                                                                self._segment_bytes),
                            prioritized=prioritized, rate_limit=rate_limit)
        if schema is not None and not await self._exists(name):
            _check_layout(wanted)
            await self._memory.reserve(name, new_capacity, wanted.bytes_per_slot)
        fields = {"incarnation": wanted.incarnation, "capacity": new_capacity,
                  "schema": schema.canonical_json() if schema else "",
                  "record_size": schema.record_size if schema else 0,
                  "slots_per_segment": wanted.slots_per_segment,
                  "created_at": wanted.created_at, "total_inserted": 0, "total_sampled": 0,
                  **wanted.options_hash()}
        created = await self._scripts.create(
            keys=[keys.meta(name)], args=[part for pair in fields.items() for part in pair])
        await self._redis.sadd(keys.REGISTRY, name)
        meta = await self.get(name, fresh=True)
        if created:
            return meta, True
        if capacity is not None and meta.capacity != capacity:
            raise BufferConflict(f"buffer '{name}' exists with capacity {meta.capacity}, not "
                                 f"{capacity}; delete it first to change it", field="capacity")
        for field, given, held in (("prioritized", prioritized, meta.prioritized),
                                   ("rate_limit", rate_limit, meta.rate_limit)):
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
        return meta, False

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
        self._cache.pop(name, None)

    async def adopt_schema(self, meta: BufferMeta, schema: Schema) -> BufferMeta:
        """Set the schema of a buffer created without one; the first writer wins."""
        adopted = dataclasses.replace(meta, schema=schema, slots_per_segment=slots_per_segment(
            schema, meta.capacity, self._segment_bytes))
        _check_layout(adopted)
        await self._memory.reserve(meta.name, meta.capacity, adopted.bytes_per_slot)
        status, *_ = await self._scripts.adopt_schema(
            keys=[meta.meta_key],
            args=[meta.incarnation, schema.canonical_json(), schema.record_size,
                  slots_per_segment(schema, meta.capacity, self._segment_bytes)])
        if status == _STALE:
            raise StaleMeta
        return await self.get(meta.name, fresh=True)

    async def delete(self, name: str) -> None:
        """Remove the metadata and every segment in one transaction.

        WATCH makes the deletion start over if a first store adopts a schema (and
        so changes the segment layout) between reading the metadata and deleting.
        """
        async def unlink_all(pipe: Pipeline) -> None:
            fields = cast(dict[bytes, bytes], await pipe.hgetall(keys.meta(name)))
            if not fields:
                raise BufferNotFound(name)
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.unlink(*BufferMeta.from_hash(name, fields).all_keys)
            pipe.srem(keys.REGISTRY, name)

        try:
            await self._redis.transaction(unlink_all, keys.meta(name))
            await self._memory.release(name)
        finally:
            self.forget(name)

    async def names(self) -> list[str]:
        members = cast(set[bytes], await self._redis.smembers(keys.REGISTRY))
        return sorted(member.decode() for member in members)

    async def counters(self, name: str) -> Counters:
        capacity, inserted, sampled = cast(list[bytes | None], await self._redis.hmget(
            keys.meta(name), ["capacity", "total_inserted", "total_sampled"]))
        if capacity is None:
            raise BufferNotFound(name)
        assert inserted is not None and sampled is not None  # created with the capacity
        return Counters(capacity=int(capacity), size=min(int(inserted), int(capacity)),
                        total_inserted=int(inserted), total_sampled=int(sampled))

    async def _exists(self, name: str) -> bool:
        return bool(await self._redis.exists(keys.meta(name)))
