"""`replay train`: train a DQN on what collectors store in the service (or, for comparison,
the same learner in one process with an in-memory buffer)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from replay_service.cli.logs import setup_logging
from replay_service.cli.show_config import show_config
from replay_service.cli.signals import stop_cleanly_on_signals

PRESET = "Default: the env's preset (trainer/presets.py)."


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
    total_env_steps: Annotated[int | None, typer.Option(
        envvar="REPLAY_TOTAL_ENV_STEPS", min=1,
        help=f"Budget of inserted transitions. {PRESET}", show_default=False)] = None,
    max_minutes: Annotated[float | None, typer.Option(
        envvar="REPLAY_MAX_MINUTES", help="Time limit of training, in minutes: ends the run "
        "as the step budget does. Default: none.", show_default=False)] = None,
    double_dqn: Annotated[bool, typer.Option(envvar="REPLAY_DOUBLE_DQN")] = True,
    prioritized: Annotated[bool, typer.Option(
        envvar="REPLAY_PRIORITIZED", help="Prioritized replay (the trainer creates the buffer "
        "with priorities and updates them after each round).")] = False,
    n_step: Annotated[int, typer.Option(
        envvar="REPLAY_N_STEP", min=1, help="n-step returns: collectors need the same "
        "--n-step.")] = 1,
    learning_rate: Annotated[float | None, typer.Option(
        envvar="REPLAY_LEARNING_RATE", help=PRESET, show_default=False)] = None,
    batch_size: Annotated[int | None, typer.Option(
        envvar="REPLAY_BATCH_SIZE", min=1, help=PRESET, show_default=False)] = None,
    capacity: Annotated[int | None, typer.Option(
        envvar="REPLAY_CAPACITY", min=1, help="Capacity of the buffer the trainer creates "
        f"(collectors wait for it). {PRESET}", show_default=False)] = None,
    shards: Annotated[int | None, typer.Option(
        envvar="REPLAY_SHARDS", min=1, help="Spread the buffer over this many rings: on a "
        "Redis Cluster, one per master, so it can outgrow one node. Default: one.",
        show_default=False)] = None,
    gradient_steps: Annotated[int | None, typer.Option(
        envvar="REPLAY_GRADIENT_STEPS", min=1,
        help=f"Minibatches per round, fetched in one request. {PRESET}", show_default=False)
    ] = None,
    learning_starts: Annotated[int | None, typer.Option(
        envvar="REPLAY_LEARNING_STARTS", min=0, help=PRESET, show_default=False)] = None,
    eval_interval: Annotated[int | None, typer.Option(
        envvar="REPLAY_EVAL_INTERVAL", min=1,
        help=f"Env steps between greedy evaluations. {PRESET}", show_default=False)] = None,
    solve_threshold: Annotated[float | None, typer.Option(
        envvar="REPLAY_SOLVE_THRESHOLD", help="Mean greedy return that counts as solved "
        f"(475 for CartPole-v1). {PRESET}", show_default=False)] = None,
    log_dir: Annotated[Path, typer.Option(
        envvar="REPLAY_LOG_DIR", help="TensorBoard logs, checkpoints, the curve.")
    ] = Path("runs"),
    device: Annotated[str, typer.Option(envvar="REPLAY_DEVICE",
                                        help="auto (CUDA when available), cpu, cuda:0...")
                      ] = "auto",
    progress: Annotated[bool, typer.Option(envvar="REPLAY_PROGRESS", help="Show a progress bar.")
                        ] = True,
    show: Annotated[bool, typer.Option(
        "--show-config", help="Print the hyperparameters this run would use and exit.")
    ] = False,
) -> None:
    """Train a DQN on what collectors store.

    It trains until the greedy policy is solved or the step budget runs out: Double DQN
    with a target network, Huber loss and Adam; collectors act epsilon-greedily, paced
    by the trainer. Hyperparameters not given here come from the env's preset:
    rl-baselines3-zoo's DQN settings for CartPole-v1, Acrobot-v1, MountainCar-v0,
    LunarLander-v3 and Atari games (see trainer/presets.py)."""
    setup_logging()
    stop_cleanly_on_signals()
    # Imported here: gymnasium and torch are extras that `replay serve` goes without,
    # and torch takes seconds to load.
    from replay_service.trainer.presets import train_config

    config = train_config(env_id, seed=seed, total_env_steps=total_env_steps,
                          max_minutes=max_minutes, double_dqn=double_dqn,
                          prioritized=prioritized, n_step=n_step,
                          learning_rate=learning_rate, buffer_size=capacity, shards=shards,
                          batch_size=batch_size, gradient_steps=gradient_steps,
                          learning_starts=learning_starts, eval_interval=eval_interval,
                          solve_threshold=solve_threshold, log_dir=str(log_dir), device=device)
    if show:
        show_config(config)
    from replay_service.cli.report import describe

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
