"""The asyncio client: ReplayClient's methods as coroutines, for collectors that
already run an event loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Literal, TypeVar, overload

import httpx
import numpy as np
from numpy.typing import ArrayLike
from replay_service.client.errors import PayloadTooLarge, ReplayError
from replay_service.client.outbox import (
    SLOW_OUTBOX_S,
    SLOW_OUTBOX_WARNING,
    Outbox,
    OutboxFull,
    SealedBatch,
    TransitionsDropped,
    WhenFull,
)
from replay_service.client.pending import PendingRows, rows_to_columns
from replay_service.client.protocol import BufferProtocol, Call, Flow, connection_failed
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
from replay_service.client.sync_client import batch_length
from replay_service.wire.schema import DQN_FIELDS, Prioritized, RateLimit, Schema

__all__ = ["AsyncReplayClient"]

T = TypeVar("T")

log = logging.getLogger("replay.client")


class AsyncReplayClient:
    """ReplayClient for asyncio: the same constructor, the same methods, awaited.

    Sealed batches are sent by a task on the event loop, in order, each with its
    idempotency key through every retry; the outbox bound and `when_full` work as in
    ReplayClient ("block" makes `store` wait). `len()` cannot be awaited: use
    `(await client.size()).size`. Leave by `async with` or `await close()`, or what
    is unsent is lost and the sender task is left pending.
    """

    def __init__(self, url: str, buffer: str, *, capacity: int | None = None,
                 schema: Schema | None = None, flush_every: int = 256,
                 flush_interval_s: float = 1.0, timeout_s: float = 30.0,
                 binary: bool = True, max_unsent: int = 100_000, when_full: WhenFull = "block",
                 retry: RetryPolicy | None = None, api_key: str | None = None,
                 prioritized: Prioritized | None = None,
                 rate_limit: RateLimit | None = None) -> None:
        self._protocol = BufferProtocol(buffer, capacity=capacity, schema=schema, binary=binary,
                                        prioritized=prioritized, rate_limit=rate_limit)
        self._pending = PendingRows(flush_every=flush_every, flush_interval_s=flush_interval_s)
        self._outbox = Outbox(max_unsent, when_full)
        self._retry = retry or RetryPolicy()
        headers = {"authorization": f"Bearer {api_key}"} if api_key else None
        self._http = httpx.AsyncClient(base_url=url, timeout=timeout_s, headers=headers)
        self._buffer = buffer
        self._state: asyncio.Condition | None = None  # made on first use, in the caller's loop
        self._failures: list[ReplayError] = []
        self._sender: asyncio.Task[None] | None = None
        self._give_up_at: float | None = None
        self._closed = False

    @property
    def dropped(self) -> int:
        """Transitions dropped so far because the outbox was full (when_full="drop_oldest")."""
        return self._outbox.dropped

    async def store(self, obs: ArrayLike, action: ArrayLike, reward: ArrayLike,
                    next_obs: ArrayLike, done: ArrayLike, **extra: ArrayLike) -> None:
        """Queue one DQN transition; more fields go in `extra`."""
        await self.store_row({**dict(zip(DQN_FIELDS, (obs, action, reward, next_obs, done),
                                         strict=True)), **extra})

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
        """Send a batch of columns (batch dimension first) after any pending rows, and wait
        until the service has stored it. Give an `idempotency_key` to make a batch you may
        send again in a later run (an import, say) count once; by default each call is a
        new batch.

        `wait=False` returns at once (None) and leaves the batch to the background
        sender, which merges batches queued behind a slow request into one: the way to
        store fast from one thread. Its errors come from a later store, flush or close.
        """
        self._raise_failures()
        arrays = {name: np.asarray(values) for name, values in columns.items()}
        if not wait:  # the caller may refill its arrays as soon as this returns
            arrays = {name: column.copy() for name, column in arrays.items()}
        batch = SealedBatch(arrays, batch_length(arrays), awaited=wait)
        if idempotency_key is not None:
            batch.key, batch.keyed = idempotency_key, True
        async with self._condition():
            await self._seal()
            await self._enqueue(batch)
        if not wait:
            return None
        await self._wait_for(batch, None)
        if batch.error is not None:
            raise batch.error
        assert batch.result is not None
        return batch.result

    async def flush(self, timeout_s: float | None = None) -> StoreResult | None:
        """Send everything pending and wait until the service has stored it."""
        self._raise_failures()
        async with self._condition():
            await self._seal()
            batch = self._outbox.last()
            dropped = self._outbox.new_drops()
        if dropped:  # said before waiting: the rest may take long
            raise TransitionsDropped(dropped)
        if batch is not None:
            await self._wait_for(batch, timeout_s)
        self._raise_failures()
        return batch.result if batch is not None else None

    async def sample(self, batch_size: int, *, num_batches: int | None = None,
                     replace: bool = True, beta: float | None = None,
                     timeout_s: float | None = None) -> Batch:
        return await self._call("sample", lambda: self._protocol.sample(
            batch_size, replace, num_batches, beta, timeout_s))

    async def update_priorities(self, indices: np.ndarray, inserted: np.ndarray,
                                priorities: np.ndarray) -> tuple[int, int]:
        return await self._call("update priorities", lambda: self._protocol.update_priorities(
            indices, inserted, priorities))

    async def read(self, first: int, count: int) -> Batch:
        return await self._call("read", lambda: self._protocol.read(first, count))

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

    async def create(self, capacity: int | None = None, schema: Schema | None = None
                     ) -> BufferInfo:
        """Create the buffer now; left out, capacity and schema are the constructor's."""
        return await self._call("create", lambda: self._protocol.create(capacity, schema))

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
            await self.flush(self._retry.close_deadline_s if timeout_s is None else timeout_s)
        except ReplayError as error:
            failure = error
        finally:
            state = self._condition()
            async with state:
                self._give_up_at = time.monotonic()
                self._closed = True
                state.notify_all()
                lost = len(self._pending) + self._outbox.unsent
            if self._sender is not None:
                await asyncio.wait([self._sender], timeout=self._retry.max_wait_s + 1)
                self._sender.cancel()
            await self._http.aclose()
        if lost:
            raise ReplayError(f"{lost} transitions were not sent before the client closed"
                              ) from failure
        if failure is not None:
            raise failure

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

    def _condition(self) -> asyncio.Condition:
        if self._state is None:
            self._state = asyncio.Condition()
        return self._state

    # What follows runs with the condition held, unless it says otherwise.

    async def _seal(self) -> None:
        rows = self._pending.take()
        if rows:
            await self._enqueue(SealedBatch(rows_to_columns(rows), len(rows)))

    async def _enqueue(self, batch: SealedBatch) -> None:
        outbox, state = self._outbox, self._condition()
        if not outbox.has_room(batch.count):
            if outbox.when_full == "raise":
                raise OutboxFull(f"{outbox.unsent} transitions are waiting to be sent, the "
                                 f"limit (max_unsent={outbox.max_unsent}); is the service up?")
            if outbox.when_full == "drop_oldest":
                dropped = outbox.drop_for(batch.count)
                log.warning("outbox full: dropped %d unsent transitions for buffer %s "
                            "(%d dropped so far)", dropped, self._buffer, outbox.dropped)
            else:
                self._start_sender()
                try:
                    await asyncio.wait_for(state.wait_for(lambda: outbox.has_room(batch.count)),
                                           SLOW_OUTBOX_S)
                except TimeoutError:
                    log.warning(SLOW_OUTBOX_WARNING, outbox.unsent, SLOW_OUTBOX_S)
                    await state.wait_for(lambda: outbox.has_room(batch.count))
        outbox.add(batch)
        self._start_sender()
        state.notify_all()

    def _start_sender(self) -> None:
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(
                self._send_forever(), name=f"replay-sender-{self._buffer}")

    # The sender task.

    async def _send_forever(self) -> None:
        while (batch := await self._next_batch()) is not None:
            try:
                batch.result = await self._send(batch)
            except PayloadTooLarge as error:
                if batch.parts:  # our merge was too large: nothing stored, send the parts
                    async with self._condition():
                        self._outbox.split_head()
                    continue
                batch.fail(error)
            except Exception as exception:  # whatever it is, the batch must settle
                batch.fail(exception)
            state = self._condition()
            async with state:
                self._outbox.settle_head()
                if batch.error is not None and not batch.awaited and not self._closed:
                    self._failures.append(batch.error)
                state.notify_all()

    async def _next_batch(self) -> SealedBatch | None:
        """The oldest sealed batch, sealing pending rows once they are old enough."""
        state = self._condition()
        async with state:
            while True:
                head = self._outbox.next_to_send()
                if head is not None:
                    return head
                if self._closed:
                    return None
                due_in = self._pending.due_in()
                if len(self._pending) and due_in == 0:
                    await self._seal()
                    continue
                try:
                    await asyncio.wait_for(state.wait(), due_in if len(self._pending) else None)
                except TimeoutError:
                    pass

    async def _send(self, batch: SealedBatch) -> StoreResult:
        """Retried for as long as it takes, until close() gives up."""
        retrying = self._retry.async_retrying(
            f"store of {batch.count} transitions into {self._buffer}", deadline_s=None,
            give_up=lambda: self._give_up_at is not None and time.monotonic() >= self._give_up_at)

        async def attempt() -> StoreResult:
            return await self._run(self._protocol.store(batch.columns, batch.key))

        return await retrying(attempt)

    # Helpers for the caller.

    async def _wait_for(self, batch: SealedBatch, timeout_s: float | None) -> None:
        state = self._condition()
        async with state:
            try:
                await asyncio.wait_for(state.wait_for(lambda: batch.settled), timeout_s)
            except TimeoutError:
                raise ReplayError(f"the service did not take the unsent transitions within "
                                  f"{timeout_s} s; {self._outbox.unsent} still wait") from None

    def _raise_failures(self) -> None:
        if self._closed:
            raise ReplayError("the replay client is closed")
        if self._failures:
            error, *self._failures = self._failures
            raise error

    async def _call(self, what: str, make_flow: Callable[[], Flow[T]]) -> T:
        if self._closed:
            raise ReplayError("the replay client is closed")
        retrying = self._retry.async_retrying(f"{what} on {self._buffer}",
                                              deadline_s=self._retry.call_deadline_s)

        async def attempt() -> T:
            return await self._run(make_flow())

        return await retrying(attempt)

    async def _run(self, flow: Flow[T]) -> T:
        try:
            call = next(flow)
            while True:
                call = flow.send(await self._request(call))
        except StopIteration as done:
            result: T = done.value
            return result
        finally:
            flow.close()

    async def _request(self, call: Call) -> httpx.Response:
        try:
            return await self._http.request(call.method, call.path, params=call.params,
                                            headers=call.headers, content=call.content)
        except httpx.TransportError as error:
            raise connection_failed(self._http.base_url, error) from error
