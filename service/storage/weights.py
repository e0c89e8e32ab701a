"""Policy weights, published by a trainer and fetched by collectors (parameter exchange).

Weights belong to a buffer, the way a run's experience and its policy belong
together: deleting the buffer deletes them. The body is safetensors, checked
here and then kept as opaque bytes; the trainer's metadata rides inside it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from replay_service.service.errors import WeightsNotFound
from replay_service.service.storage import keys
from replay_service.service.storage.scripts import Scripts
from replay_service.service.storage.status import Status, status_of


@dataclass(frozen=True)
class Published:
    version: int
    etag: str


@dataclass(frozen=True)
class Fetched:
    version: int
    etag: str
    body: bytes | None  # None: the caller already holds this version


class WeightsStore:
    def __init__(self, scripts: Scripts) -> None:
        self._scripts = scripts

    async def publish(self, name: str, body: bytes) -> Published:
        reply = await self._scripts.publish_weights(
            keys=[keys.meta(name), keys.weights(name)], args=[body, time.time()])
        status_of(reply, name)
        return Published(version=reply[1], etag=reply[2].decode())

    async def fetch(self, name: str, held_etag: str | None) -> Fetched:
        reply = await self._scripts.fetch_weights(keys=[keys.weights(name)],
                                                  args=[held_etag or ""])
        status = status_of(reply, name)
        if status is Status.UNPUBLISHED:
            raise WeightsNotFound(name)
        body = None if status is Status.UNCHANGED else reply[3]
        return Fetched(version=reply[1], etag=reply[2].decode(), body=body)
