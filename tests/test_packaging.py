"""The distribution: one top-level package, `replay_service`, importable from anywhere;
the service independent of the SDK, the SDK independent of gymnasium and torch."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out),
                    str(REPO)], check=True, capture_output=True, timeout=300)
    (built,) = out.glob("replay_service-*.whl")
    return built


def test_the_wheel_holds_one_top_level_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if ".dist-info/" not in name}
    assert tops == {"replay_service"}
    assert "replay_service/py.typed" in names
    assert "replay_service/service/storage/lua/insert.lua" in names


def test_the_installed_sdk_imports_from_another_directory(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    done = subprocess.run(
        [sys.executable, "-c", "import replay_service; "
         "from replay_service import ReplayClient, AsyncReplayClient, Schema; "
         "print(replay_service.__file__)"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True,
        text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(site / "replay_service" / "__init__.py")


def imported_modules(source: str) -> set[str]:
    """Top-level names of what a Python process loads after running `source`."""
    done = subprocess.run([sys.executable, "-c", f"{source}\nimport sys\nprint(*sys.modules)"],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    return set(done.stdout.split())


def test_the_service_loads_nothing_of_the_sdk() -> None:
    loaded = imported_modules("from replay_service.service.app import create_app\ncreate_app()")
    assert "replay_service.wire.codec" in loaded
    assert not {name for name in loaded if name.startswith("replay_service.client")}


def test_the_service_source_imports_nothing_of_the_sdk() -> None:
    for path in (REPO / "service").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module != "replay_service", path
                assert not node.module.startswith("replay_service.client"), path


def test_the_sdk_loads_neither_gymnasium_nor_torch() -> None:
    loaded = imported_modules("import replay_service\n"
                              "for name in replay_service.__all__: getattr(replay_service, name)")
    assert "replay_service.client.sync_client" in loaded
    assert not loaded & {"gymnasium", "torch"}


def test_an_unknown_name_is_an_attribute_error() -> None:
    import replay_service

    with pytest.raises(AttributeError, match="Replay_Client"):
        replay_service.Replay_Client  # noqa: B018
