"""The exploration schedule: epsilon as a function of env steps, shared by every actor.

It depends on env steps, not on gradient steps or wall time, so the reference loop and
collectors of the distributed trainer explore alike for the same amount of experience.
"""

from __future__ import annotations

from replay_service.trainer.config import TrainConfig

__all__ = ["epsilon_at", "linear_schedule"]


def linear_schedule(start: float, end: float, duration: int, t: int) -> float:
    """`start` at t=0, moving linearly to `end` at t=duration, then `end` for ever."""
    if duration <= 0:
        return end
    return start + (end - start) * min(t / duration, 1.0)


def epsilon_at(config: TrainConfig, env_steps: int) -> float:
    """Epsilon of epsilon-greedy after `env_steps` env steps (SB3's linear decay)."""
    return linear_schedule(config.exploration_initial_eps, config.exploration_final_eps,
                           config.exploration_steps, env_steps)
