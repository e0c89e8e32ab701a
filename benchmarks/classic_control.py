"""DQN beyond CartPole through the whole stack: `replay demo` on each env and seed.

For each env of --envs and seed of --seeds this runs, in a child process and as a user
would, `replay demo --env ENV --seed SEED --total-env-steps BUDGET`: a private Redis,
the service, the demo's collectors (2 x 2 envs) and the trainer, every hyperparameter
from the env's preset (rl-baselines3-zoo's dqn.yml entry, trainer/presets.py) but the
budget. The budget is issue 12's, the zoo's n_timesteps for these envs (Acrobot-v1
150k, MountainCar-v0 120k, LunarLander-v3 150k env steps), or with `--budgets preset`
the preset's own (100k for Acrobot and LunarLander), times --budget-scale. The
budget also paces exploration: epsilon decays over exploration_fraction of it.

Each run's trainer writes summary.json into its run folder; from it come, per run:
whether it solved (a periodic greedy evaluation reached the preset's solve_threshold
and the checkpoint saved then scored at least that over 100 fresh greedy episodes;
training goes on when the confirmation falls short), the env steps of the first
evaluation at the threshold and of the confirmed solve, the confirmation's mean
return, and the wall time of the whole `replay demo` command. The issue's target: each
env solved in at least 4 of 5 seeds.

    python -m replay_service.benchmarks.classic_control --json classic_control.json

runs the 15 runs one after another (`--parallel N` runs N at once; each run is
several processes). A smoke run of a few minutes:

    python -m replay_service.benchmarks.classic_control --envs Acrobot-v1 --seeds 0 \
        --budget-scale 0.05
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from replay_service.benchmarks.demo_run import DemoRun, run_demo
from replay_service.benchmarks.markdown import table
from replay_service.trainer.presets import train_config

ISSUE_BUDGETS = {"Acrobot-v1": 150_000, "MountainCar-v0": 120_000, "LunarLander-v3": 150_000}
"""Env steps per run: rl-baselines3-zoo's n_timesteps as issue 12 states them."""
TARGET_SEEDS = 4
"""Seeds of 5 that must solve (issue 12)."""


@dataclass(frozen=True)
class Outcome:
    """One `replay demo` run, as its summary.json tells it."""

    env: str
    seed: int
    budget: int
    exit_code: int
    wall_s: float
    """The whole command, start and stop of the stack included."""
    log: str
    solve_threshold: float | None = None
    solved: bool = False
    """Solved and confirmed over the fresh greedy episodes."""
    first_at_threshold: int | None = None
    """Env steps of the first periodic evaluation at the threshold (confirmed or not)."""
    solved_at: int | None = None
    """Env steps of the confirmed solve; None if not solved."""
    confirm_mean_return: float | None = None
    """The last confirmation's mean return over 100 fresh episodes; None if none ran."""
    best_mean_return: float | None = None
    env_steps: int = 0
    gradient_steps: int = 0
    train_wall_s: float = 0.0
    """The trainer's own wall time (no start-up of the stack)."""
    error: str | None = None
    """The output's tail when the run wrote no summary."""

    @classmethod
    def of(cls, env: str, seed: int, budget: int, run: DemoRun) -> Outcome:
        common: dict[str, Any] = {"env": env, "seed": seed, "budget": budget,
                                  "exit_code": run.exit_code, "wall_s": run.wall_s,
                                  "log": str(run.log)}
        if run.summary is None:
            return cls(**common, error=run.log_tail())
        config, result = run.summary["config"], run.summary["result"]
        threshold = config["solve_threshold"]
        reached = [record["env_steps"] for record in result["evals"]
                   if threshold is not None and record["mean_return"] >= threshold]
        return cls(**common, solve_threshold=threshold, solved=result["solved"],
                   first_at_threshold=reached[0] if reached else None,
                   solved_at=result["env_steps"] if result["solved"] else None,
                   confirm_mean_return=result["confirm_mean_return"],
                   best_mean_return=result["best_mean_return"], env_steps=result["env_steps"],
                   gradient_steps=result["gradient_steps"], train_wall_s=result["wall_time_s"])

    def line(self) -> str:
        """One line of progress."""
        if self.error is not None:
            return f"FAILED (exit {self.exit_code}), see {self.log}"
        verdict = (f"SOLVED at {self.solved_at:,} env steps" if self.solved
                   else f"not solved in {self.env_steps:,} env steps")
        first = ("" if self.first_at_threshold is None
                 else f", first evaluation at the threshold at {self.first_at_threshold:,}")
        confirmed = ("no confirmation" if self.confirm_mean_return is None
                     else f"confirmed {self.confirm_mean_return:.1f} over 100 episodes")
        best = _number(self.best_mean_return)
        return f"{verdict}{first}; {confirmed}; best evaluation {best}; {self.wall_s:.0f} s"


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def budget_of(env: str, budgets: str, scale: float) -> int:
    """The run's step budget: the issue's or the preset's, scaled."""
    full = (ISSUE_BUDGETS.get(env) if budgets == "issue" else None) or \
        train_config(env).total_env_steps
    return max(1, round(full * scale))


