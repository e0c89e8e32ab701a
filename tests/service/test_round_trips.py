"""What goes in comes out, bit for bit, in both wire formats."""

from typing import Any

import httpx
import numpy as np
import pytest

from replay_service.wire.codec import (
    INDICES_TENSOR,
    SAFETENSORS,
    decode_safetensors,
    encode_safetensors,
)
from tests.service.factories import (
    TRACKED_SCHEMA,
    create,
    read_all,
    store_binary,
    store_json,
    tracked_columns,
)

MIXED_SCHEMA: dict[str, Any] = {"fields": {
    "id": {"dtype": "int64", "shape": []},
    "f32": {"dtype": "float32", "shape": [3]},
    "i64": {"dtype": "int64", "shape": [2]},
    "u8": {"dtype": "uint8", "shape": [2, 2]},
    "flag": {"dtype": "bool", "shape": []},
}}


def mixed_columns() -> dict[str, np.ndarray]:
    """Edge values of every dtype: extremes, subnormals, negative zero."""
    f32 = np.array([[0.1, -0.0, 1e-45], [3.4028235e38, -3.4028235e38, 1.1754944e-38],
                    [np.pi, -np.e, 123456.789]], dtype=np.float32)
    i64 = np.array([[np.iinfo(np.int64).min, np.iinfo(np.int64).max], [0, -1], [2**53 + 1, 7]],
                   dtype=np.int64)
    u8 = np.array([[[0, 255], [1, 128]], [[7, 8], [9, 10]], [[254, 3], [0, 0]]], dtype=np.uint8)
    return {"id": np.arange(3, dtype=np.int64), "f32": f32, "i64": i64, "u8": u8,
            "flag": np.array([True, False, True])}


