"""What the cluster deployment's tests read: docker-compose.cluster.yml as Compose resolves
it, and the HAProxy config and cluster job it mounts."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from tests.deploy.support import CLUSTER_COMPOSE_FILE, compose_config

__all__ = ["cluster_config", "haproxy_binary", "haproxy_sections", "mounted_file",
           "redis_nodes", "script_variables"]


def cluster_config(variables: dict[str, str] | None = None) -> dict[str, Any]:
    return compose_config(variables, file=CLUSTER_COMPOSE_FILE)


def redis_nodes(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run a Redis node, by name."""
    return {name: service for name, service in services.items()
            if service.get("command", [""])[0] == "redis-server"}


def mounted_file(config: dict[str, Any], service: dict[str, Any], target: str) -> Path:
    """The file of this checkout that a service sees at `target`, by `configs:`."""
    [source] = [entry["source"] for entry in service.get("configs", [])
                if entry["target"] == target]
    return Path(config["configs"][source]["file"])


def haproxy_sections(path: Path) -> dict[str, list[list[str]]]:
    """An HAProxy config as {section header: its lines, each split into words}, comments
    left out."""
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for line in path.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if not line[0].isspace():
            current = sections.setdefault(" ".join(words), [])
        else:
            assert current is not None, f"{path}: {line!r} is in no section"
            current.append(words)
    return sections


def script_variables(path: Path) -> set[str]:
    """The environment variables a shell script reads: the upper-case ones it names."""
    return set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", path.read_text()))


def haproxy_binary() -> str:
    """Debian's haproxy (.ci/run installs it)."""
    found = shutil.which("haproxy")
    if found is None:
        raise AssertionError("no haproxy here: apt-get install haproxy")
    return found
