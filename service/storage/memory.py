"""Keeping buffers within Redis's memory: each buffer reserves capacity x record size.

A buffer whose ring would not fit beside the others is refused at creation (or at
the first store that sets its schema) with a clear error, instead of Redis later
refusing writes half-way, or evicting someone else's data under an LRU policy. The
scripts that create a ring or fix its size record its reservation in the same step
(lua/reserve.lua); this module reads the budget they are held to.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from replay_service.service.errors import InsufficientStorage

log = logging.getLogger("replay.service")

# Share of maxmemory the rings may reserve: the rest is Redis's own overhead,
# metadata, idempotency records, weights and episode streams.
RESERVABLE_SHARE = 0.9
MB = 1024 * 1024


@dataclass(frozen=True)
class Budget:
    """Redis's maxmemory in bytes, as a create or a first store found it; None when
    unlimited or not readable (a managed Redis may forbid CONFIG)."""

    maxmemory: int | None

    @property
    def reservable(self) -> int:
        """What all rings together may reserve, as the scripts take it: -1 for no limit."""
        return int(self.maxmemory * RESERVABLE_SHARE) if self.maxmemory else -1

    def refusal(self, name: str, capacity: int, bytes_per_slot: float,
                others: int) -> InsufficientStorage:
        """The 507 for a ring the scripts refused, `others` bytes being reserved already."""
        assert self.maxmemory is not None  # only a limit refuses
        return InsufficientStorage(
            f"buffer '{name}' needs {capacity * bytes_per_slot / MB:.1f} MB ({capacity} "
            f"transitions of {bytes_per_slot:g} bytes), but Redis's maxmemory of "
            f"{self.maxmemory / MB:.1f} MB leaves {(self.reservable - others) / MB:.1f} MB "
            "beside the other buffers; lower the capacity, delete a buffer or give Redis "
            "more memory", field="capacity")


UNLIMITED = Budget(None)


class MemoryBudget:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def current(self) -> Budget:
        try:
            config = cast(dict[str, str], await self._redis.config_get("maxmemory"))
        except ResponseError:
            return UNLIMITED
        return Budget(int(config.get("maxmemory", "0")) or None)

    async def warn_if_evicting(self) -> None:
        """An evicting policy would let Redis drop transitions silently under pressure."""
        try:
            policy = cast(dict[str, str], await self._redis.config_get("maxmemory-policy"))
        except ResponseError:
            return
        value = policy.get("maxmemory-policy", "noeviction")
        if value != "noeviction" and (await self.current()).maxmemory:
            log.warning("Redis maxmemory-policy is %s: under memory pressure Redis may evict "
                        "buffer data. Set it to noeviction.", value)
