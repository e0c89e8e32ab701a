"""Nothing acknowledged is lost and nothing is stored twice, while the service is
killed and restarted under load, and while Redis goes away and comes back."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from replay_service.service.redis_server import RedisServer
from replay_service.wire.codec import SAFETENSORS, decode_safetensors
from tests.support import REPO, ServiceProcess

WRITERS = 8
PER_WRITER = 10_000
BATCH = 100
SCHEMA = {"fields": {"id": {"dtype": "int64"}, "obs": {"dtype": "float32", "shape": [4]},
                     "reward": {"dtype": "float32"}}}


def start_writers(url: str, name: str) -> list[subprocess.Popen[str]]:
    return [subprocess.Popen(
        [sys.executable, "-m", "tests.faults.writer", url, name, str(w * PER_WRITER),
         str(PER_WRITER), str(BATCH)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for w in range(WRITERS)]


def acknowledged_by(writers: list[subprocess.Popen[str]]) -> tuple[int, int]:
    """Transitions the writers were told were stored, and the retries they logged."""
    total = retries = 0
    for writer in writers:
        out, err = writer.communicate(timeout=240)
        assert writer.returncode == 0, err[-3000:]
        total += json.loads(out)["acknowledged"]
        retries += err.count("retrying in")
    return total, retries


def counters(url: str, name: str) -> dict[str, int]:
    """The buffer's counters, once the service answers again: the last fault may have
    ended just before the last writer did."""
    deadline = time.monotonic() + 30
    while (reply := httpx.get(f"{url}/buffers/{name}/size", timeout=30)).status_code == 503:
        assert time.monotonic() < deadline, reply.text
        time.sleep(0.2)
    assert reply.status_code == 200, reply.text
    found: dict[str, int] = reply.json()
    return found


def held_ids(url: str, name: str) -> np.ndarray:
    """Every id the buffer holds: one sample without replacement of the whole size."""
    size = counters(url, name)["size"]
    reply = httpx.get(f"{url}/buffers/{name}/sample", params={"batch_size": size,
                                                              "replace": False},
                      headers={"accept": SAFETENSORS}, timeout=60)
    ids: np.ndarray = decode_safetensors(reply.content).columns["id"]
    return ids


def chaos(times: int, fault: Callable[[], None], recover: Callable[[], None]) -> None:
    rng = random.Random(0)
    for _ in range(times):
        time.sleep(rng.uniform(0.5, 1.2))
        fault()
        time.sleep(rng.uniform(0.3, 1.5))
        recover()


@pytest.fixture
def big_service(redis_server: RedisServer, logs_dir: Path) -> Iterator[ServiceProcess]:
    service = ServiceProcess(redis_server.url, logs_dir, max_sample=WRITERS * PER_WRITER)
    yield service.start()
    service.stop()


def test_service_killed_and_restarted_under_load_loses_and_duplicates_nothing(
        big_service: ServiceProcess, buffer_name: str) -> None:
    total = WRITERS * PER_WRITER
    httpx.put(f"{big_service.url}/buffers/{buffer_name}",
              json={"capacity": total, "schema": SCHEMA}).raise_for_status()
    writers = start_writers(big_service.url, buffer_name)
    chaos(5, lambda: big_service.stop(signal.SIGKILL), big_service.start)
    acknowledged, retries = acknowledged_by(writers)
    print(f"\nservice SIGKILLed 5 times under {WRITERS} writers: {retries} retries, "
          f"{acknowledged} transitions acknowledged")

    held = counters(big_service.url, buffer_name)
    assert retries > 0, "the faults never hit a writer: the test proved nothing"
    assert acknowledged == total
    assert held["total_inserted"] == acknowledged  # not one stored twice
    ids = held_ids(big_service.url, buffer_name)
    np.testing.assert_array_equal(np.sort(ids), np.arange(total))  # each id exactly once


def test_redis_stopped_under_load_loses_and_duplicates_nothing(
        tmp_path: Path, buffer_name: str) -> None:
    total = WRITERS * PER_WRITER
    with RedisServer(tmp_path / "redis", appendfsync="always") as redis_server:
        service = ServiceProcess(redis_server.url, tmp_path, max_sample=total).start()
        try:
            httpx.put(f"{service.url}/buffers/{buffer_name}",
                      json={"capacity": total, "schema": SCHEMA}).raise_for_status()
            writers = start_writers(service.url, buffer_name)
            chaos(3, redis_server.stop, redis_server.start)
            acknowledged, retries = acknowledged_by(writers)
            print(f"\nRedis stopped 3 times under {WRITERS} writers: {retries} retries, "
                  f"{acknowledged} transitions acknowledged")
            held = counters(service.url, buffer_name)
            ids = held_ids(service.url, buffer_name)
        finally:
            service.stop()
    assert retries > 0, "the faults never hit a writer: the test proved nothing"
    assert acknowledged == held["total_inserted"] == total
    np.testing.assert_array_equal(np.sort(ids), np.arange(total))
