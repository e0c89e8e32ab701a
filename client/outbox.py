"""Batches sealed for sending, held in order until the service acknowledges them.

A batch gets its idempotency key when it is sealed and keeps it through every
retry, so a batch whose answer was lost is never stored twice. The outbox is
bounded by the transitions it holds: while the service is down it fills, and
then the client blocks, drops the oldest batches, or raises, as configured.
Shared by both clients and free of I/O and locking: each client guards it with
its own condition variable.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from client.errors import ReplayError
from client.results import StoreResult

__all__ = ["Outbox", "OutboxFull", "SealedBatch", "TransitionsDropped", "WhenFull"]

WhenFull = Literal["block", "drop_oldest", "raise"]


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

    @property
    def settled(self) -> bool:
        """Acknowledged by the service, or failed for good."""
        return self.result is not None or self.error is not None


class Outbox:
    def __init__(self, max_unsent: int, when_full: WhenFull) -> None:
        if max_unsent < 1:
            raise ValueError(f"max_unsent must be at least 1, not {max_unsent}")
        self.max_unsent = max_unsent
        self.when_full = when_full
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

    def settle_head(self) -> SealedBatch:
        batch = self._batches.popleft()
        self.unsent -= batch.count
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
