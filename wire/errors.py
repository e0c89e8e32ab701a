"""Every error code the service answers with, and the HTTP status each travels with.

An error answer is always the JSON object `{"error": code, "message": text,
"field": name or null, ...}`. The service raises by code; the SDK reads the code
back into a typed exception. Both take the status from `ErrorCode.status`, so a
code never travels with two statuses.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ErrorCode"]


class ErrorCode(StrEnum):
    # The request as HTTP.
    BAD_REQUEST = "bad_request"
    INVALID_REQUEST = "invalid_request"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    HTTP_ERROR = "http_error"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    NOT_ACCEPTABLE = "not_acceptable"
    # Bodies: bytes that do not parse (400), or parse but do not fit the schema (422).
    INVALID_JSON = "invalid_json"
    INVALID_SAFETENSORS = "invalid_safetensors"
    INVALID_BODY = "invalid_body"
    INVALID_SCHEMA = "invalid_schema"
    INVALID_FIELD_NAME = "invalid_field_name"
    INVALID_DTYPE = "invalid_dtype"
    INVALID_SHAPE = "invalid_shape"
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    EMPTY_BATCH = "empty_batch"
    BATCH_LENGTH_MISMATCH = "batch_length_mismatch"
    INCONSISTENT_ROWS = "inconsistent_rows"
    NON_FINITE = "non_finite"
    OUT_OF_RANGE = "out_of_range"
    INVALID_COMPRESSION = "invalid_compression"
    FRAME_SIZE_MISMATCH = "frame_size_mismatch"
    # Buffers and what they hold.
    BUFFER_NOT_FOUND = "buffer_not_found"
    BUFFER_CONFLICT = "buffer_conflict"
    TOO_MANY_BUFFERS = "too_many_buffers"
    LIMIT_EXCEEDED = "limit_exceeded"
    NOT_ENOUGH_TRANSITIONS = "not_enough_transitions"
    RANGE_NOT_HELD = "range_not_held"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    NOT_PRIORITIZED = "not_prioritized"
    INVALID_PRIORITY = "invalid_priority"
    REPLACEMENT_REQUIRED = "replacement_required"
    INVALID_RATE_LIMIT = "invalid_rate_limit"
    RATE_LIMITED = "rate_limited"
    WEIGHTS_NOT_FOUND = "weights_not_found"
    # The storage behind the service.
    INSUFFICIENT_STORAGE = "insufficient_storage"
    REDIS_OUT_OF_MEMORY = "redis_out_of_memory"
    REDIS_UNAVAILABLE = "redis_unavailable"
    INTERNAL_ERROR = "internal_error"

    @property
    def status(self) -> int:
        """The HTTP status of an answer carrying this code."""
        return _STATUS.get(self, 422)


# Codes left out travel with 422: the request parsed but cannot be carried out as asked.
_STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.INVALID_JSON: 400,
    ErrorCode.INVALID_SAFETENSORS: 400,
    ErrorCode.INVALID_COMPRESSION: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.BUFFER_NOT_FOUND: 404,
    ErrorCode.WEIGHTS_NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.NOT_ACCEPTABLE: 406,
    ErrorCode.BUFFER_CONFLICT: 409,
    ErrorCode.TOO_MANY_BUFFERS: 409,
    ErrorCode.NOT_ENOUGH_TRANSITIONS: 409,
    ErrorCode.RANGE_NOT_HELD: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.REDIS_UNAVAILABLE: 503,
    ErrorCode.INSUFFICIENT_STORAGE: 507,
    ErrorCode.REDIS_OUT_OF_MEMORY: 507,
}
