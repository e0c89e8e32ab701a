"""Pong on this CPU for a bounded wall time: the service's distributed DQN beside SB3's
in-process DQN, with the same observations, network and hyperparameters.

(a) The service, run as a user runs it (a private Redis, the service, collector
    processes in parallel, the trainer), stopped by its time limit:

        replay demo --env ALE/Pong-v5 --collectors 2 --envs-per-collector 2 \\
            --max-minutes M --learning-starts 10000 --eval-interval 25000

(b) Stable-Baselines3's DQN("CnnPolicy") in this process, for the same minutes. Its one
    environment is ours (`make_env`: gymnasium's AtariPreprocessing and a stack of 4
    frames, [4, 84, 84] uint8), not SB3's AtariWrapper, which clips rewards and ends
    episodes at a lost life; its network is SB3's NatureCNN (the same 3 convolutions and
    512 units) and a Linear layer to the 6 actions, as ours.

Both take rl-baselines3-zoo's Atari entry, which is the trainer's preset: learning rate
1e-4, batch 32, buffer 10k, a gradient step per 4 env steps, the target copied every
1,000 env steps (every 4 rounds of 256 in the trainer), epsilon from 1 to 0.01 over 10%
of the 10M-step budget, gamma 0.99, Huber loss, gradients clipped at norm 10. One
exception, for both: the zoo's learning_starts of 100,000 env steps leaves nothing
learnt in a short run, so --learning-starts (default 10,000) replaces it. The budget
(--total-env-steps, default the zoo's 10M) is not reached; it sets the pace of epsilon,
the same on both sides. What differs: the trainer uses Double DQN (--no-double-dqn
turns it off) and trains in rounds of 64 gradient steps per 256 env steps where SB3
trains one step per 4; SB3 runs --sb3-threads torch threads (default 1, as the
trainer's learner).

Greedy evaluations on both sides: every --eval-interval env steps after learning
starts and once at the time limit, on the preset's 10 episodes, through the same
function (`trainer.evaluation.evaluate`) with the same seeds. Measured per side, over
its training time (from its start to the time limit; the evaluations within count, the
one at the limit does not): env steps/s and env frames/s (env steps x 4, the frame
skip), learner updates (gradient steps)/s, transitions sampled/s (gradient steps x batch
32 / time), and the evaluation returns against time and env steps, plotted to --plot;
then the ratios service / SB3. The two sides run one after the other, never together.

    python -m replay_service.benchmarks.pong_cpu --minutes 60 --json pong_cpu.json \\
        --plot pong_cpu.png
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv

from replay_service.benchmarks.demo_run import run_demo
from replay_service.benchmarks.markdown import table
from replay_service.client.collector.envs import make_env
from replay_service.trainer.config import TrainConfig
from replay_service.trainer.evaluation import evaluate
from replay_service.trainer.presets import train_config, zoo
from replay_service.trainer.reference import eval_seed

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt  # noqa: E402

ENV = "ALE/Pong-v5"
FRAME_SKIP = 4
"""Emulator frames per env step (AtariPreprocessing's frame_skip)."""

ZOO_ATARI: dict[str, Any] = {
    "learning_rate": 1e-4, "batch_size": 32, "buffer_size": 10_000, "learning_starts": 100_000,
    "target_update_interval": 1_000, "train_freq": 4, "gradient_steps": 1,
    "exploration_fraction": 0.1, "exploration_final_eps": 0.01}
"""rl-baselines3-zoo's hyperparams/dqn.yml `atari` entry (the commit trainer/presets.py
names), in SB3's names, without n_timesteps; its optimize_memory_usage is left off, as a
buffer of 10k frame pairs takes 0.6 GB and SB3 refuses it with timeout handling on."""


@dataclass(frozen=True)
class Evaluation:
    seconds: float
    """Since the side's start, when the evaluation began."""
    env_steps: int
    mean_return: float


@dataclass
class Side:
    """What one side did in its bounded run."""

    kind: str
    """service or sb3."""
    name: str
    env_steps: int
    gradient_steps: int
    batch_size: int
    train_s: float
    """From the start to the time limit (the last evaluation's start)."""
    wall_s: float
    """Everything: for the service, the whole `replay demo` command."""
    evals: list[Evaluation] = field(default_factory=list)

    @property
    def rates(self) -> dict[str, float]:
        return {"env steps/s": self.env_steps / self.train_s,
                "env frames/s": FRAME_SKIP * self.env_steps / self.train_s,
                "learner updates/s": self.gradient_steps / self.train_s,
                "transitions sampled/s": self.gradient_steps * self.batch_size / self.train_s}


def run_config(args: argparse.Namespace) -> TrainConfig:
    """The trainer's configuration under the options this benchmark gives `replay demo`,
    checked to be the zoo's Atari entry that SB3 gets."""
    config = train_config(ENV, seed=args.seed, total_env_steps=args.total_env_steps,
                          max_minutes=args.minutes, learning_starts=args.learning_starts,
                          eval_interval=args.eval_interval, double_dqn=args.double_dqn)
    restated = zoo(n_timesteps=config.total_env_steps,
                   **{**ZOO_ATARI, "learning_starts": args.learning_starts})
    differ = {name: (value, getattr(config, name)) for name, value in restated.items()
              if getattr(config, name) != value}
    if differ:
        raise SystemExit(f"the preset no longer matches the zoo's Atari entry (zoo, preset): "
                         f"{differ}")
    return config


def run_service(args: argparse.Namespace, config: TrainConfig, runs_dir: Path) -> Side:
    options = ["--env", ENV, "--seed", str(config.seed), "--collectors", str(args.collectors),
               "--envs-per-collector", str(args.envs_per_collector),
               "--max-minutes", str(args.minutes), "--learning-starts", str(args.learning_starts),
               "--eval-interval", str(args.eval_interval),
               "--total-env-steps", str(config.total_env_steps)]
    if not args.double_dqn:
        options.append("--no-double-dqn")
    print(f"service: replay demo {' '.join(options)}\n  for {args.minutes:g} minutes; "
          f"output in {runs_dir / 'demo.log'}", flush=True)
    run = run_demo(options, runs_dir)
    if run.summary is None:
        raise SystemExit(f"replay demo failed (exit {run.exit_code}):\n{run.log_tail()}")
    result = run.summary["result"]
    evals = [Evaluation(record["wall_time_s"], record["env_steps"], record["mean_return"])
             for record in result["evals"]]
    for evaluation in evals:
        print(f"  service {_progress(evaluation)}", flush=True)
    name = f"service ({args.collectors} collectors x {args.envs_per_collector} envs)"
    return Side("service", name,
                result["env_steps"], result["gradient_steps"], config.batch_size,
                evals[-1].seconds if evals else result["wall_time_s"], run.wall_s, evals)


def _progress(evaluation: Evaluation) -> str:
    return (f"{evaluation.seconds / 60:5.1f} min, {evaluation.env_steps:>8,} env steps: "
            f"greedy mean return {evaluation.mean_return:6.1f}")


class BoundedRun(BaseCallback):
    """Ends SB3's learn() as the trainer's time limit ends a run, evaluating greedily on
    the trainer's schedule: every eval_interval env steps after learning starts, and at
    the end."""

    def __init__(self, config: TrainConfig) -> None:
        super().__init__()
        self.config = config
        self.evals: list[Evaluation] = []
        self._next_eval = config.learning_starts + config.eval_interval
        self._started = 0.0

    def _on_training_start(self) -> None:
        self._started = time.perf_counter()

    def _on_step(self) -> bool:
        elapsed = time.perf_counter() - self._started
        done = self.config.out_of_budget(self.num_timesteps, elapsed)
        if self.num_timesteps >= self._next_eval or done:
            self._next_eval = self.num_timesteps + self.config.eval_interval
            model = self.model
            returns = evaluate(lambda obs: model.predict(obs, deterministic=True)[0],
                               self.config.env_id, self.config.eval_episodes,
                               eval_seed(self.config.seed, 0, len(self.evals)))
            self.evals.append(Evaluation(elapsed, self.num_timesteps, float(returns.mean())))
            print(f"  sb3 {_progress(self.evals[-1])}", flush=True)
        return not done


def run_sb3(args: argparse.Namespace, config: TrainConfig) -> Side:
    th.set_num_threads(args.sb3_threads)
    print(f"sb3: DQN('CnnPolicy') in this process for {args.minutes:g} minutes", flush=True)
    started = time.perf_counter()
    env = DummyVecEnv([lambda: make_env(ENV)])
    model = DQN("CnnPolicy", env, seed=config.seed,
                gamma=config.gamma, max_grad_norm=config.max_grad_norm, device=config.device,
                **{**ZOO_ATARI, "learning_starts": args.learning_starts})
    bound = BoundedRun(config)
    model.learn(total_timesteps=config.total_env_steps, callback=bound)
    wall_s = time.perf_counter() - started
    env.close()
    return Side("sb3", f"SB3 DQN, {args.sb3_threads} torch thread(s)", model.num_timesteps,
                model._n_updates, config.batch_size,
                bound.evals[-1].seconds if bound.evals else wall_s, wall_s, bound.evals)


def report(sides: list[Side]) -> str:
    """A column per side, and service / SB3 where both ran."""
    counts: list[list[object]] = [
        ["training time to the limit (s)", *(f"{side.train_s:.0f}" for side in sides)],
        ["wall time, all in (s)", *(f"{side.wall_s:.0f}" for side in sides)],
        ["env steps", *(f"{side.env_steps:,}" for side in sides)],
        ["gradient steps", *(f"{side.gradient_steps:,}" for side in sides)]]
    rates: list[list[object]] = [[name, *(f"{side.rates[name]:,.1f}" for side in sides)]
                                 for name in sides[0].rates]
    curves: list[object] = ["greedy evaluations (minutes: mean return)", *(
        "; ".join(f"{e.seconds / 60:.1f}: {e.mean_return:.1f}" for e in side.evals)
        for side in sides)]
    header = ["", *(side.name for side in sides)]
    by_kind = {side.kind: side for side in sides}
    if len(by_kind) == 2:
        header.append("service / SB3")
        service, sb3 = by_kind["service"], by_kind["sb3"]
        for row in [*counts, curves]:
            row.append("")
        for row in rates:
            name = str(row[0])
            row.append(f"{service.rates[name] / sb3.rates[name]:.2f}")
    return table(header, [*counts, *rates, curves])


def plot(sides: list[Side], path: Path, minutes: float) -> None:
    """Greedy evaluation returns against wall time and against env steps, side by side."""
    figure, (by_time, by_steps) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=100)
    for side in sides:
        by_time.plot([e.seconds / 60 for e in side.evals], [e.mean_return for e in side.evals],
                     marker="o", markersize=3, label=side.name)
        by_steps.plot([e.env_steps for e in side.evals], [e.mean_return for e in side.evals],
                      marker="o", markersize=3, label=side.name)
    by_time.set_xlabel("wall time (minutes)")
    by_steps.set_xlabel("environment steps")
    for axes in (by_time, by_steps):
        axes.set_ylabel("greedy mean return (10 episodes)")
        axes.grid(alpha=0.3)
        axes.legend(loc="lower right")
    figure.suptitle(f"{ENV} on this CPU, {minutes:g} minutes a side")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0, help="Wall time of each side.")
    parser.add_argument("--learning-starts", type=int, default=10_000,
                        help="Random env steps before learning, both sides (the zoo: 100,000).")
    parser.add_argument("--eval-interval", type=int, default=25_000,
                        help="Env steps between greedy evaluations, both sides.")
    parser.add_argument("--total-env-steps", type=int, default=None,
                        help="The budget that paces epsilon, both sides. Default: the preset's "
                        "(the zoo's 10M).")
    parser.add_argument("--double-dqn", action=argparse.BooleanOptionalAction, default=True,
                        help="The trainer's Double DQN (SB3's DQN has none).")
    parser.add_argument("--collectors", type=int, default=2, help="Collector processes.")
    parser.add_argument("--envs-per-collector", type=int, default=2)
    parser.add_argument("--sb3-threads", type=int, default=1, help="SB3's torch threads.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sides", default="service,sb3",
                        help="Which sides to run, in order: service, sb3 or both.")
    parser.add_argument("--runs-dir", type=Path, default=None,
                        help="The service run's folder. Default: runs/pong_cpu-<time>.")
    parser.add_argument("--json", type=Path, default=None, help="Write the results here.")
    parser.add_argument("--plot", type=Path, default=None,
                        help="Write the evaluation curves here (PNG).")
    args = parser.parse_args()
    config = run_config(args)
    runs_dir = args.runs_dir or Path("runs") / time.strftime("pong_cpu-%Y%m%d-%H%M%S")
    sides = []
    for name in args.sides.split(","):
        if name == "service":
            sides.append(run_service(args, config, runs_dir))
        elif name == "sb3":
            sides.append(run_sb3(args, config))
        else:
            raise SystemExit(f"--sides: service or sb3, not {name!r}")

    print("\n" + report(sides))
    if args.plot:
        plot(sides, args.plot, args.minutes)
        print(f"curves: {args.plot}")
    if args.json:
        args.json.write_text(json.dumps({
            "benchmark": "pong_cpu", "env": ENV, "options": {
                key: str(value) if isinstance(value, Path) else value
                for key, value in vars(args).items()},
            "hyperparameters": {**ZOO_ATARI, "learning_starts": args.learning_starts,
                                "total_env_steps": config.total_env_steps,
                                "gamma": config.gamma, "max_grad_norm": config.max_grad_norm,
                                "eval_episodes": config.eval_episodes},
            "sides": [{**asdict(side), "rates": side.rates} for side in sides]},
            indent=2) + "\n")
        print(f"results: {args.json}")


if __name__ == "__main__":
    main()
