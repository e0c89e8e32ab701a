"""The hot path (service/hot_path.py) answers exactly as FastAPI's declared routes do.

Two servers share one Redis: `replay serve` (the hot path in front of FastAPI) and
uvicorn serving the FastAPI app alone. Every request below goes to both, and both
answers must agree: the status and, for errors, the whole body; for successes, the
same kind of answer. The requests are the hot endpoints' edge cases: every parameter
written oddly, out of range or repeated, every refusal of a body.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from replay_service.service.app import create_app
from replay_service.service.hot_path import HotPath
from replay_service.service.redis_server import RedisServer, free_port
from replay_service.service.settings import Settings
from replay_service.wire.codec import SAFETENSORS, decode_safetensors, encode_safetensors
from tests.conftest import SERVICE_LIMITS
from tests.service.factories import TRACKED_SCHEMA, tracked_columns
from tests.support import ServiceProcess

UNIFORM, PRIORITIZED, EMPTY = "hot-uniform", "hot-prioritized", "hot-empty"


@dataclass(frozen=True)
class Ask:
    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


def _sample(query: str, **headers: str) -> Ask:
    return Ask("GET", f"/buffers/{UNIFORM}/sample", query, headers)


def _store(body: bytes, content_type: str = SAFETENSORS, **headers: str) -> Ask:
    return Ask("POST", f"/buffers/{UNIFORM}/transitions", "",
               {"content-type": content_type, **headers}, body)


def _priorities(document: Any, content_type: str = "application/json") -> Ask:
    return Ask("POST", f"/buffers/{PRIORITIZED}/priorities", "",
               {"content-type": content_type}, orjson.dumps(document))


ROWS = encode_safetensors(tracked_columns(range(3)))
ASKS = {
    # Samples: valid in every written form, then every parameter wrong.
    "plain": _sample("batch_size=8"),
    "binary": _sample("batch_size=8", accept=SAFETENSORS),
    "every parameter": _sample("batch_size=4&num_batches=3&replace=false&beta=0.5&timeout_s=0"),
    "replace as 1": _sample("batch_size=4&replace=1"),
    "replace as yes": _sample("batch_size=4&replace=yes"),
    "replace as True": _sample("batch_size=4&replace=True"),
    "replace as maybe": _sample("batch_size=4&replace=maybe"),
    "unknown parameter": _sample("batch_size=4&colour=blue"),
    "no batch size": _sample(""),
    "empty batch size": _sample("batch_size="),
    "zero batch size": _sample("batch_size=0"),
    "negative batch size": _sample("batch_size=-3"),
    "fractional batch size": _sample("batch_size=1.5"),
    "batch size with zeros": _sample("batch_size=007"),
    "batch size in words": _sample("batch_size=eight"),
    "huge batch size": _sample("batch_size=99999999999999999999999"),
    "over the sample limit": _sample(f"batch_size={SERVICE_LIMITS['max_sample'] + 1}"),
    "repeated batch size": _sample("batch_size=4&batch_size=5"),
    "num batches zero": _sample("batch_size=4&num_batches=0"),
    "num batches over the limit": _sample("batch_size=1000&num_batches=51"),
    "beta over 1": _sample("batch_size=4&beta=1.5"),
    "beta negative": _sample("batch_size=4&beta=-0.1"),
    "beta nan": _sample("batch_size=4&beta=nan"),
    "beta as exponent": _sample("batch_size=4&beta=1e-1"),
    "beta written .5": _sample("batch_size=4&beta=.5"),
    "timeout over 60": _sample("batch_size=4&timeout_s=61"),
    "timeout 60.0": _sample("batch_size=4&timeout_s=60.0"),
    "percent-encoded": _sample("batch%5Fsize=4"),
    "accept nothing known": _sample("batch_size=4", accept="text/html"),
    "replacement-free and too many": _sample("batch_size=600&replace=false"),
    "compressed frames of a plain buffer": _sample("batch_size=4&compressed=true",
                                                   accept=SAFETENSORS),
    "compressed frames as JSON": _sample("batch_size=4&compressed=true"),
    "compressed as maybe": _sample("batch_size=4&compressed=maybe", accept=SAFETENSORS),
    "store of frames into a plain buffer": _store(encode_safetensors({
        **tracked_columns(range(2)), "_compressed": np.zeros(8, np.uint8),
        "_compressed_sizes": np.array([4, 4], np.uint32)})),
    "empty buffer": Ask("GET", f"/buffers/{EMPTY}/sample", "batch_size=1"),
    "no such buffer": Ask("GET", "/buffers/hot-nobody/sample", "batch_size=1"),
    "name too long": Ask("GET", f"/buffers/{'a' * 129}/sample", "batch_size=1"),
    "name starting with a dot": Ask("GET", "/buffers/.hidden/sample", "batch_size=1"),
    "prioritized without replacement": Ask("GET", f"/buffers/{PRIORITIZED}/sample",
                                           "batch_size=4&replace=false"),
    "prioritized": Ask("GET", f"/buffers/{PRIORITIZED}/sample", "batch_size=4&beta=1"),
    "HEAD of a sample": Ask("HEAD", f"/buffers/{UNIFORM}/sample", "batch_size=4"),
    # Stores.
    "store rows": _store(ROWS),
    "store with a key": _store(ROWS, **{"idempotency-key": "hot-1"}),
    "store with a bad key": _store(ROWS, **{"idempotency-key": "no spaces allowed"}),
    "store with a long key": _store(ROWS, **{"idempotency-key": "k" * 129}),
    "store as JSON": _store(orjson.dumps({"transition": {
        key: value[0].tolist() for key, value in tracked_columns([7]).items()}}),
        "application/json"),
    "store of bad JSON": _store(b"{", "application/json"),
    "store of bad safetensors": _store(b"\x00" * 12),
    "store of a wrong dtype": _store(encode_safetensors(
        {**tracked_columns(range(2)), "reward": np.zeros(2, np.float64)})),
    "store of text": _store(b"hello", "text/plain"),
    "store without a type": Ask("POST", f"/buffers/{UNIFORM}/transitions", body=ROWS),
    "store into nobody": Ask("POST", "/buffers/hot-nobody/transitions", "",
                             {"content-type": SAFETENSORS}, ROWS),
    # Priorities.
    "priorities of a uniform buffer": Ask(
        "POST", f"/buffers/{UNIFORM}/priorities", "", {"content-type": "application/json"},
        orjson.dumps({"indices": [0], "inserted": [0], "priorities": [1.0]})),
    "priorities of unequal lengths": _priorities(
        {"indices": [0, 1], "inserted": [0], "priorities": [1.0]}),
    "negative priority": _priorities({"indices": [0], "inserted": [0], "priorities": [-1.0]}),
    "priority as a string": _priorities({"indices": [0], "inserted": [0], "priorities": ["1"]}),
    "priorities with extra": _priorities(
        {"indices": [0], "inserted": [0], "priorities": [1.0], "more": 1}),
    "no indices": _priorities({"indices": [], "inserted": [], "priorities": []}),
    "priorities, charset given": _priorities(
        {"indices": [0], "inserted": [0], "priorities": [2.0]}, "application/json; charset=utf-8"),
    "priorities as text": _priorities({"indices": [0], "inserted": [0], "priorities": [2.0]},
                                      "text/plain"),
    "priorities, broken JSON": Ask("POST", f"/buffers/{PRIORITIZED}/priorities", "",
                                   {"content-type": "application/json"}, b"{\"indices\": ["),
    "priorities set": _priorities({"indices": [0, 1], "inserted": [0, 1],
                                   "priorities": [0.5, 3.0]}),
    # Weights.
    "weights": Ask("GET", f"/buffers/{UNIFORM}/weights"),
    "weights not changed": Ask("GET", f"/buffers/{UNIFORM}/weights", "",
                               {"if-none-match": '"ETAG"'}),
    "weights of a stale etag": Ask("GET", f"/buffers/{UNIFORM}/weights", "",
                                   {"if-none-match": '"0-x"'}),
    "no weights yet": Ask("GET", f"/buffers/{EMPTY}/weights"),
    "weights of nobody": Ask("GET", "/buffers/hot-nobody/weights"),
}


@pytest.fixture(scope="module")
def doors(redis_server: RedisServer, logs_dir: Path) -> Iterator[tuple[str, str]]:
    """(the service as `replay serve` runs it, FastAPI's declared routes alone)."""
    hot = ServiceProcess(redis_server.url, logs_dir, **SERVICE_LIMITS).start()
    port = free_port()
    env = {**os.environ, "REPLAY_REDIS_URL": redis_server.url,
           **{f"REPLAY_{key.upper()}": str(value) for key, value in SERVICE_LIMITS.items()}}
    with (logs_dir / f"declared-{port}.log").open("wb") as log:
        declared = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "--port", str(port),
             "replay_service.service.app:create_app"], env=env, stdout=log, stderr=log)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, declared)
        yield hot.url, url
    finally:
        declared.terminate()
        declared.wait(15)
        hot.stop()


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("the FastAPI-only server did not start")


