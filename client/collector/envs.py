"""The environments DQN runs on, made one way for collectors, trainers and evaluation.

Atari games get the standard preprocessing of the DQN literature (Mnih et al. 2015,
Machado et al. 2018), so what a collector stores, what the trainer learns from and
what an evaluation scores are the same observations: 84x84 grayscale frames, 4
emulator frames per action, 4 frames stacked channel-first ([4, 84, 84] uint8, the
layout torch convolutions take and the one that compresses best), up to 30 no-op
actions at reset, and an episode that ends at game over, not at a lost life.
ALE's v5 sticky actions (repeat_action_probability 0.25) are kept. Every other
environment is used as gymnasium makes it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["FRAME_STACK", "is_atari", "is_image", "make_env", "make_vector_env"]

FRAME_STACK = 4
"""Frames per observation of an Atari game."""

_ALE_ENTRY_POINT = "ale_py.env:AtariEnv"


@cache
def _register_atari() -> bool:
    """Register ALE's games with gymnasium once; False where ale-py is not installed."""
    try:
        import ale_py
    except ImportError:
        return False
    gym.register_envs(ale_py)
    return True


def is_atari(env_id: str) -> bool:
    """Whether `env_id` is an ALE game (`ALE/Pong-v5`, and ALE's older ids such as
    `PongNoFrameskip-v4`); ALE registers its games on first use, if installed."""
    if env_id not in gym.registry and not _register_atari() and env_id.startswith("ALE/"):
        raise gym.error.DependencyNotInstalled(
            f"{env_id} needs ale-py and opencv: pip install 'replay-service[atari]'")
    spec = gym.registry.get(env_id)
    return spec is not None and spec.entry_point == _ALE_ENTRY_POINT


def is_image(space: gym.Space[np.ndarray]) -> bool:
    """Image observations: uint8 arrays of two dimensions or more. They get the
    convolutional network and are stored compressed."""
    return (isinstance(space, gym.spaces.Box) and space.dtype == np.uint8
            and len(space.shape) >= 2)


def make_env(env_id: str) -> gym.Env[np.ndarray, Any]:
    """One environment, Atari games preprocessed (see the module's docstring)."""
    if not is_atari(env_id):
        return gym.make(env_id)
    # AtariPreprocessing skips frames itself (max-pooling the last two), so ALE's own
    # frame skip is off; ALE ends the episode at game over, the wrapper adds no-op starts.
    env = gym.make(env_id, frameskip=1)
    env = gym.wrappers.AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84,
                                          terminal_on_life_loss=False, grayscale_obs=True)
    return gym.wrappers.FrameStackObservation(env, FRAME_STACK)


def make_vector_env(env_id: str, num_envs: int,
                    autoreset_mode: gym.vector.AutoresetMode = gym.vector.AutoresetMode.SAME_STEP
                    ) -> gym.vector.SyncVectorEnv:
    """`num_envs` environments stepped together, checked to suit DQN (Box observations,
    Discrete actions).

    SAME_STEP (collectors, the reference loop) resets a finished sub-env in the same step
    and hands its last observation over in info["final_obs"], so every stored next_obs
    is real; evaluation counts only first episodes and uses NEXT_STEP.
    """
    envs = gym.vector.SyncVectorEnv([lambda: make_env(env_id)] * num_envs,
                                    autoreset_mode=autoreset_mode)
    if not isinstance(envs.single_observation_space, gym.spaces.Box):
        envs.close()
        raise ValueError(f"{env_id}: observations must be a Box, not "
                         f"{envs.single_observation_space}")
    if not isinstance(envs.single_action_space, gym.spaces.Discrete):
        envs.close()
        raise ValueError(f"{env_id}: actions must be Discrete (DQN), not "
                         f"{envs.single_action_space}")
    return envs
