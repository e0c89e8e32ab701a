"""replay-service: experience replay for deep reinforcement learning, kept in Redis behind HTTP.

The Python SDK is this package's public surface:

    from replay_service import ReplayClient

    with ReplayClient("http://localhost:8000", buffer="cartpole") as B:
        B.store(s, a, r, s_next, done)   # batched here, flushed by count and by time
        batch = B.sample(64)             # numpy arrays: batch.obs, batch.action, ...
        len(B)                           # transitions the service holds

`AsyncReplayClient` has the same methods as coroutines. Every error is a
`ReplayError`; those the service answered with carry its code and message.

The subpackages map the repository's folders: `replay_service.wire` (the wire
contract both sides import), `.service` (the FastAPI service), `.client` (the SDK
and, in `.client.collector`, the gymnasium collector), `.trainer` (the DQN
learner), `.cli` (the `replay` command) and `.benchmarks`. The SDK's names load on
first use, so the service, which imports `replay_service.wire`, never loads the SDK.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from replay_service.client.async_client import AsyncReplayClient
    from replay_service.client.errors import (
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
    from replay_service.client.outbox import OutboxFull, TransitionsDropped
    from replay_service.client.results import (
        Batch,
        BufferInfo,
        Episode,
        EpisodePage,
        SizeInfo,
        StoreResult,
        Weights,
    )
    from replay_service.client.retries import RetryPolicy
    from replay_service.client.sync_client import ReplayClient
    from replay_service.wire.schema import FieldSpec, Prioritized, RateLimit, Schema

_HOMES = {
    "replay_service.client.async_client": ["AsyncReplayClient"],
    "replay_service.client.errors": [
        "BufferNotFound", "Conflict", "ConnectionFailed", "Forbidden", "InvalidRequest",
        "NotEnoughTransitions", "PayloadTooLarge", "ReplayError", "ServerError",
        "ServiceError", "ServiceUnavailable", "TooManyRequests", "Unauthorized"],
    "replay_service.client.outbox": ["OutboxFull", "TransitionsDropped"],
    "replay_service.client.results": [
        "Batch", "BufferInfo", "Episode", "EpisodePage", "SizeInfo", "StoreResult", "Weights"],
    "replay_service.client.retries": ["RetryPolicy"],
    "replay_service.client.sync_client": ["ReplayClient"],
    "replay_service.wire.schema": ["FieldSpec", "Prioritized", "RateLimit", "Schema"],
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = sorted(_HOME_OF)


def __getattr__(name: str) -> Any:
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'replay_service' has no attribute '{name}'")
    value = getattr(import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
