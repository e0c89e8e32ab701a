"""Hyperparameters per environment: rl-baselines3-zoo's DQN settings, restated in rounds.

`replay train`, `replay demo` and `replay collect` start from the preset of their
`--env`; any option given on the command line (or through its environment
variable) wins over it. The values are the zoo's `hyperparams/dqn.yml`
(DLR-RM/rl-baselines3-zoo at commit ce95481b041fe5314c1b2f1a53940d169b9253fc, the
version whose CartPole-v1 entry `TrainConfig`'s defaults already follow; it lists
LunarLander as -v2, whose settings gymnasium 1.x's LunarLander-v3 takes here).

The zoo counts in SB3's terms: `gradient_steps` every `train_freq` env steps (-1:
as many as the env steps of that rollout) and a target copied every
`target_update_interval` env steps. This trainer trains in rounds (see
`TrainConfig`), so `zoo()` restates them the way CartPole-v1 was restated:

- the ratio of gradient steps per transition is gradient_steps / train_freq;
- a round follows every 256 env steps (the zoo's train_freq where that is longer)
  and makes 256 x ratio gradient steps: one HTTP request of minibatches;
- the target is copied every round(target_update_interval / 256) rounds, at least 1;
- learning starts after at least one round of experience, since a round trains on
  experience already collected (the zoo's learning_starts 0 trains SB3 from its
  first few transitions).

The zoo's Atari entry also sets optimize_memory_usage (SB3 keeps each frame once);
here that is the replay service's concern, not a hyperparameter. The SB3 defaults
the zoo leaves unset (Huber loss, max_grad_norm 10, gamma 0.99) are `TrainConfig`'s
too; unlike SB3's DQN, Double DQN is on (see `TrainConfig.double_dqn`).

No torch here: `replay collect` reads its warm-up and gamma from the presets.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from replay_service.client.collector.envs import is_atari
from replay_service.trainer.config import TrainConfig

__all__ = ["preset", "train_config", "zoo"]

ROUND_ENV_STEPS = 256
"""Env steps per training round, unless the zoo trains less often."""

Fields = dict[str, Any]
"""`TrainConfig` field values by name."""


def zoo(*, n_timesteps: float, learning_rate: float, batch_size: int, buffer_size: int,
        learning_starts: int, target_update_interval: int, train_freq: int,
        gradient_steps: int, exploration_fraction: float, exploration_final_eps: float,
        gamma: float = 0.99, net_arch: tuple[int, ...] = (256, 256)) -> Fields:
    """`TrainConfig` fields from an entry of the zoo's dqn.yml, in its own names."""
    env_steps_per_round = max(ROUND_ENV_STEPS, train_freq)
    per_transition = (train_freq if gradient_steps == -1 else gradient_steps) / train_freq
    return {
        "total_env_steps": int(n_timesteps), "learning_rate": learning_rate,
        "batch_size": batch_size, "buffer_size": buffer_size, "gamma": gamma,
        "learning_starts": max(learning_starts, env_steps_per_round),
        "gradient_steps": round(env_steps_per_round * per_transition),
        "gradient_steps_per_transition": per_transition,
        "target_sync_rounds": max(1, round(target_update_interval / env_steps_per_round)),
        "exploration_fraction": exploration_fraction,
        "exploration_final_eps": exploration_final_eps, "net_arch": net_arch,
    }


# The zoo tunes Acrobot-v1 and LunarLander alike.
_ACROBOT_LUNAR = zoo(n_timesteps=1e5, learning_rate=6.3e-4, batch_size=128, buffer_size=50_000,
                     learning_starts=0, target_update_interval=250, train_freq=4,
                     gradient_steps=-1, exploration_fraction=0.12, exploration_final_eps=0.1)

_PRESETS: dict[str, Fields] = {
    # TrainConfig's defaults are the zoo's CartPole-v1 entry, with twice its 5e4 budget.
    "CartPole-v1": {},
    "Acrobot-v1": {**_ACROBOT_LUNAR, "solve_threshold": -100.0},
    "MountainCar-v0": {
        **zoo(n_timesteps=1.2e5, learning_rate=4e-3, batch_size=128, buffer_size=10_000,
              learning_starts=1_000, gamma=0.98, target_update_interval=600, train_freq=16,
              gradient_steps=8, exploration_fraction=0.2, exploration_final_eps=0.07),
        "solve_threshold": -110.0},
    "LunarLander-v3": {**_ACROBOT_LUNAR, "solve_threshold": 200.0},
}

_ATARI: Fields = {
    **zoo(n_timesteps=1e7, learning_rate=1e-4, batch_size=32, buffer_size=10_000,
          learning_starts=100_000, target_update_interval=1_000, train_freq=4,
          gradient_steps=1, exploration_fraction=0.1, exploration_final_eps=0.01),
    # Not the zoo's: a greedy Pong episode is thousands of steps, so evaluate less often
    # and on fewer episodes than for classic control.
    "eval_interval": 50_000, "eval_episodes": 10,
}
_ATARI_SOLVED = {"ALE/Pong-v5": 18.0}
"""Mean greedy return that counts as solved; other games train to their budget."""


def preset(env_id: str) -> Fields:
    """The `TrainConfig` fields that differ from its defaults for `env_id`: its zoo
    entry, the zoo's Atari entry for any ALE game, none for other environments."""
    if env_id in _PRESETS:
        return dict(_PRESETS[env_id])
    if is_atari(env_id):
        return {**_ATARI, "solve_threshold": _ATARI_SOLVED.get(env_id, float("inf"))}
    return {}


def train_config(env_id: str, **options: object) -> TrainConfig:
    """The configuration of a run on `env_id`: its preset, under every option that is
    not None (the ones given on the command line)."""
    given = {name: value for name, value in options.items() if value is not None}
    return dataclasses.replace(TrainConfig(env_id=env_id), **{**preset(env_id), **given})
