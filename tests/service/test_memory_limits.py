"""A buffer that would not fit in Redis's memory is refused up front, not half-way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from replay_service.service.redis_server import RedisServer

from tests.support import ServiceProcess

# 45 bytes per CartPole transition; Redis gets 20 MB, of which rings may reserve 90%.
CARTPOLE = {"fields": {"obs": {"dtype": "float32", "shape": [4]}, "action": {"dtype": "int64"},
                       "reward": {"dtype": "float32"},
                       "next_obs": {"dtype": "float32", "shape": [4]}, "done": {"dtype": "bool"}}}


@pytest.fixture
def small_redis_service(tmp_path: Path) -> Iterator[httpx.Client]:
    with RedisServer(tmp_path / "redis", appendfsync=None,
                     extra_args=("--maxmemory", "20mb", "--maxmemory-policy", "allkeys-lru")
                     ) as redis:
        service = ServiceProcess(redis.url, tmp_path).start()
        try:
            with httpx.Client(base_url=service.url) as http:
                yield http
        finally:
            service.stop()
        assert "maxmemory-policy is allkeys-lru" in service.log()


def create(http: httpx.Client, name: str, capacity: int) -> httpx.Response:
    return http.put(f"/buffers/{name}", json={"capacity": capacity, "schema": CARTPOLE})


def test_a_buffer_larger_than_redis_memory_is_refused(small_redis_service: httpx.Client) -> None:
    reply = create(small_redis_service, "huge", 1_000_000)  # 45 MB
    assert reply.status_code == 507
    body = reply.json()
    assert (body["error"], body["field"]) == ("insufficient_storage", "capacity")
    assert "maxmemory of 20.0 MB" in body["message"]
    assert small_redis_service.get("/buffers/huge").status_code == 404


def test_buffers_share_the_memory_and_a_deletion_frees_it(
        small_redis_service: httpx.Client) -> None:
    assert create(small_redis_service, "first", 250_000).status_code == 201  # 11 MB
    assert create(small_redis_service, "second", 250_000).status_code == 507
    assert create(small_redis_service, "third", 100_000).status_code == 201  # 4.5 MB
    assert small_redis_service.delete("/buffers/first").status_code == 204
    assert create(small_redis_service, "second", 250_000).status_code == 201


def test_a_first_store_that_would_not_fit_is_refused(small_redis_service: httpx.Client) -> None:
    assert small_redis_service.put("/buffers/lazy", json={"capacity": 1_000_000}).status_code \
        == 201
    reply = small_redis_service.post("/buffers/lazy/transitions", json={"transition": {
        "obs": [0.0, 0.1, 0.2, 0.3], "action": 1, "reward": 1.0,
        "next_obs": [0.1, 0.2, 0.3, 0.4], "done": False}})
    assert reply.status_code == 507
    info = small_redis_service.get("/buffers/lazy").json()
    assert (info["schema"], info["total_inserted"]) == (None, 0)
