"""Episode results reported by collectors, kept in a capped Redis stream.

The trainer and users read them to see training progress; the stream keeps the
newest entries only, so it never grows without bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis
from replay_service.service.storage import keys

# Entries kept per buffer (approximately: trimming is done in whole stream nodes).
MAX_EPISODES = 100_000


@dataclass(frozen=True)
class Episode:
    episode_return: float
    length: int
    source: str


@dataclass(frozen=True)
class LoggedEpisode(Episode):
    id: str


class EpisodeLog:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def append(self, name: str, episodes: list[Episode]) -> str:
        """Add episodes in order; returns the id of the last one."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for episode in episodes:
                pipe.xadd(keys.episodes(name), {"return": repr(episode.episode_return),
                                                "length": episode.length,
                                                "source": episode.source},
                          maxlen=MAX_EPISODES, approximate=True)
            ids = cast(list[bytes], await pipe.execute())
        return ids[-1].decode()

    async def read(self, name: str, after: str, limit: int) -> list[LoggedEpisode]:
        """Episodes logged after the id `after` ("0" for the oldest kept), oldest first."""
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await self._redis.xrange(
            keys.episodes(name), min=f"({after}" if after != "0" else "-", count=limit))
        return [LoggedEpisode(id=entry_id.decode(), episode_return=float(fields[b"return"]),
                              length=int(fields[b"length"]), source=fields[b"source"].decode())
                for entry_id, fields in entries]
