"""Many stateless service replicas on one Redis, and on a Redis Cluster: each request of
a client goes to the next replica, and what any replica answers agrees with what the
others did (each caches buffers' metadata: a buffer deleted and re-created through
another replica must not be read with the old layout)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from replay_service.service.redis_server import RedisServer
from replay_service.wire.codec import SAFETENSORS, decode_safetensors, encode_safetensors
from tests.cluster.local import LocalCluster
from tests.service.factories import TRACKED_SCHEMA, tracked_columns
from tests.support import ServiceProcess

pytestmark = pytest.mark.slow  # three services per backend


class RoundRobin:
    """One client over several replicas, as a load balancer without affinity would be."""

    def __init__(self, urls: list[str]) -> None:
        self._clients = [httpx.Client(base_url=url, timeout=30) for url in urls]
        self._next = itertools.cycle(self._clients)

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        return next(self._next).request(method, path, **options)

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture(scope="module", params=["one redis", "cluster"])
def replicas(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[RoundRobin]:
    folder = tmp_path_factory.mktemp("replicas")
    backend = (RedisServer(folder / "redis", appendfsync=None) if request.param == "one redis"
               else LocalCluster(folder / "cluster"))
    with backend:
        services = [ServiceProcess(backend.url, folder, segment_bytes=16_384).start()
                    for _ in range(3)]
        balancer = RoundRobin([service.url for service in services])
        try:
            yield balancer
        finally:
            balancer.close()
            for service in services:
                service.stop()


def store(lb: RoundRobin, name: str, ids: range) -> dict[str, Any]:
    reply = lb.request("POST", f"/buffers/{name}/transitions", content=encode_safetensors(
        tracked_columns(ids)), headers={"content-type": SAFETENSORS})
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


def held_ids(lb: RoundRobin, name: str) -> list[int]:
    size = lb.request("GET", f"/buffers/{name}/size").json()["size"]
    reply = lb.request("GET", f"/buffers/{name}/sample", params={
        "batch_size": size, "replace": False}, headers={"accept": SAFETENSORS})
    assert reply.status_code == 200, reply.text
    return sorted(int(i) for i in decode_safetensors(reply.content).columns["id"])


def test_every_replica_sees_what_the_others_did(replicas: RoundRobin) -> None:
    name = f"r-{uuid.uuid4().hex[:10]}"
    assert replicas.request("PUT", f"/buffers/{name}", json={
        "capacity": 300, "schema": TRACKED_SCHEMA}).status_code == 201
    inserted = [store(replicas, name, range(start, start + 50))["total_inserted"]
                for start in range(0, 300, 50)]
    assert inserted == [50, 100, 150, 200, 250, 300]  # every replica counts on from the last
    for _ in range(3):  # each replica samples once, every id back
        assert held_ids(replicas, name) == list(range(300))
    # Deleted through one replica and made again, smaller, through another: the third
    # still holds the old metadata in its cache and must notice.
    assert replicas.request("DELETE", f"/buffers/{name}").status_code == 204
    assert replicas.request("PUT", f"/buffers/{name}", json={
        "capacity": 40, "schema": TRACKED_SCHEMA}).status_code == 201
    for start in (1000, 1030, 1060):
        assert store(replicas, name, range(start, start + 10))["capacity"] == 40
    for _ in range(3):
        assert held_ids(replicas, name) == list(range(1000, 1010)) + list(
            range(1030, 1040)) + list(range(1060, 1070))
    infos = [replicas.request("GET", f"/buffers/{name}").json() for _ in range(3)]
    assert {info["capacity"] for info in infos} == {40}


def test_stores_spread_over_the_replicas_keep_every_transition_once(
        replicas: RoundRobin) -> None:
    """Stores into one buffer, each through the next replica: every id held once, and
    weights published through one are current on all."""
    name = f"r-{uuid.uuid4().hex[:10]}"
    assert replicas.request("PUT", f"/buffers/{name}", json={
        "capacity": 10_000, "schema": TRACKED_SCHEMA}).status_code == 201
    for start in range(0, 3000, 100):
        store(replicas, name, range(start, start + 100))
    assert held_ids(replicas, name) == list(range(3000))
    weights = replicas.request("PUT", f"/buffers/{name}/weights", content=encode_safetensors(
        {"w": np.zeros(2, np.float32)}), headers={"content-type": SAFETENSORS})
    etag = weights.headers["etag"]
    for _ in range(3):
        assert replicas.request("GET", f"/buffers/{name}/weights",
                                headers={"if-none-match": etag}).status_code == 304