def summary_table(outcomes: list[Outcome]) -> str:
    rows = []
    for env in dict.fromkeys(outcome.env for outcome in outcomes):
        runs = sorted((o for o in outcomes if o.env == env), key=lambda o: o.seed)
        solved = sum(o.solved for o in runs)
        rows.append([
            env, f"{solved} / {len(runs)}",
            ", ".join(f"{o.solved_at:,}" if o.solved_at is not None else "-" for o in runs),
            ", ".join(_number(o.confirm_mean_return) for o in runs),
            ", ".join(f"{o.wall_s:.0f}" for o in runs)])
    return table(["env", "seeds solved (confirmed over 100 episodes) / run",
                  "env steps to solve, per seed", "confirmed mean return, per seed",
                  "wall time (s), per seed"], rows)


def runs_table(outcomes: list[Outcome]) -> str:
    rows = [[o.env, o.seed, f"{o.budget:,}", "yes" if o.solved else "no",
             "-" if o.first_at_threshold is None else f"{o.first_at_threshold:,}",
             "-" if o.solved_at is None else f"{o.solved_at:,}",
             _number(o.confirm_mean_return), _number(o.best_mean_return), f"{o.env_steps:,}",
             f"{o.gradient_steps:,}", f"{o.train_wall_s:.0f}", f"{o.wall_s:.0f}"]
            for o in sorted(outcomes, key=lambda o: (o.env, o.seed))]
    return table(["env", "seed", "budget", "solved", "first eval at threshold", "solved at",
                  "confirmed mean", "best eval", "env steps run", "gradient steps",
                  "trainer s", "wall s"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", default=",".join(ISSUE_BUDGETS),
                        help="Comma-separated gymnasium ids.")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="Comma-separated seeds.")
    parser.add_argument("--budgets", choices=["issue", "preset"], default="issue",
                        help="The issue's budgets (zoo n_timesteps) or the presets' own.")
    parser.add_argument("--budget-scale", type=float, default=1.0,
                        help="Multiply every budget (smoke runs: 0.05).")
    parser.add_argument("--parallel", type=int, default=1, help="Runs at once.")
    parser.add_argument("--runs-dir", type=Path, default=None,
                        help="Where each run's logs, curve and checkpoint go. "
                        "Default: runs/classic_control-<time>.")
    parser.add_argument("--json", type=Path, default=None, help="Write the results here.")
    args = parser.parse_args()
    envs, seeds = args.envs.split(","), [int(seed) for seed in args.seeds.split(",")]
    runs_dir = args.runs_dir or Path("runs") / time.strftime("classic_control-%Y%m%d-%H%M%S")
    plan = [(env, seed, budget_of(env, args.budgets, args.budget_scale))
            for env in envs for seed in seeds]
    print(f"{len(plan)} runs of replay demo, {args.parallel} at a time; folders in {runs_dir}",
          flush=True)

    started = time.perf_counter()

    def run(env: str, seed: int, budget: int) -> Outcome:
        print(f"[{time.perf_counter() - started:.0f} s] {env} seed {seed}: started", flush=True)
        options = ["--env", env, "--seed", str(seed), "--total-env-steps", str(budget)]
        return Outcome.of(env, seed, budget, run_demo(options, runs_dir / f"{env}-seed{seed}"))

    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        futures = [pool.submit(run, *planned) for planned in plan]
        for future in as_completed(futures):
            outcome = future.result()
            outcomes.append(outcome)
            print(f"[{len(outcomes)}/{len(plan)}, {time.perf_counter() - started:.0f} s] "
                  f"{outcome.env} seed {outcome.seed}, budget {outcome.budget:,}: "
                  f"{outcome.line()}", flush=True)

    print("\n" + summary_table(outcomes))
    print(f"\nTarget (issue 12): each env solved in at least {TARGET_SEEDS} of 5 seeds.\n")
    print(runs_table(outcomes))
    walls = [outcome.wall_s for outcome in outcomes]
    print(f"\n{len(outcomes)} runs, {time.perf_counter() - started:.0f} s in all "
          f"(median run {statistics.median(walls):.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({
            "benchmark": "classic_control", "envs": envs, "seeds": seeds,
            "budgets": args.budgets, "budget_scale": args.budget_scale,
            "parallel": args.parallel, "runs_dir": str(runs_dir),
            "runs": [asdict(outcome) for outcome in outcomes]}, indent=2) + "\n")
        print(f"results: {args.json}")


if __name__ == "__main__":
    main()
