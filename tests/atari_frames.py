"""Real preprocessed Atari frames for the tests of compressed buffers: random play of
ALE Pong through gymnasium's standard preprocessing (84x84 grayscale, frame skip 4,
frame stack 4), so compression sees what a collector would send."""

from __future__ import annotations

from functools import cache

import numpy as np

PONG_SCHEMA = {"fields": {
    "id": {"dtype": "int64"},
    "obs": {"dtype": "uint8", "shape": [4, 84, 84], "compression": "zstd"},
    "action": {"dtype": "int64"},
    "reward": {"dtype": "float32"},
    "next_obs": {"dtype": "uint8", "shape": [4, 84, 84], "compression": "zstd"},
    "done": {"dtype": "bool"},
}}


@cache
def pong_steps(count: int, seed: int = 0) -> dict[str, np.ndarray]:
    """`count` transitions of random play, with `id` 0 .. count - 1."""
    from replay_service.client.collector.envs import make_env

    env = make_env("ALE/Pong-v5")
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    columns: dict[str, list[np.ndarray]] = {name: [] for name in PONG_SCHEMA["fields"]}
    for step in range(count):
        action = env.action_space.sample()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        for name, value in (("id", step), ("obs", obs), ("action", action),
                            ("reward", reward), ("next_obs", next_obs), ("done", terminated)):
            columns[name].append(np.asarray(value))
        obs = env.reset()[0] if terminated or truncated else next_obs
    env.close()
    dtypes = {name: spec["dtype"] for name, spec in PONG_SCHEMA["fields"].items()}
    return {name: np.stack(values).astype(dtypes[name]) for name, values in columns.items()}


def pong_batch(ids: range) -> dict[str, np.ndarray]:
    """Transitions `ids` of one long random game (cycling through 600 real steps)."""
    steps = pong_steps(600)
    index = np.arange(ids.start, ids.stop) % 600
    batch = {name: column[index] for name, column in steps.items()}
    batch["id"] = np.arange(ids.start, ids.stop, dtype=np.int64)
    return batch
