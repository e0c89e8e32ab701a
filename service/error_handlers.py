"""The handlers that turn every error into the one JSON answer clients read.

A response error is always `{"error": code, "message": text, "field": name or
null, ...}`: the client SDK maps `error` to a typed exception, and a person reads
`message`. No stack trace ever leaves the process.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis.exceptions import ClusterDownError, ReadOnlyError, SlotNotCoveredError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError as RedisResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from replay_service.service.errors import ApiError, StorageUnavailable
from replay_service.wire.codec import WireError
from replay_service.wire.errors import ErrorCode

log = logging.getLogger("replay.service")

# What a cluster answers while its slots move or a master fails over, for seconds.
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ClusterDownError, TryAgainError,
                ReadOnlyError, SlotNotCoveredError)


def error_response(code: ErrorCode, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None, *, status: int | None = None,
                   **extra: Any) -> Response:
    """The JSON error answer; `status` only where the HTTP layer chose it (HTTP_ERROR)."""
    body = {"error": code, "message": message, "field": field, **extra}
    return Response(orjson.dumps(body), status_code=status or code.status, headers=headers,
                    media_type="application/json")


def error_answer(error: Exception) -> Response | None:
    """The answer to an error the service expects (its own, the codec's, Redis's), or
    None for anything else. The hot path, which runs ahead of FastAPI's handlers, asks
    it too, so both answer an error alike."""
    if isinstance(error, ApiError):
        return error_response(error.code, error.message, error.field, error.headers(),
                              **error.extra)
    if isinstance(error, WireError):
        return error_response(error.code, error.message, error.field)
    if isinstance(error, _UNREACHABLE):  # a cluster in transition answers the same 503
        log.warning("Redis unreachable: %s", error)
        return error_answer(StorageUnavailable("Redis is unreachable; retry shortly"))
    if isinstance(error, RedisResponseError):
        if str(error).startswith("OOM"):
            return error_response(ErrorCode.REDIS_OUT_OF_MEMORY,
                                  "Redis is out of memory (maxmemory); nothing was stored")
        log.error("Redis refused a command: %s", error)
        return error_response(ErrorCode.INTERNAL_ERROR, "the storage refused the request")
    return None


def internal_error_answer(error: Exception) -> Response:
    """A 500 that says nothing of the error; the log has it, with its stack."""
    log.error("unexpected error", exc_info=error)
    return error_response(ErrorCode.INTERNAL_ERROR, "internal error; see the service log")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    @app.exception_handler(WireError)
    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    @app.exception_handler(RedisResponseError)
    @app.exception_handler(SlotNotCoveredError)
    async def expected_error(_: Request, error: Exception) -> Response:
        answer = error_answer(error)
        assert answer is not None  # registered for exactly the types error_answer knows
        return answer

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0]
        location = [str(part) for part in first["loc"] if part not in ("body", "query", "path")]
        field = ".".join(location) or None
        where = f"'{field}': " if field else ""
        return error_response(ErrorCode.INVALID_REQUEST, f"{where}{first['msg']}", field)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> Response:
        code = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}.get(
            error.status_code, ErrorCode.HTTP_ERROR)
        return error_response(code, str(error.detail), headers=dict(error.headers or {}),
                              status=error.status_code)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, error: Exception) -> Response:
        return internal_error_answer(error)
