"""Collectors report finished episodes; readers poll for the ones they have not seen."""

from pathlib import Path

import httpx
import redis

from replay_service.service.redis_server import RedisServer
from replay_service.service.storage import keys
from tests.service.factories import create
from tests.support import ServiceProcess


def record(http: httpx.Client, name: str, *returns: float) -> httpx.Response:
    return http.post(f"/buffers/{name}/episodes", json={"episodes": [
        {"return": value, "length": int(value), "source": "collector-0"} for value in returns]})


def test_recorded_episodes_are_listed_in_order(http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 10)
    assert record(http, buffer_name, 10.0, 22.0).json()["recorded"] == 2
    record(http, buffer_name, 35.5)
    listed = http.get(f"/buffers/{buffer_name}/episodes").json()
    assert [item["return"] for item in listed["episodes"]] == [10.0, 22.0, 35.5]
    assert listed["episodes"][0] == {"return": 10.0, "length": 10, "source": "collector-0",
                                     "id": listed["episodes"][0]["id"]}
    assert listed["last_id"] == listed["episodes"][-1]["id"]


def test_polling_after_the_last_id_gives_only_newer_episodes(http: httpx.Client,
                                                             buffer_name: str) -> None:
    create(http, buffer_name, 10)
    record(http, buffer_name, 1.0, 2.0)
    seen = http.get(f"/buffers/{buffer_name}/episodes").json()["last_id"]
    assert http.get(f"/buffers/{buffer_name}/episodes",
                    params={"after": seen}).json() == {"episodes": [], "last_id": seen}
    record(http, buffer_name, 3.0)
    newer = http.get(f"/buffers/{buffer_name}/episodes", params={"after": seen}).json()
    assert [item["return"] for item in newer["episodes"]] == [3.0]


def test_bad_episode_reports_are_refused(http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 10)
    path = f"/buffers/{buffer_name}/episodes"
    for body, field in [({"episodes": []}, "episodes"),
                        ({"episodes": [{"return": "1", "length": 1}]}, "episodes.0.return"),
                        ({"episodes": [{"return": 1.0, "length": -1}]}, "episodes.0.length")]:
        reply = http.post(path, json=body)
        assert reply.status_code == 422, body
        assert reply.json()["field"] == field
    nan = http.post(path, content=b'{"episodes": [{"return": NaN, "length": 1}]}',
                    headers={"content-type": "application/json"})
    assert nan.status_code in (400, 422)
    assert http.get(path, params={"after": "x;FLUSHALL"}).status_code == 422
    assert http.get(path).json()["episodes"] == []


def test_episodes_of_an_unknown_buffer_are_404(http: httpx.Client, buffer_name: str) -> None:
    assert record(http, buffer_name, 1.0).status_code == 404
    assert http.get(f"/buffers/{buffer_name}/episodes").status_code == 404


def test_deleting_a_buffer_deletes_its_episodes(http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 10)
    record(http, buffer_name, 1.0)
    http.delete(f"/buffers/{buffer_name}")
    create(http, buffer_name, 10)
    assert http.get(f"/buffers/{buffer_name}/episodes").json()["episodes"] == []


def test_episodes_for_a_buffer_another_worker_deleted_are_404(
        http: httpx.Client, redis_server: RedisServer, logs_dir: Path,
        buffer_name: str) -> None:
    other = ServiceProcess(redis_server.url, logs_dir).start()
    try:
        with httpx.Client(base_url=other.url, timeout=30) as cached:
            create(http, buffer_name, 10)
            assert record(cached, buffer_name, 1.0).status_code == 200  # B caches the buffer
            assert http.delete(f"/buffers/{buffer_name}").status_code == 204
            reply = record(cached, buffer_name, 2.0)
            assert reply.status_code == 404, reply.text
            assert reply.json()["error"] == "buffer_not_found"
    finally:
        other.stop()
    assert not redis.Redis.from_url(redis_server.url).exists(keys.episodes(buffer_name))
