"""The trainer's gradient steps per second, sampling from the service vs from memory.

One run, side by side, on the same 50,000 CartPole-sized transitions: the same
DQN learner (batch 64, [256, 256], one torch thread) trains rounds of 128
minibatches drawn (a) from an in-process numpy ring buffer in the learner's own
thread, as an in-process DQN does, and (b) from the replay service over HTTP,
one request per round, prefetched on a background thread, as `replay train`
does. The two alternate, `--repeats` times each, and the medians are compared.

    python -m replay_service.benchmarks.trainer_sampling --rounds 20 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from replay_service.cli.children import ServiceProcess
from replay_service.client.sync_client import ReplayClient
from replay_service.service.redis_server import RedisServer
from replay_service.trainer.benchmark import fill_random, observation_space
from replay_service.trainer.config import TrainConfig
from replay_service.trainer.learner import DQNLearner
from replay_service.trainer.local_buffer import LocalReplayBuffer
from replay_service.trainer.prefetch import Prefetcher

FILL = 50_000


def timed_rounds(learner: DQNLearner, next_round: Callable[[], Mapping[str, np.ndarray]],
                 rounds: int) -> float:
    """Gradient steps per second over `rounds` rounds, fetching included."""
    start = time.perf_counter()
    for _ in range(rounds):
        learner.sync_target()
        learner.train_round(next_round())
    return rounds * learner.config.gradient_steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20, help="rounds per measurement")
    parser.add_argument("--repeats", type=int, default=5, help="measurements of each side")
    args = parser.parse_args()
    config = TrainConfig(log_dir=None)
    local = LocalReplayBuffer(FILL, seed=0)
    cartpole = observation_space([4])
    fill_random(local, FILL, cartpole, num_actions=2)
    learner = DQNLearner(cartpole, 2, config)

    def from_memory() -> Mapping[str, np.ndarray]:
        return local.sample(config.batch_size, config.gradient_steps)

    with tempfile.TemporaryDirectory() as scratch, \
            RedisServer(Path(scratch) / "redis", appendfsync=None) as redis:
        service = ServiceProcess(redis.url, Path(scratch)).start()
        try:
            client = ReplayClient(service.url, "bench-trainer", capacity=FILL)
            client.store_batch(local.columns)

            def from_service() -> Mapping[str, np.ndarray]:
                return client.sample(config.batch_size, num_batches=config.gradient_steps)

            timed_rounds(learner, from_memory, 2)  # warm up both paths
            timed_rounds(learner, from_service, 2)
            memory_rates, service_rates, waits = [], [], []
            for _ in range(args.repeats):
                memory_rates.append(timed_rounds(learner, from_memory, args.rounds))
                with Prefetcher(from_service, depth=2) as prefetcher:
                    service_rates.append(timed_rounds(learner, prefetcher.get, args.rounds))
                    waits.append(prefetcher.wait_share)
            client.close()
        finally:
            service.stop()

    memory, remote = statistics.median(memory_rates), statistics.median(service_rates)
    print(f"{'sampling from':<36}{'median':>10}   gradient steps/s of each run")
    for label, median, rates in [("in-process numpy ring buffer", memory, memory_rates),
                                 ("replay service (HTTP, prefetched)", remote, service_rates)]:
        print(f"{label:<36}{median:>10,.0f}   {' '.join(f'{rate:.0f}' for rate in rates)}")
    print(f"ratio service / in-process: {remote / memory:.2f}   (target >= 0.80)")
    print(f"learner time spent waiting for batches: {100 * statistics.median(waits):.1f}% "
          "(median)")


if __name__ == "__main__":
    main()
