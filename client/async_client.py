"""The asyncio client: ReplayClient's methods as coroutines, for collectors that
already run an event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TypeVar

import httpx
import numpy as np
from numpy.typing import ArrayLike

from client.errors import ReplayError
from client.pending import PendingRows, rows_to_columns
from client.protocol import BufferProtocol, Call, Flow, connection_failed
from client.results import (
    Batch,
    BufferInfo,
    Episode,
    EpisodePage,
    SizeInfo,
    StoreResult,
    Weights,
)
from client.schema import DQN_FIELDS, Schema

__all__ = ["AsyncReplayClient"]

T = TypeVar("T")


class AsyncReplayClient:
    """ReplayClient for asyncio: the same constructor, the same methods, awaited.

    The time-based flush runs as a task on the event loop, so it only gets its
    turn while the caller awaits something. `len()` cannot be awaited: use
    `(await client.size()).size`. Leave by `async with` or `await close()`, or
    pending rows are lost and the flush task is left pending.
    """

    def __init__(self, url: str, buffer: str, *, capacity: int | None = None,
                 schema: Schema | None = None, flush_every: int = 256,
                 flush_interval_s: float = 1.0, timeout_s: float = 30.0,
                 binary: bool = True) -> None:
        self._protocol = BufferProtocol(buffer, capacity=capacity, schema=schema, binary=binary)
        self._pending = PendingRows(flush_every=flush_every, flush_interval_s=flush_interval_s)
        self._http = httpx.AsyncClient(base_url=url, timeout=timeout_s)
        self._send_lock = asyncio.Lock()  # one send at a time keeps batches in store order
        self._deferred: Exception | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    async def store(self, obs: ArrayLike, action: ArrayLike, reward: ArrayLike,
                    next_obs: ArrayLike, done: ArrayLike, **extra: ArrayLike) -> None:
        """Queue one DQN transition; more fields go in `extra`."""
        await self.store_row({**dict(zip(DQN_FIELDS, (obs, action, reward, next_obs, done),
                                         strict=True)), **extra})

    async def store_row(self, row: Mapping[str, ArrayLike]) -> None:
        """Queue one transition of any schema, as a mapping of field to value."""
        self._raise_deferred()
        if self._pending.add(self._protocol.check_row(row)):
            await self.flush()
        elif self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(
                self._flush_on_time(), name="replay-flush")

    async def store_batch(self, columns: Mapping[str, ArrayLike]) -> StoreResult:
        """Send a batch of columns (batch dimension first) now, after any pending rows."""
        self._raise_deferred()
        async with self._send_lock:
            await self._send_pending()
            return await self._run(self._protocol.store(columns))

    async def flush(self) -> StoreResult | None:
        """Send the pending rows as one batch; None if there were none."""
        self._raise_deferred()
        async with self._send_lock:
            return await self._send_pending()

    async def sample(self, batch_size: int, *, num_batches: int | None = None,
                     replace: bool = True) -> Batch:
        return await self._run(self._protocol.sample(batch_size, replace, num_batches))

    async def publish_weights(self, tensors: Mapping[str, np.ndarray],
                              metadata: Mapping[str, str] | None = None) -> int:
        return await self._run(self._protocol.publish_weights(tensors, metadata))

    async def fetch_weights(self, held: Weights | None = None) -> Weights | None:
        return await self._run(self._protocol.fetch_weights(held))

    async def record_episodes(self, episodes: Sequence[Episode]) -> None:
        await self._run(self._protocol.record_episodes(list(episodes)))

    async def episodes(self, after: str = "0", limit: int = 1_000) -> EpisodePage:
        return await self._run(self._protocol.episodes(after, limit))

    async def size(self) -> SizeInfo:
        """The service's counters; rows still pending here are not counted."""
        return await self._run(self._protocol.size())

    async def info(self) -> BufferInfo:
        return await self._run(self._protocol.info())

    async def create(self, capacity: int | None = None, schema: Schema | None = None
                     ) -> BufferInfo:
        """Create the buffer now; left out, capacity and schema are the constructor's."""
        return await self._run(self._protocol.create(capacity, schema))

    async def delete(self) -> None:
        await self._run(self._protocol.delete())

    async def close(self) -> None:
        """Flush, then release the connection; the client is unusable afterwards."""
        if self._closed:
            return
        try:
            if self._flusher is not None:
                self._flusher.cancel()
                await asyncio.wait([self._flusher])
            await self.flush()
        finally:
            self._closed = True
            await self._http.aclose()

    async def __aenter__(self) -> AsyncReplayClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        if exc is None:
            await self.close()
            return
        try:
            await self.close()
        except Exception as error:  # the exception already leaving matters more
            exc.add_note(f"flushing the replay client on exit failed too: {error}")

    async def _send_pending(self) -> StoreResult | None:
        with self._pending.taking() as rows:
            if not rows:
                return None
            return await self._run(self._protocol.store(rows_to_columns(rows)))

    async def _flush_on_time(self) -> None:
        while True:
            # While an error waits to be raised, nothing is sent: the caller hears of it first.
            await asyncio.sleep(self._pending.flush_interval_s if self._deferred is not None
                                else self._pending.due_in())
            if self._deferred is not None or self._pending.due_in() > 0:
                continue
            async with self._send_lock:
                try:
                    if self._pending.due_in() == 0:  # an inline flush may have sent them
                        await self._send_pending()
                except Exception as error:
                    self._deferred = error

    def _check_open(self) -> None:
        if self._closed:
            raise ReplayError("the replay client is closed")

    def _raise_deferred(self) -> None:
        self._check_open()
        error, self._deferred = self._deferred, None
        if error is not None:
            raise error

    async def _run(self, flow: Flow[T]) -> T:
        self._check_open()
        try:
            call = next(flow)
            while True:
                call = flow.send(await self._send(call))
        except StopIteration as done:
            result: T = done.value
            return result
        finally:
            flow.close()

    async def _send(self, call: Call) -> httpx.Response:
        try:
            return await self._http.request(call.method, call.path, params=call.params,
                                            headers=call.headers, content=call.content)
        except httpx.TransportError as error:
            raise connection_failed(self._http.base_url, error) from error
