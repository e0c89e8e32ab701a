"""Builds the FastAPI application; `replay serve` runs it under uvicorn."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any, cast

from fastapi import Depends, FastAPI
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from replay_service.service.auth import authorize, warn_if_open
from replay_service.service.cors import install_cors
from replay_service.service.docs import install_docs
from replay_service.service.error_handlers import install_error_handlers
from replay_service.service.hot_path import HotPath
from replay_service.service.malloc import keep_freed_memory
from replay_service.service.metrics import install_metrics
from replay_service.service.openapi import install_openapi
from replay_service.service.routes import api_router
from replay_service.service.settings import Settings
from replay_service.service.status_page import install_status_page
from replay_service.service.storage.episodes import EpisodeLog
from replay_service.service.storage.memory import MemoryBudget
from replay_service.service.storage.registry import BufferRegistry
from replay_service.service.storage.replication import ReplicatedWrites
from replay_service.service.storage.ring import Ring
from replay_service.service.storage.scripts import Scripts
from replay_service.service.storage.transitions import TransitionStore
from replay_service.service.storage.weights import WeightsStore

log = logging.getLogger("replay.service")


async def connect_redis(settings: Settings) -> tuple[Redis, bool]:
    """The client, and whether it talks to a Redis Cluster."""
    if not settings.redis_url:
        raise RuntimeError("REPLAY_REDIS_URL is not set; `replay serve` starts a private Redis "
                           "when it is left out")
    cluster = settings.redis_cluster
    if cluster is None:
        cluster = await _is_cluster(settings.redis_url, settings.redis_timeout_s)
    # No transparent retries: a store retried after a dropped reply would be stored
    # twice. A failed call answers 503 and the client decides; the broken
    # connection is dropped, so the next request reconnects once Redis is back.
    # Sampled batches come back as megabytes: read them in 1 MiB pieces, not 64 KiB
    # (a 14.5 MB reply of Atari frames took 26 ms of CPU to read, 10.5 ms so).
    options: dict[str, Any] = {"socket_timeout": settings.redis_timeout_s,
               "socket_connect_timeout": settings.redis_timeout_s,
               "retry": Retry(NoBackoff(), 0), "health_check_interval": 5,
               "socket_read_size": 1 << 20}
    if cluster:
        # A cluster client follows MOVED and ASK itself; it offers the same commands
        # and scripts, each routed to the node that holds its keys' slot.
        return cast(Redis, RedisCluster.from_url(settings.redis_url, **options)), True
    return Redis.from_url(settings.redis_url, **options), False


async def _is_cluster(url: str, timeout_s: float) -> bool:
    probe = Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        return bool((await probe.info("cluster")).get("cluster_enabled"))
    except RedisError:  # down at start: taken for a single Redis (REPLAY_REDIS_CLUSTER)
        log.warning("could not ask Redis whether it is a cluster; taking it for one node")
        return False
    finally:
        await probe.aclose()


def create_server(settings: Settings | None = None) -> HotPath:
    """What `replay serve` runs: the hot operations answered ahead of the FastAPI app."""
    return HotPath(create_app(settings))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    keep_freed_memory()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis, cluster = await connect_redis(settings)
        scripts = Scripts.register(redis)
        memory = MemoryBudget(redis)
        registry = BufferRegistry(redis, scripts, memory, segment_bytes=settings.segment_bytes,
                                  max_buffers=settings.max_buffers, cluster=cluster)
        app.state.settings = settings
        app.state.redis = redis
        app.state.registry = registry
        replicated = ReplicatedWrites(redis, replicas=settings.replica_acks,
                                      timeout_s=settings.replica_ack_timeout_s) if (
            settings.replica_acks) else None
        app.state.transitions = TransitionStore(registry, scripts, Ring(scripts, replicated),
                                                max_batch=settings.max_batch,
                                                max_inflated_bytes=settings.max_body_bytes,
                                                metrics=app.state.metrics)
        app.state.weights = WeightsStore(scripts)
        app.state.episodes = EpisodeLog(redis, scripts)
        warn_if_open(settings)
        with suppress(RedisError):  # Redis may be down at start: the service waits for it
            await memory.warn_if_evicting()
        try:
            yield
        finally:
            await redis.aclose()

    app = FastAPI(
        title="replay-service",
        summary="Experience replay for deep RL: capped buffers in Redis, store and sample "
                "over HTTP.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # install_docs serves /docs and /redoc without a CDN
        redoc_url=None,
        dependencies=[Depends(authorize)],
    )
    install_error_handlers(app)
    install_cors(app, settings.cors_origins)
    install_metrics(app)  # after CORS, so outside it: preflights are counted too
    app.include_router(api_router)
    install_openapi(app, settings)
    install_docs(app)
    install_status_page(app)
    return app
