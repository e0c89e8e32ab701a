"""Sampling is uniform over the stored slots, with or without replacement."""

import httpx
import numpy as np
import pytest

from replay_service.wire.codec import SAFETENSORS, decode_safetensors
from tests.service.factories import TRACKED_SCHEMA, counters, create, store_binary, tracked_columns
from tests.stats import chi_square_rejects_uniform

SIZE = 40


def test_the_uniformity_check_can_fail() -> None:
    rng = np.random.default_rng(0)
    fair = np.bincount(rng.integers(0, SIZE, 20_000), minlength=SIZE)
    assert not chi_square_rejects_uniform(fair)
    # the off-by-one that never draws the newest slot
    off_by_one = np.bincount(rng.integers(0, SIZE - 1, 20_000), minlength=SIZE)
    assert chi_square_rejects_uniform(off_by_one)
    # one slot drawn 1.5 times as often as the rest
    weights = np.ones(SIZE)
    weights[7] = 1.5
    biased = np.bincount(rng.choice(SIZE, 20_000, p=weights / weights.sum()), minlength=SIZE)
    assert chi_square_rejects_uniform(biased)


@pytest.fixture
def filled(http: httpx.Client, buffer_name: str) -> str:
    create(http, buffer_name, 100, TRACKED_SCHEMA)
    store_binary(http, buffer_name, tracked_columns(range(SIZE)))
    return buffer_name


def draw_ids(http: httpx.Client, name: str, batch_size: int, batches: int, replace: bool
             ) -> list[list[int]]:
    draws = []
    for _ in range(batches):
        reply = http.get(f"/buffers/{name}/sample",
                         params={"batch_size": batch_size, "replace": replace})
        assert reply.status_code == 200, reply.text
        draws.append(reply.json()["columns"]["id"])
    return draws


def test_sampling_with_replacement_is_uniform(http: httpx.Client, filled: str) -> None:
    draws = np.concatenate(draw_ids(http, filled, 500, 40, replace=True))
    assert not chi_square_rejects_uniform(np.bincount(draws, minlength=SIZE))


def test_first_draws_of_many_requests_are_uniform(http: httpx.Client, filled: str) -> None:
    # Each request reseeds the generator in Redis; its first draw must not lean.
    firsts = [batch[0] for batch in draw_ids(http, filled, 1, 2_000, replace=True)]
    assert not chi_square_rejects_uniform(np.bincount(firsts, minlength=SIZE))


def test_sampling_without_replacement_gives_distinct_uniform_slots(http: httpx.Client,
                                                                   filled: str) -> None:
    draws = draw_ids(http, filled, 10, 1_000, replace=False)
    assert all(len(set(batch)) == 10 for batch in draws)
    assert not chi_square_rejects_uniform(np.bincount(np.concatenate(draws), minlength=SIZE))


def test_sampling_the_whole_size_without_replacement_is_a_permutation(
        http: httpx.Client, filled: str) -> None:
    (batch,) = draw_ids(http, filled, SIZE, 1, replace=False)
    assert sorted(batch) == list(range(SIZE))


def test_sampling_only_reads_filled_slots(http: httpx.Client, filled: str) -> None:
    # capacity 100, 40 stored: the 60 empty slots must never be drawn
    draws = np.concatenate(draw_ids(http, filled, 1_000, 5, replace=True))
    assert draws.min() >= 0 and draws.max() < SIZE


def test_sampling_more_than_stored_without_replacement_is_409_with_the_size(
        http: httpx.Client, filled: str) -> None:
    before = counters(http, filled)
    reply = http.get(f"/buffers/{filled}/sample", params={"batch_size": SIZE + 1,
                                                          "replace": False})
    assert reply.status_code == 409
    assert reply.json()["error"] == "not_enough_transitions"
    assert reply.json()["size"] == SIZE
    assert counters(http, filled) == before


def test_sampling_an_empty_buffer_is_409_with_size_zero(http: httpx.Client,
                                                        buffer_name: str) -> None:
    create(http, buffer_name, 10, TRACKED_SCHEMA)
    reply = http.get(f"/buffers/{buffer_name}/sample", params={"batch_size": 1})
    assert reply.status_code == 409
    assert reply.json()["size"] == 0


def test_many_minibatches_in_one_request_are_shaped_batches_first(http: httpx.Client,
                                                                  filled: str) -> None:
    reply = http.get(f"/buffers/{filled}/sample",
                     params={"batch_size": 8, "num_batches": 5, "replace": False},
                     headers={"accept": SAFETENSORS})
    tensors = decode_safetensors(reply.content).columns
    assert tensors["obs"].shape == (5, 8, 4)
    assert tensors["_indices"].shape == (5, 8)
    np.testing.assert_array_equal(tensors["_indices"], tensors["id"])
    assert all(len(set(row)) == 8 for row in tensors["id"].tolist())  # distinct per minibatch
    assert counters(http, filled)["total_sampled"] == 40


def test_many_minibatches_stay_uniform(http: httpx.Client, filled: str) -> None:
    reply = http.get(f"/buffers/{filled}/sample", params={"batch_size": 100, "num_batches": 200})
    draws = np.asarray(reply.json()["columns"]["id"]).ravel()
    assert not chi_square_rejects_uniform(np.bincount(draws, minlength=SIZE))


def test_many_minibatches_count_toward_the_sample_limit(http: httpx.Client, filled: str) -> None:
    reply = http.get(f"/buffers/{filled}/sample",
                     params={"batch_size": 1_000, "num_batches": 51})
    assert reply.status_code == 422
    assert reply.json()["field"] == "num_batches"
