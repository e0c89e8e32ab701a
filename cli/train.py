"""`replay train`: train a DQN on what collectors store in the service (or, for comparison,
the same learner in one process with an in-memory buffer)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from replay_service.cli.logs import setup_logging
from replay_service.cli.signals import stop_cleanly_on_signals


def train(
    url: Annotated[str, typer.Option(envvar="REPLAY_URL", help="The replay service.")] = (
        "http://127.0.0.1:8000"),
    buffer: Annotated[str, typer.Option(envvar="REPLAY_BUFFER", help="Buffer to learn from.")
                      ] = "cartpole",
    api_key: Annotated[str | None, typer.Option(
        envvar="REPLAY_API_KEY", help="The service's write key, if it has one.",
        show_default=False)] = None,
    in_process: Annotated[bool, typer.Option(
        help="Collect and learn in this process with an in-memory buffer (the reference "
        "loop, for comparison); no service needed.")] = False,
    env_id: Annotated[str, typer.Option("--env", envvar="REPLAY_ENV",
                                        help="Gymnasium environment id.")] = "CartPole-v1",
    seed: Annotated[int, typer.Option(envvar="REPLAY_SEED")] = 0,
    total_env_steps: Annotated[int, typer.Option(
        envvar="REPLAY_TOTAL_ENV_STEPS", min=1, help="Budget of inserted transitions.")
    ] = 100_000,
    double_dqn: Annotated[bool, typer.Option(envvar="REPLAY_DOUBLE_DQN")] = True,
    prioritized: Annotated[bool, typer.Option(
        envvar="REPLAY_PRIORITIZED", help="Prioritized replay (the trainer creates the buffer "
        "with priorities and updates them after each round).")] = False,
    n_step: Annotated[int, typer.Option(
        envvar="REPLAY_N_STEP", min=1, help="n-step returns: collectors need the same "
        "--n-step.")] = 1,
    learning_rate: Annotated[float, typer.Option(envvar="REPLAY_LEARNING_RATE")] = 2.3e-3,
    batch_size: Annotated[int, typer.Option(envvar="REPLAY_BATCH_SIZE", min=1)] = 64,
    capacity: Annotated[int, typer.Option(
        envvar="REPLAY_CAPACITY", min=1, help="Capacity of the buffer the trainer creates "
        "(collectors wait for it).")] = 100_000,
    gradient_steps: Annotated[int, typer.Option(
        envvar="REPLAY_GRADIENT_STEPS", min=1,
        help="Minibatches per round, fetched in one request.")] = 128,
    learning_starts: Annotated[int, typer.Option(envvar="REPLAY_LEARNING_STARTS", min=0)
                               ] = 1_000,
    eval_interval: Annotated[int, typer.Option(
        envvar="REPLAY_EVAL_INTERVAL", min=1, help="Env steps between greedy evaluations.")
    ] = 2_048,
    solve_threshold: Annotated[float, typer.Option(
        envvar="REPLAY_SOLVE_THRESHOLD",
        help="Mean greedy return that counts as solved (475 for CartPole-v1).")] = 475.0,
    log_dir: Annotated[Path, typer.Option(
        envvar="REPLAY_LOG_DIR", help="TensorBoard logs, checkpoints, the curve.")
    ] = Path("runs"),
    device: Annotated[str, typer.Option(envvar="REPLAY_DEVICE",
                                        help="auto (CUDA when available), cpu, cuda:0...")
                      ] = "auto",
    progress: Annotated[bool, typer.Option(envvar="REPLAY_PROGRESS", help="Show a progress bar.")
                        ] = True,
) -> None:
    """Train a DQN on what collectors store.

    It trains until the greedy policy is solved or the step budget runs out: Double DQN
    with a target network, Huber loss and Adam; collectors act epsilon-greedily, paced
    by the trainer. Other hyperparameters keep the rl-baselines3-zoo CartPole-v1 values
    (see trainer/config.py)."""
    setup_logging()
    stop_cleanly_on_signals()
    # Imported here: torch loads in seconds, and other commands do not need it.
    from replay_service.cli.report import describe
    from replay_service.trainer.config import TrainConfig

    config = TrainConfig(env_id=env_id, seed=seed, total_env_steps=total_env_steps,
                         double_dqn=double_dqn, prioritized=prioritized, n_step=n_step,
                         learning_rate=learning_rate, buffer_size=capacity,
                         batch_size=batch_size, gradient_steps=gradient_steps,
                         learning_starts=learning_starts, eval_interval=eval_interval,
                         solve_threshold=solve_threshold, log_dir=str(log_dir), device=device)
    started = time.perf_counter()
    if in_process:
        if prioritized or n_step > 1:
            raise typer.BadParameter("the in-process reference loop has neither prioritized "
                                     "replay nor n-step returns", param_hint="--in-process")
        from replay_service.trainer.reference import confirm
        from replay_service.trainer.reference import train as train_in_process

        result = train_in_process(config)
        if result.checkpoint is not None:
            result.confirm_mean_return = float(confirm(result.checkpoint, config).mean())
    else:
        from replay_service.trainer.service_loop import train_from_service

        result = train_from_service(config, url, buffer, progress=progress, api_key=api_key)
    typer.echo("\n" + describe(result, config, time.perf_counter() - started))
    if not result.solved:
        raise typer.Exit(1)
