"""The /openapi.json of the real service describes the answers it really gives: every
status, every error body, the headers, the security of each operation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs  # installed with schemathesis, the fuzz suite's dependency
import numpy as np
import pytest

from replay_service.service.redis_server import RedisServer
from replay_service.wire.codec import SAFETENSORS, encode_safetensors
from tests.support import ServiceProcess

WRITE_KEY = "write-key-0123456789abcdef"
READ_KEY = "read-key-0123456789abcdef"
CARTPOLE = {"fields": {"obs": {"dtype": "float32", "shape": [4]}, "done": {"dtype": "bool"}}}


def assert_documented(document: dict[str, Any], response: httpx.Response) -> None:
    """The answer's status is one its operation declares, and a JSON body fits the schema
    declared for that status."""
    method, path = response.request.method.lower(), response.request.url.path
    template = next(template for template in document["paths"] if re.fullmatch(
        re.sub(r"\{\w+\}", "[^/]+", template), path))
    operation = document["paths"][template][method]
    declared = operation["responses"].get(str(response.status_code))
    assert declared is not None, (f"{method.upper()} {template} answered "
                                  f"{response.status_code}, which it does not declare: "
                                  f"{response.text[:300]}")
    media_type = response.headers.get("content-type", "").split(";")[0]
    if media_type == "application/json":
        schema = declared["content"]["application/json"]["schema"]
        jsonschema_rs.validator_for({**schema, "components": document["components"]}
                                    ).validate(response.json())
        if response.status_code >= 400:
            assert response.json()["error"] in declared["x-error-codes"], response.text
    for header in declared.get("headers", {}):
        assert header in response.headers, (template, response.status_code, header)


@pytest.fixture(scope="module")
def locked(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[ServiceProcess]:
    service = ServiceProcess(redis_server.url, tmp_path_factory.mktemp("locked-openapi"),
                             write_key=WRITE_KEY, read_key=READ_KEY).start()
    yield service
    service.stop()


@pytest.fixture
def small_redis(tmp_path: Path) -> Iterator[ServiceProcess]:
    with RedisServer(tmp_path / "redis", appendfsync=None,
                     extra_args=("--maxmemory", "20mb")) as redis:
        service = ServiceProcess(redis.url, tmp_path).start()
        yield service
        service.stop()


def test_open_operations_are_marked_open_and_the_others_need_the_bearer_key(
        http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, item in document["paths"].items():
        for method, operation in item.items():
            expected = [] if path in ("/healthz", "/readyz") else [{"HTTPBearer": []}]
            assert operation["security"] == expected, (method, path)
            assert ("401" in operation["responses"]) is bool(expected), (method, path)
            writes = method not in ("get", "head")
            assert ("403" in operation["responses"]) is (bool(expected) and writes), \
                (method, path)


def test_content_negotiation_is_media_types_not_header_parameters(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    headers = {parameter["name"].lower() for item in document["paths"].values()
               for operation in item.values() for parameter in operation.get("parameters", ())
               if parameter["in"] == "header"}
    assert headers == {"idempotency-key", "if-none-match"}
    store = document["paths"]["/buffers/{name}/transitions"]["post"]["requestBody"]["content"]
    assert set(store) == {"application/json", SAFETENSORS}
    assert store[SAFETENSORS]["schema"] == {
        "type": "string", "format": "binary", "description": store[SAFETENSORS]["schema"][
            "description"]}
    layouts = store["application/json"]["schema"]["oneOf"]
    assert {ref["$ref"].rsplit("/", 1)[1] for ref in layouts} == {
        "TransitionRows", "TransitionColumns", "OneTransition"}
    sample = document["paths"]["/buffers/{name}/sample"]["get"]["responses"]["200"]["content"]
    assert set(sample) == {"application/json", SAFETENSORS}


def test_bodies_with_defaults_leave_them_optional(http: httpx.Client) -> None:
    schemas = http.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["FieldSpec"]["required"] == ["dtype"]
    assert "Left out: []." in schemas["FieldSpec"]["properties"]["shape"]["description"]
    assert set(schemas["SampleReply"]["required"]) == {"size", "total_inserted", "indices",
                                                       "columns"}
    assert not [name for name in schemas if name.endswith(("-Input", "-Output"))]
    assert "HTTPValidationError" not in schemas


def test_the_first_server_is_the_service_itself(http: httpx.Client,
                                                service: ServiceProcess) -> None:
    servers = http.get("/openapi.json").json()["servers"]
    assert servers[0]["url"] == service.url


def test_error_answers_are_the_declared_ones(http: httpx.Client, buffer_name: str) -> None:
    document = http.get("/openapi.json").json()
    base = f"/buffers/{buffer_name}"
    answers = [
        http.get(f"{base}/sample", params={"batch_size": 1}),  # 404
        http.put(base, json={"capacity": 10, "schema": CARTPOLE}),  # 201
        http.put(base, json={"capacity": 10, "schema": CARTPOLE}),  # 200
        http.put(base, json={"capacity": 11}),  # 409
        http.put(base, json={"capacity": 0}),  # 422
        http.post(f"{base}/transitions", content=b"{",
                  headers={"content-type": "application/json"}),
        http.post(f"{base}/transitions", content=b"x", headers={"content-type": "text/plain"}),
        http.post(f"{base}/transitions", json={"transition": {"obs": [1, 2, 3], "done": True}}),
        http.post(f"{base}/transitions", content=encode_safetensors({}),
                  headers={"content-type": SAFETENSORS}),
        http.get(f"{base}/sample", params={"batch_size": 1}),  # 409, with its size
        http.post(f"{base}/transitions", json={"columns": {"obs": [[1, 2, 3, 4]] * 3,
                                                           "done": [False] * 3}}),
        http.get(f"{base}/sample", params={"batch_size": 2}),
        http.get(f"{base}/sample", params={"batch_size": 2}, headers={"accept": "text/html"}),
        http.get(f"{base}/sample", params={"batch_size": 2, "num_batches": 2},
                 headers={"accept": SAFETENSORS}),
        http.get(f"{base}/transitions", params={"first": 100, "count": 1}),  # 409
        http.post(f"{base}/priorities", json={"indices": [0], "inserted": [0],
                                              "priorities": [1.0]}),  # not prioritized
        http.get(f"{base}/weights"),  # 404 weights_not_found
        http.put(f"{base}/weights", content=encode_safetensors({}),
                 headers={"content-type": "application/json"}),  # 415
        http.get(f"{base}/episodes", params={"after": "x"}),  # 422
        http.delete(base),
        http.get("/healthz"), http.get("/readyz"), http.get("/buffers"),
    ]
    for response in answers:
        assert_documented(document, response)
    statuses = {response.status_code for response in answers}
    assert statuses >= {200, 201, 204, 400, 404, 406, 409, 415, 422}, statuses


def test_weights_carry_their_etag_as_a_header_on_publish_and_fetch(
        http: httpx.Client, buffer_name: str) -> None:
    document = http.get("/openapi.json").json()
    base = f"/buffers/{buffer_name}"
    http.put(base, json={})
    body = encode_safetensors({"layers.0.bias": np.zeros(2, np.float32)})
    published = http.put(f"{base}/weights", content=body, headers={"content-type": SAFETENSORS})
    fetched = http.get(f"{base}/weights")
    unchanged = http.get(f"{base}/weights", headers={"if-none-match": published.headers["etag"]})
    for response in (published, fetched, unchanged):
        assert_documented(document, response)
    assert published.headers["etag"] == fetched.headers["etag"] == unchanged.headers["etag"] \
        == f'"{published.json()["etag"]}"'
    assert unchanged.status_code == 304


def test_keys_rate_limits_and_memory_answer_as_declared(
        locked: ServiceProcess, small_redis: ServiceProcess, buffer_name: str) -> None:
    document = httpx.get(f"{locked.url}/openapi.json").json()
    base = f"{locked.url}/buffers/{buffer_name}"
    write = {"authorization": f"Bearer {WRITE_KEY}"}
    read = {"authorization": f"Bearer {READ_KEY}"}
    answers = [
        httpx.get(f"{base}/size"),  # 401
        httpx.put(base, json={}, headers=read),  # 403
        httpx.put(base, headers=write, json={"schema": CARTPOLE, "rate_limit": {
            "min_size": 10}}),
        httpx.post(f"{base}/transitions", headers=write, json={"columns": {
            "obs": [[0.0] * 4] * 5, "done": [False] * 5}}),
        httpx.get(f"{base}/sample", params={"batch_size": 1}, headers=read),  # 429
        httpx.put(f"{small_redis.url}/buffers/{buffer_name}",  # 507: 45 MB of 20
                  json={"capacity": 2_000_000, "schema": CARTPOLE}),
        httpx.get(f"{locked.url}/healthz"),
    ]
    for response in answers:
        assert_documented(document, response)
    assert [response.status_code for response in answers] == [401, 403, 201, 200, 429, 507, 200]
