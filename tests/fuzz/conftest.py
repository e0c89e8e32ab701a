"""A service of the fuzz suite's own, on a private Redis, so that nothing the fuzzers
do can disturb another test's buffers; the pool of buffers they aim at; the tally."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from replay_service.service.redis_server import RedisServer
from tests.conftest import SERVICE_LIMITS
from tests.fuzz.pool import Pool
from tests.fuzz.tally import TALLY
from tests.support import ServiceProcess

# Seconds any one request may take before the fuzzers call it a hang.
REQUEST_TIMEOUT_S = 10.0


@pytest.fixture(scope="package")
def fuzz_service(tmp_path_factory: pytest.TempPathFactory, logs_dir: Path
                 ) -> Iterator[ServiceProcess]:
    with RedisServer(tmp_path_factory.mktemp("fuzz-redis"), appendfsync=None) as redis:
        process = ServiceProcess(redis.url, logs_dir, **SERVICE_LIMITS).start()
        try:
            yield process
        finally:
            process.stop()


@pytest.fixture(scope="package")
def fuzz_http(fuzz_service: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fuzz_service.url, timeout=REQUEST_TIMEOUT_S) as client:
        yield client


@pytest.fixture(scope="package")
def pool(fuzz_http: httpx.Client) -> Pool:
    return Pool(fuzz_http).seed()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY.is_empty():
        return
    terminalreporter.section("fuzz tally")
    for line in TALLY.lines():
        terminalreporter.write_line(line)
    report = os.environ.get("FUZZ_REPORT")
    if report:
        TALLY.write(Path(report))
        terminalreporter.write_line(f"written to {report}")
