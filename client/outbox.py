"""Batches sealed for sending, held in order until the service acknowledges them.

A batch gets its idempotency key when it is sealed and keeps it through every
retry, so a batch whose answer was lost is never stored twice. The outbox is
bounded by the transitions it holds: while the service is down it fills, and
then the client blocks, drops the oldest batches, or raises, as configured.
When the service falls behind, batches queue up behind the one being sent; the
next to leave then takes in the batches behind it that nobody waits on, so the
client sends fewer, larger requests exactly when the per-request cost is what
holds it back. A merged batch gets a fresh key; its parts were never sent, so
no key that the service may have seen changes what it names.
Shared by both clients and free of I/O and locking: each client guards it with
its own condition variable.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field
from itertools import islice
from typing import Literal

import numpy as np

from replay_service.client.errors import ReplayError
from replay_service.client.results import StoreResult
from replay_service.wire.schema import Schema

__all__ = ["SLOW_OUTBOX_S", "SLOW_OUTBOX_WARNING", "Outbox", "OutboxFull", "SealedBatch",
           "TransitionsDropped", "WhenFull"]

WhenFull = Literal["block", "drop_oldest", "raise"]

SLOW_OUTBOX_S = 1.0
"""A store blocked on a full outbox longer than this is worth a warning; shorter is the
ordinary pace of a producer faster than the service."""
SLOW_OUTBOX_WARNING = "outbox full (%d transitions) for over %.0f s: store() waits for the service"


class OutboxFull(ReplayError):
    """The outbox holds `max_unsent` transitions and the client was told to raise."""


class TransitionsDropped(ReplayError):
    """Unsent transitions were dropped to make room (when_full="drop_oldest")."""

    def __init__(self, dropped: int) -> None:
        super().__init__(f"{dropped} unsent transitions were dropped because the outbox was "
                         "full (the service did not take them in time)")
        self.dropped = dropped


@dataclass(eq=False)
class SealedBatch:
    columns: dict[str, np.ndarray]
    count: int
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    result: StoreResult | None = None
    error: ReplayError | None = None
    awaited: bool = False
    """A caller waits for this batch and hears of its error itself."""
    keyed: bool = False
    """The caller chose the key: the batch must leave under it, on its own."""
    sent: bool = False
    """Handed to the sender: from then on its key names exactly these transitions."""
    parts: list[SealedBatch] = field(default_factory=list)
    """The batches merged into this one, settled with it."""
    packed: Schema | None = None
    """The schema whose compressed fields the columns hold as frames already
    (`BufferProtocol.pack`); None: the columns as stored."""

    @property
    def settled(self) -> bool:
        """Acknowledged by the service, or failed for good."""
        return self.result is not None or self.error is not None

    def fail(self, exception: Exception) -> None:
        """Settle as failed for good: the error says how many transitions were lost."""
        error = exception if isinstance(exception, ReplayError) else ReplayError(
            f"sending a batch failed: {exception!r}")
        error.__cause__ = None if error is exception else exception
        error.dropped = self.count
        error.add_note(f"{self.count} transitions sent in the background were dropped")
        self.error = error

    @property
    def mergeable(self) -> bool:
        return not (self.awaited or self.keyed or self.sent)

    @property
    def nbytes(self) -> int:
        return sum(column.nbytes for column in self.columns.values())

    def fits_after(self, other: SealedBatch) -> bool:
        """Same fields, dtypes and row shapes, packed alike: the two concatenate without a
        cast."""
        return (self.packed is other.packed and self.columns.keys() == other.columns.keys()
                and all(column.dtype == other.columns[name].dtype
                        and column.shape[1:] == other.columns[name].shape[1:]
                        for name, column in self.columns.items()))


class Outbox:
    def __init__(self, max_unsent: int, when_full: WhenFull, *, merge_rows: int = 8_192,
                 merge_bytes: int = 4 << 20) -> None:
        if max_unsent < 1:
            raise ValueError(f"max_unsent must be at least 1, not {max_unsent}")
        if merge_rows < 1 or merge_bytes < 1:
            raise ValueError(f"merge_rows and merge_bytes must be at least 1, not "
                             f"{merge_rows} and {merge_bytes}")
        self.max_unsent = max_unsent
        self.when_full = when_full
        self.merge_rows = merge_rows
        """Transitions one merged request may hold; 1 turns merging off."""
        self.merge_bytes = merge_bytes
        self._batches: deque[SealedBatch] = deque()
        self.unsent = 0
        """Transitions in the outbox, the one being sent included."""
        self.dropped = 0
        """Transitions dropped to make room, in all."""
        self._dropped_reported = 0

    def __len__(self) -> int:
        return len(self._batches)

    def has_room(self, count: int) -> bool:
        """A batch larger than the bound is let in on its own rather than never."""
        return not self._batches or self.unsent + count <= self.max_unsent

    def add(self, batch: SealedBatch) -> None:
        self._batches.append(batch)
        self.unsent += batch.count

    def head(self) -> SealedBatch | None:
        return self._batches[0] if self._batches else None

    def last(self) -> SealedBatch | None:
        return self._batches[-1] if self._batches else None

    def next_to_send(self) -> SealedBatch | None:
        """The head, marked sent, after merging into it the mergeable batches queued
        right behind it, up to `merge_rows` transitions and `merge_bytes`."""
        head = self.head()
        if head is None or not head.mergeable:
            if head is not None:
                head.sent = True
            return head
        parts, rows, size = [head], head.count, head.nbytes
        for batch in islice(self._batches, 1, None):
            if (not batch.mergeable or not batch.fits_after(head)
                    or rows + batch.count > self.merge_rows
                    or size + batch.nbytes > self.merge_bytes):
                break
            parts.append(batch)
            rows += batch.count
            size += batch.nbytes
        if len(parts) > 1:
            for _ in parts:
                self._batches.popleft()
            head = SealedBatch({name: np.concatenate([part.columns[name] for part in parts])
                                for name in head.columns}, rows, parts=parts,
                               packed=head.packed)
            self._batches.appendleft(head)
        head.sent = True
        return head

    def split_head(self) -> None:
        """The service refused the merged head as too large: put its parts back to leave
        on their own or in smaller merges (merging now stops below half its size)."""
        merged = self._batches.popleft()
        self._batches.extendleft(reversed(merged.parts))
        self.merge_rows = max(1, min(self.merge_rows, merged.count // 2))
        self.merge_bytes = max(1, min(self.merge_bytes, merged.nbytes // 2))

    def settle_head(self) -> SealedBatch:
        batch = self._batches.popleft()
        self.unsent -= batch.count
        for part in batch.parts:
            part.result, part.error = batch.result, batch.error
        return batch

    def drop_for(self, count: int) -> int:
        """Drop the oldest batches, not the one being sent, until `count` more fit."""
        dropped = 0
        while len(self._batches) > 1 and not self.has_room(count):
            batch = self._batches[1]
            del self._batches[1]
            self.unsent -= batch.count
            dropped += batch.count
            batch.error = TransitionsDropped(batch.count)
        self.dropped += dropped
        return dropped

    def new_drops(self) -> int:
        """Transitions dropped since the last call: what the next flush must report."""
        new, self._dropped_reported = self.dropped - self._dropped_reported, self.dropped
        return new
