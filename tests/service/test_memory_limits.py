"""A buffer that would not fit in Redis's memory is refused up front, not half-way."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis

from replay_service.service.redis_server import RedisServer
from replay_service.service.storage import keys
from replay_service.wire.schema import Schema
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


def reservations_match_live_buffers(redis_url: str, http: httpx.Client, names: list[str]
                                    ) -> dict[str, tuple[int | None, int]]:
    """Per name: (bytes reserved, bytes its live buffer needs), for every name where they
    differ. A deleted buffer needs nothing and must hold no reservation."""
    reserved = {field.decode(): int(value) for field, value in
                redis.Redis.from_url(redis_url).hgetall(keys.RESERVATIONS).items()}
    wrong = {}
    for name in names:
        info = http.get(f"/buffers/{name}")
        needed = 0
        if info.status_code == 200 and info.json()["schema"] is not None:
            needed = info.json()["capacity"] * Schema.model_validate(
                info.json()["schema"]).record_size
        held = reserved.get(name)
        if (held or 0) != needed or (info.status_code == 404 and held is not None):
            wrong[name] = (held, needed)
    return wrong


def race(url: str, name: str, seed: int) -> None:
    """Creates of two sizes, deletes and first stores of two schemas, on one name."""
    rng = np.random.default_rng(seed)
    with httpx.Client(base_url=url, timeout=30) as http:
        for _ in range(30):
            choice = rng.integers(5)
            if choice == 0:
                reply = http.put(f"/buffers/{name}", json={
                    "capacity": int(rng.choice([100, 300])), "schema": CARTPOLE})
            elif choice == 1:
                reply = http.put(f"/buffers/{name}",
                                 json={"capacity": int(rng.choice([100, 300]))})
            elif choice == 2:
                reply = http.delete(f"/buffers/{name}")
            else:
                width = int(rng.choice([4, 40]))
                reply = http.post(f"/buffers/{name}/transitions", json={"transition": {
                    "obs": [0.0] * width, "done": False}})
            # a create, store or delete that loses a race says so; it never fails
            assert reply.status_code < 500, reply.text


def test_racing_creates_deletes_and_first_stores_keep_the_reservations_exact(
        service: ServiceProcess, redis_server: RedisServer, buffer_name: str) -> None:
    names = [f"{buffer_name}-{index}" for index in range(3)]
    with ThreadPoolExecutor(12) as pool:
        for future in [pool.submit(race, service.url, name, seed)
                       for seed in range(4) for name in names]:
            future.result()
    with httpx.Client(base_url=service.url) as http:
        assert reservations_match_live_buffers(redis_server.url, http, names) == {}
        for name in names:
            http.delete(f"/buffers/{name}")
        assert reservations_match_live_buffers(redis_server.url, http, names) == {}


def test_racing_creates_of_one_name_reserve_for_the_winner_only(
        service: ServiceProcess, redis_server: RedisServer, buffer_name: str) -> None:
    def create_one(capacity: int) -> int:
        with httpx.Client(base_url=service.url, timeout=30) as http:
            return create(http, buffer_name, capacity).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(create_one, [100 + 10 * index for index in range(32)]))
    assert statuses.count(201) == 1 and statuses.count(409) == 31
    with httpx.Client(base_url=service.url) as http:
        assert reservations_match_live_buffers(redis_server.url, http, [buffer_name]) == {}
