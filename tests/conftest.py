"""Fixtures: a private redis-server on a free loopback port and the real service on it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from replay_service.service.redis_server import RedisServer
from tests.support import ServiceProcess

# Small enough that the limits can be crossed cheaply in a test.
# Rings are cut into 16 KiB strings, so most tests also cross string boundaries.
SERVICE_LIMITS = {"max_body_bytes": 4 * 1024 * 1024, "max_batch": 20_000,
                  "max_sample": 50_000, "max_capacity": 1_000_000, "segment_bytes": 16_384}


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis"), appendfsync=None) as server:
        yield server


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def service(redis_server: RedisServer, logs_dir: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(redis_server.url, logs_dir, **SERVICE_LIMITS).start()
    yield process
    process.stop()


@pytest.fixture
def http(service: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=30) as client:
        yield client


@pytest.fixture
def buffer_name() -> str:
    """A fresh name per test, so tests sharing the service never see each other's data."""
    return f"test-{uuid.uuid4().hex[:12]}"
