"""Transitions stored one at a time wait here until they leave as one batch.

Shared by both clients, and free of I/O: the clients decide when to send, this
module keeps the rows, their order and their age. Values are copied on arrival
because collectors commonly overwrite their observation arrays in place.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import numpy as np
from numpy.typing import ArrayLike

from client.errors import InvalidRequest, ReplayError

__all__ = ["PendingRows", "Row", "copy_row", "rows_to_columns"]

Row = dict[str, np.ndarray]


def copy_row(row: Mapping[str, ArrayLike]) -> Row:
    return {name: np.array(value) for name, value in row.items()}


def rows_to_columns(rows: list[Row]) -> dict[str, np.ndarray]:
    columns = {}
    for name in rows[0]:
        try:
            columns[name] = np.stack([row[name] for row in rows])
        except ValueError:  # rows put back after a failed send, then others of a new shape
            raise _invalid("invalid_shape", f"field '{name}': pending transitions have "
                           "different shapes", name) from None
    return columns


class PendingRows:
    """Rows in store order, and when a flush is due: by count or by the oldest row's age.

    Thread-safe, so that the sync client's background thread can take rows while
    the caller's thread adds more.
    """

    def __init__(self, *, flush_every: int, flush_interval_s: float) -> None:
        if flush_every < 1:
            raise ValueError(f"flush_every must be at least 1, not {flush_every}")
        if not flush_interval_s > 0:
            raise ValueError(f"flush_interval_s must be positive, not {flush_interval_s}: "
                             "the background flush would never wait between sends")
        self.flush_every = flush_every
        self.flush_interval_s = flush_interval_s
        self._lock = threading.Lock()
        self._rows: list[Row] = []
        self._since: float | None = None  # monotonic time the oldest pending row arrived

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, row: Row) -> bool:
        """Queue a row; True when `flush_every` rows are pending, time to send them."""
        with self._lock:
            if self._rows:
                _check_like_first(row, self._rows[0])
            else:
                self._since = time.monotonic()
            self._rows.append(row)
            return len(self._rows) >= self.flush_every

    def due_in(self) -> float:
        """Seconds until the oldest row is `flush_interval_s` old: 0 when it is, and the
        whole interval when nothing is pending (a row added now is due that late)."""
        since = self._since
        if since is None:
            return self.flush_interval_s
        return max(0.0, since + self.flush_interval_s - time.monotonic())

    @contextmanager
    def taking(self) -> Iterator[list[Row]]:
        """Hand every pending row to one send.

        If the send fails for a transient reason, or is interrupted, the rows go
        back in front of any added since, in order, so nothing is lost. If it is
        refused for good (the same rows would be refused again), they are dropped
        and the error says how many.
        """
        with self._lock:
            rows, since = self._rows, self._since
            self._rows, self._since = [], None
        try:
            yield rows
        except ReplayError as error:
            if error.transient:
                self._put_back(rows, since)
            elif rows:
                error.dropped = len(rows)
                error.add_note(f"{len(rows)} pending transitions were dropped")
            raise
        except BaseException:
            self._put_back(rows, since)
            raise

    def _put_back(self, rows: list[Row], since: float | None) -> None:
        with self._lock:
            self._rows[:0] = rows
            if since is not None:
                self._since = since


def _check_like_first(row: Row, first: Row) -> None:
    """Every pending row needs the fields and shapes of the first, or they cannot stack."""
    if row.keys() != first.keys():
        missing = sorted(first.keys() - row.keys())
        extra = sorted(row.keys() - first.keys())
        detail = f"lacks {missing}" if missing else f"has extra {extra}"
        raise _invalid("inconsistent_rows", f"this transition {detail}; the pending ones have "
                       f"fields {list(first)}", (missing or extra)[0])
    for name, value in row.items():
        if value.shape != first[name].shape:
            raise _invalid("invalid_shape", f"field '{name}': shape {list(value.shape)}, but "
                           f"the pending transitions have {list(first[name].shape)}", name)


def _invalid(code: str, message: str, field: str) -> InvalidRequest:
    return InvalidRequest(422, code, message, field=field)
