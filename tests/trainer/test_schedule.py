from __future__ import annotations

import pytest

from replay_service.trainer.config import TrainConfig
from replay_service.trainer.schedule import epsilon_at, linear_schedule


def test_epsilon_endpoints() -> None:
    config = TrainConfig(total_env_steps=100_000, exploration_fraction=0.16,
                         exploration_initial_eps=1.0, exploration_final_eps=0.04)
    assert epsilon_at(config, 0) == 1.0
    assert epsilon_at(config, 8_000) == pytest.approx(0.52)
    assert epsilon_at(config, 16_000) == pytest.approx(0.04)
    assert epsilon_at(config, 100_000) == pytest.approx(0.04)


def test_linear_schedule_zero_duration_is_the_end_value() -> None:
    assert linear_schedule(1.0, 0.1, 0, 0) == 0.1