@pytest.fixture(scope="module")
def etag(doors: tuple[str, str]) -> str:
    with httpx.Client(base_url=doors[0]) as http:
        http.delete(f"/buffers/{UNIFORM}")
        http.delete(f"/buffers/{PRIORITIZED}")
        http.delete(f"/buffers/{EMPTY}")
        for name, extra in ((UNIFORM, {}), (PRIORITIZED, {"prioritized": {"alpha": 0.6}}),
                            (EMPTY, {})):
            assert http.put(f"/buffers/{name}", json={
                "capacity": 1000, "schema": TRACKED_SCHEMA, **extra}).status_code == 201
        for name in (UNIFORM, PRIORITIZED):
            assert http.post(f"/buffers/{name}/transitions", content=encode_safetensors(
                tracked_columns(range(500))), headers={"content-type": SAFETENSORS}).is_success
        published = http.put(f"/buffers/{UNIFORM}/weights", content=encode_safetensors(
            {"w": np.arange(4, dtype=np.float32)}), headers={"content-type": SAFETENSORS})
        return str(published.json()["etag"])


@pytest.mark.parametrize("case", list(ASKS))
def test_both_doors_answer_alike(doors: tuple[str, str], etag: str, case: str) -> None:
    ask = ASKS[case]
    headers = {key: value.replace("ETAG", etag) for key, value in ask.headers.items()}
    answers = []
    for url in doors:
        with httpx.Client(base_url=url) as http:
            answers.append(http.request(ask.method, f"{ask.path}?{ask.query}", headers=headers,
                                        content=ask.body))
    hot, declared = answers
    assert hot.status_code == declared.status_code, (hot.text, declared.text)
    assert hot.headers.get("content-type") == declared.headers.get("content-type")
    if not hot.is_success or ask.method == "HEAD":
        assert hot.content == declared.content
        assert hot.headers.get("www-authenticate") == declared.headers.get("www-authenticate")
        return
    if hot.headers.get("content-type") == SAFETENSORS:
        hot_tensors, declared_tensors = (decode_safetensors(answer.content).columns
                                         for answer in answers)
        assert {key: (value.dtype, value.shape) for key, value in hot_tensors.items()} == {
            key: (value.dtype, value.shape) for key, value in declared_tensors.items()}
    elif hot.status_code == 200 and hot.content:
        assert _shape_of(hot.json()) == _shape_of(declared.json())
    assert hot.headers.get("etag") == declared.headers.get("etag")


