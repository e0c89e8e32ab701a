"""Keeping buffers within Redis's memory: each buffer reserves capacity x record size.

A buffer whose ring would not fit beside the others is refused at creation (or at
the first store that sets its schema) with a clear error, instead of Redis later
refusing writes half-way, or evicting someone else's data under an LRU policy.
"""

from __future__ import annotations

import logging
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from replay_service.service.errors import ApiError
from replay_service.service.storage import keys
from replay_service.service.storage.scripts import Scripts
from replay_service.wire.errors import ErrorCode

log = logging.getLogger("replay.service")

# Share of maxmemory the rings may reserve: the rest is Redis's own overhead,
# metadata, idempotency records, weights and episode streams.
RESERVABLE_SHARE = 0.9
MB = 1024 * 1024


class InsufficientStorage(ApiError):
    code = ErrorCode.INSUFFICIENT_STORAGE


class MemoryBudget:
    def __init__(self, redis: Redis, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts

    async def maxmemory(self) -> int | None:
        """Redis's maxmemory in bytes; None when unlimited or not readable (a managed Redis
        may forbid CONFIG)."""
        try:
            config = cast(dict[str, str], await self._redis.config_get("maxmemory"))
        except ResponseError:
            return None
        limit = int(config.get("maxmemory", "0"))
        return limit or None

    async def reserve(self, name: str, capacity: int, bytes_per_slot: float) -> None:
        """Reserve the ring's bytes for `name`, or raise InsufficientStorage (507)."""
        needed = int(capacity * bytes_per_slot)
        limit = await self.maxmemory()
        budget = int(limit * RESERVABLE_SHARE) if limit else -1  # -1: no limit
        granted, reserved = await self._scripts.reserve_memory(
            keys=[keys.RESERVATIONS], args=[name, needed, budget])
        if not granted:
            assert limit is not None
            raise InsufficientStorage(
                f"buffer '{name}' needs {needed / MB:.1f} MB ({capacity} transitions of "
                f"{bytes_per_slot:g} bytes), but Redis's maxmemory of {limit / MB:.1f} MB leaves "
                f"{(budget - reserved) / MB:.1f} MB beside the other buffers; lower the "
                "capacity, delete a buffer or give Redis more memory", field="capacity")

    async def release(self, name: str) -> None:
        await self._redis.hdel(keys.RESERVATIONS, name)

    async def warn_if_evicting(self) -> None:
        """An evicting policy would let Redis drop transitions silently under pressure."""
        try:
            policy = cast(dict[str, str], await self._redis.config_get("maxmemory-policy"))
        except ResponseError:
            return
        value = policy.get("maxmemory-policy", "noeviction")
        if value != "noeviction" and await self.maxmemory():
            log.warning("Redis maxmemory-policy is %s: under memory pressure Redis may evict "
                        "buffer data. Set it to noeviction.", value)
