"""How many gradient steps per second the learner alone sustains, with batches in memory.

This is the ceiling for the distributed trainer: whatever the replay service costs
shows up as the gap between this figure and the trainer's own rate.

    python -m replay_service.trainer.benchmark --rounds 20 --threads 1 2
    python -m replay_service.trainer.benchmark --obs-shape 4 84 84 --batch-size 32 \\
        --gradient-steps 64 --rounds 5 --threads 1 2     # the Nature CNN on Atari frames
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch

from replay_service.client.collector.envs import is_image
from replay_service.trainer.config import TrainConfig
from replay_service.trainer.learner import DQNLearner
from replay_service.trainer.local_buffer import LocalReplayBuffer

__all__ = ["fill_random", "learner_steps_per_second", "observation_space"]

_FILL = 50_000
_IMAGE_FILL = 2_000
"""Atari transitions to sample from: 113 MB, plenty for a speed measurement."""


def observation_space(shape: Sequence[int]) -> gym.spaces.Box:
    """float32 vectors for one dimension; uint8 images (the Nature CNN) for more."""
    if len(shape) == 1:
        return gym.spaces.Box(-np.inf, np.inf, tuple(shape), np.float32)
    return gym.spaces.Box(0, 255, tuple(shape), np.uint8)


def fill_random(buffer: LocalReplayBuffer, count: int, obs_space: gym.spaces.Box,
                num_actions: int, seed: int = 0) -> None:
    """Insert `count` random DQN transitions (5% terminal)."""
    rng = np.random.default_rng(seed)

    def observations() -> np.ndarray:
        if is_image(obs_space):
            return rng.integers(0, 256, (count, *obs_space.shape), dtype=np.uint8)
        return rng.standard_normal((count, *obs_space.shape), dtype=np.float32)

    buffer.add({
        "obs": observations(),
        "action": rng.integers(num_actions, size=count),
        "reward": np.ones(count, dtype=np.float32),
        "next_obs": observations(),
        "done": rng.random(count) < 0.05,
    })


def learner_steps_per_second(config: TrainConfig, rounds: int = 20, threads: int = 1,
                             obs_space: gym.spaces.Box | None = None,
                             num_actions: int = 2) -> float:
    """Gradient steps per second over `rounds` rounds of `config.gradient_steps` minibatches,
    sampling included (as in the reference loop), after one warm-up round. The default
    observations are CartPole-sized."""
    obs_space = obs_space or observation_space([4])
    torch.manual_seed(config.seed)
    buffer = LocalReplayBuffer(config.buffer_size, seed=config.seed)
    fill = _IMAGE_FILL if is_image(obs_space) else _FILL
    fill_random(buffer, min(config.buffer_size, fill), obs_space, num_actions, config.seed)
    learner = DQNLearner(obs_space, num_actions, config)
    torch.set_num_threads(threads)  # after the learner, which sets one thread
    learner.train_round(buffer.sample(config.batch_size, config.gradient_steps))
    start = time.perf_counter()
    for _ in range(rounds):
        learner.sync_target()
        learner.train_round(buffer.sample(config.batch_size, config.gradient_steps))
    return rounds * config.gradient_steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--gradient-steps", type=int, default=128, help="per round")
    parser.add_argument("--net-arch", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--obs-shape", type=int, nargs="+", default=[4],
                        help="one number: an MLP's input; C H W: Atari-like uint8 frames")
    parser.add_argument("--actions", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    config = TrainConfig(batch_size=args.batch_size, gradient_steps=args.gradient_steps,
                         net_arch=tuple(args.net_arch), device=args.device, log_dir=None)
    obs_space = observation_space(args.obs_shape)
    network = "Nature CNN" if is_image(obs_space) else f"MLP {list(config.net_arch)}"
    for threads in args.threads:
        rate = learner_steps_per_second(config, args.rounds, threads, obs_space, args.actions)
        print(f"batch {config.batch_size} obs {args.obs_shape} {network} threads {threads} "
              f"device {args.device}: {rate:,.1f} gradient steps/s", flush=True)


if __name__ == "__main__":
    main()
