"""How much to fuzz: a small, fixed budget by default (CI), more on request.

    FUZZ_EXAMPLES=N  examples per hypothesis property and per OpenAPI operation
                     (unset: each test's own CI budget, a few dozen to a few hundred)
    FUZZ_SEED=N      draw other examples (unset: derandomized, the same examples every run)

A long run: `FUZZ_EXAMPLES=2000 FUZZ_SEED=7 pytest tests/fuzz`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import hypothesis
import pytest
from hypothesis import HealthCheck

__all__ = ["EXAMPLES", "IGNORE_HYPOTHESIS_NOISE", "SEED", "examples", "fuzz"]

F = TypeVar("F", bound=Callable[..., Any])


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise RuntimeError(f"{name} must be an integer, not {value!r}") from None


EXAMPLES = _env_int("FUZZ_EXAMPLES")
SEED = _env_int("FUZZ_SEED")


# Warnings that must not turn a property's result into an error (pytest runs with
# filterwarnings=error); each module with properties carries these marks.
IGNORE_HYPOTHESIS_NOISE = [
    # Hypothesis warns when the global `random` state moves while it draws an example,
    # to catch strategies that use it; none here do, but a thread another test left
    # behind (a client retrying with jitter) can move it at any time.
    pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies"
                               ":hypothesis.errors.HypothesisDeprecationWarning"),
    # Replaying a failing example with a large body would raise this instead of the failure.
    pytest.mark.filterwarnings("ignore:Generating overly large repr"
                               ":hypothesis.errors.HypothesisWarning"),
]


def examples(default: int) -> int:
    """The number of examples a property runs: FUZZ_EXAMPLES, else its own CI budget."""
    return EXAMPLES if EXAMPLES is not None else default


def fuzz(default_examples: int) -> Callable[[F], F]:
    """Hypothesis settings for one property: reproducible, no example database, no deadline
    (requests go to a real service on a 2-core machine)."""
    settings = hypothesis.settings(
        max_examples=examples(default_examples),
        derandomize=SEED is None,
        database=None,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.large_base_example],
    )

    def apply(test: F) -> F:
        test = settings(test)
        if SEED is not None:
            test = hypothesis.seed(SEED)(test)
        return test

    return apply
