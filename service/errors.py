"""Every error the service answers with, one class per code.

Each class names its `ErrorCode` and nothing else about the answer: the status
comes with the code (wire.errors), so the service and the SDK cannot disagree on
it. error_handlers.py turns them into JSON.
"""

from __future__ import annotations

from typing import Any

from replay_service.wire.errors import ErrorCode
from replay_service.wire.schema import RateLimit

# Seconds a client should wait before retrying when Redis is unreachable or a rate
# limit holds its sample back.
RETRY_AFTER_SECONDS = 1


class ApiError(Exception):
    """An answer other than success; its status comes with its code (wire.errors)."""

    code = ErrorCode.BAD_REQUEST

    @property
    def status(self) -> int:
        return self.code.status

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra

    def headers(self) -> dict[str, str]:
        return {}


# The request as HTTP.

class Unauthorized(ApiError):
    code = ErrorCode.UNAUTHORIZED

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(ApiError):
    code = ErrorCode.FORBIDDEN


class PayloadTooLarge(ApiError):
    code = ErrorCode.PAYLOAD_TOO_LARGE


class UnsupportedMediaType(ApiError):
    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE


class NotAcceptable(ApiError):
    code = ErrorCode.NOT_ACCEPTABLE


# Buffers.

class BufferNotFound(ApiError):
    code = ErrorCode.BUFFER_NOT_FOUND

    def __init__(self, name: str) -> None:
        super().__init__(f"buffer '{name}' does not exist; create it with PUT /buffers/{name}",
                         field="name")


class BufferConflict(ApiError):
    code = ErrorCode.BUFFER_CONFLICT


class BufferReplaced(ApiError):
    """Deleted and created again, by other requests, each time this one read it afresh."""

    code = ErrorCode.BUFFER_CONFLICT

    def __init__(self, name: str) -> None:
        super().__init__(f"buffer '{name}' was deleted and created again while this request "
                         "ran, each of the times it looked; send it again", field="name")


class TooManyBuffers(ApiError):
    code = ErrorCode.TOO_MANY_BUFFERS


class LimitExceeded(ApiError):
    code = ErrorCode.LIMIT_EXCEEDED


class InvalidShard(ApiError):
    """An ordered read of a sharded buffer that names no shard, or one it lacks."""

    code = ErrorCode.INVALID_REQUEST

    def __init__(self, message: str) -> None:
        super().__init__(message, field="shard")


class InvalidRateLimit(ApiError):
    code = ErrorCode.INVALID_RATE_LIMIT


class InsufficientStorage(ApiError):
    code = ErrorCode.INSUFFICIENT_STORAGE


# Storing, reading and sampling transitions.

class IdempotencyKeyReused(ApiError):
    code = ErrorCode.IDEMPOTENCY_KEY_REUSED

    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key '{key}' was already used for a different body; "
                         "use a new key for each batch", field="idempotency-key")


class RangeNotHeld(ApiError):
    code = ErrorCode.RANGE_NOT_HELD

    def __init__(self, first: int, count: int, oldest: int, total: int) -> None:
        super().__init__(f"transitions {first} to {first + count - 1} (counted from the first "
                         f"ever inserted) are not held: the buffer holds {oldest} to {total - 1}",
                         field="first", oldest=oldest, total_inserted=total)


class NotEnoughTransitions(ApiError):
    code = ErrorCode.NOT_ENOUGH_TRANSITIONS

    def __init__(self, name: str, requested: int, size: int, with_replacement: bool) -> None:
        how = "with" if with_replacement else "without"
        super().__init__(
            f"buffer '{name}' holds {size} transitions; cannot sample {requested} {how} "
            "replacement", field="batch_size", size=size)


class RateLimitExceeded(ApiError):
    code = ErrorCode.RATE_LIMITED

    def __init__(self, name: str, limit: RateLimit, *, excess: int, size: int,
                 total_inserted: int, total_sampled: int) -> None:
        if size < limit.min_size:
            reason = f"it holds {size} transitions of the {limit.min_size} it needs first"
        else:
            reason = (f"{total_sampled} sampled against {total_inserted} inserted would pass "
                      f"{limit.samples_per_insert} samples per insert (tolerance "
                      f"{limit.tolerance:g}) by {excess}")
        super().__init__(f"buffer '{name}' is rate limited: {reason}; retry later",
                         field="batch_size", excess=excess)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}


class NotPrioritized(ApiError):
    code = ErrorCode.NOT_PRIORITIZED

    def __init__(self, name: str) -> None:
        super().__init__(f"buffer '{name}' samples uniformly: it has no priorities (create it "
                         'with "prioritized": {"alpha": 0.6} for prioritized replay)',
                         field="prioritized")


class InvalidPriority(ApiError):
    code = ErrorCode.INVALID_PRIORITY


class ReplacementRequired(ApiError):
    code = ErrorCode.REPLACEMENT_REQUIRED


class WeightsNotFound(ApiError):
    code = ErrorCode.WEIGHTS_NOT_FOUND

    def __init__(self, name: str) -> None:
        super().__init__(f"no weights were published for buffer '{name}' yet", field="name")


# The storage behind the service.

class StorageUnavailable(ApiError):
    code = ErrorCode.REDIS_UNAVAILABLE

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}


class NotReplicated(StorageUnavailable):
    """Fewer replicas than REPLAY_REPLICA_ACKS held a store in time: not acknowledged."""

    def __init__(self, wanted: int, held: int, timeout_s: float) -> None:
        super().__init__(
            f"the store reached {held} of the {wanted} replica(s) REPLAY_REPLICA_ACKS asks "
            f"for within {timeout_s:g} s, so it is not acknowledged; send it again with the "
            "same Idempotency-Key (it is not stored twice)", replicas=held)
