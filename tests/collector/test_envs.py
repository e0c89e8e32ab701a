"""The environments collectors step: real ALE games, preprocessed as the DQN literature does."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from replay_service.client.collector.envs import is_atari, is_image, make_env, make_vector_env
from replay_service.client.collector.loop import transition_schema

FRAMES = (4, 84, 84)


def test_pong_gives_stacked_84x84_grayscale_frames_4_emulator_frames_per_step() -> None:
    envs = make_vector_env("ALE/Pong-v5", 2)
    assert envs.single_observation_space.shape == FRAMES
    assert envs.single_observation_space.dtype == np.uint8
    obs, info = envs.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(300):
        frame = info["episode_frame_number"]
        next_obs, _, terminated, truncated, info = envs.step(rng.integers(6, size=2))
        assert next_obs.shape == (2, *FRAMES) and next_obs.dtype == np.uint8
        assert not (terminated | truncated).any()  # a random Pong game lasts longer
        np.testing.assert_array_equal(info["episode_frame_number"] - frame, [4, 4])
        # The stack moves on by one frame: the newest three become the oldest three.
        np.testing.assert_array_equal(next_obs[:, :3], obs[:, 1:])
        obs = next_obs
    assert obs.std() > 0, "the frames show the game"
    envs.close()


def test_each_reset_starts_after_up_to_30_no_ops_with_sticky_actions_kept() -> None:
    env = make_env("ALE/Pong-v5")
    starts = {env.reset(seed=seed)[1]["episode_frame_number"] for seed in range(8)}
    assert len(starts) > 1 and all(1 <= start <= 30 for start in starts)
    assert env.unwrapped.ale.getFloat("repeat_action_probability") == 0.25  # type: ignore[attr-defined]
    env.close()


def test_breakout_ends_at_game_over_not_at_a_lost_life() -> None:
    envs = make_vector_env("ALE/Breakout-v5", 1)
    _, info = envs.reset(seed=1)
    lives = [int(info["lives"][0])]
    rng = np.random.default_rng(1)
    for _ in range(2_000):
        next_obs, _, terminated, truncated, info = envs.step(rng.integers(4, size=1))
        if terminated[0] or truncated[0]:
            break
        lives.append(int(info["lives"][0]))
    assert terminated[0] and not truncated[0]
    assert lives[0] == 5 and lives[-1] == 1, "lives were lost along the way, not ending it"
    # SAME_STEP autoreset: the game's last frames come in final_obs, a new game in next_obs,
    # whose stack is the first frame repeated.
    assert info["final_obs"][0].shape == FRAMES and info["final_obs"][0].dtype == np.uint8
    assert (next_obs[0] == next_obs[0][:1]).all()
    envs.close()


def test_other_environments_are_made_as_gymnasium_makes_them() -> None:
    assert not is_atari("CartPole-v1")
    assert make_env("CartPole-v1").observation_space.shape == (4,)
    assert is_atari("ALE/Pong-v5") and is_atari("PongNoFrameskip-v4")


def test_image_observations_are_stored_compressed_flat_ones_not() -> None:
    pong = make_env("ALE/Pong-v5").observation_space
    assert is_image(pong)
    fields = transition_schema(pong).fields
    assert fields["obs"].compression == fields["next_obs"].compression == "zstd"
    assert fields["obs"].shape == list(FRAMES) and fields["obs"].dtype == "uint8"
    assert fields["action"].compression is None

    cartpole = make_env("CartPole-v1").observation_space
    assert not is_image(cartpole)
    assert transition_schema(cartpole).fields["obs"].compression is None


def test_an_unknown_environment_fails_as_gymnasium_says() -> None:
    with pytest.raises(gym.error.NameNotFound):
        make_env("NoSuchGame-v0")