def assert_bit_exact(expected: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> None:
    order = np.argsort(got["id"])
    for name, column in expected.items():
        assert got[name].dtype == column.dtype, name
        assert got[name][order].tobytes() == column.tobytes(), name


@pytest.mark.parametrize("store", [store_binary, store_json], ids=["safetensors", "json"])
def test_stored_values_come_back_bit_exact_in_safetensors(
        http: httpx.Client, buffer_name: str, store: Any) -> None:
    create(http, buffer_name, 10, MIXED_SCHEMA)
    columns = mixed_columns()
    assert store(http, buffer_name, columns).status_code == 200
    assert_bit_exact(columns, read_all(http, buffer_name))


@pytest.mark.parametrize("store", [store_binary, store_json], ids=["safetensors", "json"])
def test_stored_values_come_back_bit_exact_in_json(
        http: httpx.Client, buffer_name: str, store: Any) -> None:
    create(http, buffer_name, 10, MIXED_SCHEMA)
    columns = mixed_columns()
    store(http, buffer_name, columns)
    reply = http.get(f"/buffers/{buffer_name}/sample",
                     params={"batch_size": 3, "replace": False}).json()
    got = {name: np.asarray(values, dtype=columns[name].dtype)
           for name, values in reply["columns"].items()}
    assert_bit_exact(columns, got)


def test_store_reply_counts_and_places_the_batch(http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 100, TRACKED_SCHEMA)
    first = store_binary(http, buffer_name, tracked_columns(range(30))).json()
    second = store_binary(http, buffer_name, tracked_columns(range(30, 40))).json()
    assert first == {"stored": 30, "first_slot": 0, "size": 30, "capacity": 100,
                     "total_inserted": 30}
    assert second == {"stored": 10, "first_slot": 30, "size": 40, "capacity": 100,
                      "total_inserted": 40}


def test_one_transition_rows_and_columns_are_all_accepted(http: httpx.Client,
                                                          buffer_name: str) -> None:
    create(http, buffer_name, 10, TRACKED_SCHEMA)
    one = {key: value[0].tolist() for key, value in tracked_columns([0]).items()}
    rows_columns = tracked_columns([1, 2])
    rows = [{key: value[i].tolist() for key, value in rows_columns.items()} for i in range(2)]
    assert http.post(f"/buffers/{buffer_name}/transitions",
                     json={"transition": one}).json()["stored"] == 1
    assert http.post(f"/buffers/{buffer_name}/transitions",
                     json={"transitions": rows}).json()["stored"] == 2
    assert store_json(http, buffer_name, tracked_columns([3, 4, 5])).json()["stored"] == 3
    assert sorted(read_all(http, buffer_name)["id"].tolist()) == [0, 1, 2, 3, 4, 5]


def test_safetensors_sample_carries_slots_and_counters(http: httpx.Client,
                                                       buffer_name: str) -> None:
    create(http, buffer_name, 10, TRACKED_SCHEMA)
    store_binary(http, buffer_name, tracked_columns(range(10)))
    response = http.get(f"/buffers/{buffer_name}/sample", params={"batch_size": 64},
                        headers={"accept": SAFETENSORS})
    assert response.headers["content-type"] == SAFETENSORS
    tensors = decode_safetensors(response.content).columns
    # ids were stored in slot order, so each slot must hold the id equal to it
    np.testing.assert_array_equal(tensors[INDICES_TENSOR], tensors["id"])
    assert tensors["obs"].shape == (64, 4)


def test_sample_counts_toward_total_sampled(http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 10, TRACKED_SCHEMA)
    store_binary(http, buffer_name, tracked_columns(range(4)))
    http.get(f"/buffers/{buffer_name}/sample", params={"batch_size": 7})
    http.get(f"/buffers/{buffer_name}/sample", params={"batch_size": 5})
    assert http.get(f"/buffers/{buffer_name}/size").json() == {
        "size": 4, "capacity": 10, "total_inserted": 4, "total_sampled": 12}


def test_schema_inferred_from_safetensors_keeps_its_dtypes(http: httpx.Client,
                                                           buffer_name: str) -> None:
    create(http, buffer_name, 10)
    frames = np.zeros((2, 84, 84, 4), dtype=np.uint8)
    assert store_binary(http, buffer_name, {"frame": frames,
                                            "action": np.zeros(2, np.int32)}).status_code == 200
    fields = http.get(f"/buffers/{buffer_name}").json()["schema"]["fields"]
    assert fields["frame"] == {"dtype": "uint8", "shape": [84, 84, 4], "allow_nonfinite": False}
    assert fields["action"]["dtype"] == "int32"


def test_a_repeated_idempotency_key_stores_once_and_answers_the_same(
        http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 100, TRACKED_SCHEMA)
    body = encode_safetensors(tracked_columns(range(5)))
    headers = {"content-type": SAFETENSORS, "idempotency-key": "batch-0001"}
    first = http.post(f"/buffers/{buffer_name}/transitions", content=body, headers=headers)
    store_binary(http, buffer_name, tracked_columns(range(5, 8)))  # someone else's batch
    again = http.post(f"/buffers/{buffer_name}/transitions", content=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() == {"stored": 5, "first_slot": 0, "size": 5,
                                            "capacity": 100, "total_inserted": 5}
    assert sorted(read_all(http, buffer_name)["id"].tolist()) == list(range(8))


def test_an_idempotency_key_reused_for_another_body_is_refused(http: httpx.Client,
                                                               buffer_name: str) -> None:
    create(http, buffer_name, 100, TRACKED_SCHEMA)
    headers = {"content-type": SAFETENSORS, "idempotency-key": "batch-0002"}
    http.post(f"/buffers/{buffer_name}/transitions",
              content=encode_safetensors(tracked_columns(range(5))), headers=headers)
    other = http.post(f"/buffers/{buffer_name}/transitions",
                      content=encode_safetensors(tracked_columns(range(5, 9))), headers=headers)
    assert other.status_code == 422
    assert (other.json()["error"], other.json()["field"]) == ("idempotency_key_reused",
                                                              "idempotency-key")
    assert http.get(f"/buffers/{buffer_name}/size").json()["total_inserted"] == 5


def test_idempotency_keys_do_not_outlive_a_deleted_buffer(http: httpx.Client,
                                                          buffer_name: str) -> None:
    body = encode_safetensors(tracked_columns(range(3)))
    headers = {"content-type": SAFETENSORS, "idempotency-key": "batch-0003"}
    create(http, buffer_name, 100, TRACKED_SCHEMA)
    http.post(f"/buffers/{buffer_name}/transitions", content=body, headers=headers)
    http.delete(f"/buffers/{buffer_name}")
    create(http, buffer_name, 100, TRACKED_SCHEMA)
    http.post(f"/buffers/{buffer_name}/transitions", content=body, headers=headers)
    assert http.get(f"/buffers/{buffer_name}/size").json()["total_inserted"] == 3
