"""The SDK's exceptions: one base, one class per way a call can fail.

A service error keeps the service's `error` code, `message` and `field`, so the
exception reads as the service wrote it. `transient` says whether the same
request could succeed later unchanged: such calls are retried (client.retries).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BufferNotFound",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "InvalidRequest",
    "NotEnoughTransitions",
    "PayloadTooLarge",
    "ReplayError",
    "ServerError",
    "ServiceError",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
]


class ReplayError(Exception):
    """Base of every error the SDK raises."""

    transient = False
    # Pending transitions discarded with this error (a send refused for good).
    dropped = 0


class ConnectionFailed(ReplayError):
    """No answer from the service: refused, reset or timed out (the cause is chained).

    After a timeout the service may have stored the batch all the same; sent again
    with the same idempotency key, it is not stored twice.
    """

    transient = True


class ServiceError(ReplayError):
    """The service answered with an error.

    `body` is the decoded error body; it is None when the SDK found the fault
    itself before sending anything, and `status`, `code` and `field` are then
    what the service would have answered.
    """

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None,
                 body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.body = body

    def __str__(self) -> str:
        return f"{self.message} ({self.status} {self.code})"


class Unauthorized(ServiceError):
    """No API key, or not a valid one (401): pass `api_key` to the client."""


class Forbidden(ServiceError):
    """The API key may not do this (403): the read key cannot write."""


class InvalidRequest(ServiceError):
    """The request does not fit the API or the buffer's schema (400, 406, 415, 422)."""


class BufferNotFound(ServiceError):
    """The buffer does not exist (404)."""


class PayloadTooLarge(ServiceError):
    """The body is over the service's size limit (413): send fewer transitions at once."""


class Conflict(ServiceError):
    """The request contradicts the buffer as it is (409), e.g. another capacity or schema."""


class NotEnoughTransitions(Conflict):
    """The buffer holds fewer transitions than the sample asks for (409)."""

    @property
    def size(self) -> int | None:
        """What the buffer held when the sample was refused."""
        size = (self.body or {}).get("size")
        return size if isinstance(size, int) else None


class RetryLater(ServiceError):
    """An answer that asks to come back: `retry_after` is its Retry-After in seconds."""

    transient = True

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None,
                 body: dict[str, Any] | None = None, retry_after: float | None = None) -> None:
        super().__init__(status, code, message, field=field, body=body)
        self.retry_after = retry_after


class ServiceUnavailable(RetryLater):
    """The service cannot reach its storage for now (503)."""


class ServerError(ServiceError):
    """The service failed on its side (5xx other than 503). A 502 or 504 (a proxy that
    lost the service) may pass and is retried; a 500 is a fault that would repeat."""

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None,
                 body: dict[str, Any] | None = None) -> None:
        super().__init__(status, code, message, field=field, body=body)
        self.transient = status in (502, 504)


class TooManyRequests(RetryLater):
    """The service asks the client to slow down (429), e.g. a rate-limited sample."""
