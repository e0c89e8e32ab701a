"""examples/js-collector, run with node against the real service: it stores CartPole
transitions of the buffer's schema, acting greedily with the weights it fetched."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from replay_service.wire.codec import SAFETENSORS, decode_safetensors, encode_safetensors
from tests.openapi.node import executable, run
from tests.support import ServiceProcess

COLLECTOR = Path(__file__).parents[2] / "examples" / "js-collector" / "collector.mjs"
STEPS, BATCH = 700, 128
DTYPES = {"obs": ("float32", [4]), "action": ("int64", []), "reward": ("float32", []),
          "next_obs": ("float32", [4]), "done": ("bool", [])}
THETA_LIMIT, X_LIMIT = 12 * 2 * np.pi / 360, 2.4


def q_network(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A random 4-16-2 MLP named as the trainer names its layers."""
    return {"layers.0.weight": rng.normal(size=(16, 4)).astype(np.float32),
            "layers.0.bias": rng.normal(size=16).astype(np.float32),
            "layers.2.weight": rng.normal(size=(2, 16)).astype(np.float32),
            "layers.2.bias": np.zeros(2, np.float32)}


def q_values(weights: dict[str, np.ndarray], obs: np.ndarray) -> np.ndarray:
    hidden = np.maximum(obs @ weights["layers.0.weight"].T + weights["layers.0.bias"], 0)
    q: np.ndarray = hidden @ weights["layers.2.weight"].T + weights["layers.2.bias"]
    return q


@pytest.fixture(scope="module")
def node() -> str:
    return executable("node")


def test_the_js_collector_stores_greedy_cartpole_transitions(
        node: str, http: httpx.Client, service: ServiceProcess, buffer_name: str,
        tmp_path: Path) -> None:
    weights = q_network(np.random.default_rng(7))
    assert http.put(f"/buffers/{buffer_name}", json={}).status_code == 201
    # epsilon 0: every action must be the network's greedy one
    published = http.put(f"/buffers/{buffer_name}/weights", headers={"content-type": SAFETENSORS},
                         content=encode_safetensors(weights, {
                             "epsilon": "0.0", "insert_limit": "1000000000", "stop": "0"}))
    assert published.status_code == 200, published.text

    ran = run([node, str(COLLECTOR), "--url", service.url, "--buffer", buffer_name,
               "--steps", str(STEPS), "--batch", str(BATCH), "--source", "js-test"],
              cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    seen = json.loads(ran.stdout.strip().splitlines()[-1])
    batches = -(-STEPS // BATCH)
    assert seen == {"stored": STEPS, "episodes": seen["episodes"], "fetched": 1,
                    "notModified": batches - 1, "version": 1}, seen

    info = http.get(f"/buffers/{buffer_name}").json()
    fields = info["schema"]["fields"]
    assert {name: (spec["dtype"], spec["shape"]) for name, spec in fields.items()} == DTYPES
    assert info["size"] == STEPS
    read = http.get(f"/buffers/{buffer_name}/transitions", params={"first": 0, "count": STEPS},
                    headers={"accept": SAFETENSORS})
    columns = decode_safetensors(read.content).columns
    obs, action, done = columns["obs"], columns["action"], columns["done"]
    next_obs = columns["next_obs"]

    assert set(np.unique(action)) <= {0, 1} and (columns["reward"] == 1.0).all()
    # every observation acted on is inside the track and the angle limit
    assert (np.abs(obs[:, 0]) <= X_LIMIT).all() and (np.abs(obs[:, 2]) <= THETA_LIMIT).all()
    # a terminal transition left the limits; a terminal one is never anything else
    left = (np.abs(next_obs[:, 0]) > X_LIMIT) | (np.abs(next_obs[:, 2]) > THETA_LIMIT)
    assert (done == left).all() and done.any()
    # one environment: each next_obs is the next obs, but where an episode ended
    episodes = http.get(f"/buffers/{buffer_name}/episodes").json()["episodes"]
    ends = np.cumsum([episode["length"] for episode in episodes]) - 1
    continues = np.ones(STEPS - 1, bool)
    continues[ends[ends < STEPS - 1]] = False
    assert np.array_equal(next_obs[:-1][continues], obs[1:][continues])
    assert (done[ends]).all() or any(e["length"] == 500 for e in episodes)
    assert len(episodes) == seen["episodes"] and {e["source"] for e in episodes} == {"js-test"}
    assert all(e["return"] == e["length"] for e in episodes)
    # greedy under the published network (ties within float rounding left out)
    q = q_values(weights, obs)
    clear = np.abs(q[:, 0] - q[:, 1]) > 1e-4
    assert np.array_equal(action[clear], q[clear].argmax(axis=1))
