from __future__ import annotations

import gymnasium as gym
import numpy as np

from replay_service.trainer.evaluation import evaluate


def balance(obs: np.ndarray) -> np.ndarray:
    """Push towards the side the pole falls to: a fixed policy with varied episode lengths."""
    actions: np.ndarray = (obs[:, 2] + obs[:, 3] > 0).astype(np.int64)
    return actions


def single_episode_return(seed: int) -> float:
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    total, finished = 0.0, False
    while not finished:
        obs, reward, terminated, truncated, _ = env.step(int(balance(obs[None])[0]))
        total += float(reward)
        finished = terminated or truncated
    env.close()
    return total


def test_evaluate_fixed_policy_returns_one_return_per_episode() -> None:
    returns = evaluate(balance, "CartPole-v1", num_episodes=20, seed=123)
    assert returns.shape == (20,)
    assert np.all((returns >= 8) & (returns <= 500))
    assert len(set(returns.tolist())) > 1


def test_evaluate_counts_only_the_first_episode_of_each_env() -> None:
    # Episodes of different lengths: envs that finish early restart under autoreset,
    # and those later episodes must not add to the returns.
    returns = evaluate(balance, "CartPole-v1", num_episodes=6, seed=7)
    assert returns.tolist() == [single_episode_return(7 + i) for i in range(6)]


def test_evaluate_always_left_fails_fast() -> None:
    returns = evaluate(lambda obs: np.zeros(len(obs), np.int64), "CartPole-v1", 5, seed=0)
    assert np.all(returns < 20)
