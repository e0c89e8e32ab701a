"""`replay demo`: the whole system on one machine, training CartPole until it is solved.

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
from replay_service.cli.signals import stop_cleanly_on_signals

BUFFER = "demo"


def demo(
    seed: Annotated[int, typer.Option(help="Seeds the trainer; collectors get their own from it.")
                    ] = 0,
    collectors: Annotated[int, typer.Option(min=1, help="Collector processes.")] = 2,
    envs_per_collector: Annotated[int, typer.Option(min=1, help="Environments each.")] = 2,
    total_env_steps: Annotated[int, typer.Option(min=1, help="Step budget.")] = 100_000,
    double_dqn: Annotated[bool, typer.Option(help="Double DQN targets.")] = True,
    prioritized: Annotated[bool, typer.Option(help="Prioritized replay.")] = False,
    n_step: Annotated[int, typer.Option(min=1, help="n-step returns.")] = 1,
    log_dir: Annotated[Path, typer.Option(help="TensorBoard logs, checkpoints, the curve.")
                       ] = Path("runs"),
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Solve CartPole-v1 with a private Redis, the service, collectors and a trainer.

    Runs until solved (greedy mean return >= 475 over 20 episodes, confirmed over 100
    fresh ones) or out of budget, then stops everything it started."""
    setup_logging()
    stop_cleanly_on_signals()
    # Imported here: torch loads in seconds, and only this command needs it.
    from replay_service.cli.report import describe
    from replay_service.service.redis_server import RedisServer
    from replay_service.trainer.config import TrainConfig
    from replay_service.trainer.service_loop import train_from_service

    config = TrainConfig(seed=seed, total_env_steps=total_env_steps, double_dqn=double_dqn,
                         prioritized=prioritized, n_step=n_step, log_dir=str(log_dir))
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
