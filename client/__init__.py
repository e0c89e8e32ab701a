"""Python SDK of the replay service: store transitions and sample minibatches over HTTP.

    with ReplayClient("http://localhost:8000", buffer="cartpole") as B:
        B.store(s, a, r, s_next, done)   # batched here, flushed by count and by time
        batch = B.sample(64)             # numpy arrays: batch.obs, batch.action, ...
        len(B)                           # transitions the service holds

`AsyncReplayClient` has the same methods as coroutines. Every error is a
`ReplayError`; those the service answered with carry its code and message.
"""

from client.async_client import AsyncReplayClient
from client.errors import (
    BufferNotFound,
    Conflict,
    ConnectionFailed,
    Forbidden,
    InvalidRequest,
    NotEnoughTransitions,
    PayloadTooLarge,
    ReplayError,
    ServerError,
    ServiceError,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
)
from client.outbox import OutboxFull, TransitionsDropped
from client.results import Batch, BufferInfo, Episode, EpisodePage, SizeInfo, StoreResult, Weights
from client.retries import RetryPolicy
from client.schema import FieldSpec, Prioritized, RateLimit, Schema
from client.sync_client import ReplayClient

__all__ = [
    "AsyncReplayClient",
    "Batch",
    "BufferInfo",
    "BufferNotFound",
    "Conflict",
    "ConnectionFailed",
    "Episode",
    "EpisodePage",
    "FieldSpec",
    "Forbidden",
    "InvalidRequest",
    "NotEnoughTransitions",
    "OutboxFull",
    "PayloadTooLarge",
    "Prioritized",
    "RateLimit",
    "ReplayClient",
    "ReplayError",
    "RetryPolicy",
    "Schema",
    "ServerError",
    "ServiceError",
    "ServiceUnavailable",
    "SizeInfo",
    "StoreResult",
    "TooManyRequests",
    "TransitionsDropped",
    "Unauthorized",
    "Weights",
]
