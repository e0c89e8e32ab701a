"""When a call is tried again, and how long to wait: one policy for both clients.

Only failures that can pass are retried: no answer at all (connection refused,
reset, timed out), 503 (storage unreachable), 502/504 from a proxy, and 429.
Stores are safe to retry because every batch carries an idempotency key, sent
again with each attempt: the service stores a batch once however often it is sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import tenacity

from replay_service.client.errors import ReplayError

__all__ = ["RetryPolicy", "is_transient"]

log = logging.getLogger("replay.client")

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    initial_wait_s: float = 0.1
    """First wait; each retry doubles it (with random jitter, so many clients coming back
    after an outage do not all arrive at once)."""
    max_wait_s: float = 5.0
    """Longest wait between two attempts."""
    call_deadline_s: float | None = 60.0
    """How long a call the caller waits on (sample, size...) keeps trying; None: for ever."""
    close_deadline_s: float = 30.0
    """How long closing the client keeps trying to send what is unsent."""

    def wait(self, state: tenacity.RetryCallState) -> float:
        """Exponential backoff with jitter, but never less than the service's Retry-After."""
        backoff = tenacity.wait_exponential_jitter(multiplier=self.initial_wait_s,
                                                   max=self.max_wait_s,
                                                   jitter=self.initial_wait_s)(state)
        error = state.outcome.exception() if state.outcome else None
        hint = getattr(error, "retry_after", None) or 0.0
        return max(backoff, min(hint, self.max_wait_s))

    def call(self, what: str, attempt: Callable[[], T], *, deadline_s: float | None,
             give_up: Callable[[], bool] | None = None) -> T:
        """`attempt()`, tried again on transient failures for up to `deadline_s` (None: no
        limit) or until `give_up()`. The first try runs before tenacity is set up: a call
        that succeeds, as nearly all do, pays nothing for retries (tenacity's machinery
        was 70 us of a 500 us call)."""
        started = time.monotonic()
        try:
            return attempt()
        except ReplayError as error:
            if not is_transient(error):
                raise
            first = error
        retrying = tenacity.Retrying(**self._arguments(what, _left(deadline_s, started),
                                                       give_up))
        return retrying(_failing_first(first, attempt))

    async def async_call(self, what: str, attempt: Callable[[], Awaitable[T]], *,
                         deadline_s: float | None,
                         give_up: Callable[[], bool] | None = None) -> T:
        started = time.monotonic()
        try:
            return await attempt()
        except ReplayError as error:
            if not is_transient(error):
                raise
            first = error
        retrying = tenacity.AsyncRetrying(**self._arguments(what, _left(deadline_s, started),
                                                            give_up))
        failed = False

        async def again() -> T:
            nonlocal failed
            if not failed:  # tenacity's first attempt is the one that failed already
                failed = True
                raise first
            return await attempt()

        return await retrying(again)

    def _arguments(self, what: str, deadline_s: float | None,
                   give_up: Callable[[], bool] | None) -> dict[str, Any]:
        def report(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning("%s failed (%s); attempt %d, retrying in %.1f s", what, error,
                        state.attempt_number, wait)

        stop: tenacity.stop.stop_base = (tenacity.stop_after_delay(deadline_s)
                                         if deadline_s is not None else tenacity.stop_never)
        if give_up is not None:
            stop = stop | _StopWhen(give_up)
        return {"retry": tenacity.retry_if_exception(is_transient), "wait": self.wait,
                "stop": stop, "before_sleep": report, "reraise": True}


def _left(deadline_s: float | None, started: float) -> float | None:
    return None if deadline_s is None else max(0.0, deadline_s - (time.monotonic() - started))


def _failing_first(first: ReplayError, attempt: Callable[[], T]) -> Callable[[], T]:
    """`attempt`, whose first call raises the failure already met: so tenacity counts it,
    reports it and waits before trying again, as if it had made that attempt itself."""
    failed = False

    def again() -> T:
        nonlocal failed
        if not failed:
            failed = True
            raise first
        return attempt()

    return again


def is_transient(error: BaseException) -> bool:
    return isinstance(error, ReplayError) and error.transient


class _StopWhen(tenacity.stop.stop_base):
    def __init__(self, condition: Callable[[], bool]) -> None:
        self._condition = condition

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self._condition()
