"""Small factories for transitions and bodies, shared by the service tests."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np

from replay_service.wire.codec import (
    INDICES_TENSOR,
    SAFETENSORS,
    decode_safetensors,
    encode_safetensors,
)

# CartPole's transition plus `id`, a unique number per transition, so that a test
# can tell exactly which transitions the buffer holds.
TRACKED_SCHEMA: dict[str, Any] = {
    "fields": {
        "id": {"dtype": "int64", "shape": []},
        "obs": {"dtype": "float32", "shape": [4]},
        "action": {"dtype": "int64", "shape": []},
        "reward": {"dtype": "float32", "shape": []},
        "next_obs": {"dtype": "float32", "shape": [4]},
        "done": {"dtype": "bool", "shape": []},
    }
}


def tracked_columns(ids: np.ndarray | range, seed: int = 0) -> dict[str, np.ndarray]:
    ids = np.asarray(ids, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return {
        "id": ids,
        "obs": rng.standard_normal((len(ids), 4)).astype(np.float32),
        "action": rng.integers(0, 2, len(ids)).astype(np.int64),
        "reward": rng.standard_normal(len(ids)).astype(np.float32),
        "next_obs": rng.standard_normal((len(ids), 4)).astype(np.float32),
        "done": rng.random(len(ids)) < 0.1,
    }


def create(http: httpx.Client, name: str, capacity: int, schema: dict[str, Any] | None = None
           ) -> httpx.Response:
    body: dict[str, Any] = {"capacity": capacity}
    if schema is not None:
        body["schema"] = schema
    response = http.put(f"/buffers/{name}", json=body)
    assert response.status_code in (200, 201), response.text
    return response


def store_binary(http: httpx.Client, name: str, columns: dict[str, np.ndarray]
                 ) -> httpx.Response:
    return http.post(f"/buffers/{name}/transitions", content=encode_safetensors(columns),
                     headers={"content-type": SAFETENSORS})


def store_json(http: httpx.Client, name: str, columns: dict[str, np.ndarray]) -> httpx.Response:
    return http.post(f"/buffers/{name}/transitions",
                     json={"columns": {key: value.tolist() for key, value in columns.items()}})


def read_all(http: httpx.Client, name: str) -> dict[str, np.ndarray]:
    """Every stored transition, once each: a sample without replacement of the whole size."""
    size = http.get(f"/buffers/{name}/size").json()["size"]
    response = http.get(f"/buffers/{name}/sample", params={"batch_size": size, "replace": False},
                        headers={"accept": SAFETENSORS})
    assert response.status_code == 200, response.text
    columns = dict(decode_safetensors(response.content).columns)
    columns["slot"] = columns.pop(INDICES_TENSOR)
    return columns


def counters(http: httpx.Client, name: str) -> dict[str, int]:
    response = http.get(f"/buffers/{name}/size")
    assert response.status_code == 200, response.text
    result: dict[str, int] = response.json()
    return result
