"""Fixtures for the browser tests: one headless Chromium per module, offline but for
loopback, and a service that requires API keys."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from replay_service.service.redis_server import RedisServer
from tests.browser.chromium import Chromium, Page
from tests.support import ServiceProcess

_WRITE_KEY = "browser-test-write-key"
_READ_KEY = "browser-test-read-key"


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    browser = Chromium(tmp_path_factory.mktemp("chromium"))
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def keyed_service(redis_server: RedisServer, logs_dir: Path) -> Iterator[ServiceProcess]:
    """A service that answers nothing but /healthz, /readyz and the pages without a key."""
    process = ServiceProcess(redis_server.url, logs_dir, write_key=_WRITE_KEY,
                             read_key=_READ_KEY).start()
    yield process
    process.stop()


@pytest.fixture
def write_key() -> str:
    return _WRITE_KEY


@pytest.fixture
def read_key() -> str:
    return _READ_KEY


@pytest.fixture
def screenshot(tmp_path: Path, record_property: Callable[[str, object], None]
               ) -> Callable[[Page, str], Path]:
    """Save a page as NAME.png and say where, in -rA output and in JUnit XML, so a
    person can look at what the browser really drew."""

    def take(page: Page, name: str) -> Path:
        path = page.screenshot(tmp_path / f"{name}.png")
        print(f"screenshot: {path}")
        record_property(f"screenshot_{name}", str(path))
        return path

    return take
