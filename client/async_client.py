"""The asyncio client: ReplayClient's methods as coroutines, for collectors that
already run an event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing, nullcontext, suppress
from types import TracebackType
from typing import Literal, TypeVar, overload

import httpx
import numpy as np
from numpy.typing import ArrayLike

from replay_service.client.base import BaseReplayClient, dqn_row
from replay_service.client.calls import CallBuilder
from replay_service.client.errors import ReplayError
from replay_service.client.outbox import SLOW_OUTBOX_S, SealedBatch
from replay_service.client.protocol import Call, Flow, advance, connection_failed
from replay_service.client.results import (
    Batch,
    BufferInfo,
    Episode,
    EpisodePage,
    SizeInfo,
    StoreResult,
    Weights,
)
from replay_service.wire.schema import Schema

__all__ = ["AsyncReplayClient"]

T = TypeVar("T")


class AsyncReplayClient(BaseReplayClient):
    """ReplayClient for asyncio: the same constructor, the same methods, awaited.

    Sealed batches are sent by a task on the event loop, in order, each with its
    idempotency key through every retry; the outbox bound and `when_full` work as in
    ReplayClient ("block" makes `store` wait). `len()` cannot be awaited: use
    `(await client.size()).size`. Leave by `async with` or `await close()`, or what
    is unsent is lost and the sender task is left pending.
    """

    def _open(self, url: str, timeout_s: float, headers: dict[str, str] | None) -> None:
        self._calls = CallBuilder(url, timeout_s, headers)
        self._transport = httpx.AsyncHTTPTransport()
        self._state: asyncio.Condition | None = None  # made on first use, in the caller's loop
        self._sender: asyncio.Task[None] | None = None

    def _exclusive(self) -> nullcontext[None]:
        """Nothing to hold: the event loop runs one coroutine at a time, and the state
        changes only between awaits."""
        return nullcontext()

    async def store(self, obs: ArrayLike, action: ArrayLike, reward: ArrayLike,
                    next_obs: ArrayLike, done: ArrayLike, **extra: ArrayLike) -> None:
        """Queue one DQN transition; more fields go in `extra`."""
        await self.store_row(dqn_row(obs, action, reward, next_obs, done, extra))

    async def store_row(self, row: Mapping[str, ArrayLike]) -> None:
        """Queue one transition of any schema, as a mapping of field to value."""
        self._raise_failures()
        checked = self._protocol.check_row(row)
        state = self._condition()
        async with state:
            if self._pending.add(checked):
                await self._seal()
            self._start_sender()
            state.notify_all()

    @overload
    async def store_batch(self, columns: Mapping[str, ArrayLike], *,
                          idempotency_key: str | None = None,
                          wait: Literal[True] = True) -> StoreResult: ...

    @overload
    async def store_batch(self, columns: Mapping[str, ArrayLike], *,
                          idempotency_key: str | None = None,
                          wait: bool) -> StoreResult | None: ...

    async def store_batch(self, columns: Mapping[str, ArrayLike], *,
                          idempotency_key: str | None = None,
                          wait: bool = True) -> StoreResult | None:
        """ReplayClient.store_batch, awaited: it returns once the service has stored the
        batch, sent after any pending rows; an `idempotency_key` makes a batch sent
        again in a later run count once.

        With `wait=False` it returns None at once and leaves the batch to the sender
        task, which merges batches queued behind a slow request; their errors come
        from a later store, flush or close.
        """
        batch = self._new_batch(columns, idempotency_key, wait)
        async with self._condition():
            await self._seal()
            await self._enqueue(batch)
        if wait:
            await self._wait_for(batch, None)
        return self._stored(batch) if wait else None

    async def flush(self, timeout_s: float | None = None) -> StoreResult | None:
        """Send everything pending and wait until the service has stored it."""
        self._raise_failures()
        async with self._condition():
            await self._seal()
            batch = self._flush_point()
        if batch is not None:
            await self._wait_for(batch, timeout_s)
        return self._flushed(batch)

    async def sample(self, batch_size: int, *, num_batches: int | None = None,
                     replace: bool = True, beta: float | None = None,
                     timeout_s: float | None = None) -> Batch:
        return await self._call("sample", lambda: self._protocol.sample(
            batch_size, replace, num_batches, beta, timeout_s))

    async def update_priorities(self, indices: np.ndarray, inserted: np.ndarray,
                                priorities: np.ndarray) -> tuple[int, int]:
        return await self._call("update priorities", lambda: self._protocol.update_priorities(
            indices, inserted, priorities))

    async def read(self, first: int, count: int, *, inflate: bool = True,
                   shard: int | None = None) -> Batch:
        return await self._call("read", lambda: self._protocol.read(first, count, inflate,
                                                                    shard))

    async def publish_weights(self, tensors: Mapping[str, np.ndarray],
                              metadata: Mapping[str, str] | None = None) -> int:
        return await self._call("publish weights",
                                lambda: self._protocol.publish_weights(tensors, metadata))

    async def fetch_weights(self, held: Weights | None = None) -> Weights | None:
        return await self._call("fetch weights", lambda: self._protocol.fetch_weights(held))

    async def record_episodes(self, episodes: Sequence[Episode]) -> None:
        await self._call("record episodes",
                         lambda: self._protocol.record_episodes(list(episodes)))

    async def episodes(self, after: str = "0", limit: int = 1_000) -> EpisodePage:
        return await self._call("read episodes", lambda: self._protocol.episodes(after, limit))

    async def size(self) -> SizeInfo:
        """The service's counters; rows still pending here are not counted."""
        return await self._call("size", self._protocol.size)

    async def info(self) -> BufferInfo:
        return await self._call("info", self._protocol.info)

    async def create(self, capacity: int | None = None, schema: Schema | None = None,
                     shards: int | None = None) -> BufferInfo:
        """Create the buffer now; left out, capacity, schema and shards are the
        constructor's."""
        return await self._call("create", lambda: self._protocol.create(capacity, schema,
                                                                        shards))

    async def delete(self) -> None:
        """Delete the buffer, after sending what was stored before."""
        await self.flush()
        await self._call("delete", self._protocol.delete)

    async def close(self, timeout_s: float | None = None) -> None:
        """Send what is unsent (trying for up to `timeout_s`, by default the retry policy's
        close_deadline_s), then release the connection."""
        if self._closed:
            return
        failure: ReplayError | None = None
        try:
            await self.flush(self._close_deadline(timeout_s))
        except ReplayError as error:
            failure = error
        finally:
            lost = await self._release()
        self._raise_unsent(lost, failure)

    async def __aenter__(self) -> AsyncReplayClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        try:
            await self.close()
        except Exception as error:
            self._report_failed_exit(exc, error)

    def _condition(self) -> asyncio.Condition:
        if self._state is None:
            self._state = asyncio.Condition()
        return self._state

    # What follows runs with the condition held, unless it says otherwise.

    async def _seal(self) -> None:
        batch = self._take_pending()
        if batch is not None:
            await self._enqueue(batch)

    async def _enqueue(self, batch: SealedBatch) -> None:
        state = self._condition()
        if self._must_wait_for_room(batch):
            self._start_sender()
            try:
                await asyncio.wait_for(
                    state.wait_for(lambda: self._outbox.has_room(batch.count)), SLOW_OUTBOX_S)
            except TimeoutError:
                self._warn_slow_outbox()
                await state.wait_for(lambda: self._outbox.has_room(batch.count))
        self._outbox.add(batch)
        self._start_sender()
        state.notify_all()

    def _start_sender(self) -> None:
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(
                self._send_forever(), name=f"replay-sender-{self._buffer}")

    # The sender task.

    async def _send_forever(self) -> None:
        state = self._condition()
        while (batch := await self._next_batch()) is not None:
            failure: Exception | None = None
            try:
                batch.result = await self._send(batch)
            except Exception as error:  # whatever it is, the batch must settle
                failure = error
            async with state:
                self._sent(batch, failure)
                state.notify_all()

    async def _next_batch(self) -> SealedBatch | None:
        """The oldest sealed batch, sealing pending rows once they are old enough."""
        state = self._condition()
        async with state:
            while (head := self._outbox.next_to_send()) is None and not self._closed:
                if self._seal_due():
                    await self._seal()
                else:
                    with suppress(TimeoutError):
                        await asyncio.wait_for(state.wait(), self._idle_wait_s())
            return head

    async def _send(self, batch: SealedBatch) -> StoreResult:
        """Retried for as long as it takes, until close() gives up."""
        async def attempt() -> StoreResult:
            return await self._run(self._protocol.store(batch.columns, batch.key,
                                                         batch.packed))

        return await self._retry.async_call(
            f"store of {batch.count} transitions into {self._buffer}", attempt,
            deadline_s=None, give_up=self._giving_up)

    # Helpers for the caller.

    async def _release(self) -> int:
        """Stop the sender task (cancelled if its last retry's wait runs over) and drop
        the connection; returns the transitions left unsent."""
        state = self._condition()
        async with state:
            lost = self._mark_closed()
            state.notify_all()
        if self._sender is not None:
            await asyncio.wait([self._sender], timeout=self._retry.max_wait_s + 1)
            self._sender.cancel()
        await self._transport.aclose()
        return lost

    async def _wait_for(self, batch: SealedBatch, timeout_s: float | None) -> None:
        state = self._condition()
        async with state:
            try:
                await asyncio.wait_for(state.wait_for(lambda: batch.settled), timeout_s)
            except TimeoutError:
                raise self._not_taken(timeout_s) from None

    async def _call(self, what: str, make_flow: Callable[[], Flow[T]]) -> T:
        self._check_open()
        async def attempt() -> T:
            return await self._run(make_flow())

        return await self._retry.async_call(f"{what} on {self._buffer}", attempt,
                                            deadline_s=self._retry.call_deadline_s)

    async def _run(self, flow: Flow[T]) -> T:
        with closing(flow):
            step = advance(flow)
            while isinstance(step, Call):
                step = advance(flow, await self._request(step))
            return step.result

    async def _request(self, call: Call) -> httpx.Response:
        request = self._calls.request(call)
        try:
            response = await self._transport.handle_async_request(request)
            try:
                await response.aread()
            finally:
                await response.aclose()
        except httpx.TransportError as error:
            raise connection_failed(self._calls.base_url, error) from error
        response.request = request
        return response
