"""Policy weights, published by a trainer and fetched by collectors (parameter exchange).

Weights belong to a buffer, the way a run's experience and its policy belong
together: deleting the buffer deletes them. The body is safetensors, checked
here and then kept as opaque bytes; the trainer's metadata rides inside it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from replay_service.service.errors import ApiError, BufferNotFound
from replay_service.service.storage import keys
from replay_service.service.storage.scripts import Scripts
from replay_service.wire.errors import ErrorCode

_NONE, _UNCHANGED = 0, 1


class WeightsNotFound(ApiError):
    code = ErrorCode.WEIGHTS_NOT_FOUND

    def __init__(self, name: str) -> None:
        super().__init__(f"no weights were published for buffer '{name}' yet", field="name")


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
        if reply[0] != 0:
            raise BufferNotFound(name)
        return Published(version=reply[1], etag=reply[2].decode())

    async def fetch(self, name: str, held_etag: str | None) -> Fetched:
        reply = await self._scripts.fetch_weights(keys=[keys.weights(name)],
                                                  args=[held_etag or ""])
        if reply[0] == _NONE:
            raise WeightsNotFound(name)
        body = None if reply[0] == _UNCHANGED else reply[3]
        return Fetched(version=reply[1], etag=reply[2].decode(), body=body)
