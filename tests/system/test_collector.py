"""What a collector stores: real transitions, with termination and truncation told apart."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from replay_service.client.collector.loop import CollectorConfig, run_collector
from replay_service.wire.codec import INDICES_TENSOR, SAFETENSORS, decode_safetensors
from tests.support import ServiceProcess


def everything(service: ServiceProcess, name: str) -> dict[str, np.ndarray]:
    size = httpx.get(f"{service.url}/buffers/{name}/size").json()["size"]
    reply = httpx.get(f"{service.url}/buffers/{name}/sample",
                      params={"batch_size": size, "replace": False},
                      headers={"accept": SAFETENSORS})
    columns = dict(decode_safetensors(reply.content).columns)
    order = np.argsort(columns.pop(INDICES_TENSOR))
    return {key: value[order] for key, value in columns.items()}


def collect(service: ServiceProcess, name: str, env_id: str, steps: int) -> list[dict[str, float]]:
    run_collector(CollectorConfig(url=service.url, buffer=name, env_id=env_id, num_envs=1,
                                  seed=5, warmup_steps=10 * steps, steps_per_send=64,
                                  max_env_steps=steps, source="t", capacity=10_000))
    episodes: list[dict[str, float]] = httpx.get(
        f"{service.url}/buffers/{name}/episodes").json()["episodes"]
    return episodes


def test_terminal_transitions_are_done_and_end_in_the_terminal_state(
        service: ServiceProcess, buffer_name: str) -> None:
    episodes = collect(service, buffer_name, "CartPole-v1", 640)
    held = everything(service, buffer_name)
    # Random CartPole episodes all end by falling over, long before the time limit.
    assert held["done"].sum() == len(episodes) > 5
    terminal = held["next_obs"][held["done"]]
    fell = (np.abs(terminal[:, 0]) > 2.4) | (np.abs(terminal[:, 2]) > 0.2095)
    assert fell.all(), "next_obs of a terminal transition must be the terminal state"
    # Consecutive transitions chain up, except across an episode's end.
    chained = ~held["done"][:-1]
    np.testing.assert_array_equal(held["next_obs"][:-1][chained], held["obs"][1:][chained])
    assert held["reward"].dtype == np.float32 and held["action"].dtype == np.int64


def test_time_limit_truncation_is_not_done(service: ServiceProcess, buffer_name: str) -> None:
    # MountainCar's random walk never reaches the flag: every episode is cut at 200 steps.
    episodes = collect(service, buffer_name, "MountainCar-v0", 448)
    assert [episode["length"] for episode in episodes] == [200, 200]
    held = everything(service, buffer_name)
    assert not held["done"].any(), "a truncated transition must still bootstrap"
    # The cut transition's next_obs is the episode's last state, not the next reset.
    assert not np.array_equal(held["next_obs"][199], held["obs"][200])


@pytest.mark.parametrize(("env_id", "obs_dim"), [("Acrobot-v1", 6), ("MountainCar-v0", 2),
                                               ("LunarLander-v3", 8)])
def test_collectors_run_other_discrete_environments(service: ServiceProcess, buffer_name: str,
                                                    env_id: str, obs_dim: int) -> None:
    collect(service, buffer_name, env_id, 128)
    schema = httpx.get(f"{service.url}/buffers/{buffer_name}").json()["schema"]["fields"]
    assert schema["obs"] == {"dtype": "float32", "shape": [obs_dim], "allow_nonfinite": False}
    assert everything(service, buffer_name)["obs"].shape == (128, obs_dim)


def test_a_continuous_action_space_is_refused_with_a_clear_error(
        service: ServiceProcess, buffer_name: str) -> None:
    with pytest.raises(ValueError, match="actions must be Discrete"):
        collect(service, buffer_name, "Pendulum-v1", 64)
