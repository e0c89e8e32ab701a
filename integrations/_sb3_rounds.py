"""Rounds of minibatches from the service, drawn one round ahead, and never too stale.

SB3 calls `sample()` once per gradient step, so a request per call would put one
round trip on every step. Instead one request draws a round of `num_batches`
minibatches, and while the learner works through it the next round is already
being drawn on a background thread.

A round drawn ahead misses what was added after it was drawn. trainer/prefetch.py's
Prefetcher, which fetches back to back, suits a learner fed by separate collectors;
an SB3 algorithm alternates collecting and training in one thread, so a round
fetched at the end of one training phase would miss the whole next collection
phase. Here each round records how many transitions had been added when it was
drawn (its flush point), and one that misses more than `max_staleness` is dropped
for a fresh one, drawn in the caller's thread after a flush.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from replay_service.client.results import Batch

__all__ = ["Round", "RoundSource"]


@dataclass
class Round:
    """One response of `num_batches` minibatches; `added_before` transitions were
    stored, and flushed, before it was drawn."""

    batch: Batch
    added_before: int
    used: int = 0

    @property
    def left(self) -> int:
        return len(self.batch.indices) - self.used


class RoundSource:
    """Hands out rounds no staler than `max_staleness`, one drawn ahead in the background.

    `draw()` must flush the transitions added so far and then sample a round;
    `added()` says how many transitions have been added by now. `draw` runs on the
    background thread, except when a fresh round is needed at once.
    """

    def __init__(self, draw: Callable[[], Batch], added: Callable[[], int],
                 max_staleness: int) -> None:
        self._draw = draw
        self._added = added
        self.max_staleness = max_staleness
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sb3-replay")
        self._ahead: Future[Round] | None = None
        self._current: Round | None = None
        self.fresh_draws = 0
        """Rounds drawn in the caller's thread because none drawn ahead was fresh enough."""

    def next_minibatch(self) -> tuple[Batch, int]:
        """The round holding the next minibatch, and that minibatch's position in it."""
        current = self._current
        if current is None or current.left == 0 or self._stale(current):
            current = self._current = self._next_round()
        position = current.used
        current.used += 1
        return current.batch, position

    def _next_round(self) -> Round:
        ahead, self._ahead = self._ahead, None
        fresh = ahead.result() if ahead is not None else None
        if fresh is None or self._stale(fresh):
            self.fresh_draws += 1
            fresh = self._round_now()
        self._ahead = self._executor.submit(self._round_now)
        return fresh

    def _round_now(self) -> Round:
        added_before = self._added()
        return Round(self._draw(), added_before)

    def _stale(self, round_: Round) -> bool:
        return self._added() - round_.added_before > self.max_staleness

    def close(self) -> None:
        """Wait for a round being drawn, and stop the thread; what was drawn is dropped."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._ahead = self._current = None
