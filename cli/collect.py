"""`replay collect`: run gymnasium environments and store their experience."""

from __future__ import annotations

import logging
import subprocess
from typing import Annotated

import typer

from replay_service.cli.children import REPLAY
from replay_service.cli.logs import setup_logging
from replay_service.cli.show_config import show_config
from replay_service.cli.signals import stop_cleanly_on_signals

log = logging.getLogger("replay.collect")


def collect(
    url: Annotated[str, typer.Option(envvar="REPLAY_URL", help="The replay service.")] = (
        "http://127.0.0.1:8000"),
    buffer: Annotated[str, typer.Option(envvar="REPLAY_BUFFER", help="Buffer to fill.")] = (
        "cartpole"),
    env_id: Annotated[str, typer.Option("--env", envvar="REPLAY_ENV",
                                        help="Gymnasium environment id.")] = "CartPole-v1",
    num_envs: Annotated[int, typer.Option(envvar="REPLAY_NUM_ENVS", min=1,
                                          help="Environments per collector.")] = 4,
    num_collectors: Annotated[int, typer.Option(
        envvar="REPLAY_NUM_COLLECTORS", min=1,
        help="Collector processes to run from this command.")] = 1,
    seed: Annotated[int | None, typer.Option(
        envvar="REPLAY_SEED", help="Seed of the first collector (the next get seed+1, ...); "
        "left out, each draws its own.")] = None,
    capacity: Annotated[int | None, typer.Option(envvar="REPLAY_CAPACITY", min=1, help=(
        "Create the buffer with this capacity if it is missing; left out, wait for the "
        "trainer to create it."), show_default=False)] = None,
    warmup_steps: Annotated[int | None, typer.Option(envvar="REPLAY_WARMUP_STEPS", min=0, help=(
        "Random transitions to collect before the trainer's first weights. Default: the "
        "learning_starts of the env's preset (trainer/presets.py)."), show_default=False)
    ] = None,
    max_env_steps: Annotated[int | None, typer.Option(
        envvar="REPLAY_MAX_ENV_STEPS", help="Stop after this many env steps per collector "
        "(default: when the trainer says stop).")] = None,
    n_step: Annotated[int, typer.Option(envvar="REPLAY_N_STEP", min=1, help=(
        "Store n-step returns (must match the trainer's --n-step)."))] = 1,
    gamma: Annotated[float | None, typer.Option(envvar="REPLAY_GAMMA", help=(
        "Discount of the n-step returns (the trainer's gamma). Default: the env's preset."),
        show_default=False)] = None,
    api_key: Annotated[str | None, typer.Option(
        envvar="REPLAY_API_KEY", help="The service's write key, if it has one.",
        show_default=False)] = None,
    name: Annotated[str | None, typer.Option(
        envvar="REPLAY_COLLECTOR_NAME", help="Name episodes are reported under "
        "(default: host-pid).")] = None,
    show: Annotated[bool, typer.Option(
        "--show-config", help="Print the settings of one collector and exit.")] = False,
) -> None:
    """Run collectors: act, store transitions, report episodes.

    They act epsilon-greedily with the trainer's newest weights (at random before any),
    and wait while the buffer is as far ahead of training as the trainer allows. Atari
    games (ALE/Pong-v5, ...) get the standard preprocessing: 84x84 grayscale, 4 frames
    per action and 4 stacked."""
    setup_logging()
    if num_collectors > 1 and not show:
        options = {"--url": url, "--buffer": buffer, "--env": env_id, "--num-envs": num_envs,
                   "--capacity": capacity, "--warmup-steps": warmup_steps,
                   "--max-env-steps": max_env_steps, "--n-step": n_step, "--gamma": gamma}
        _run_processes([
            {**options, "--seed": None if seed is None else seed + index,
             "--name": f"{name}-{index}" if name else None} for index in range(num_collectors)])
        return

    # Imported here: gymnasium is in the collector extra, which the service image lacks.
    from replay_service.client.collector.loop import CollectorConfig, default_source, run_collector
    from replay_service.trainer.presets import train_config

    trainer = train_config(env_id)  # what the trainer of this env starts from
    config = CollectorConfig(
        url=url, buffer=buffer, env_id=env_id, num_envs=num_envs, seed=seed, capacity=capacity,
        warmup_steps=trainer.learning_starts if warmup_steps is None else warmup_steps,
        max_env_steps=max_env_steps, source=name or default_source(), api_key=api_key,
        n_step=n_step, gamma=trainer.gamma if gamma is None else gamma)
    if show:
        show_config(config)
    stop_cleanly_on_signals()
    try:
        run_collector(config)
    except KeyboardInterrupt:
        log.info("collector %s interrupted", config.source)


def _run_processes(option_sets: list[dict[str, object]]) -> None:
    """One `replay collect` process per option set; wait for all, stop all on Ctrl-C."""
    children = []
    for options in option_sets:
        args = [str(part) for option, value in options.items() if value is not None
                for part in (option, value)]
        children.append(subprocess.Popen([*REPLAY, "collect", *args]))
    try:
        codes = [child.wait() for child in children]
    except KeyboardInterrupt:
        for child in children:
            child.terminate()
        codes = [child.wait() for child in children]
    if any(code != 0 for code in codes):
        raise typer.Exit(1)
