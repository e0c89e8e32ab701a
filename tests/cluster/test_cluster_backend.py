"""The service on a Redis Cluster (3 masters, a replica each) works as on one Redis.

Each buffer's keys share its hash tag, so its scripts run on the master that holds
its slot; buffers spread over the masters. What cannot be one script on a cluster
(the shared registry, the memory reservations across buffers) is checked here too.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import redis

from replay_service.client.sync_client import ReplayClient
from replay_service.service.storage import keys
from replay_service.wire.codec import SAFETENSORS, decode_safetensors, encode_safetensors
from replay_service.wire.schema import Schema
from tests.cluster.local import LocalCluster
from tests.service.factories import TRACKED_SCHEMA, tracked_columns
from tests.support import ServiceProcess

pytestmark = pytest.mark.slow  # six redis-servers and a cluster handshake


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("cluster")) as started:
        yield started


@pytest.fixture(scope="module")
def service(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[ServiceProcess]:
    """Pointed at one node, left to find out by itself that it is a cluster (the `http`
    fixture of tests/conftest.py then talks to this service)."""
    process = ServiceProcess(cluster.url, tmp_path_factory.mktemp("logs"),
                             segment_bytes=1 << 20).start()
    yield process
    process.stop()


def fresh() -> str:
    return f"c-{uuid.uuid4().hex[:10]}"


def create(http: httpx.Client, name: str, **extra: object) -> None:
    reply = http.put(f"/buffers/{name}", json={"capacity": 1000, "schema": TRACKED_SCHEMA,
                                               **extra})
    assert reply.status_code == 201, reply.text


def store(http: httpx.Client, name: str, ids: range, **headers: str) -> httpx.Response:
    reply = http.post(f"/buffers/{name}/transitions", content=encode_safetensors(
        tracked_columns(ids)), headers={"content-type": SAFETENSORS, **headers})
    assert reply.status_code == 200, reply.text
    return reply


def test_buffers_spread_over_the_masters_and_each_works(cluster: LocalCluster,
                                                         http: httpx.Client) -> None:
    names = [fresh() for _ in range(12)]
    masters = {cluster.master_of(keys.meta(name)) for name in names}
    assert len(masters) == 3  # 12 random names on 3 masters: all hit, but for 1 in 10^4
    for name in names:
        create(http, name)
        store(http, name, range(100))
        sampled = http.get(f"/buffers/{name}/sample", params={"batch_size": 100,
                                                              "replace": False},
                           headers={"accept": SAFETENSORS})
        assert sorted(decode_safetensors(sampled.content).columns["id"]) == list(range(100))
    listed = {buffer["name"] for buffer in http.get("/buffers").json()["buffers"]}
    assert set(names) <= listed
    for name in names:
        assert http.delete(f"/buffers/{name}").status_code == 204
    listed = {buffer["name"] for buffer in http.get("/buffers").json()["buffers"]}
    assert not set(names) & listed
    assert http.get(f"/buffers/{names[0]}/size").status_code == 404


def test_a_buffer_made_again_starts_empty(http: httpx.Client) -> None:
    name = fresh()
    create(http, name)
    store(http, name, range(10))
    assert http.delete(f"/buffers/{name}").status_code == 204
    create(http, name)
    assert http.get(f"/buffers/{name}/size").json()["size"] == 0


def test_the_first_store_sets_the_schema(http: httpx.Client) -> None:
    name = fresh()
    assert http.put(f"/buffers/{name}", json={"capacity": 100}).status_code == 201
    store(http, name, range(5))
    assert http.get(f"/buffers/{name}").json()["schema"] == Schema.model_validate(
        TRACKED_SCHEMA).model_dump(mode="json")


def test_prioritized_replay_and_priority_updates(http: httpx.Client) -> None:
    name = fresh()
    create(http, name, prioritized={"alpha": 1.0})
    store(http, name, range(50))
    sampled = http.get(f"/buffers/{name}/sample", params={"batch_size": 8}).json()
    assert len(sampled["weights"]) == 8
    updated = http.post(f"/buffers/{name}/priorities", json={
        "indices": sampled["indices"], "inserted": sampled["inserted"],
        "priorities": [0.0] * 8}).json()
    assert updated["updated"] + updated["skipped"] == 8


def test_idempotent_stores_and_rate_limits(http: httpx.Client) -> None:
    name = fresh()
    create(http, name, rate_limit={"min_size": 20})
    first = store(http, name, range(10), **{"idempotency-key": "batch-1"}).json()
    again = store(http, name, range(10), **{"idempotency-key": "batch-1"}).json()
    assert again == first
    assert http.get(f"/buffers/{name}/size").json()["size"] == 10
    assert http.get(f"/buffers/{name}/sample", params={"batch_size": 2}).status_code == 429
    store(http, name, range(10, 20))
    assert http.get(f"/buffers/{name}/sample", params={"batch_size": 2}).status_code == 200


def test_weights_episodes_and_ordered_reads(http: httpx.Client) -> None:
    name = fresh()
    create(http, name)
    store(http, name, range(30))
    published = http.put(f"/buffers/{name}/weights", content=encode_safetensors(
        {"w": np.ones(3, np.float32)}), headers={"content-type": SAFETENSORS})
    etag = published.headers["etag"]
    assert http.get(f"/buffers/{name}/weights", headers={"if-none-match": etag}
                    ).status_code == 304
    assert http.post(f"/buffers/{name}/episodes", json={"episodes": [
        {"return": 3.0, "length": 3, "source": "c0"}]}).status_code in (200, 201)
    assert [e["return"] for e in http.get(f"/buffers/{name}/episodes").json()["episodes"]
            ] == [3.0]
    read = http.get(f"/buffers/{name}/transitions", params={"first": 5, "count": 10},
                    headers={"accept": SAFETENSORS})
    assert list(decode_safetensors(read.content).columns["id"]) == list(range(5, 15))


def test_the_sdk_and_the_metrics_see_the_cluster(service: ServiceProcess,
                                                  http: httpx.Client) -> None:
    name = fresh()
    with ReplayClient(service.url, name, capacity=500) as client:
        client.store_batch(tracked_columns(range(64)), wait=True)
        assert len(client) == 64
        assert client.sample(16).id.shape == (16,)
    scraped = http.get("/metrics").text
    assert f'replay_buffer_size{{buffer="{name}"}} 64.0' in scraped
    assert "replay_redis_up 1.0" in scraped


def test_a_buffer_larger_than_a_node_is_refused(cluster: LocalCluster,
                                               http: httpx.Client) -> None:
    """Each master's maxmemory holds (set alike on every node, as a deployment would): a
    ring no node could hold is refused whole, before anything is written."""
    nodes = [redis.Redis(port=node.port) for node in cluster.nodes]
    try:
        for node in nodes:
            node.config_set("maxmemory", 100 * 1024 * 1024)
        name = fresh()
        refused = http.put(f"/buffers/{name}", json={"capacity": 2_000_000,
                                                     "schema": TRACKED_SCHEMA})
        assert refused.status_code == 507, refused.text
        assert http.get(f"/buffers/{name}").status_code == 404
        assert name not in {b["name"] for b in http.get("/buffers").json()["buffers"]}
        create(http, name)  # a ring that fits is still made
    finally:
        for node in nodes:
            node.config_set("maxmemory", 0)
            node.close()


def test_a_buffer_larger_than_a_node_fits_sharded_over_the_masters(
        cluster: LocalCluster, http: httpx.Client) -> None:
    """The ring refused above, in three shards: one on each master, and one buffer to
    its users (stores spread, samples cover every shard, delete removes them all)."""
    nodes = [redis.Redis(port=node.port) for node in cluster.nodes]
    try:
        for node in nodes:
            node.config_set("maxmemory", 100 * 1024 * 1024)
        name = fresh()
        made = http.put(f"/buffers/{name}", json={"capacity": 2_000_000, "shards": 3,
                                                  "schema": TRACKED_SCHEMA})
        assert made.status_code == 201, made.text
        shards = held_by_master(cluster, keys.meta(name), "shards").decode().split(",")
        assert len({cluster.master_of(keys.meta(shard)) for shard in shards}) == 3
        for first in range(0, 600, 20):
            store(http, name, range(first, first + 20))
        info = http.get(f"/buffers/{name}").json()
        assert [shard["size"] for shard in info["per_shard"]] == [200, 200, 200]
        sampled = http.get(f"/buffers/{name}/sample", params={"batch_size": 600,
                                                              "replace": False},
                           headers={"accept": SAFETENSORS})
        assert sorted(decode_safetensors(sampled.content).columns["id"]) == list(range(600))
        assert http.delete(f"/buffers/{name}").status_code == 204
        assert not [shard for shard in shards
                    if held_by_master(cluster, keys.meta(shard), "capacity")]
    finally:
        for node in nodes:
            node.config_set("maxmemory", 0)
            node.close()


def held_by_master(cluster: LocalCluster, key: str, field: str) -> bytes | None:
    with redis.Redis(port=cluster.master_of(key)) as master:
        value: bytes | None = master.hget(key, field)
        return value


def test_prioritized_replay_over_shards_on_several_masters(http: httpx.Client) -> None:
    name = fresh()
    create(http, name, prioritized={"alpha": 1.0}, shards=3)
    for first in range(0, 60, 10):
        store(http, name, range(first, first + 10))
    sampled = http.get(f"/buffers/{name}/sample", params={"batch_size": 32}).json()
    assert len(sampled["weights"]) == 32 and max(sampled["weights"]) == 1.0
    updated = http.post(f"/buffers/{name}/priorities", json={
        "indices": sampled["indices"], "inserted": sampled["inserted"],
        "priorities": [0.5] * 32}).json()
    assert updated == {"updated": 32, "skipped": 0}


def test_a_master_killed_answers_503_then_its_replica_takes_over(
        cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> None:
    """SIGKILL the master of a buffer's slot: while its replica is promoted the service
    answers 503 with Retry-After, never anything else, and then works again by itself.
    Last in this module: the cluster keeps one master fewer."""
    service = ServiceProcess(cluster.url, tmp_path_factory.mktemp("failover-logs")).start()
    try:
        with httpx.Client(base_url=service.url, timeout=30) as http:
            name = next(name for name in (fresh() for _ in range(1000))
                        if cluster.master_of(keys.meta(name)) != cluster.nodes[0].port)
            create(http, name)
            store(http, name, range(10))
            victim = next(node for node in cluster.nodes
                          if node.port == cluster.master_of(keys.meta(name)))
            victim.kill()
            answers = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                reply = http.post(f"/buffers/{name}/transitions", content=encode_safetensors(
                    tracked_columns(range(10, 12))), headers={"content-type": SAFETENSORS})
                answers.append(reply.status_code)
                if reply.status_code == 200:
                    break
                assert reply.status_code == 503, reply.text
                assert reply.headers["retry-after"] == "1"
                time.sleep(0.2)
            assert answers[-1] == 200, answers
            assert 503 in answers  # the window was seen, not slept through
            assert http.get(f"/buffers/{name}/size").status_code == 200
    finally:
        service.stop()
