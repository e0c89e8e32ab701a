"""Episode results reported by collectors, kept in a capped Redis stream.

The trainer and users read them to see training progress; the stream keeps the
newest entries only, so it never grows without bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

from replay_service.service.storage import keys
from replay_service.service.storage.scripts import Scripts
from replay_service.service.storage.status import status_of

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
    def __init__(self, redis: Redis, scripts: Scripts) -> None:
        self._redis = redis
        self._scripts = scripts

    async def append(self, name: str, episodes: list[Episode]) -> str:
        """Add episodes in order, if the buffer exists now (in Redis, whatever this
        process has cached); returns the id of the last one."""
        reply = await self._scripts.append_episodes(
            keys=[keys.meta(name), keys.episodes(name)],
            args=[MAX_EPISODES, *(value for episode in episodes for value in (
                repr(episode.episode_return), episode.length, episode.source))])
        status_of(reply, name)
        last_id: bytes = reply[1]
        return last_id.decode()

    async def read(self, name: str, after: str, limit: int) -> list[LoggedEpisode]:
        """Episodes logged after the id `after` ("0" for the oldest kept), oldest first."""
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await self._redis.xrange(
            keys.episodes(name), min=f"({after}" if after != "0" else "-", count=limit))
        return [LoggedEpisode(id=entry_id.decode(), episode_return=float(fields[b"return"]),
                              length=int(fields[b"length"]), source=fields[b"source"].decode())
                for entry_id, fields in entries]
