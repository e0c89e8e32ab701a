"""Transitions stored one at a time wait here until they leave as one batch.

Shared by both clients, and free of I/O: the clients decide when to send, this
module keeps the rows, their order and their age. Values are copied on arrival
because collectors commonly overwrite their observation arrays in place.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike

from replay_service.client.errors import InvalidRequest

__all__ = ["PendingRows", "Row", "copy_row", "rows_to_columns"]

Row = dict[str, np.ndarray]


def copy_row(row: Mapping[str, ArrayLike]) -> Row:
    return {name: np.array(value) for name, value in row.items()}


def rows_to_columns(rows: list[Row]) -> dict[str, np.ndarray]:
    return {name: np.stack([row[name] for row in rows]) for name in rows[0]}


class PendingRows:
    """Rows in store order, and when a flush is due: by count or by the oldest row's age.

    Not locked itself: each client guards it with the lock that guards its outbox.
    """

    def __init__(self, *, flush_every: int, flush_interval_s: float) -> None:
        if flush_every < 1:
            raise ValueError(f"flush_every must be at least 1, not {flush_every}")
        if not flush_interval_s > 0:
            raise ValueError(f"flush_interval_s must be positive, not {flush_interval_s}: "
                             "the background flush would never wait between sends")
        self.flush_every = flush_every
        self.flush_interval_s = flush_interval_s
        self._rows: list[Row] = []
        self._since: float | None = None  # monotonic time the oldest pending row arrived

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, row: Row) -> bool:
        """Queue a row; True when `flush_every` rows are pending, time to send them."""
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

    def take(self) -> list[Row]:
        """Every pending row, in order, to be sealed into one batch."""
        rows, self._rows, self._since = self._rows, [], None
        return rows


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
