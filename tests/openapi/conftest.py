from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.openapi.node import installed_packages


@pytest.fixture(scope="session")
def node_modules() -> Path:
    return installed_packages()


@pytest.fixture
def document_file(http: httpx.Client, tmp_path: Path) -> Path:
    """The real service's /openapi.json, as a client generator would download it."""
    reply = http.get("/openapi.json")
    assert reply.status_code == 200, reply.text
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(reply.json()))
    return path
