"""n-step transitions, computed on the collector before storing (Ape-X style).

Each stored transition then carries the discounted sum of the next n rewards, the
state n steps later to bootstrap from, and the discount to apply to its value
(gamma^n, or gamma^m when the episode ended after m < n steps). A real terminal
state ends the sum and stops bootstrapping (done = true); a time-limit truncation
ends the sum too but still bootstraps, from the state where the episode was cut.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import numpy as np

__all__ = ["NStepTransitions"]


class _Step(NamedTuple):
    obs: np.ndarray
    action: np.int64
    reward: float


class NStepTransitions:
    """Turns the 1-step transitions of a vector env into n-step ones, env by env."""

    def __init__(self, n: int, gamma: float, num_envs: int) -> None:
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        self.n = n
        self.gamma = gamma
        self._pending: list[deque[_Step]] = [deque() for _ in range(num_envs)]

    def add(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray,
            next_obs: np.ndarray, terminated: np.ndarray, truncated: np.ndarray
            ) -> dict[str, np.ndarray] | None:
        """Take one step of every env (next_obs: the real last observation where an episode
        ended); return the n-step transitions now complete, as columns, or None."""
        rows: list[tuple[np.ndarray, np.int64, float, np.ndarray, bool, float]] = []
        for env, pending in enumerate(self._pending):
            pending.append(_Step(obs[env].copy(), np.int64(action[env]), float(reward[env])))
            ended = bool(terminated[env] or truncated[env])
            while pending and (len(pending) == self.n or ended):
                rows.append(self._oldest(pending, next_obs[env], bool(terminated[env])))
                pending.popleft()
        if not rows:
            return None
        columns = list(zip(*rows, strict=True))
        return {"obs": np.stack(columns[0]), "action": np.array(columns[1], np.int64),
                "reward": np.array(columns[2], np.float32), "next_obs": np.stack(columns[3]),
                "done": np.array(columns[4], bool), "discount": np.array(columns[5], np.float32)}

    def _oldest(self, pending: deque[_Step], bootstrap: np.ndarray, terminated: bool
                ) -> tuple[np.ndarray, np.int64, float, np.ndarray, bool, float]:
        discounted = sum(self.gamma**k * step.reward for k, step in enumerate(pending))
        first = pending[0]
        return (first.obs, first.action, discounted, bootstrap.copy(), terminated,
                self.gamma ** len(pending))
