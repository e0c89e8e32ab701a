"""API keys: the write key may do everything, the read key only read, no key nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from replay_service import Forbidden, ReplayClient, Unauthorized
from replay_service.service.redis_server import RedisServer
from tests.support import ServiceProcess

WRITE_KEY = "write-key-0123456789abcdef"
READ_KEY = "read-key-0123456789abcdef"


@pytest.fixture(scope="module")
def locked(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[ServiceProcess]:
    service = ServiceProcess(redis_server.url, tmp_path_factory.mktemp("locked"),
                             write_key=WRITE_KEY, read_key=READ_KEY).start()
    yield service
    service.stop()


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_without_a_key_nothing_but_health_answers(locked: ServiceProcess,
                                                  buffer_name: str) -> None:
    assert httpx.get(f"{locked.url}/healthz").status_code == 200
    assert httpx.get(f"{locked.url}/readyz").status_code == 200
    for method, path in [("GET", "/buffers"), ("PUT", f"/buffers/{buffer_name}"),
                         ("GET", f"/buffers/{buffer_name}/sample?batch_size=1")]:
        reply = httpx.request(method, f"{locked.url}{path}")
        assert reply.status_code == 401, (method, path)
        assert reply.json()["error"] == "unauthorized"
        assert reply.headers["www-authenticate"] == "Bearer"


def test_a_wrong_key_is_401_and_never_echoed(locked: ServiceProcess) -> None:
    reply = httpx.get(f"{locked.url}/buffers", headers=bearer("guess-" + WRITE_KEY))
    assert reply.status_code == 401
    assert "guess" not in reply.text and WRITE_KEY not in reply.text
    assert WRITE_KEY not in locked.log() and READ_KEY not in locked.log()


def test_the_read_key_reads_but_cannot_write(locked: ServiceProcess, buffer_name: str) -> None:
    with httpx.Client(base_url=locked.url, headers=bearer(WRITE_KEY)) as writer:
        assert writer.put(f"/buffers/{buffer_name}", json={"capacity": 10}).status_code == 201
        assert writer.post(f"/buffers/{buffer_name}/transitions",
                           json={"transition": {"x": [1.0]}}).status_code == 200
    with httpx.Client(base_url=locked.url, headers=bearer(READ_KEY)) as reader:
        assert reader.get(f"/buffers/{buffer_name}/size").json()["size"] == 1
        assert reader.get(f"/buffers/{buffer_name}/sample",
                          params={"batch_size": 2}).status_code == 200
        for reply in [reader.post(f"/buffers/{buffer_name}/transitions",
                                  json={"transition": {"x": [2.0]}}),
                      reader.delete(f"/buffers/{buffer_name}"),
                      reader.put(f"/buffers/{buffer_name}-2", json={"capacity": 10})]:
            assert reply.status_code == 403
            assert reply.json()["error"] == "forbidden"
        assert reader.get(f"/buffers/{buffer_name}/size").json()["size"] == 1


def test_the_sdk_sends_its_key_and_reports_refusals_as_typed_errors(
        locked: ServiceProcess, buffer_name: str) -> None:
    with ReplayClient(locked.url, buffer_name, api_key=WRITE_KEY) as writer:
        writer.store_batch({"x": np.ones((3, 2), np.float32)})
    with ReplayClient(locked.url, buffer_name, api_key=READ_KEY) as reader:
        assert len(reader) == 3
        with pytest.raises(Forbidden):
            reader.delete()
    with ReplayClient(locked.url, buffer_name) as stranger, pytest.raises(Unauthorized):
        stranger.sample(1)


def test_an_open_service_says_so_at_start(service: ServiceProcess) -> None:
    assert "NO API KEYS ARE SET" in Path(service.log_path).read_text()
