"""`replay demo`: the whole system on one machine, training an env (CartPole-v1 unless
told otherwise) until it is solved.

A private Redis, the service, collector processes and the trainer, started here
and stopped here, on success, failure or Ctrl-C.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer

from replay_service.cli.children import ReplayProcess, ServiceProcess
from replay_service.cli.logs import setup_logging
from replay_service.cli.show_config import show_config
from replay_service.cli.signals import stop_cleanly_on_signals

BUFFER = "demo"


def demo(
    env_id: Annotated[str, typer.Option(
        "--env", help="Gymnasium environment id; its preset gives the hyperparameters "
        "(trainer/presets.py).")] = "CartPole-v1",
    seed: Annotated[int, typer.Option(help="Seeds the trainer; collectors get their own from it.")
                    ] = 0,
    collectors: Annotated[int, typer.Option(min=1, help="Collector processes.")] = 2,
    envs_per_collector: Annotated[int, typer.Option(min=1, help="Environments each.")] = 2,
    total_env_steps: Annotated[int | None, typer.Option(
        min=1, help="Step budget. Default: the env's preset.", show_default=False)] = None,
    max_minutes: Annotated[float | None, typer.Option(
        help="Time limit of training, in minutes: ends the run as the step budget does. "
        "Default: none.", show_default=False)] = None,
    learning_starts: Annotated[int | None, typer.Option(
        min=0, help="Random env steps before the first gradient step. Default: the env's "
        "preset.", show_default=False)] = None,
    eval_interval: Annotated[int | None, typer.Option(
        min=1, help="Env steps between greedy evaluations. Default: the env's preset.",
        show_default=False)] = None,
    double_dqn: Annotated[bool, typer.Option(help="Double DQN targets.")] = True,
    prioritized: Annotated[bool, typer.Option(help="Prioritized replay.")] = False,
    n_step: Annotated[int, typer.Option(min=1, help="n-step returns.")] = 1,
    log_dir: Annotated[Path, typer.Option(help="TensorBoard logs, checkpoints, the curve.")
                       ] = Path("runs"),
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    show: Annotated[bool, typer.Option(
        "--show-config", help="Print the trainer's hyperparameters and exit.")] = False,
) -> None:
    """Solve an env (CartPole-v1) with a private Redis, the service, collectors and a trainer.

    Runs until solved (greedy mean return at the preset's threshold over the evaluation
    episodes, 475 over 20 for CartPole-v1, confirmed over 100 fresh ones) or out of
    budget (steps, or --max-minutes), then stops everything it started."""
    setup_logging()
    stop_cleanly_on_signals()
    # Imported here: gymnasium and torch are extras that `replay serve` goes without,
    # and torch takes seconds to load.
    from replay_service.trainer.presets import train_config

    config = train_config(env_id, seed=seed, total_env_steps=total_env_steps,
                          max_minutes=max_minutes, learning_starts=learning_starts,
                          eval_interval=eval_interval, double_dqn=double_dqn,
                          prioritized=prioritized, n_step=n_step, log_dir=str(log_dir))
    if show:
        show_config(config)
    from replay_service.cli.report import describe
    from replay_service.service.redis_server import RedisServer
    from replay_service.trainer.service_loop import train_from_service

    log_dir.mkdir(parents=True, exist_ok=True)
    logs = log_dir / "demo-logs"
    logs.mkdir(exist_ok=True)
    started = time.perf_counter()
    with ExitStack() as stack:
        redis = stack.enter_context(RedisServer(logs / "redis", appendfsync=None))
        service = ServiceProcess(redis.url, logs)
        stack.callback(service.stop)
        service.start()
        workers = []
        for index in range(collectors):
            worker = ReplayProcess([
                "collect", "--url", service.url, "--buffer", BUFFER, "--env", config.env_id,
                "--num-envs", str(envs_per_collector), "--seed", str(10_000 * (seed + 1) + index),
                "--warmup-steps", str(config.learning_starts), "--name", f"collector-{index}",
                "--n-step", str(config.n_step), "--gamma", str(config.gamma)],
                logs / f"collector-{index}.log")
            stack.callback(worker.stop)
            workers.append(worker.start())

        def check_collectors() -> None:
            for worker in workers:
                if worker.exit_code() is not None:
                    raise RuntimeError(f"a collector exited ({worker.exit_code()}):\n"
                                       f"{worker.log()}")

        typer.echo(f"service at {service.url}, {collectors} collectors x {envs_per_collector} "
                   f"envs, trainer seed {seed}; logs in {logs}")
        result = train_from_service(config, service.url, BUFFER, progress=progress,
                                    check_collectors=check_collectors)

    typer.echo("\n" + describe(result, config, time.perf_counter() - started))
    if not result.solved:
        raise typer.Exit(1)
