"""Liveness and readiness, for orchestrators and load balancers."""

from fastapi import APIRouter
from redis.exceptions import RedisError

from replay_service.service.deps import RedisDep
from replay_service.service.errors import StorageUnavailable
from replay_service.service.openapi import errors
from replay_service.wire.errors import ErrorCode

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Redis answers: the service can store and sample",
            responses=errors(ErrorCode.REDIS_UNAVAILABLE))
async def readyz(redis: RedisDep) -> dict[str, str]:
    try:
        await redis.ping()
    except (RedisError, OSError) as error:
        raise StorageUnavailable(f"Redis does not answer: {error}") from None
    return {"status": "ready"}
