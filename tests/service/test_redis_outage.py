"""Redis going away gets 503s with Retry-After, never a stack trace; the service
recovers by itself when Redis is back."""

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from replay_service.service.redis_server import RedisServer
from tests.service.factories import TRACKED_SCHEMA, counters, create, store_binary, tracked_columns
from tests.support import ServiceProcess


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis", appendfsync="everysec") as server:
        yield server


@pytest.fixture
def own_service(own_redis: RedisServer, tmp_path: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(own_redis.url, tmp_path).start()
    yield process
    process.stop()


def wait_until(check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_redis_stopped_and_restarted_under_a_running_service(
        own_redis: RedisServer, own_service: ServiceProcess, buffer_name: str) -> None:
    with httpx.Client(base_url=own_service.url, timeout=30) as http:
        create(http, buffer_name, 100, TRACKED_SCHEMA)
        assert store_binary(http, buffer_name, tracked_columns(range(10))).status_code == 200

        own_redis.stop()
        for response in [store_binary(http, buffer_name, tracked_columns(range(10, 20))),
                         http.get(f"/buffers/{buffer_name}/sample", params={"batch_size": 4}),
                         http.get(f"/buffers/{buffer_name}/size"),
                         http.put(f"/buffers/{buffer_name}-2", json={"capacity": 5}),
                         http.get("/readyz")]:
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "1"
            assert response.json()["error"] == "redis_unavailable"
            assert "Traceback" not in response.text
        assert http.get("/healthz").status_code == 200  # alive, only not ready

        own_redis.start()
        wait_until(lambda: http.get("/readyz").status_code == 200)
        wait_until(lambda: store_binary(http, buffer_name,
                                        tracked_columns(range(10, 20))).status_code == 200)
        # Acknowledged data survived (append-only file), the refused store did not land.
        assert counters(http, buffer_name)["total_inserted"] == 20
        assert http.get(f"/buffers/{buffer_name}/sample",
                        params={"batch_size": 20, "replace": False}).status_code == 200
    assert "Traceback" not in own_service.log()
