"""Per-environment hyperparameters: rl-baselines3-zoo's DQN entries restated in rounds,
taken as defaults by `replay train`, `replay demo` and `replay collect`, and overridden
by any option given."""

from __future__ import annotations

import ast
import dataclasses
import os
import subprocess

import pytest

from replay_service.cli.children import REPLAY
from replay_service.trainer.config import TrainConfig
from replay_service.trainer.presets import preset, zoo
from tests.support import REPO


def shown(*args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    """The settings `replay <args> --show-config` prints, as Python values."""
    done = subprocess.run([*REPLAY, *args, "--show-config"], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stdout + done.stderr
    pairs = (line.split(" = ", 1) for line in done.stdout.splitlines())
    return {name: ast.literal_eval(value) for name, value in pairs}


def test_the_zoo_cartpole_entry_restated_in_rounds_is_the_trainers_default() -> None:
    cartpole = zoo(n_timesteps=5e4, learning_rate=2.3e-3, batch_size=64, buffer_size=100_000,
                   learning_starts=1_000, target_update_interval=10, train_freq=256,
                   gradient_steps=128, exploration_fraction=0.16, exploration_final_eps=0.04)
    defaults = dataclasses.asdict(TrainConfig())
    assert {name: defaults[name] for name in cartpole} == {**cartpole,
                                                           "total_env_steps": 100_000}
    assert preset("CartPole-v1") == {}


@pytest.mark.parametrize(("env_id", "expected"), [
    # train_freq 4 with gradient_steps -1: one gradient step per env step; the target
    # every 250 env steps: every round of 256; learning_starts 0: after the first round.
    ("Acrobot-v1", {"total_env_steps": 100_000, "learning_rate": 6.3e-4, "batch_size": 128,
                    "buffer_size": 50_000, "learning_starts": 256, "gradient_steps": 256,
                    "gradient_steps_per_transition": 1.0, "target_sync_rounds": 1,
                    "exploration_fraction": 0.12, "exploration_final_eps": 0.1,
                    "solve_threshold": -100.0}),
    # 8 gradient steps every 16 env steps; the target every 600 env steps: 2 rounds.
    ("MountainCar-v0", {"total_env_steps": 120_000, "learning_rate": 4e-3, "batch_size": 128,
                        "buffer_size": 10_000, "learning_starts": 1_000, "gamma": 0.98,
                        "gradient_steps": 128, "gradient_steps_per_transition": 0.5,
                        "target_sync_rounds": 2, "exploration_fraction": 0.2,
                        "exploration_final_eps": 0.07, "solve_threshold": -110.0}),
    ("LunarLander-v3", {"total_env_steps": 100_000, "learning_rate": 6.3e-4,
                        "gradient_steps": 256, "target_sync_rounds": 1,
                        "solve_threshold": 200.0}),
    # 1 gradient step every 4 env steps; the target every 1,000 env steps: 4 rounds.
    ("ALE/Pong-v5", {"total_env_steps": 10_000_000, "learning_rate": 1e-4, "batch_size": 32,
                     "buffer_size": 10_000, "learning_starts": 100_000, "gradient_steps": 64,
                     "gradient_steps_per_transition": 0.25, "target_sync_rounds": 4,
                     "exploration_fraction": 0.1, "exploration_final_eps": 0.01,
                     "solve_threshold": 18.0}),
])
def test_replay_train_starts_from_the_envs_zoo_entry(env_id: str,
                                                     expected: dict[str, object]) -> None:
    config = shown("train", "--env", env_id)
    assert config["env_id"] == env_id
    assert {name: config[name] for name in expected} == expected
    assert config["net_arch"] == (256, 256) and config["max_grad_norm"] == 10.0


def test_an_option_given_wins_over_the_preset() -> None:
    config = shown("train", "--env", "MountainCar-v0", "--batch-size", "32",
                   "--learning-starts", "500", env={"REPLAY_LEARNING_RATE": "0.01"})
    assert (config["batch_size"], config["learning_starts"], config["learning_rate"]) == (
        32, 500, 0.01)
    assert config["gamma"] == 0.98 and config["buffer_size"] == 10_000  # the rest: preset


def test_replay_demo_takes_the_same_preset() -> None:
    config = shown("demo", "--env", "Acrobot-v1", "--total-env-steps", "150000")
    assert config["solve_threshold"] == -100.0 and config["gradient_steps"] == 256
    assert config["total_env_steps"] == 150_000


def test_replay_demo_and_train_take_a_time_limit_and_demo_the_pace_of_a_short_run() -> None:
    config = shown("demo", "--env", "ALE/Pong-v5", "--max-minutes", "30",
                   "--learning-starts", "10000", "--eval-interval", "25000")
    assert (config["max_minutes"], config["learning_starts"], config["eval_interval"]) == (
        30.0, 10_000, 25_000)
    assert shown("train", "--env", "Acrobot-v1")["max_minutes"] is None
    assert shown("train", "--max-minutes", "1.5")["max_minutes"] == 1.5


def test_replay_collect_warms_up_and_discounts_as_the_envs_trainer() -> None:
    mountain_car = shown("collect", "--env", "MountainCar-v0")
    assert (mountain_car["warmup_steps"], mountain_car["gamma"]) == (1_000, 0.98)
    pong = shown("collect", "--env", "ALE/Pong-v5", "--gamma", "0.9", "--num-collectors", "2")
    assert (pong["warmup_steps"], pong["gamma"]) == (100_000, 0.9)


def test_any_atari_game_gets_the_atari_entry_and_trains_to_its_budget() -> None:
    breakout = preset("ALE/Breakout-v5")
    assert breakout["learning_rate"] == 1e-4 and breakout["solve_threshold"] == float("inf")
    assert preset("BreakoutNoFrameskip-v4")["gradient_steps"] == 64
    assert preset("Pendulum-v1") == {}  # no preset: TrainConfig's defaults
