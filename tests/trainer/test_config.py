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
