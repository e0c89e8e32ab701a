"""What ReplayClient and AsyncReplayClient share: their state and every decision on it
that needs neither I/O nor waiting.

The two clients differ only in how they send, wait and lock (threads and
httpx.Client, or asyncio and httpx.AsyncClient), the way httpx writes its own
BaseClient once and only the I/O twice. Everything else lives here: who may enter
a full outbox, what a failed send leaves behind, when the sender seals rows, what
close() reports. So the two clients cannot come to disagree on any of it.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from contextlib import AbstractContextManager

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
from replay_service.client.protocol import BufferProtocol
from replay_service.client.results import StoreResult
from replay_service.client.retries import RetryPolicy
from replay_service.wire.schema import DQN_FIELDS, Prioritized, RateLimit, Schema

__all__ = ["BaseReplayClient", "batch_length", "dqn_row"]

log = logging.getLogger("replay.client")


class BaseReplayClient(ABC):
    """The pending rows, the outbox, the failures not yet raised, and the rules for them.

    A subclass makes its HTTP client, lock and sender slot in `_open`, and says in
    `_exclusive` how to hold its state for a read or change that does not wait.
    Methods that change the state expect their caller to hold the client's lock
    (its condition variable) unless they say otherwise.
    """

    def __init__(self, url: str, buffer: str, *, capacity: int | None = None,
                 schema: Schema | None = None, flush_every: int = 256,
                 flush_interval_s: float = 1.0, timeout_s: float = 30.0,
                 binary: bool = True, max_unsent: int = 100_000, when_full: WhenFull = "block",
                 retry: RetryPolicy | None = None, api_key: str | None = None,
                 prioritized: Prioritized | None = None,
                 rate_limit: RateLimit | None = None, shards: int | None = None) -> None:
        self._protocol = BufferProtocol(buffer, capacity=capacity, schema=schema, binary=binary,
                                        prioritized=prioritized, rate_limit=rate_limit,
                                        shards=shards)
        self._pending = PendingRows(flush_every=flush_every, flush_interval_s=flush_interval_s)
        self._outbox = Outbox(max_unsent, when_full)
        self._retry = retry or RetryPolicy()
        self._buffer = buffer
        self._failures: list[ReplayError] = []
        self._give_up_at: float | None = None  # set by close(): the sender's last moment
        self._closed = False
        # Last, so that a bad argument above leaves no connection behind.
        self._open(url, timeout_s, {"authorization": f"Bearer {api_key}"} if api_key else None)

    @abstractmethod
    def _open(self, url: str, timeout_s: float, headers: dict[str, str] | None) -> None:
        """Make this kind of client's HTTP client, lock and (empty) sender slot."""

    @abstractmethod
    def _exclusive(self) -> AbstractContextManager[object]:
        """Hold the state for a short read or change that never waits."""

    @property
    def dropped(self) -> int:
        """Transitions dropped so far because the outbox was full (when_full="drop_oldest")."""
        return self._outbox.dropped

    @property
    def unsent(self) -> int:
        """Transitions pending here or waiting in the outbox."""
        with self._exclusive():
            return len(self._pending) + self._outbox.unsent

    # For the caller, holding no lock.

    def _check_open(self) -> None:
        if self._closed:
            raise ReplayError("the replay client is closed")

    def _raise_failures(self) -> None:
        """Raise the oldest error of a batch sent in the background that nobody awaited,
        once: the caller's next call is the only place it can surface."""
        self._check_open()
        with self._exclusive():
            if not self._failures:
                return
            error, *self._failures = self._failures
        raise error

    def _new_batch(self, columns: Mapping[str, ArrayLike], idempotency_key: str | None,
                   awaited: bool) -> SealedBatch:
        """A batch for store_batch, after raising what earlier batches met."""
        self._raise_failures()
        arrays = {name: np.asarray(values) for name, values in columns.items()}
        count = batch_length(arrays)
        packed = self._protocol.pack(arrays)
        if packed is not None:  # frames made here: the outbox keeps them, not the fields
            arrays = packed[0]
        if not awaited:  # the caller may refill its arrays as soon as store_batch returns
            arrays = {name: column.copy() for name, column in arrays.items()}
        batch = SealedBatch(arrays, count, awaited=awaited,
                            packed=packed[1] if packed is not None else None)
        if idempotency_key is not None:
            batch.key, batch.keyed = idempotency_key, True
        return batch

    @staticmethod
    def _stored(batch: SealedBatch) -> StoreResult:
        """The answer to a settled batch, or the error that settled it."""
        if batch.error is not None:
            raise batch.error
        assert batch.result is not None
        return batch.result

    def _flushed(self, batch: SealedBatch | None) -> StoreResult | None:
        """What flush returns once `batch`, the last one queued, has settled."""
        self._raise_failures()
        return batch.result if batch is not None else None

    def _close_deadline(self, timeout_s: float | None) -> float:
        return self._retry.close_deadline_s if timeout_s is None else timeout_s

    @staticmethod
    def _raise_unsent(lost: int, failure: ReplayError | None) -> None:
        """How close() ends: lost transitions outweigh the error that lost them."""
        if lost:
            raise ReplayError(f"{lost} transitions were not sent before the client closed"
                              ) from failure
        if failure is not None:
            raise failure

    @staticmethod
    def _report_failed_exit(leaving: BaseException | None, failure: Exception) -> None:
        """Leaving a `with` block, closing failed: an exception already leaving matters
        more and takes the failure as a note; with none, the failure is raised."""
        if leaving is None:
            raise failure
        leaving.add_note(f"flushing the replay client on exit failed too: {failure}")

    # What follows runs with the lock held.

    def _take_pending(self) -> SealedBatch | None:
        """The pending rows sealed into one batch, None if there are none."""
        rows = self._pending.take()
        return SealedBatch(rows_to_columns(rows), len(rows)) if rows else None

    def _must_wait_for_room(self, batch: SealedBatch) -> bool:
        """Whether the caller must wait before `batch` enters the outbox: when_full="block"
        on a full outbox. "raise" raises OutboxFull; "drop_oldest" makes room at once."""
        outbox = self._outbox
        if outbox.has_room(batch.count):
            return False
        if outbox.when_full == "raise":
            raise OutboxFull(f"{outbox.unsent} transitions are waiting to be sent, the "
                             f"limit (max_unsent={outbox.max_unsent}); is the service up?")
        if outbox.when_full == "drop_oldest":
            dropped = outbox.drop_for(batch.count)
            log.warning("outbox full: dropped %d unsent transitions for buffer %s "
                        "(%d dropped so far)", dropped, self._buffer, outbox.dropped)
            return False
        return True

    def _warn_slow_outbox(self) -> None:
        log.warning(SLOW_OUTBOX_WARNING, self._outbox.unsent, SLOW_OUTBOX_S)

    def _flush_point(self) -> SealedBatch | None:
        """The batch a flush waits for, the last queued; drops not yet reported are raised
        first, before a wait that may be long."""
        dropped = self._outbox.new_drops()
        if dropped:
            raise TransitionsDropped(dropped)
        return self._outbox.last()

    def _mark_closed(self) -> int:
        """Stop the sender's retries and its loop; returns the transitions left unsent."""
        self._give_up_at = time.monotonic()
        self._closed = True
        return len(self._pending) + self._outbox.unsent

    # For the sender, with the lock held.

    def _seal_due(self) -> bool:
        """The oldest pending row is `flush_interval_s` old: the sender, with nothing
        else to send, seals the rows itself."""
        return bool(len(self._pending)) and self._pending.due_in() == 0

    def _idle_wait_s(self) -> float | None:
        """How long the sender may sleep: until the oldest pending row is due, or (with
        none pending) until a caller wakes it."""
        return self._pending.due_in() if len(self._pending) else None

    def _sent(self, batch: SealedBatch, failure: Exception | None) -> None:
        """Settle the outbox's head after one send of it. A merge the service found too
        large stored nothing: its parts go back to leave in smaller requests. An error
        nobody awaits is kept for the caller's next call."""
        if isinstance(failure, PayloadTooLarge) and batch.parts:
            self._outbox.split_head()
            return
        if failure is not None:
            batch.fail(failure)
        self._outbox.settle_head()
        if batch.error is not None and not batch.awaited and not self._closed:
            self._failures.append(batch.error)

    def _giving_up(self) -> bool:
        """close() has passed the moment the sender stops retrying (no lock needed)."""
        return self._give_up_at is not None and time.monotonic() >= self._give_up_at

    def _not_taken(self, timeout_s: float | None) -> ReplayError:
        return ReplayError(f"the service did not take the unsent transitions within "
                           f"{timeout_s} s; {self._outbox.unsent} still wait")


def dqn_row(obs: ArrayLike, action: ArrayLike, reward: ArrayLike, next_obs: ArrayLike,
            done: ArrayLike, extra: Mapping[str, ArrayLike]) -> dict[str, ArrayLike]:
    """store()'s arguments as the row store_row() takes."""
    return {**dict(zip(DQN_FIELDS, (obs, action, reward, next_obs, done), strict=True)),
            **extra}


def batch_length(columns: Mapping[str, np.ndarray]) -> int:
    """Transitions in a batch of columns, as far as the outbox's bound is concerned; the
    protocol checks the batch itself before it is sent."""
    return max((column.shape[0] for column in columns.values() if column.ndim), default=1)
