from __future__ import annotations

import pytest

from trainer.config import TrainConfig, parse_config


def test_defaults_train_every_256_env_steps() -> None:
    config = TrainConfig()
    assert config.env_steps_per_round == 256
    assert config.exploration_steps == 16_000


def test_parse_config_reads_flags() -> None:
    config = parse_config(["--seed", "3", "--double-dqn", "--net-arch", "64", "64",
                           "--log-dir", "none", "--learning-rate", "1e-3"])
    assert config == TrainConfig(seed=3, double_dqn=True, net_arch=(64, 64), log_dir=None,
                                 learning_rate=1e-3)


def test_parse_config_help_shows_field_docs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_config(["--help"])
    assert "Pick the next action with the online net" in capsys.readouterr().out


def test_rejects_round_shorter_than_one_env_step() -> None:
    with pytest.raises(ValueError, match="fewer than one step"):
        TrainConfig(gradient_steps=4, gradient_steps_per_transition=2.0, num_envs=4)
