"""node, npm and the pinned npm packages the client tests run, installed outside the repo.

The packages are those of tests/openapi/package-lock.json, installed with `npm ci`
into a cache folder named by the lock's digest: an unchanged lock never installs
twice, a changed one installs afresh beside the old.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent
NPM_CACHE = Path(os.environ.get("REPLAY_NPM_CACHE",
                                Path.home() / ".cache" / "replay-service-npm"))
_MANIFESTS = ("package.json", "package-lock.json")
_INSTALL_TIMEOUT_S = 600
_RUN_TIMEOUT_S = 180


def executable(tool: str) -> str:
    """The path of node or npm; a clear failure (never a skip) when it is missing."""
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"`{tool}` is not on PATH: the OpenAPI client tests need node 20 or newer "
                    "and npm (Debian: apt-get install nodejs npm)", pytrace=False)
    return path


def installed_packages() -> Path:
    """The node_modules folder holding the pinned packages."""
    digest = hashlib.sha256(b"".join((HERE / name).read_bytes() for name in _MANIFESTS))
    target = NPM_CACHE / digest.hexdigest()[:16]
    done = target / "node_modules" / ".replay-installed"
    if not done.exists():
        target.mkdir(parents=True, exist_ok=True)
        for name in _MANIFESTS:
            shutil.copyfile(HERE / name, target / name)
        installed = subprocess.run(
            [executable("npm"), "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=target, capture_output=True, text=True, timeout=_INSTALL_TIMEOUT_S)
        if installed.returncode != 0:
            pytest.fail(f"npm ci in {target} failed:\n{installed.stdout}\n{installed.stderr}",
                        pytrace=False)
        done.touch()
    return target / "node_modules"


def workspace(folder: Path, modules: Path) -> Path:
    """A folder where TypeScript and node resolve the pinned packages."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "node_modules").symlink_to(modules, target_is_directory=True)
    return folder


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                          timeout=_RUN_TIMEOUT_S)


def npm_bin(modules: Path, tool: str) -> list[str]:
    """The command running a package's executable with this machine's node."""
    return [executable("node"), str(modules / ".bin" / tool)]
