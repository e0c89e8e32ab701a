"""Greedy evaluation: one episode on each of N separately seeded environments, stepped together.

Evaluation runs on its own environments, never the ones collecting experience, so it
does not cut training episodes short and its seeds do not overlap with theirs.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from replay_service.client.collector.envs import make_vector_env

__all__ = ["Policy", "evaluate", "greedy_policy"]

Policy = Callable[[np.ndarray], np.ndarray]
"""Maps a batch of observations [n, ...] to n actions."""


def greedy_policy(network: nn.Module) -> Policy:
    """The argmax action of `network` (on whatever device it lives), without gradients.
    Observations go to the device in their own dtype; the network converts them."""
    device = next(network.parameters()).device

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            q_values = network(torch.as_tensor(obs, device=device))
            actions: np.ndarray = q_values.argmax(dim=-1).cpu().numpy()
        return actions

    return act


def evaluate(policy: Policy, env_id: str, num_episodes: int, seed: int) -> np.ndarray:
    """Returns of `num_episodes` episodes, the i-th on an environment seeded `seed + i`
    (preprocessed as collectors see it, for Atari games).

    All episodes run in one vector env, one sub-environment each. Under gymnasium 1.x
    autoreset a sub-environment that finished starts a new episode on its next step;
    only the first episode of each counts, so later rewards are masked out.
    """
    envs = make_vector_env(env_id, num_episodes, gym.vector.AutoresetMode.NEXT_STEP)
    try:
        obs, _ = envs.reset(seed=seed)
        returns = np.zeros(num_episodes, dtype=np.float64)
        running = np.ones(num_episodes, dtype=bool)
        while running.any():
            obs, rewards, terminated, truncated, _ = envs.step(policy(obs))
            returns += np.where(running, rewards, 0.0)
            running &= ~(terminated | truncated)
        return returns
    finally:
        envs.close()