def _shape_of(document: Any) -> Any:
    """Keys and list lengths: what two random samples of one buffer share."""
    if isinstance(document, dict):
        return {key: _shape_of(value) for key, value in document.items()
                if key not in ("first_slot", "size", "total_inserted")}
    if isinstance(document, list):
        return [len(document), *(_shape_of(item) for item in document[:1])]
    return type(document).__name__


def test_the_hot_operations_skip_fastapis_router(redis_server: RedisServer, etag: str) -> None:
    """The hot path is no second way into the same router: FastAPI's routing (which marks
    the scope with the endpoint it chose) never sees a hot request, and sees the rest."""
    async def scenario() -> dict[str, bool]:
        api = create_app(Settings(redis_url=redis_server.url))
        app = HotPath(api)
        routed = {}
        async with api.router.lifespan_context(api):
            for label, path, query in (
                    ("sample", f"/buffers/{UNIFORM}/sample", b"batch_size=2"),
                    ("weights", f"/buffers/{UNIFORM}/weights", b""),
                    ("oddly written sample", f"/buffers/{UNIFORM}/sample", b"batch_size=02"),
                    ("size", f"/buffers/{UNIFORM}/size", b"")):
                scope = _scope(path, query)
                statuses: list[int] = []
                await app(scope, _no_body, _statuses_into(statuses))
                assert statuses == [200], (label, statuses)
                routed[label] = "endpoint" in scope
        return routed

    assert asyncio.run(scenario()) == {"sample": False, "weights": False,
                                       "oddly written sample": True, "size": True}


def _scope(path: str, query: bytes) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
            "query_string": query, "headers": [(b"host", b"test")],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {}}


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def _statuses_into(statuses: list[int]) -> Any:
    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])
    return send
