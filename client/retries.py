"""When a call is tried again, and how long to wait: one policy for both clients.

Only failures that can pass are retried: no answer at all (connection refused,
reset, timed out), 503 (storage unreachable), 502/504 from a proxy, and 429.
Stores are safe to retry because every batch carries an idempotency key, sent
again with each attempt: the service stores a batch once however often it is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tenacity

from replay_service.client.errors import ReplayError

__all__ = ["RetryPolicy", "is_transient"]

log = logging.getLogger("replay.client")


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

    def retrying(self, what: str, *, deadline_s: float | None,
                 give_up: Callable[[], bool] | None = None) -> tenacity.Retrying:
        """Retries of `what` for up to `deadline_s` (None: no limit), or until `give_up()`."""
        return tenacity.Retrying(**self._arguments(what, deadline_s, give_up))

    def async_retrying(self, what: str, *, deadline_s: float | None,
                       give_up: Callable[[], bool] | None = None) -> tenacity.AsyncRetrying:
        return tenacity.AsyncRetrying(**self._arguments(what, deadline_s, give_up))

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


def is_transient(error: BaseException) -> bool:
    return isinstance(error, ReplayError) and error.transient


class _StopWhen(tenacity.stop.stop_base):
    def __init__(self, condition: Callable[[], bool]) -> None:
        self._condition = condition

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self._condition()
