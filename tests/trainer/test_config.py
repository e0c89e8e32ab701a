from __future__ import annotations

import pytest

from replay_service.trainer.config import TrainConfig


def test_defaults_train_every_256_env_steps() -> None:
    config = TrainConfig()
    assert config.env_steps_per_round == 256
    assert config.exploration_steps == 16_000


def test_rejects_round_shorter_than_one_env_step() -> None:
    with pytest.raises(ValueError, match="fewer than one step"):
        TrainConfig(gradient_steps=4, gradient_steps_per_transition=2.0, num_envs=4)


def test_a_run_is_out_of_budget_at_its_steps_or_its_time_limit() -> None:
    unbounded = TrainConfig(total_env_steps=1_000)
    assert not unbounded.out_of_budget(999, elapsed_s=1e9)
    assert unbounded.out_of_budget(1_000, elapsed_s=0.0)
    bounded = TrainConfig(total_env_steps=1_000, max_minutes=0.5)
    assert not bounded.out_of_budget(10, elapsed_s=29.9)
    assert bounded.out_of_budget(10, elapsed_s=30.0)


def test_rejects_a_time_limit_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="max_minutes"):
        TrainConfig(max_minutes=0.0)
