"""Reading transitions in insertion order, as exports do."""

import httpx
import numpy as np

from replay_service.wire.codec import SAFETENSORS, decode_safetensors
from tests.conftest import SERVICE_LIMITS
from tests.service.factories import TRACKED_SCHEMA, create, store_binary, tracked_columns


def read(http: httpx.Client, name: str, first: int, count: int) -> httpx.Response:
    return http.get(f"/buffers/{name}/transitions", params={"first": first, "count": count},
                    headers={"accept": SAFETENSORS})


def test_a_range_comes_back_in_insertion_order_across_the_wrap(http: httpx.Client,
                                                               buffer_name: str) -> None:
    create(http, buffer_name, 100, TRACKED_SCHEMA)
    for start in range(0, 250, 50):
        store_binary(http, buffer_name, tracked_columns(range(start, start + 50), seed=start))
    reply = read(http, buffer_name, 150, 100)  # the oldest held is the 150th inserted
    tensors = decode_safetensors(reply.content).columns
    np.testing.assert_array_equal(tensors["id"], np.arange(150, 250))
    np.testing.assert_array_equal(tensors["_indices"], np.arange(150, 250) % 100)
    np.testing.assert_array_equal(tensors["obs"][:50],
                                  tracked_columns(range(150, 200), seed=150)["obs"])


def test_a_range_no_longer_held_is_409_naming_what_is(http: httpx.Client,
                                                      buffer_name: str) -> None:
    create(http, buffer_name, 100, TRACKED_SCHEMA)
    store_binary(http, buffer_name, tracked_columns(range(130)))
    for first, count in [(20, 10), (120, 11)]:  # overwritten; not inserted yet
        reply = read(http, buffer_name, first, count)
        assert reply.status_code == 409
        body = reply.json()
        assert (body["error"], body["field"]) == ("range_not_held", "first")
        assert (body["oldest"], body["total_inserted"]) == (30, 130)


def test_a_range_over_the_sample_limit_is_refused(http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 10, TRACKED_SCHEMA)
    reply = read(http, buffer_name, 0, SERVICE_LIMITS["max_sample"] + 1)
    assert reply.status_code == 422
    assert reply.json()["field"] == "count"
