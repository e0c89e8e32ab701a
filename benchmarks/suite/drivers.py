"""One store or one sample, as each subject does it; run inside the client processes.

Payloads are cut and encoded once, before the clock starts: the raw subjects (Redis
forms, HTTP) measure what the server side costs, each through the leanest client of
its kind (redis-py with hiredis; the standard library's http.client on a kept-alive
connection, which cost 140 us of CPU per call where httpx took 500); the SDK subject
does everything a user's call does (casting, encoding, idempotency key, retries,
decoding).
"""

from __future__ import annotations

import http.client
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import orjson
import redis

from replay_service.benchmarks.suite.payloads import PAYLOADS, Payload
from replay_service.benchmarks.suite.plan import Case, RawForm, Subject
from replay_service.benchmarks.suite.raw_hash import HashRing
from replay_service.benchmarks.suite.raw_ring import PipelinedRing, ScriptedRing
from replay_service.benchmarks.suite.replies import exchanged
from replay_service.client.sync_client import ReplayClient
from replay_service.service.storage.records import pack, unpack
from replay_service.trainer.local_buffer import LocalReplayBuffer
from replay_service.wire.codec import (
    INDICES_TENSOR,
    JSON,
    SAFETENSORS,
    decode_safetensors,
)

__all__ = ["ClientState", "RawRing", "Target", "Task", "fill_local", "raw_ring"]

RawRing = PipelinedRing | ScriptedRing | HashRing

Operation = Callable[[], int]
"""Does one store or sample; returns the transitions it moved."""


@dataclass(frozen=True)
class Target:
    """Where the subject's transitions live: a service buffer (and the raw rings of the same
    name), or an in-process buffer of the same capacity and fill."""

    buffer: str
    capacity: int
    fill: int
    redis_url: str
    urls: dict[int, str]
    """Service URL by uvicorn workers."""


@dataclass(frozen=True)
class Task:
    subject: Subject
    case: Case
    target: Target
    seconds: float
    index: int
    """This client's number among the case's clients."""
    seed: int


