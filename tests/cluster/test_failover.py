"""Failovers under load: writers store while masters are killed (SIGKILL), one after
another, and come back as replicas. With REPLAY_REPLICA_ACKS=1 no acknowledged
transition is lost; without it, what was lost is counted (the run's figures are
printed in the terminal summary: `failover tally`)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from replay_service.service.redis_server import RedisServer
from replay_service.service.storage import keys
from replay_service.wire.codec import SAFETENSORS, decode_safetensors, encode_safetensors
from tests.cluster.local import LocalCluster
from tests.cluster.tally import FAILOVERS
from tests.service.factories import TRACKED_SCHEMA, tracked_columns
from tests.support import ServiceProcess

pytestmark = pytest.mark.slow  # three failovers of a few seconds each

ROUNDS = 3
BATCH = 20


@dataclass
class Writer:
    """Stores batches of fresh ids, each retried with its Idempotency-Key until stored
    (as the SDK does); counts what was acknowledged."""

    url: str
    buffer: str
    acknowledged: list[int] = field(default_factory=list)
    refusals: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        next_id = 0
        with httpx.Client(base_url=self.url, timeout=10) as http:
            while not self.stop.is_set():
                ids = range(next_id, next_id + BATCH)
                body = encode_safetensors(tracked_columns(ids))
                key = uuid.uuid4().hex
                while not self.stop.is_set():
                    try:
                        reply = http.post(f"/buffers/{self.buffer}/transitions", content=body,
                                          headers={"content-type": SAFETENSORS,
                                                   "idempotency-key": key})
                    except httpx.TransportError:
                        self.refusals += 1
                        continue
                    if reply.status_code == 200:
                        self.acknowledged.extend(ids)
                        break
                    if reply.status_code != 503:
                        self.errors.append(reply.text)
                        return
                    self.refusals += 1
                    time.sleep(0.05)
                next_id += BATCH

    def progress_after(self, count: int, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.acknowledged) <= count + BATCH and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(self.acknowledged) > count + BATCH, f"{self.buffer} stopped storing"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("failover-cluster"),
                      appendfsync="everysec") as started:
        yield started


def test_replica_acks_lose_nothing_acknowledged_over_repeated_failovers(
        cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> None:
    logs = tmp_path_factory.mktemp("failover-logs")
    acked = ServiceProcess(cluster.url, logs, replica_acks=1, replica_ack_timeout_s=2).start()
    plain = ServiceProcess(cluster.url, logs).start()
    try:
        master = cluster.master_of(keys.meta("fo-0"))
        names = [name for name in (f"fo-{i}" for i in range(2000))
                 if cluster.master_of(keys.meta(name)) == master][:2]
        writers = [Writer(acked.url, names[0]), Writer(plain.url, names[1])]
        for writer in writers:
            assert httpx.put(f"{writer.url}/buffers/{writer.buffer}", json={
                "capacity": 1_000_000, "schema": TRACKED_SCHEMA}).status_code == 201
        threads = [threading.Thread(target=writer.run, daemon=True) for writer in writers]
        for thread in threads:
            thread.start()
        for _ in range(ROUNDS):
            time.sleep(1.0)
            victim = cluster.node_at(cluster.master_of(keys.meta(names[0])))
            victim.kill()
            # Counted after the kill: what is acknowledged beyond it (and beyond a batch
            # in flight) went to the new master.
            before = [len(writer.acknowledged) for writer in writers]
            writers[1].progress_after(before[1])  # its replica took over
            victim.start()  # back with its data, then a replica of the new master
            cluster.wait_replica(victim)
            cluster.wait_ok(60)
            writers[0].progress_after(before[0])  # acknowledged again once replicated
        for writer in writers:
            writer.stop.set()
        for thread in threads:
            thread.join(30)
        held = [_held_ids(writer) for writer in writers]
    finally:
        acked.stop()
        plain.stop()
    for writer, ids in zip(writers, held, strict=True):
        assert not writer.errors, writer.errors
        lost = set(writer.acknowledged) - set(ids)
        FAILOVERS.record(replica_acks=1 if writer is writers[0] else 0, failovers=ROUNDS,
                         acknowledged=len(writer.acknowledged), lost=len(lost),
                         duplicated=len(ids) - len(set(ids)), refusals=writer.refusals)
    acked_writer, acked_ids = writers[0], held[0]
    assert not set(acked_writer.acknowledged) - set(acked_ids), "acknowledged and lost"
    assert len(acked_ids) == len(set(acked_ids)), "stored twice"


def _held_ids(writer: Writer) -> list[int]:
    with httpx.Client(base_url=writer.url, timeout=60) as http:
        size = http.get(f"/buffers/{writer.buffer}/size").json()["size"]
        reply = http.get(f"/buffers/{writer.buffer}/sample", params={
            "batch_size": size, "replace": False}, headers={"accept": SAFETENSORS})
        assert reply.status_code == 200, reply.text
        return [int(i) for i in decode_safetensors(reply.content).columns["id"]]


def test_a_store_no_replica_confirms_is_not_acknowledged(
        redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> None:
    """One Redis without replicas: with REPLAY_REPLICA_ACKS=1 no store can be vouched for,
    so each is a 503 that says so (and a retry with its key is not stored twice)."""
    service = ServiceProcess(redis_server.url, tmp_path_factory.mktemp("acks-logs"),
                             replica_acks=1, replica_ack_timeout_s=0.2).start()
    try:
        with httpx.Client(base_url=service.url) as http:
            name = f"acks-{uuid.uuid4().hex[:8]}"
            http.put(f"/buffers/{name}", json={"capacity": 100, "schema": TRACKED_SCHEMA})
            body = encode_safetensors(tracked_columns(range(5)))
            for _ in range(2):
                refused = http.post(f"/buffers/{name}/transitions", content=body, headers={
                    "content-type": SAFETENSORS, "idempotency-key": "once"})
                assert refused.status_code == 503
                assert refused.headers["retry-after"] == "1"
                assert "reached 0 of the 1 replica" in refused.json()["message"]
            assert http.get(f"/buffers/{name}/size").json()["size"] == 5
    finally:
        service.stop()
