from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from replay_service.trainer.config import TrainConfig
from replay_service.trainer.reference import confirm, final_observations, train


def test_final_observations_replace_reset_obs_at_truncation() -> None:
    envs = gym.make_vec("CartPole-v1", num_envs=1, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
                        max_episode_steps=5)
    single = gym.make("CartPole-v1")
    obs, _ = envs.reset(seed=3)
    single.reset(seed=3)
    for step in range(5):
        next_obs, _, terminated, truncated, infos = envs.step(np.array([step % 2]))
        expected, *_ = single.step(step % 2)
        np.testing.assert_array_equal(final_observations(next_obs, infos)[0], expected)
    assert truncated[0] and not terminated[0]
    assert not np.array_equal(next_obs[0], expected)  # the vector env already reset
    envs.close()
    single.close()


@pytest.mark.slow
def test_reference_loop_runs_and_saves_a_checkpoint(tmp_path: Path) -> None:
    config = TrainConfig(total_env_steps=1_024, learning_starts=256, gradient_steps=16,
                         gradient_steps_per_transition=0.125, eval_interval=512,
                         eval_episodes=2, confirm_episodes=2, net_arch=(32, 32),
                         log_dir=str(tmp_path))
    result = train(config)
    assert result.env_steps == 1_024 and not result.solved
    # Rounds of 128 env steps; training in those ending after learning_starts: 384 ... 1024.
    assert result.gradient_steps == 16 * 6
    assert [record.env_steps for record in result.evals] == [512, 1024]
    assert result.checkpoint is not None and Path(result.checkpoint).exists()
    assert confirm(result.checkpoint, config).shape == (2,)
    assert result.run_dir is not None
