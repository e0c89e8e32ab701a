"""The Dockerfile, checked without a Docker engine: hadolint, and the shape the compose file
and the users rely on (targets, build args, a slim non-root service image)."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib

from tests.deploy.support import (
    DOCKERFILE,
    dockerfile_instructions,
    dockerfile_stages,
    stage_chain,
    tool,
)
from tests.support import REPO


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run([tool("hadolint"), "--no-color", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_plain_syntax_the_legacy_builder_builds() -> None:
    text = DOCKERFILE.read_text()
    assert not re.search(r"^#\s*syntax=", text, re.M | re.I), "no BuildKit frontend"
    for word, rest in dockerfile_instructions(text):
        assert not re.search(r"--mount|--link|--chmod|--parents|--exclude|<<", rest), (
            f"BuildKit-only: {word} {rest}")


def test_base_images_come_in_through_build_args() -> None:
    [first, *_] = dockerfile_instructions(DOCKERFILE.read_text())
    assert first == ("ARG", "BASE_IMAGE=python:3.11-slim")
    stages = dockerfile_stages()
    assert {stage.base for stage in stages.values()} <= {"${BASE_IMAGE}", *stages}
    assert stages["trainer-deps"].arguments("ARG") == [
        "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu"]


def test_the_service_image_is_slim_and_runs_as_a_numeric_user() -> None:
    service = dockerfile_stages()["service"]
    installs = [run for stage in stage_chain("service") for run in stage.arguments("RUN")]
    # The package without extras (no torch, no gymnasium), and no compiler anywhere.
    assert any(re.search(r"\bpip install \.(\s|$)", run) for run in installs)
    assert not any("[" in run for run in installs)
    for stage in dockerfile_stages().values():
        for run in stage.arguments("RUN"):
            assert not re.search(r"apt-get|apk |gcc|build-essential", run), run
    assert re.fullmatch(r"\d+(:\d+)?", service.arguments("USER")[-1])
    [healthcheck] = service.arguments("HEALTHCHECK")
    check = json.loads(healthcheck[healthcheck.index("CMD ") + 4:])
    assert "/healthz" in check[-1]
    assert json.loads(service.arguments("CMD")[-1]) == ["replay", "serve"]


def test_the_trainer_image_has_cpu_torch_and_runs_as_the_same_user() -> None:
    """It runs collectors and the trainer on any preset's env: Atari games and Box2D too."""
    stages = dockerfile_stages()
    installs = " ".join(run for stage in stage_chain("trainer") for run in stage.arguments("RUN"))
    assert '--extra-index-url "${TORCH_INDEX_URL}" "./[trainer,atari,box2d]"' in installs
    assert "assert not torch.version.cuda" in installs
    assert stages["trainer"].arguments("USER") == stages["service"].arguments("USER")
    assert json.loads(stages["trainer"].arguments("CMD")[-1]) == ["replay", "train"]


def test_the_build_context_is_the_package_alone() -> None:
    lines = [line for line in (REPO / ".dockerignore").read_text().splitlines()
             if line and not line.startswith("#")]
    assert lines[0] == "*"
    included = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = {part for copy in dockerfile_stages()["source"].arguments("COPY")
              for part in copy.split()[:-1]}
    assert copied == included
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(setuptools["package-dir"].values()) <= copied
    # The dependency stage lays out empty package folders by this rule.
    for package, folder in setuptools["package-dir"].items():
        assert folder == package.removeprefix("replay_service.").replace(".", "/")
