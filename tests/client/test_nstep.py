"""n-step transitions: discounted sums, bootstrap states and discounts, across episode ends."""

from __future__ import annotations

import numpy as np
import pytest

from replay_service.client.collector.nstep import NStepTransitions

GAMMA = 0.5


def step(acc: NStepTransitions, t: int, *, terminated: bool = False, truncated: bool = False
         ) -> dict[str, np.ndarray] | None:
    """One env; observation t, action t, reward 2^t, next observation t + 1."""
    return acc.add(np.array([[float(t)]]), np.array([t]), np.array([2.0**t]),
                   np.array([[float(t + 1)]]), np.array([terminated]), np.array([truncated]))


def test_a_full_window_gives_the_discounted_sum_and_the_state_n_steps_later() -> None:
    acc = NStepTransitions(3, GAMMA, num_envs=1)
    assert step(acc, 0) is None and step(acc, 1) is None
    out = step(acc, 2)
    assert out is not None
    assert out["obs"].tolist() == [[0.0]] and out["action"].tolist() == [0]
    assert out["reward"].tolist() == [1 + 0.5 * 2 + 0.25 * 4]
    assert out["next_obs"].tolist() == [[3.0]]  # s_{t+3}
    assert out["discount"].tolist() == [0.125] and out["done"].tolist() == [False]


def test_a_terminal_state_flushes_every_pending_step_without_bootstrap() -> None:
    acc = NStepTransitions(3, GAMMA, num_envs=1)
    step(acc, 0)
    out = step(acc, 1, terminated=True)
    assert out is not None
    assert out["obs"].ravel().tolist() == [0.0, 1.0]
    assert out["reward"].tolist() == [1 + 0.5 * 2, 2.0]
    assert out["done"].tolist() == [True, True]
    assert out["next_obs"].ravel().tolist() == [2.0, 2.0]
    assert step(acc, 10) is None  # the next episode starts from nothing


@pytest.mark.parametrize("n", [1, 2, 5])
def test_a_truncated_episode_still_bootstraps_with_a_shorter_discount(n: int) -> None:
    acc = NStepTransitions(n, GAMMA, num_envs=1)
    outs = [step(acc, t, truncated=(t == 2)) for t in range(3)]
    emitted = [o for o in outs if o is not None]
    last = emitted[-1]
    assert not last["done"].any()
    assert last["next_obs"].ravel().tolist() == [3.0] * len(last["done"])
    remaining = min(n, 3)
    assert last["discount"].tolist()[-remaining:] == [GAMMA**k for k in range(remaining, 0, -1)]


def test_envs_of_a_vector_env_are_kept_apart() -> None:
    acc = NStepTransitions(2, GAMMA, num_envs=2)
    first = acc.add(np.array([[0.0], [10.0]]), np.array([0, 1]), np.array([1.0, 100.0]),
                    np.array([[1.0], [11.0]]), np.array([False, True]), np.array([False, False]))
    assert first is not None and first["obs"].ravel().tolist() == [10.0]
    second = acc.add(np.array([[1.0], [20.0]]), np.array([0, 1]), np.array([1.0, 100.0]),
                     np.array([[2.0], [21.0]]), np.array([False, False]),
                     np.array([False, False]))
    assert second is not None
    assert second["obs"].ravel().tolist() == [0.0] and second["reward"].tolist() == [1.5]


def test_one_step_is_the_plain_transition() -> None:
    out = step(NStepTransitions(1, GAMMA, num_envs=1), 3)
    assert out is not None
    assert (out["reward"].tolist(), out["discount"].tolist()) == ([8.0], [0.5])
