"""SB3's own training speed with its in-process ReplayBuffer vs with ServiceReplayBuffer.

The same SB3 runs, side by side in one process: DQN on CartPole-v1 with
rl-baselines3-zoo's hyperparameters (rounds of 256 env steps and 128 gradient
steps) and SAC on Pendulum-v1 with SB3's defaults (one env step, one gradient
step), each `--repeats` times with SB3's ReplayBuffer and with the service's, the
two alternating. Wall time covers `learn()` and, for the service, the final flush;
the ratio of medians is SB3's time over the service's (1.0: as fast as in-process).

    python -m replay_service.benchmarks.sb3_buffer --dqn-steps 4000 --sac-steps 2000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch as th
from stable_baselines3 import DQN, SAC
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from replay_service.cli.children import ServiceProcess
from replay_service.integrations.sb3 import ServiceReplayBuffer
from replay_service.service.redis_server import RedisServer

# rl-baselines3-zoo, hyperparams/dqn.yml, CartPole-v1 (all but n_timesteps).
ZOO_DQN_CARTPOLE: dict[str, Any] = {
    "learning_rate": 2.3e-3, "batch_size": 64, "buffer_size": 100_000, "learning_starts": 1_000,
    "gamma": 0.99, "target_update_interval": 10, "train_freq": 256, "gradient_steps": 128,
    "exploration_fraction": 0.16, "exploration_final_eps": 0.04,
    "policy_kwargs": {"net_arch": [256, 256]}}

Make = Callable[[dict[str, Any]], OffPolicyAlgorithm]
RUNS: dict[str, Make] = {
    "DQN CartPole-v1": lambda buffer: DQN("MlpPolicy", "CartPole-v1", seed=0,
                                          **ZOO_DQN_CARTPOLE, **buffer),
    "SAC Pendulum-v1": lambda buffer: SAC("MlpPolicy", "Pendulum-v1", seed=0, **buffer),
}


def seconds_to_learn(make: Make, steps: int, url: str | None) -> float:
    """Wall time of one run: SB3's own buffer when `url` is None, the service's otherwise."""
    buffer: dict[str, Any] = {} if url is None else {
        "replay_buffer_class": ServiceReplayBuffer,
        "replay_buffer_kwargs": {"url": url, "buffer": f"bench-sb3-{uuid.uuid4().hex[:8]}"}}
    model = make(buffer)
    start = time.perf_counter()
    model.learn(steps)
    service_buffer = model.replay_buffer
    if isinstance(service_buffer, ServiceReplayBuffer):
        service_buffer.client.flush()
    elapsed = time.perf_counter() - start
    if isinstance(service_buffer, ServiceReplayBuffer):
        service_buffer.reset()  # deletes the service buffer
        service_buffer.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dqn-steps", type=int, default=4_000)
    parser.add_argument("--sac-steps", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    th.set_num_threads(1)  # several times faster for these small nets on a few cores
    steps = {"DQN CartPole-v1": args.dqn_steps, "SAC Pendulum-v1": args.sac_steps}
    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch, \
            RedisServer(Path(scratch) / "redis", appendfsync=None) as redis:
        service = ServiceProcess(redis.url, Path(scratch)).start()
        try:
            for _ in range(args.repeats):
                for run, make in RUNS.items():
                    for side, url in (("SB3 ReplayBuffer", None),
                                      ("ServiceReplayBuffer", service.url)):
                        times.setdefault((run, side), []).append(
                            seconds_to_learn(make, steps[run], url))
        finally:
            service.stop()

    print(f"{'run':<18}{'steps':>7}  {'buffer':<21}{'median s':>9}   each run (s)")
    for run in RUNS:
        medians = {}
        for side in ("SB3 ReplayBuffer", "ServiceReplayBuffer"):
            runs = times[(run, side)]
            medians[side] = statistics.median(runs)
            print(f"{run:<18}{steps[run]:>7}  {side:<21}{medians[side]:>9.2f}   "
                  f"{' '.join(f'{value:.2f}' for value in runs)}")
        ratio = medians["SB3 ReplayBuffer"] / medians["ServiceReplayBuffer"]
        print(f"{'':<25}speed ratio service / in-process: {ratio:.2f}   (target >= 0.80)")


if __name__ == "__main__":
    main()
