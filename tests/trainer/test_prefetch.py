from __future__ import annotations

import itertools
import threading
import time

import pytest

from replay_service.trainer.prefetch import Prefetcher, PrefetcherClosed


class Counter:
    """A fetch that returns 0, 1, 2, ..., optionally slowly, failing at `fail_at`."""

    def __init__(self, delay_s: float = 0.0, fail_at: int | None = None) -> None:
        self.calls = itertools.count()
        self.called = 0
        self.delay_s = delay_s
        self.fail_at = fail_at
        self.lock = threading.Lock()

    def __call__(self) -> int:
        with self.lock:
            value = next(self.calls)
            self.called += 1
        time.sleep(self.delay_s)
        if value == self.fail_at:
            raise ConnectionError(f"fetch {value} failed")
        return value


def test_hands_over_results_in_order() -> None:
    with Prefetcher(Counter()) as prefetcher:
        assert [prefetcher.get() for _ in range(50)] == list(range(50))
        assert prefetcher.fetched == 50


def test_fetches_at_most_depth_ahead() -> None:
    fetch = Counter()
    with Prefetcher(fetch, depth=2):
        deadline = time.monotonic() + 5
        while fetch.called < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        # Two results queued and one more in hand, waiting for a free slot.
        assert fetch.called == 3


def test_reraises_fetch_error_after_earlier_results() -> None:
    with Prefetcher(Counter(fail_at=2)) as prefetcher:
        assert [prefetcher.get(), prefetcher.get()] == [0, 1]
        with pytest.raises(ConnectionError, match="fetch 2 failed"):
            prefetcher.get()
        with pytest.raises(ConnectionError):
            prefetcher.get()
        time.sleep(0.05)
        assert not prefetcher.running


def test_measures_time_blocked_in_get() -> None:
    with Prefetcher(Counter(delay_s=0.05)) as prefetcher:
        for _ in range(4):
            prefetcher.get()
        assert prefetcher.wait_s >= 0.15
        assert prefetcher.wait_share > 0.7
    with Prefetcher(Counter()) as prefetcher:
        time.sleep(0.1)  # the learner is busy; results are ready when it asks
        prefetcher.get()
        assert prefetcher.wait_s < 0.05


def test_close_stops_the_thread() -> None:
    fetch = Counter(delay_s=0.01)
    prefetcher = Prefetcher(fetch)
    prefetcher.get()
    prefetcher.close()
    assert not prefetcher.running
    called = fetch.called
    time.sleep(0.05)
    assert fetch.called == called
    with pytest.raises(PrefetcherClosed):
        prefetcher.get()
