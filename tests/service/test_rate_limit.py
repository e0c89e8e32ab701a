"""Rate limits: a fast sampler waits for a slow writer, then gets a 429 saying why."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from replay_service.service.settings import Settings
from tests.service.factories import TRACKED_SCHEMA, store_binary, tracked_columns


def create(http: httpx.Client, name: str, **rate_limit: Any) -> None:
    reply = http.put(f"/buffers/{name}", json={"capacity": 1_000, "schema": TRACKED_SCHEMA,
                                               "rate_limit": rate_limit})
    assert reply.status_code == 201, reply.text


def sample(http: httpx.Client, name: str, count: int, timeout_s: float = 0.0) -> httpx.Response:
    return http.get(f"/buffers/{name}/sample",
                    params={"batch_size": count, "timeout_s": timeout_s})


def test_sampling_waits_for_the_minimum_size(http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, min_size=10)
    store_binary(http, buffer_name, tracked_columns(range(5)))
    refused = sample(http, buffer_name, 2)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"] == "rate_limited"
    assert "holds 5 transitions of the 10" in refused.json()["message"]
    store_binary(http, buffer_name, tracked_columns(range(5, 10)))
    assert sample(http, buffer_name, 2).status_code == 200


def test_samples_per_insert_holds_a_fast_sampler_back(http: httpx.Client,
                                                      buffer_name: str) -> None:
    create(http, buffer_name, min_size=10, samples_per_insert=2.0, tolerance=0.0)
    store_binary(http, buffer_name, tracked_columns(range(20)))  # allows 2 x (20 - 10) = 20
    assert sample(http, buffer_name, 16).status_code == 200
    held_back = sample(http, buffer_name, 8)
    assert held_back.status_code == 429
    assert held_back.json()["excess"] == 4
    assert http.get(f"/buffers/{buffer_name}/size").json()["total_sampled"] == 16
    store_binary(http, buffer_name, tracked_columns(range(20, 22)))  # now 24 allowed
    assert sample(http, buffer_name, 8).status_code == 200


def test_a_held_sample_waits_for_inserts_up_to_its_timeout(http: httpx.Client,
                                                           buffer_name: str) -> None:
    create(http, buffer_name, min_size=10)
    store_binary(http, buffer_name, tracked_columns(range(5)))

    started = time.monotonic()
    assert sample(http, buffer_name, 2, timeout_s=0.3).status_code == 429
    assert 0.25 < time.monotonic() - started < 2.0

    def insert_later() -> None:
        with httpx.Client(base_url=str(http.base_url)) as other:
            store_binary(other, buffer_name, tracked_columns(range(5, 10)))

    writer = threading.Timer(0.5, insert_later)
    writer.start()
    started = time.monotonic()
    reply = sample(http, buffer_name, 2, timeout_s=5.0)
    writer.join()
    assert reply.status_code == 200
    assert 0.4 < time.monotonic() - started < 4.0


def test_a_rate_limit_is_part_of_the_buffer(http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, min_size=10, samples_per_insert=4.0, tolerance=64.0)
    info = http.get(f"/buffers/{buffer_name}").json()
    assert info["rate_limit"] == {"min_size": 10, "samples_per_insert": 4.0, "tolerance": 64.0}
    other = http.put(f"/buffers/{buffer_name}", json={"rate_limit": {"min_size": 5}})
    assert other.status_code == 409 and other.json()["field"] == "rate_limit"


def test_a_min_size_over_the_capacity_is_refused_at_creation(http: httpx.Client,
                                                             buffer_name: str) -> None:
    default_capacity = Settings().default_capacity  # the test service keeps the default
    for body in ({"capacity": 1_000, "rate_limit": {"min_size": 1_001}},
                 {"rate_limit": {"min_size": default_capacity + 1}},
                 {"schema": TRACKED_SCHEMA, "rate_limit": {"min_size": default_capacity + 1}}):
        reply = http.put(f"/buffers/{buffer_name}", json=body)
        assert reply.status_code == 422, body
        error = reply.json()
        assert (error["error"], error["field"]) == ("invalid_rate_limit", "rate_limit.min_size")
        assert "would never be sampled because" in error["message"]
        assert http.get(f"/buffers/{buffer_name}").status_code == 404
    assert http.put(f"/buffers/{buffer_name}", json={
        "capacity": 1_000, "rate_limit": {"min_size": 1_000}}).status_code == 201


def test_an_existing_buffer_matches_a_min_size_over_the_default_capacity(
        http: httpx.Client, buffer_name: str) -> None:
    limit = {"min_size": Settings().default_capacity + 1}
    assert http.put(f"/buffers/{buffer_name}", json={
        "capacity": 2 * limit["min_size"], "rate_limit": limit}).status_code == 201
    assert http.put(f"/buffers/{buffer_name}", json={"rate_limit": limit}).status_code == 200
