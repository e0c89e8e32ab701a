"""The blocking client: the classic in-process replay loop, against the service."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
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

__all__ = ["ReplayClient"]

T = TypeVar("T")


class ReplayClient(BaseReplayClient):
    """One buffer of the replay service, used like an in-process replay buffer.

    `store` keeps transitions here and seals them into a batch when `flush_every`
    are pending or the oldest is `flush_interval_s` old. A background thread sends
    sealed batches in order, each with an idempotency key it keeps through every
    retry, so a batch is stored exactly once even when an answer is lost. While the
    service or its Redis is down, batches wait in an outbox of at most `max_unsent`
    transitions; when it is full, `when_full` decides: "block" the caller until
    there is room (the default, so nothing is lost), "drop_oldest" (with a warning,
    a count in `dropped`, and TransitionsDropped from the next flush), or "raise"
    OutboxFull. A batch the service refuses for good (a 4xx) is dropped and its
    error raised by the next `store`, `flush` or `close`.

    Rows still pending are neither counted by `len()` nor sampled. Use the client as
    a context manager, or call `close()`: whatever is still unsent is lost at exit
    otherwise. Other calls (sample, size, ...) are retried on transient failures for
    up to `retry.call_deadline_s`.

    The buffer is created on the first send if it does not exist, with `capacity`
    (the service's default if None) and `schema` (inferred from the first rows if
    None: floats as float32, integers as int64, bools as bool). An existing buffer
    is used as it is, unless it contradicts a `capacity` or `schema` given here:
    sends then raise Conflict. `binary` chooses safetensors on the wire; JSON
    (False) cannot carry NaN or infinities. `api_key` is the service's write key (or
    its read key, for a client that only samples).
    """

    def _open(self, url: str, timeout_s: float, headers: dict[str, str] | None) -> None:
        self._calls = CallBuilder(url, timeout_s, headers)
        self._transport = httpx.HTTPTransport()
        # Guards the pending rows, the outbox and the failures; the sender waits on it.
        self._state = threading.Condition()
        self._sender: threading.Thread | None = None

    def _exclusive(self) -> threading.Condition:
        return self._state

    def store(self, obs: ArrayLike, action: ArrayLike, reward: ArrayLike, next_obs: ArrayLike,
              done: ArrayLike, **extra: ArrayLike) -> None:
        """Queue one DQN transition; more fields go in `extra`."""
        self.store_row(dqn_row(obs, action, reward, next_obs, done, extra))

    def store_row(self, row: Mapping[str, ArrayLike]) -> None:
        """Queue one transition of any schema, as a mapping of field to value.

        Raises InvalidRequest at once if the row does not fit the schema known so far.
        """
        self._raise_failures()
        checked = self._protocol.check_row(row)
        with self._state:
            if self._pending.add(checked):
                self._seal()
            self._start_sender()
            self._state.notify_all()

    @overload
    def store_batch(self, columns: Mapping[str, ArrayLike], *,
                    idempotency_key: str | None = None,
                    wait: Literal[True] = True) -> StoreResult: ...

    @overload
    def store_batch(self, columns: Mapping[str, ArrayLike], *,
                    idempotency_key: str | None = None,
                    wait: bool) -> StoreResult | None: ...

    def store_batch(self, columns: Mapping[str, ArrayLike], *,
                    idempotency_key: str | None = None,
                    wait: bool = True) -> StoreResult | None:
        """Send a batch of columns (batch dimension first) after any pending rows, and wait
        until the service has stored it. Give an `idempotency_key` to make a batch you may
        send again in a later run (an import, say) count once; by default each call is a
        new batch.

        `wait=False` returns at once (None) and leaves the batch to the background
        sender, which merges batches queued behind a slow request into one: the way to
        store fast from one thread. Its errors come from a later store, flush or close.
        A buffer's compressed fields are compressed in this call once its schema is
        known (after the first store): the outbox keeps their frames, not a copy.
        """
        batch = self._new_batch(columns, idempotency_key, wait)
        with self._state:
            self._seal()
            self._enqueue(batch)
        if wait:
            self._wait_for(batch, None)
        return self._stored(batch) if wait else None

    def flush(self, timeout_s: float | None = None) -> StoreResult | None:
        """Send everything pending and wait until the service has stored it; returns the
        last batch's answer (None if there was nothing to send).

        Raises ReplayError if `timeout_s` passes first (the batches stay queued), and
        any error a batch met on the way.
        """
        self._raise_failures()
        with self._state:
            self._seal()
            batch = self._flush_point()
        if batch is not None:
            self._wait_for(batch, timeout_s)
        return self._flushed(batch)

    def sample(self, batch_size: int, *, num_batches: int | None = None,
               replace: bool = True, beta: float | None = None,
               timeout_s: float | None = None) -> Batch:
        """Draw `batch_size` transitions; `replace=False` draws distinct slots.

        With `num_batches`, draw that many minibatches in one request: every field
        then has shape [num_batches, batch_size, ...], as do the indices. A prioritized
        buffer draws in proportion to priority^alpha and returns importance-sampling
        weights for exponent `beta`. `timeout_s`: how long the service may hold the
        sample while the buffer's rate limit does (then 429, retried here).
        """
        return self._call("sample", lambda: self._protocol.sample(batch_size, replace,
                                                                  num_batches, beta, timeout_s))

    def update_priorities(self, indices: np.ndarray, inserted: np.ndarray,
                          priorities: np.ndarray) -> tuple[int, int]:
        """New priorities for sampled transitions (pass the batch's `indices` and `inserted`);
        returns how many were set and how many skipped because the slot was overwritten."""
        return self._call("update priorities", lambda: self._protocol.update_priorities(
            indices, inserted, priorities))

    def read(self, first: int, count: int, *, inflate: bool = True, shard: int | None = None
             ) -> Batch:
        """Transitions in insertion order: `first` counts from the first ever inserted, and
        the buffer holds total_inserted - size up to total_inserted - 1. Raises Conflict
        if the range is not, or no longer, held. `inflate=False` leaves a compressed
        buffer's frames as they are kept: items `_compressed` and `_compressed_sizes`
        in place of the compressed fields (wire/frames.py). A sharded buffer's shards each
        keep their own order: `shard` names the one to read (`info().per_shard`)."""
        return self._call("read", lambda: self._protocol.read(first, count, inflate, shard))

    def publish_weights(self, tensors: Mapping[str, np.ndarray],
                        metadata: Mapping[str, str] | None = None) -> int:
        """Publish policy weights for collectors to fetch; returns the new version."""
        return self._call("publish weights",
                          lambda: self._protocol.publish_weights(tensors, metadata))

    def fetch_weights(self, held: Weights | None = None) -> Weights | None:
        """The newest published weights; None while `held` is still the newest (the
        service then sends no body) or while none are published."""
        return self._call("fetch weights", lambda: self._protocol.fetch_weights(held))

    def record_episodes(self, episodes: Sequence[Episode]) -> None:
        """Report finished episodes, so the trainer and people can follow progress."""
        self._call("record episodes", lambda: self._protocol.record_episodes(list(episodes)))

    def episodes(self, after: str = "0", limit: int = 1_000) -> EpisodePage:
        """Episodes reported after the id `after`, oldest first."""
        return self._call("read episodes", lambda: self._protocol.episodes(after, limit))

    def __len__(self) -> int:
        """Transitions the service holds; rows still pending here are not counted."""
        return self.size().size

    def size(self) -> SizeInfo:
        return self._call("size", self._protocol.size)

    def info(self) -> BufferInfo:
        return self._call("info", self._protocol.info)

    def create(self, capacity: int | None = None, schema: Schema | None = None,
               shards: int | None = None) -> BufferInfo:
        """Create the buffer now; left out, capacity, schema and shards are the
        constructor's."""
        return self._call("create", lambda: self._protocol.create(capacity, schema, shards))

    def delete(self) -> None:
        """Delete the buffer and what it holds, after sending what was stored before;
        a later store creates it again."""
        self.flush()
        self._call("delete", self._protocol.delete)

    def close(self, timeout_s: float | None = None) -> None:
        """Send what is unsent (trying for up to `timeout_s`, by default the retry policy's
        close_deadline_s), then release the connection.

        Raises ReplayError naming how many transitions could not be sent.
        """
        if self._closed:
            return
        failure: ReplayError | None = None
        try:
            self.flush(self._close_deadline(timeout_s))
        except ReplayError as error:
            failure = error
        finally:
            lost = self._release()
        self._raise_unsent(lost, failure)

    def __enter__(self) -> ReplayClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        try:
            self.close()
        except Exception as error:
            self._report_failed_exit(exc, error)

    # What follows runs with self._state held, unless it says otherwise.

    def _seal(self) -> None:
        batch = self._take_pending()
        if batch is not None:
            self._enqueue(batch)

    def _enqueue(self, batch: SealedBatch) -> None:
        if self._must_wait_for_room(batch):
            self._start_sender()
            if not self._state.wait_for(lambda: self._outbox.has_room(batch.count),
                                        SLOW_OUTBOX_S):
                self._warn_slow_outbox()
                self._state.wait_for(lambda: self._outbox.has_room(batch.count))
        self._outbox.add(batch)
        self._start_sender()
        self._state.notify_all()

    def _start_sender(self) -> None:
        if self._sender is None:
            self._sender = threading.Thread(target=self._send_forever, daemon=True,
                                            name=f"replay-sender-{self._buffer}")
            self._sender.start()

    # The sender thread.

    def _send_forever(self) -> None:
        while (batch := self._next_batch()) is not None:
            failure: Exception | None = None
            try:
                batch.result = self._send(batch)
            except Exception as error:  # whatever it is, the batch must settle
                failure = error
            with self._state:
                self._sent(batch, failure)
                self._state.notify_all()

    def _next_batch(self) -> SealedBatch | None:
        """The oldest sealed batch, sealing pending rows once they are old enough."""
        with self._state:
            while (head := self._outbox.next_to_send()) is None and not self._closed:
                if self._seal_due():
                    self._seal()
                else:
                    self._state.wait(self._idle_wait_s())
            return head

    def _send(self, batch: SealedBatch) -> StoreResult:
        """Retried for as long as it takes, until close() gives up."""
        return self._retry.call(
            f"store of {batch.count} transitions into {self._buffer}",
            lambda: self._run(self._protocol.store(batch.columns, batch.key, batch.packed)),
            deadline_s=None, give_up=self._giving_up)

    # Helpers for the caller's thread.

    def _release(self) -> int:
        """Stop the sender, give it its last retry's wait to finish, and drop the
        connection; returns the transitions left unsent."""
        with self._state:
            lost = self._mark_closed()
            self._state.notify_all()
        if self._sender is not None:
            self._sender.join(self._retry.max_wait_s + 1)
        self._transport.close()
        return lost

    def _wait_for(self, batch: SealedBatch, timeout_s: float | None) -> None:
        with self._state:
            if not self._state.wait_for(lambda: batch.settled, timeout_s):
                raise self._not_taken(timeout_s)

    def _call(self, what: str, make_flow: Callable[[], Flow[T]]) -> T:
        self._check_open()
        return self._retry.call(f"{what} on {self._buffer}", lambda: self._run(make_flow()),
                                deadline_s=self._retry.call_deadline_s)

    def _run(self, flow: Flow[T]) -> T:
        with closing(flow):
            step = advance(flow)
            while isinstance(step, Call):
                step = advance(flow, self._request(step))
            return step.result

    def _request(self, call: Call) -> httpx.Response:
        request = self._calls.request(call)
        try:
            response = self._transport.handle_request(request)
            try:
                response.read()
            finally:
                response.close()
        except httpx.TransportError as error:
            raise connection_failed(self._calls.base_url, error) from error
        response.request = request
        return response
