"""Fetch batches on a background thread while the learner trains on the previous ones.

In the distributed trainer `fetch` is an HTTP request for a round of minibatches; with
a queue of depth 2 the next rounds are on their way while the learner is busy, and
the time the learner still spends blocked in `get` is the share of wall time the
replay service costs it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, TypeVar

__all__ = ["Prefetcher", "PrefetcherClosed"]

T = TypeVar("T")

_POLL_S = 0.05


class PrefetcherClosed(RuntimeError):
    """`get` was called after `close`."""


@dataclass(frozen=True)
class _Failure:
    error: BaseException


class Prefetcher(Generic[T]):
    """Calls `fetch()` repeatedly on a daemon thread, up to `depth` results ahead of `get()`.

    Use as a context manager, or call `close()`. A `fetch` that raises stops the thread,
    and the next `get()` re-raises that exception in the caller's thread (after the
    results fetched before it).
    """

    def __init__(self, fetch: Callable[[], T], depth: int = 2, name: str = "prefetch") -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self._fetch = fetch
        self._queue: queue.Queue[T | _Failure] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._failure: _Failure | None = None
        self._closed = False
        self.wait_s = 0.0
        """Seconds the caller has spent blocked in `get`."""
        self.fetched = 0
        """Results handed to the caller so far."""
        self.started_at = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _put(self, item: T | _Failure) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                result = self._fetch()
            except BaseException as error:  # handed to the learner thread, which re-raises
                self._put(_Failure(error))
                return
            if not self._put(result):
                return

    def _next(self) -> T | _Failure:
        while True:
            try:
                return self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                if self._closed:
                    raise PrefetcherClosed("closed while waiting for a result") from None
                if not self._thread.is_alive() and self._queue.empty():
                    raise PrefetcherClosed("the fetch thread ended without a result") from None

    def get(self) -> T:
        """The next result in fetch order, blocking until it is ready.

        Raises:
            PrefetcherClosed: after `close()`.
            BaseException: whatever `fetch` raised, once the results before it are taken.
        """
        if self._closed:
            raise PrefetcherClosed("get() after close(): the fetch thread has stopped")
        if self._failure is not None:
            raise self._failure.error
        started = time.perf_counter()
        try:
            item = self._next()
        finally:
            self.wait_s += time.perf_counter() - started
        if isinstance(item, _Failure):
            self._failure = item
            raise item.error
        self.fetched += 1
        return item

    @property
    def running(self) -> bool:
        """Whether the fetch thread is still alive."""
        return self._thread.is_alive()

    @property
    def elapsed_s(self) -> float:
        """Wall time since the prefetcher started."""
        return time.perf_counter() - self.started_at

    @property
    def wait_share(self) -> float:
        """Share of wall time since the start that the caller spent waiting in `get`."""
        elapsed = self.elapsed_s
        return self.wait_s / elapsed if elapsed > 0 else 0.0

    def close(self, timeout: float = 5.0) -> None:
        """Stop fetching and join the thread.

        A fetch in progress is not interrupted; the thread ends when it returns (the
        thread is a daemon, so one stuck past `timeout` does not keep the process alive).
        """
        self._closed = True
        self._stop.set()
        while True:  # free a slot in case the thread waits to put, then drop what is left
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout)

    def __enter__(self) -> Prefetcher[T]:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
