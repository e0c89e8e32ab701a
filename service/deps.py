"""Dependencies the route handlers take, as `Annotated` aliases.

They are coroutines: FastAPI would run plain functions on a thread pool, which
measured 13-27% of a small request's cost.
"""

from typing import Annotated

from fastapi import Depends, Path, Request
from redis.asyncio import Redis

from replay_service.service.settings import Settings
from replay_service.service.storage.episodes import EpisodeLog
from replay_service.service.storage.registry import BufferRegistry
from replay_service.service.storage.transitions import TransitionStore
from replay_service.service.storage.weights import WeightsStore
from replay_service.wire.schema import BUFFER_NAME_PATTERN


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


async def _registry(request: Request) -> BufferRegistry:
    registry: BufferRegistry = request.app.state.registry
    return registry


async def _transitions(request: Request) -> TransitionStore:
    transitions: TransitionStore = request.app.state.transitions
    return transitions


async def _weights(request: Request) -> WeightsStore:
    weights: WeightsStore = request.app.state.weights
    return weights


async def _episodes(request: Request) -> EpisodeLog:
    episodes: EpisodeLog = request.app.state.episodes
    return episodes


SettingsDep = Annotated[Settings, Depends(_settings)]
RedisDep = Annotated[Redis, Depends(_redis)]
RegistryDep = Annotated[BufferRegistry, Depends(_registry)]
TransitionsDep = Annotated[TransitionStore, Depends(_transitions)]
WeightsDep = Annotated[WeightsStore, Depends(_weights)]
EpisodesDep = Annotated[EpisodeLog, Depends(_episodes)]
BufferName = Annotated[str, Path(
    pattern=BUFFER_NAME_PATTERN, examples=["cartpole"],
    description="Letters, digits, '_', '.' and '-', starting with a letter or digit.")]
