"""Dependencies the route handlers take, as `Annotated` aliases."""

from typing import Annotated

from fastapi import Depends, Path, Request
from redis.asyncio import Redis

from client.schema import BUFFER_NAME_PATTERN
from service.settings import Settings
from service.storage.buffers import Buffers


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


def _buffers(request: Request) -> Buffers:
    buffers: Buffers = request.app.state.buffers
    return buffers


SettingsDep = Annotated[Settings, Depends(_settings)]
RedisDep = Annotated[Redis, Depends(_redis)]
BuffersDep = Annotated[Buffers, Depends(_buffers)]
BufferName = Annotated[str, Path(
    pattern=BUFFER_NAME_PATTERN, examples=["cartpole"],
    description="Letters, digits, '_', '.' and '-', starting with a letter or digit.")]
