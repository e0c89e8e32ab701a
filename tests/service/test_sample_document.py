"""The OpenAPI document describes the sample answers the service really gives."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema_rs  # installed with schemathesis, the fuzz suite's dependency
import numpy as np
import pytest

from replay_service.wire.codec import SAFETENSORS, encode_safetensors

SCHEMA = {"fields": {"id": {"dtype": "int64"}, "obs": {"dtype": "float32", "shape": [2]}}}


def sample_schema(http: httpx.Client) -> dict[str, Any]:
    """The 200 answer of GET /buffers/{name}/sample as the document gives it, with the
    document's components so that its references resolve."""
    document = http.get("/openapi.json").json()
    answer = document["paths"]["/buffers/{name}/sample"]["get"]["responses"]["200"]
    return {**answer["content"]["application/json"]["schema"],
            "components": document["components"]}


def resolved(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


@pytest.mark.parametrize("prioritized", [True, False])
@pytest.mark.parametrize("num_batches", [None, 3])
def test_sample_answers_validate_against_the_document(http: httpx.Client, buffer_name: str,
                                                      prioritized: bool,
                                                      num_batches: int | None) -> None:
    body: dict[str, Any] = {"capacity": 20, "schema": SCHEMA}
    if prioritized:
        body["prioritized"] = {"alpha": 0.6}
    assert http.put(f"/buffers/{buffer_name}", json=body).status_code == 201
    columns = {"id": np.arange(20, dtype=np.int64), "obs": np.ones((20, 2), np.float32)}
    http.post(f"/buffers/{buffer_name}/transitions", content=encode_safetensors(columns),
              headers={"content-type": SAFETENSORS})
    params = {"batch_size": 4} | ({"num_batches": num_batches} if num_batches else {})
    reply = http.get(f"/buffers/{buffer_name}/sample", params=params)
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert {"weights", "inserted"} <= set(answer) or not prioritized

    schema = sample_schema(http)
    # Every key of the answer is described, not merely tolerated.
    assert set(answer) <= set(resolved(schema, schema)["properties"])
    jsonschema_rs.validator_for(schema).validate(answer)
