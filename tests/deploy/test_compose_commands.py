"""The commands docker-compose.yml runs, run here as Compose would start them: the same
argument lists and environments (as `docker-compose config` resolves them), against a
redis-server started with the compose file's own arguments. Only what a container
changes is changed: host names and ports become loopback ones, /runs a temporary folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from replay_service.service.redis_server import find_redis_server, free_port
from tests.deploy.processes import Container, wait_for
from tests.deploy.support import compose_config, dockerfile_stages

PASSWORD = "compose-test"
BUFFER = "compose-test"
KEY = "compose-test-write-key"
BUDGET = 1_536  # env steps: four training rounds after 512 random ones
VARIABLES = {"REDIS_PASSWORD": PASSWORD, "REPLAY_BUFFER": BUFFER, "REPLAY_WRITE_KEY": KEY,
             "REPLAY_LEARNING_STARTS": "512", "REPLAY_TOTAL_ENV_STEPS": str(BUDGET)}


class Host:
    """What a container would see: its service's environment, and loopback addresses
    where the compose network has names."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.ports = {"redis:6379": free_port(), "service:8000": free_port()}
        self.runs = tmp_path / "runs"
        self.volumes = {"/runs": self.runs, "/data": tmp_path / "redis-data"}
        for folder in self.volumes.values():
            folder.mkdir()
        self.bin = Path(sys.executable).parent
        self.containers: list[Container] = []

    def localize(self, value: str) -> str:
        for address, port in self.ports.items():
            value = value.replace(address, f"127.0.0.1:{port}")
        return str(self.volumes[value]) if value in self.volumes else value

    def start(self, name: str, service: dict[str, Any], *extra: str,
              replace: dict[str, str] | None = None) -> Container:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("REPLAY_")}
        env |= {key: self.localize(value)
                for key, value in (service.get("environment") or {}).items()
                if value is not None}
        env |= replace or {}
        command = [self.localize(part) for part in service["command"]]
        # The program: Redis's wherever it is, the others from this environment's bin.
        command[0] = (find_redis_server() if command[0] == "redis-server"
                      else str(self.bin / command[0]))
        container = Container(name, [*command, *extra], env, self.tmp_path / f"{name}.log")
        self.containers.append(container)
        return container

    def stop_all(self) -> None:
        for container in reversed(self.containers):
            container.stop()

    def logs(self) -> str:
        """The end of every log, for a failure message."""
        return "\n".join(f"--- {container.name} (exit {container.process.poll()}):\n"
                         f"{container.output(1500)}" for container in self.containers)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    host = Host(tmp_path)
    yield host
    host.stop_all()


@pytest.mark.slow
def test_the_compose_commands_learn_cartpole_together(host: Host, tmp_path: Path) -> None:
    services = compose_config(VARIABLES)["services"]

    # redis: the compose file's arguments, on a loopback port.
    redis_server = host.start("redis", services["redis"], "--port",
                              str(host.ports["redis:6379"]), "--bind", "127.0.0.1")
    with redis.Redis(port=host.ports["redis:6379"], password=PASSWORD) as client:
        wait_for("redis answers with the password", client.ping, redis_server)
        settings = client.config_get("append*")
        assert (settings["appendonly"], settings["appendfsync"]) == ("yes", "everysec")
        assert client.config_get("dir")["dir"] == str(host.volumes["/data"])
    with redis.Redis(port=host.ports["redis:6379"]) as anonymous, pytest.raises(
            redis.AuthenticationError):
        anonymous.ping()

    # service: listening on loopback here, where a container listens on all interfaces.
    port = host.ports["service:8000"]
    service = host.start("service", services["service"],
                         replace={"REPLAY_HOST": "127.0.0.1", "REPLAY_PORT": str(port)})
    url = f"http://127.0.0.1:{port}"
    wait_for("the service is ready", lambda: httpx.get(f"{url}/readyz").status_code == 200,
             service)
    # The image's HEALTHCHECK, run as Docker runs it.
    [healthcheck] = dockerfile_stages()["service"].arguments("HEALTHCHECK")
    check = json.loads(healthcheck[healthcheck.index("CMD ") + 4:])
    assert subprocess.run(check, env={**os.environ, "REPLAY_PORT": str(port)},
                          timeout=30).returncode == 0

    # collectors, as many as `deploy.replicas` says; then the trainer.
    replicas = services["collector"]["deploy"]["replicas"]
    collectors = [host.start(f"collector-{index}", services["collector"])
                  for index in range(replicas)]
    trainer = host.start("trainer", services["trainer"])
    # Not solved in this budget: exit 1, as documented.
    assert trainer.wait(150) == 1, host.logs()
    assert "not solved: " in trainer.output(), trainer.output()
    for collector in collectors:  # the trainer's last weights say stop
        assert collector.wait(30) == 0, host.logs()
        assert "done: " in collector.output(), collector.output()

    # The key reached the collectors and the trainer: the service wants it.
    assert httpx.get(f"{url}/buffers/{BUFFER}/size").status_code == 401
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as http:
        size = http.get(f"/buffers/{BUFFER}/size").json()
        episodes = http.get(f"/buffers/{BUFFER}/episodes").json()["episodes"]
    assert size["total_inserted"] >= BUDGET and size["total_sampled"] > 0
    assert len({episode["source"] for episode in episodes}) == replicas
    [run] = host.runs.iterdir()
    assert list(run.glob("events.out.tfevents.*")) and (run / "learning_curve.png").exists()
    assert list(run.glob("*.safetensors"))

    # TensorBoard reads the runs as the compose file starts it (loopback, not all interfaces).
    tensorboard_port = free_port()
    tensorboard_service = dict(services["tensorboard"])
    tensorboard_service["command"] = [
        part for part in tensorboard_service["command"] if part != "--bind_all"]
    tensorboard_service["command"][tensorboard_service["command"].index("--port") + 1] = str(
        tensorboard_port)
    tensorboard = host.start("tensorboard", tensorboard_service, "--host", "127.0.0.1")
    wait_for("TensorBoard answers", lambda: httpx.get(
        f"http://127.0.0.1:{tensorboard_port}/data/runs").json() == [run.name], tensorboard,
        timeout_s=60)
