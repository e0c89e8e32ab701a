"""The blocking client: the classic in-process replay loop, against the service."""

from __future__ import annotations

import threading
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

__all__ = ["ReplayClient"]

T = TypeVar("T")


class ReplayClient:
    """One buffer of the replay service, used like an in-process replay buffer.

    `store` keeps transitions on the client and sends them as one batch when
    `flush_every` are pending (in the calling thread) or when the oldest is
    `flush_interval_s` old (from a background thread). A failed background send
    is raised by the next `store`, `store_batch`, `flush` or `close`; rows it
    failed to send for a transient reason stay pending. Use the client as a
    context manager, or call `close()`: pending rows are lost at exit otherwise.
    Rows still pending are neither counted by `len()` nor sampled.

    The buffer is created on the first send if it does not exist, with `capacity`
    (the service's default if None) and `schema` (inferred from the first rows if
    None: floats as float32, integers as int64, bools as bool). An existing buffer
    is used as it is, unless it contradicts a `capacity` or `schema` given here:
    sends then raise Conflict. `binary` chooses safetensors on the wire; JSON
    (False) cannot carry NaN or infinities.
    """

    def __init__(self, url: str, buffer: str, *, capacity: int | None = None,
                 schema: Schema | None = None, flush_every: int = 256,
                 flush_interval_s: float = 1.0, timeout_s: float = 30.0,
                 binary: bool = True) -> None:
        self._protocol = BufferProtocol(buffer, capacity=capacity, schema=schema, binary=binary)
        self._pending = PendingRows(flush_every=flush_every, flush_interval_s=flush_interval_s)
        self._http = httpx.Client(base_url=url, timeout=timeout_s)
        self._send_lock = threading.Lock()  # one send at a time keeps batches in store order
        self._deferred_lock = threading.Lock()
        self._deferred: Exception | None = None
        self._stopping = threading.Event()
        self._flusher: threading.Thread | None = None
        self._closed = False

    def store(self, obs: ArrayLike, action: ArrayLike, reward: ArrayLike, next_obs: ArrayLike,
              done: ArrayLike, **extra: ArrayLike) -> None:
        """Queue one DQN transition; more fields go in `extra`."""
        self.store_row({**dict(zip(DQN_FIELDS, (obs, action, reward, next_obs, done),
                                   strict=True)), **extra})

    def store_row(self, row: Mapping[str, ArrayLike]) -> None:
        """Queue one transition of any schema, as a mapping of field to value.

        Raises InvalidRequest at once if the row does not fit the schema known so far.
        """
        self._raise_deferred()
        if self._pending.add(self._protocol.check_row(row)):
            self.flush()
        elif self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_on_time, daemon=True,
                                             name="replay-flush")
            self._flusher.start()

    def store_batch(self, columns: Mapping[str, ArrayLike]) -> StoreResult:
        """Send a batch of columns (batch dimension first) now, after any pending rows."""
        self._raise_deferred()
        with self._send_lock:
            self._send_pending()
            return self._run(self._protocol.store(columns))

    def flush(self) -> StoreResult | None:
        """Send the pending rows as one batch; None if there were none."""
        self._raise_deferred()
        with self._send_lock:
            return self._send_pending()

    def sample(self, batch_size: int, *, num_batches: int | None = None,
               replace: bool = True) -> Batch:
        """Draw `batch_size` transitions uniformly; `replace=False` draws distinct slots.

        With `num_batches`, draw that many minibatches in one request: every field
        then has shape [num_batches, batch_size, ...], as do the indices.
        """
        return self._run(self._protocol.sample(batch_size, replace, num_batches))

    def publish_weights(self, tensors: Mapping[str, np.ndarray],
                        metadata: Mapping[str, str] | None = None) -> int:
        """Publish policy weights for collectors to fetch; returns the new version."""
        return self._run(self._protocol.publish_weights(tensors, metadata))

    def fetch_weights(self, held: Weights | None = None) -> Weights | None:
        """The newest published weights; None while `held` is still the newest (the
        service then sends no body) or while none are published."""
        return self._run(self._protocol.fetch_weights(held))

    def record_episodes(self, episodes: Sequence[Episode]) -> None:
        """Report finished episodes, so the trainer and people can follow progress."""
        self._run(self._protocol.record_episodes(list(episodes)))

    def episodes(self, after: str = "0", limit: int = 1_000) -> EpisodePage:
        """Episodes reported after the id `after`, oldest first."""
        return self._run(self._protocol.episodes(after, limit))

    def __len__(self) -> int:
        """Transitions the service holds; rows still pending here are not counted."""
        return self.size().size

    def size(self) -> SizeInfo:
        return self._run(self._protocol.size())

    def info(self) -> BufferInfo:
        return self._run(self._protocol.info())

    def create(self, capacity: int | None = None, schema: Schema | None = None) -> BufferInfo:
        """Create the buffer now; left out, capacity and schema are the constructor's."""
        return self._run(self._protocol.create(capacity, schema))

    def delete(self) -> None:
        """Delete the buffer and what it holds; a later store creates it again."""
        self._run(self._protocol.delete())

    def close(self) -> None:
        """Flush, then release the connection; the client is unusable afterwards."""
        if self._closed:
            return
        try:
            self._stopping.set()
            if self._flusher is not None:
                self._flusher.join()
            self.flush()
        finally:
            self._closed = True
            self._http.close()

    def __enter__(self) -> ReplayClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if exc is None:
            self.close()
            return
        try:
            self.close()
        except Exception as error:  # the exception already leaving matters more
            exc.add_note(f"flushing the replay client on exit failed too: {error}")

    def _send_pending(self) -> StoreResult | None:
        with self._pending.taking() as rows:
            if not rows:
                return None
            return self._run(self._protocol.store(rows_to_columns(rows)))

    def _flush_on_time(self) -> None:
        while not self._stopping.wait(self._next_wait()):
            if self._deferred is not None or self._pending.due_in() > 0:
                continue
            with self._send_lock:
                try:
                    if self._pending.due_in() == 0:  # an inline flush may have sent them
                        self._send_pending()
                except Exception as error:
                    with self._deferred_lock:
                        self._deferred = error

    def _next_wait(self) -> float:
        # While an error waits to be raised, nothing is sent: the caller hears of it first.
        if self._deferred is not None:
            return self._pending.flush_interval_s
        return self._pending.due_in()

    def _check_open(self) -> None:
        if self._closed:
            raise ReplayError("the replay client is closed")

    def _raise_deferred(self) -> None:
        self._check_open()
        if self._deferred is not None:
            with self._deferred_lock:
                error, self._deferred = self._deferred, None
            if error is not None:
                raise error

    def _run(self, flow: Flow[T]) -> T:
        self._check_open()
        try:
            call = next(flow)
            while True:
                call = flow.send(self._send(call))
        except StopIteration as done:
            result: T = done.value
            return result
        finally:
            flow.close()

    def _send(self, call: Call) -> httpx.Response:
        try:
            return self._http.request(call.method, call.path, params=call.params,
                                      headers=call.headers, content=call.content)
        except httpx.TransportError as error:
            raise connection_failed(self._http.base_url, error) from error
