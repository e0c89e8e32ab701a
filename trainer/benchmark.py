"""How many gradient steps per second the learner alone sustains, with batches in memory.

This is the ceiling for the distributed trainer: whatever the replay service costs
shows up as the gap between this figure and the trainer's own rate.

    python -m trainer.benchmark --rounds 20 --threads 1 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from replay_service.trainer.config import TrainConfig
from replay_service.trainer.learner import DQNLearner
from replay_service.trainer.local_buffer import LocalReplayBuffer

__all__ = ["fill_random", "learner_steps_per_second"]


def fill_random(buffer: LocalReplayBuffer, count: int, obs_dim: int, num_actions: int,
                seed: int = 0) -> None:
    """Insert `count` random DQN transitions (5% terminal)."""
    rng = np.random.default_rng(seed)
    buffer.add({
        "obs": rng.standard_normal((count, obs_dim), dtype=np.float32),
        "action": rng.integers(num_actions, size=count),
        "reward": np.ones(count, dtype=np.float32),
        "next_obs": rng.standard_normal((count, obs_dim), dtype=np.float32),
        "done": rng.random(count) < 0.05,
    })


def learner_steps_per_second(config: TrainConfig, rounds: int = 20, threads: int = 1,
                             obs_dim: int = 4, num_actions: int = 2) -> float:
    """Gradient steps per second over `rounds` rounds of `config.gradient_steps` minibatches,
    sampling included (as in the reference loop), after one warm-up round."""
    torch.manual_seed(config.seed)
    buffer = LocalReplayBuffer(config.buffer_size, seed=config.seed)
    fill_random(buffer, min(config.buffer_size, 50_000), obs_dim, num_actions, config.seed)
    learner = DQNLearner(obs_dim, num_actions, config)
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
    parser.add_argument("--net-arch", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    config = TrainConfig(batch_size=args.batch_size, net_arch=tuple(args.net_arch),
                         device=args.device, log_dir=None)
    for threads in args.threads:
        rate = learner_steps_per_second(config, args.rounds, threads)
        print(f"batch {config.batch_size} net {list(config.net_arch)} threads {threads} "
              f"device {args.device}: {rate:,.0f} gradient steps/s", flush=True)


if __name__ == "__main__":
    main()
