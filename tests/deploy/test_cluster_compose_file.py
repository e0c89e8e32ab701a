"""docker-compose.cluster.yml, checked without a Docker engine: Compose validates and
resolves it; its Redis nodes, cluster job, replicas and load balancer are held against one
another, against docker-compose.yml, the files they mount, and what the package reads."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from replay_service.service.app import create_app
from replay_service.service.auth import OPEN_PATHS
from tests.deploy.cluster import (
    cluster_config,
    haproxy_binary,
    haproxy_sections,
    mounted_file,
    redis_nodes,
    script_variables,
)
from tests.deploy.support import (
    CLUSTER_COMPOSE_FILE,
    compose,
    compose_config,
    option_variables,
    replay_command,
    setting_variables,
)
from tests.support import REPO

CLUSTER_DIR = REPO / "deploy" / "cluster"
NODE_CONFIG = CLUSTER_DIR / "redis-node.conf"
CLUSTER_JOB = CLUSTER_DIR / "create-cluster.sh"
LB_CONFIG = CLUSTER_DIR / "haproxy.cfg"
DOCS = REPO / "docs" / "cluster-deployment.md"
# The services docker-compose.yml defines and this file takes by `extends`, with what each
# may change: the wiring to the cluster and the load balancer.
SHARED = {"service": {"REPLAY_REDIS_URL"}, "collector": {"REPLAY_URL"},
          "trainer": {"REPLAY_URL"}, "tensorboard": set()}


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return cluster_config()


@pytest.fixture(scope="module")
def services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = config["services"]
    return services


@pytest.fixture(scope="module")
def lb_config() -> dict[str, list[list[str]]]:
    return haproxy_sections(LB_CONFIG)


def options(command: list[str]) -> dict[str, str]:
    """`--name value` pairs of a command line."""
    return {word: value for word, value in zip(command, command[1:], strict=False)
            if word.startswith("--")}


def directive(section: list[list[str]], *words: str) -> list[list[str]]:
    """The lines of a section that start with `words`, those words left out."""
    return [line[len(words):] for line in section if line[:len(words)] == list(words)]


def seconds(value: str) -> float:
    """An HAProxy time: milliseconds unless it says otherwise."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h)?", value)
    assert match, f"not a time: {value}"
    return int(match[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 0.001}[match[2]]


def variables_read(config: dict[str, Any], service: dict[str, Any]) -> set[str]:
    command = service["command"]
    replay = replay_command(command)
    if replay is not None:
        names = option_variables(replay)
        return names | setting_variables() if command[1] == "serve" else names
    if command[0] == "sh":  # the cluster job: its script, and redis-cli's password
        return script_variables(mounted_file(config, service, command[1])) | {"REDISCLI_AUTH"}
    return {"redis-server": {"REDISCLI_AUTH"}, "haproxy": set(), "tensorboard": set()}[
        command[0]]


def test_the_cluster_file_validates_with_every_variable_set(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("\n".join(f"{name}={value}" for name, value in {
        "REDIS_PASSWORD": "s3cret", "SERVICE_REPLICAS": "5", "COLLECTORS": "4",
        "SERVICE_PORT": "18000", "LB_STATS_PORT": "18404", "LB_IMAGE": "haproxy:3.0-alpine",
        "REDIS_IMAGE": "redis:7.4-alpine", "REPLAY_REPLICA_ACKS": "1",
        "REPLAY_WRITE_KEY": "a-write-key-of-some-length", "PUBLISH_ADDRESS": "0.0.0.0",
    }.items()))
    result = compose("config", "--format", "json", env_file=env_file, file=CLUSTER_COMPOSE_FILE)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert services["service"]["deploy"]["replicas"] == 5
    assert services["collector"]["deploy"]["replicas"] == 4
    assert services["service"]["environment"]["REPLAY_REDIS_URL"] == (
        "redis://:s3cret@redis-1:6379")
    assert services["service"]["environment"]["REPLAY_REPLICA_ACKS"] == "1"
    assert services["lb"]["image"] == "haproxy:3.0-alpine"
    assert [(port["host_ip"], port["published"]) for port in services["lb"]["ports"]] == [
        ("0.0.0.0", "18000"), ("0.0.0.0", "18404")]
    for name, node in redis_nodes(services).items():
        assert node["image"] == "redis:7.4-alpine"
        arguments = options(node["command"])
        assert arguments["--requirepass"] == arguments["--masterauth"] == "s3cret", name
        assert node["environment"]["REDISCLI_AUTH"] == "s3cret"
    assert services["cluster-init"]["environment"]["REDISCLI_AUTH"] == "s3cret"
    for name in ("collector", "trainer"):
        assert services[name]["environment"]["REPLAY_API_KEY"] == "a-write-key-of-some-length"


def test_the_service_collectors_trainer_and_tensorboard_are_docker_compose_yml_s(
        services: dict[str, dict[str, Any]]) -> None:
    base = compose_config()["services"]
    for name, rewired in SHARED.items():
        for key in ("image", "build", "command", "pull_policy", "volumes"):
            assert services[name].get(key) == base[name].get(key), f"{name}: {key} differs"
        ours, theirs = services[name].get("environment", {}), base[name].get("environment", {})
        assert set(ours) >= set(theirs), f"{name}: lost {set(theirs) - set(ours)}"
        changed = {key for key in theirs if ours[key] != theirs[key]}
        assert changed == rewired, f"{name}: only the wiring changes, not {changed - rewired}"


def test_three_masters_with_a_replica_each(config: dict[str, Any],
                                           services: dict[str, dict[str, Any]]) -> None:
    nodes = redis_nodes(services)
    job = services["cluster-init"]
    listed = job["environment"]["CLUSTER_NODES"].split()
    assert sorted(listed) == sorted(f"{name}:6379" for name in nodes), (
        "the cluster job joins every node, each once")
    replicas = int(job["environment"]["CLUSTER_REPLICAS"])
    masters, remainder = divmod(len(listed), 1 + replicas)
    assert (masters, replicas, remainder) == (3, 1, 0)
    assert job["depends_on"] == {name: {"condition": "service_healthy", "required": True}
                                 for name in nodes}
    assert job["command"][0] == "sh" and mounted_file(config, job, job["command"][1]) == (
        CLUSTER_JOB)
    assert job["restart"] == "no" and not job.get("ports")
    assert job["image"] == next(iter(nodes.values()))["image"], "the nodes' redis-cli"


def test_every_node_is_a_durable_private_cluster_node_announcing_its_name(
        config: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    settings = dict(line.split(None, 1) for line in NODE_CONFIG.read_text().splitlines()
                    if line.strip() and not line.startswith("#"))
    assert settings["cluster-enabled"] == "yes"
    assert settings["cluster-preferred-endpoint-type"] == "hostname"
    assert (settings["appendonly"], settings["appendfsync"]) == ("yes", "everysec")
    volumes = set()
    for name, node in redis_nodes(services).items():
        assert mounted_file(config, node, node["command"][1]) == NODE_CONFIG
        arguments = options(node["command"])
        assert arguments["--cluster-announce-hostname"] == name, (
            "clients are told a name that resolves to this node")
        assert arguments["--requirepass"] == arguments["--masterauth"] == "replay"
        assert node["environment"]["REDISCLI_AUTH"] == "replay"
        [volume] = node["volumes"]
        assert (volume["type"], volume["target"]) == ("volume", settings["dir"])
        volumes.add(volume["source"])
        assert not node.get("ports"), f"{name} must not be published to the host"
        assert node["healthcheck"]["test"][0] == "CMD-SHELL"
        assert node["restart"] == "unless-stopped"
    assert len(volumes) == 6, "each node its own volume"


def test_the_replicas_are_unpublished_and_point_at_the_cluster(
        services: dict[str, dict[str, Any]]) -> None:
    service = services["service"]
    assert service["deploy"]["replicas"] == 3
    assert not service.get("ports") and "container_name" not in service
    environment = service["environment"]
    url = urlsplit(environment["REPLAY_REDIS_URL"])
    assert url.hostname in redis_nodes(services) and url.port == 6379
    assert url.password == "replay"
    assert environment["REPLAY_REDIS_CLUSTER"] == "true"
    assert environment["REPLAY_HOST"] == "0.0.0.0"
    assert service["depends_on"] == {"cluster-init": {
        "condition": "service_completed_successfully", "required": True}}


def test_every_variable_set_is_one_the_program_reads(
        config: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        unread = set(service.get("environment") or {}) - variables_read(config, service)
        assert not unread, f"{name} sets variables that {service['command']} never reads"


def test_every_setting_reaches_the_replicas(services: dict[str, dict[str, Any]]) -> None:
    # All but the private Redis's folder: the replica acks matter on a cluster.
    missing = setting_variables() - {"REPLAY_DATA_DIR"} - set(
        services["service"]["environment"])
    assert not missing, "add these to the service's environment"


def test_collectors_and_trainer_reach_the_service_through_the_load_balancer(
        services: dict[str, dict[str, Any]], lb_config: dict[str, list[list[str]]]) -> None:
    [[bind]] = directive(lb_config["frontend replay"], "bind")
    port = int(bind.rsplit(":", 1)[1])
    for name in ("collector", "trainer"):
        assert services[name]["environment"]["REPLAY_URL"] == f"http://lb:{port}"
        assert services[name]["depends_on"] == {"lb": {"condition": "service_healthy",
                                                       "required": True}}
    dependents = {name for name, service in services.items()
                  if "service" in (service.get("depends_on") or {})}
    assert dependents == {"lb"}
    published = {name: [entry["target"] for entry in service["ports"]]
                 for name, service in services.items() if service.get("ports")}
    assert published == {"lb": [port, 8404], "tensorboard": [6006]}
    assert all(entry["host_ip"] == "127.0.0.1" for entry in services["lb"]["ports"])


def test_the_load_balancer_spreads_over_every_replica_it_finds(
        config: dict[str, Any], services: dict[str, dict[str, Any]],
        lb_config: dict[str, list[list[str]]]) -> None:
    lb = services["lb"]
    assert mounted_file(config, lb, lb["command"][lb["command"].index("-f") + 1]) == LB_CONFIG
    [[backend]] = directive(lb_config["frontend replay"], "default_backend")
    replicas = lb_config[f"backend {backend}"]
    [[_, slots, address, *server]] = directive(replicas, "server-template")
    host, port = address.split(":")
    assert host == "service" and int(port) == int(
        services["service"]["environment"]["REPLAY_PORT"])
    assert int(slots) >= 2 * services["service"]["deploy"]["replicas"], "room to scale"
    # The name is asked of Docker's DNS again and again, not once at start.
    resolvers = server[server.index("resolvers") + 1]
    assert ["dns", "127.0.0.11:53"] in directive(lb_config[f"resolvers {resolvers}"],
                                                 "nameserver")
    assert "check" in server
    [balance] = directive(replicas, "balance")
    assert balance[0] in {"roundrobin", "leastconn", "random"}, "every request balanced"
    [[method, path]] = directive(replicas, "option", "httpchk")
    paths = create_app().openapi()["paths"]
    assert method == "GET" and "get" in paths[path] and path in OPEN_PATHS
    # The container's healthcheck asks the LB's own health page, which fails with no replica.
    [[monitor]] = directive(lb_config["frontend replay"], "monitor-uri")
    assert lb["healthcheck"]["test"][-1] == f"http://127.0.0.1:{port}{monitor}"
    assert ["fail", "if", "{", "nbsrv(" + backend + ")", "lt", "1", "}"] in directive(
        lb_config["frontend replay"], "monitor")


def test_the_load_balancer_lets_through_what_the_service_accepts(
        lb_config: dict[str, list[list[str]]]) -> None:
    words = [word for section in lb_config.values() for line in section for word in line]
    # No body limit below REPLAY_MAX_BODY_BYTES (256 MiB), and no buffering of bodies.
    assert not {"req.body_size", "req.body_len", "http-buffer-request"} & set(words)
    assert not any("content-length" in word.lower() for word in words)
    # Answers that take long: a sample waits up to its timeout_s for its rate limit.
    longest = max(parameter["schema"].get("maximum", 0)
                  for path in create_app().openapi()["paths"].values()
                  for operation in path.values()
                  for parameter in operation.get("parameters", [])
                  if parameter["name"] in {"timeout_s", "wait_s"})
    assert longest == 60
    defaults = lb_config["defaults"]
    for side in ("server", "client"):
        [[value]] = directive(defaults, "timeout", side)
        assert seconds(value) > longest, f"timeout {side} cuts a long-polled sample short"
    # Only a connect that failed is tried again: a store sent twice could be stored twice.
    assert directive(defaults, "retry-on") in ([], [["conn-failure"]])


def test_haproxy_accepts_the_config() -> None:
    checked = subprocess.run([haproxy_binary(), "-c", "-f", str(LB_CONFIG)],
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_cluster_job_is_plain_sh() -> None:
    checked = subprocess.run(["sh", "-n", str(CLUSTER_JOB)], capture_output=True, text=True,
                             timeout=30)
    assert checked.returncode == 0, checked.stderr
    assert "local " not in CLUSTER_JOB.read_text() and "[[" not in CLUSTER_JOB.read_text()


def test_every_cluster_variable_is_documented() -> None:
    text = re.sub(r"#.*", "", CLUSTER_COMPOSE_FILE.read_text())
    names = set(re.findall(r"\$\{(\w+)", text)) | set(
        re.findall(r"^\s+(REPLAY_\w+):\s*$", text, re.M))
    docs = DOCS.read_text()
    undocumented = {name for name in names if f"`{name}`" not in docs + (
        REPO / "README.md").read_text()}
    assert not undocumented, f"document these in {DOCS.name}"
    own = names - set(re.findall(r"\$\{(\w+)", (REPO / "docker-compose.yml").read_text()))
    assert {"SERVICE_REPLICAS", "LB_IMAGE", "LB_STATS_PORT"} <= own
    assert all(f"`{name}`" in docs for name in own)