class ClientState:
    """What a client process keeps between tasks: connections, encoded bodies, buffers."""

    def __init__(self) -> None:
        self._http: dict[str, http.client.HTTPConnection] = {}
        self._redis: dict[str, redis.Redis] = {}
        self._sdk: dict[tuple[str, str], ReplayClient] = {}
        self._rings: dict[tuple[str, str, int, RawForm], RawRing] = {}
        self._columns_cache: dict[tuple[str, int, str], dict[str, np.ndarray]] = {}
        self._bodies: dict[tuple[str, int, str], bytes] = {}
        self._local: tuple[tuple[str, int], LocalReplayBuffer] | None = None
        self._warmed: set[tuple[Subject, Case, str]] = set()

    def operation(self, task: Task) -> Operation:
        subject, case, target = task.subject, task.case, task.target
        payload = PAYLOADS[case.payload]
        rng = np.random.default_rng(task.seed)
        if subject.kind == "in-process":
            return self._in_process(payload, case, target, rng)
        if subject.kind == "redis":
            assert subject.form is not None
            return self._raw(subject.form, payload, case, target, task.index, rng)
        assert subject.workers is not None and subject.fmt is not None
        url = target.urls[subject.workers]
        if subject.kind == "sdk":
            return self._through_sdk(payload, case, url, target.buffer)
        return self._over_http(payload, case, url, target.buffer, subject.fmt)

    def warm(self, task: Task) -> bool:
        """True the first time this subject meets this case and buffer: time to warm up."""
        key = (task.subject, task.case, task.target.buffer)
        if key in self._warmed:
            return False
        self._warmed.add(key)
        return True

    def settle(self, task: Task) -> None:
        """Wait until what the task stored is stored: the SDK leaves its stores to a
        background sender."""
        if task.subject.kind == "sdk" and task.case.op == "store":
            assert task.subject.workers is not None
            self._sdk[(task.target.urls[task.subject.workers], task.target.buffer)].flush()

    def close(self) -> None:
        for sdk in self._sdk.values():
            sdk.close()
        for connection in self._http.values():
            connection.close()
        for client in self._redis.values():
            client.close()
        self._local = None

    def _columns(self, payload: Payload, batch: int) -> dict[str, np.ndarray]:
        key = (payload.name, batch, "columns")
        if key not in self._columns_cache:
            self._columns_cache[key] = payload.columns(batch)
        return self._columns_cache[key]

    def _encoded(self, payload: Payload, batch: int, fmt: str) -> bytes:
        """The batch as packed records, a safetensors body or a JSON body (columns)."""
        key = (payload.name, batch, fmt)
        if key not in self._bodies:
            columns = self._columns(payload, batch)
            if fmt == "records":
                body = pack(payload.schema, columns, batch)
            elif fmt == "safetensors":
                body = payload.body(batch)
            else:
                body = orjson.dumps({"columns": columns}, option=orjson.OPT_SERIALIZE_NUMPY)
            self._bodies[key] = body
        return self._bodies[key]

    def _in_process(self, payload: Payload, case: Case, target: Target,
                    rng: np.random.Generator) -> Operation:
        key = (payload.name, target.capacity)
        if self._local is None or self._local[0] != key:
            self._local = None  # free the previous one before filling the next
            self._local = (key, fill_local(payload, target.capacity, target.fill, rng))
        buffer = self._local[1]
        batch = case.batch
        if case.op == "store":
            columns = self._columns(payload, batch)

            def store() -> int:
                buffer.add(columns)
                return batch
            return store

        def sample() -> int:
            buffer.sample(batch)
            return batch
        return sample

    def _raw(self, form: RawForm, payload: Payload, case: Case, target: Target, index: int,
             rng: np.random.Generator) -> Operation:
        if target.redis_url not in self._redis:
            self._redis[target.redis_url] = redis.Redis.from_url(target.redis_url)
        key = (target.redis_url, target.buffer, index, form)
        if key not in self._rings:
            ring = raw_ring(form, self._redis[target.redis_url], target.buffer, target.capacity,
                            payload.record_size)
            ring.cursor = index * target.capacity // max(case.clients, 1)
            self._rings[key] = ring
        ring = self._rings[key]
        batch, fill, schema = case.batch, target.fill, payload.schema
        if payload.compressed:  # only the hash holds records of varying size
            assert isinstance(ring, HashRing)
            return self._raw_frames(ring, payload, case, fill, rng)
        if case.op == "store":
            records = self._encoded(payload, batch, "records")

            def store() -> int:
                ring.store(records)
                return batch
            return store

        def sample() -> int:
            unpack(schema, ring.sample(rng.integers(0, fill, batch)))
            return batch
        return sample

    @staticmethod
    def _raw_frames(ring: HashRing, payload: Payload, case: Case, fill: int,
                    rng: np.random.Generator) -> Operation:
        """The same bytes as the service keeps for a compressed buffer (each slot's record
        and frame), moved by the fastest single commands there are: HSET, HMGET."""
        batch = case.batch
        if case.op == "store":
            stored = payload.stored(batch)

            def store() -> int:
                ring.store_each(stored)
                return batch
            return store

        def sample() -> int:
            ring.sample(rng.integers(0, fill, batch))
            return batch
        return sample

    def _over_http(self, payload: Payload, case: Case, url: str, buffer: str,
                   fmt: str) -> Operation:
        if url not in self._http:
            self._http[url] = http.client.HTTPConnection(url.removeprefix("http://"),
                                                         timeout=120)
        connection = self._http[url]
        batch = case.batch
        if case.op == "store":
            body = self._encoded(payload, batch, fmt)
            headers = {"content-type": SAFETENSORS if fmt == "safetensors" else JSON}
            path = f"/buffers/{buffer}/transitions"

            def store() -> int:
                exchanged(connection, "POST", path, body, headers)
                return batch
            return store

        # A compressed buffer's frames come as they are kept: inflating them is the SDK's job.
        path = f"/buffers/{buffer}/sample?batch_size={batch}" + (
            "&compressed=true" if payload.compressed else "")
        accept = {"accept": SAFETENSORS if fmt == "safetensors" else JSON}
        dtypes = {name: spec.numpy_dtype for name, spec in payload.schema.fields.items()}

        def sample() -> int:
            reply = exchanged(connection, "GET", path, headers=accept)
            if fmt == "safetensors":
                decode_safetensors(reply).columns.pop(INDICES_TENSOR)
            else:
                document = orjson.loads(reply)
                for name, values in document["columns"].items():
                    np.asarray(values, dtype=dtypes[name])
            return batch
        return sample

    def _through_sdk(self, payload: Payload, case: Case, url: str, buffer: str) -> Operation:
        if (url, buffer) not in self._sdk:
            self._sdk[(url, buffer)] = ReplayClient(url, buffer)
        sdk = self._sdk[(url, buffer)]
        batch = case.batch
        if case.op == "store":
            columns = self._columns(payload, batch)

            def store() -> int:
                sdk.store_batch(columns, wait=False)
                return batch
            return store

        def sample() -> int:
            sdk.sample(batch)
            return batch
        return sample


def fill_local(payload: Payload, capacity: int, fill: int,
               rng: np.random.Generator) -> LocalReplayBuffer:
    buffer = LocalReplayBuffer(capacity, seed=rng)
    step = payload.chunk_rows()
    for start in range(0, fill, step):
        buffer.add(payload.columns(min(step, fill - start), start))
    return buffer


def raw_ring(form: RawForm, client: redis.Redis, name: str, capacity: int,
             record_size: int) -> RawRing:
    """The pipeline and the script share the segment strings; the hash has its own key."""
    if form == "hash":
        return HashRing(client, name, capacity, record_size)
    kind = PipelinedRing if form == "pipeline" else ScriptedRing
    return kind(client, name, capacity, record_size)
