"""Bad input gets a 4xx that names the field and the problem, and changes nothing."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest

from replay_service.wire.codec import SAFETENSORS, encode_safetensors
from tests.conftest import SERVICE_LIMITS
from tests.service.factories import TRACKED_SCHEMA, create, read_all, store_binary, tracked_columns


def json_row(**changes: Any) -> dict[str, Any]:
    row = {key: value[0].tolist() for key, value in tracked_columns([1000]).items()}
    row.update(changes)
    return {key: value for key, value in row.items() if value is not ...}


def binary(**changes: Any) -> bytes:
    columns = tracked_columns([1000, 1001])
    columns.update(changes)
    return encode_safetensors({key: value for key, value in columns.items() if value is not ...})


@dataclass
class Case:
    request: Callable[[httpx.Client, str], httpx.Response]
    status: int
    error: str
    field: str | None


def post_json(document: Any) -> Callable[[httpx.Client, str], httpx.Response]:
    return lambda http, name: http.post(f"/buffers/{name}/transitions", json=document)


def post_bytes(content: bytes, content_type: str = SAFETENSORS
               ) -> Callable[[httpx.Client, str], httpx.Response]:
    return lambda http, name: http.post(f"/buffers/{name}/transitions", content=content,
                                        headers={"content-type": content_type})


def get_sample(accept: str = "application/json", **params: Any
               ) -> Callable[[httpx.Client, str], httpx.Response]:
    return lambda http, name: http.get(f"/buffers/{name}/sample", params=params,
                                       headers={"accept": accept})


CASES = {
    "wrong shape": Case(post_json({"transition": json_row(obs=[1.0, 2.0, 3.0])}),
                        422, "invalid_shape", "obs"),
    "ragged rows": Case(post_json({"transitions": [json_row(), json_row(obs=[1.0])]}),
                        422, "invalid_shape", "obs"),
    "fraction for an integer": Case(post_json({"transition": json_row(action=0.5)}),
                                    422, "invalid_dtype", "action"),
    "number for a bool": Case(post_json({"transition": json_row(done=0)}),
                              422, "invalid_dtype", "done"),
    "string for a float": Case(post_json({"transition": json_row(reward="1.0")}),
                               422, "invalid_dtype", "reward"),
    "null value": Case(post_json({"transition": json_row(reward=None)}),
                       422, "invalid_dtype", "reward"),
    "integer out of range": Case(post_json({"transition": json_row(action=2**63)}),
                                 422, "out_of_range", "action"),
    "wrong binary dtype": Case(post_bytes(binary(obs=np.zeros((2, 4), np.float64))),
                               422, "invalid_dtype", "obs"),
    "wrong binary shape": Case(post_bytes(binary(obs=np.zeros((2, 5), np.float32))),
                               422, "invalid_shape", "obs"),
    "missing field": Case(post_json({"transition": json_row(done=...)}),
                          422, "missing_field", "done"),
    "extra field": Case(post_json({"transition": json_row(colour=1)}),
                        422, "unknown_field", "colour"),
    "rows with different fields": Case(
        post_json({"transitions": [json_row(), json_row(done=...)]}),
        422, "inconsistent_rows", "done"),
    "NaN": Case(post_bytes(binary(reward=np.array([0.0, np.nan], np.float32))),
                422, "non_finite", "reward"),
    "infinity": Case(post_bytes(binary(obs=np.full((2, 4), np.inf, np.float32))),
                     422, "non_finite", "obs"),
    "float32 overflow in JSON": Case(post_json({"transition": json_row(reward=1e39)}),
                                     422, "non_finite", "reward"),
    "columns of unequal length": Case(post_bytes(binary(action=np.zeros(3, np.int64))),
                                      422, "batch_length_mismatch", "action"),
    "empty batch": Case(post_json({"transitions": []}), 422, "empty_batch", "transitions"),
    "empty columns": Case(post_json({"columns": {key: [] for key in TRACKED_SCHEMA["fields"]}}),
                          422, "empty_batch", None),
    "unknown layout": Case(post_json({"rows": []}), 422, "invalid_body", "rows"),
    "batch over the limit": Case(
        post_bytes(encode_safetensors(tracked_columns(range(SERVICE_LIMITS["max_batch"] + 1)))),
        413, "payload_too_large", "transitions"),
    "body over the limit": Case(post_bytes(b"\0" * (SERVICE_LIMITS["max_body_bytes"] + 1)),
                                413, "payload_too_large", "body"),
    "malformed JSON": Case(post_bytes(b'{"transition": {', "application/json"),
                           400, "invalid_json", None),
    "NaN literal in JSON": Case(post_bytes(b'{"transition": {"reward": NaN}}',
                                           "application/json"), 400, "invalid_json", None),
    "malformed safetensors": Case(post_bytes(b"\x10\0\0\0\0\0\0\0{not json}......"),
                                  400, "invalid_safetensors", None),
    "truncated safetensors": Case(post_bytes(binary()[:-3]), 400, "invalid_safetensors", None),
    "safetensors declaring a huge header": Case(
        post_bytes((2**40).to_bytes(8, "little") + b"{}"), 400, "invalid_safetensors", None),
    "wrong content type": Case(post_bytes(b"obs=1", "text/plain"),
                               415, "unsupported_media_type", "content-type"),
    "sample size over the limit": Case(get_sample(batch_size=SERVICE_LIMITS["max_sample"] + 1),
                                       422, "limit_exceeded", "batch_size"),
    "sample size zero": Case(get_sample(batch_size=0), 422, "invalid_request", "batch_size"),
    "sample size not a number": Case(get_sample(batch_size="many"), 422, "invalid_request",
                                     "batch_size"),
    "sample size missing": Case(get_sample(), 422, "invalid_request", "batch_size"),
    "more than held without replacement": Case(get_sample(batch_size=21, replace=False),
                                               409, "not_enough_transitions", "batch_size"),
    "unacceptable format": Case(get_sample("text/html", batch_size=1),
                                406, "not_acceptable", "accept"),
}


@pytest.fixture
def filled(http: httpx.Client, buffer_name: str) -> str:
    create(http, buffer_name, 50, TRACKED_SCHEMA)
    assert store_binary(http, buffer_name, tracked_columns(range(20))).status_code == 200
    return buffer_name


def snapshot(http: httpx.Client, name: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    info = http.get(f"/buffers/{name}").json()
    del info["total_sampled"]  # reading the snapshot samples
    held = read_all(http, name)
    order = np.argsort(held["slot"])
    return info, {key: column[order].tobytes() for key, column in held.items()}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_is_refused_and_changes_nothing(http: httpx.Client, filled: str,
                                                  case: Case) -> None:
    before = snapshot(http, filled)
    response = case.request(http, filled)
    assert response.status_code == case.status, response.text
    body = response.json()
    assert (body["error"], body["field"]) == (case.error, case.field), body
    assert body["message"] and "Traceback" not in response.text
    assert snapshot(http, filled) == before


@pytest.mark.parametrize("request_to", [
    lambda http, name: http.post(f"/buffers/{name}/transitions", json={"transition": json_row()}),
    lambda http, name: http.get(f"/buffers/{name}/sample", params={"batch_size": 1}),
    lambda http, name: http.get(f"/buffers/{name}/size"),
    lambda http, name: http.get(f"/buffers/{name}"),
    lambda http, name: http.delete(f"/buffers/{name}"),
], ids=["store", "sample", "size", "info", "delete"])
def test_unknown_buffer_is_404_naming_it(http: httpx.Client, buffer_name: str,
                                         request_to: Callable[[httpx.Client, str], httpx.Response]
                                         ) -> None:
    response = request_to(http, buffer_name)
    assert response.status_code == 404
    assert response.json()["error"] == "buffer_not_found"
    assert buffer_name in response.json()["message"]
    assert http.get(f"/buffers/{buffer_name}").status_code == 404  # nothing was created


def test_an_unknown_path_is_a_json_404(http: httpx.Client) -> None:
    response = http.get("/nowhere")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_a_first_store_with_a_bad_field_name_creates_no_schema(http: httpx.Client,
                                                               buffer_name: str) -> None:
    create(http, buffer_name, 10)
    response = http.post(f"/buffers/{buffer_name}/transitions",
                         json={"transition": {"_secret": 1, "obs": [1.0]}})
    assert response.status_code == 422
    assert response.json()["field"] == "_secret"
    assert http.get(f"/buffers/{buffer_name}").json()["schema"] is None
