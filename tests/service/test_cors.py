"""CORS over real HTTP: preflights from an allowed origin get the headers the API needs,
other origins get none, and with REPLAY_CORS_ORIGINS unset there is no CORS at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from replay_service.service.redis_server import RedisServer
from tests.support import ServiceProcess

ALLOWED = "https://dash.example.org"
OTHER_ALLOWED = "http://localhost:3000"
STORE_PREFLIGHT = {"Access-Control-Request-Method": "POST",
                   "Access-Control-Request-Headers":
                       "authorization, content-type, idempotency-key"}


def preflight(http: httpx.Client, origin: str, path: str = "/buffers/cartpole/transitions",
              **headers: str) -> httpx.Response:
    return http.options(path, headers={"Origin": origin, **(headers or STORE_PREFLIGHT)})


@pytest.fixture(scope="module")
def cors_http(redis_server: RedisServer, logs_dir: Path) -> Iterator[httpx.Client]:
    service = ServiceProcess(redis_server.url, logs_dir,
                             cors_origins=f"{ALLOWED}, {OTHER_ALLOWED}").start()
    with httpx.Client(base_url=service.url, timeout=30) as http:
        yield http
    service.stop()


def test_a_preflight_from_an_allowed_origin_gets_the_headers(cors_http: httpx.Client) -> None:
    for origin in (ALLOWED, OTHER_ALLOWED):
        reply = preflight(cors_http, origin)
        assert reply.status_code == 200, reply.text
        assert reply.headers["access-control-allow-origin"] == origin
        assert "POST" in reply.headers["access-control-allow-methods"]
        allowed = {name.strip().lower()
                   for name in reply.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type", "idempotency-key", "if-none-match"} <= allowed
        assert "access-control-allow-credentials" not in reply.headers
    weights = preflight(cors_http, ALLOWED, "/buffers/cartpole/weights",
                        **{"Access-Control-Request-Method": "GET",
                           "Access-Control-Request-Headers": "authorization, if-none-match"})
    assert weights.status_code == 200, weights.text


def test_an_answer_to_an_allowed_origin_exposes_etag_and_retry_after(
        cors_http: httpx.Client) -> None:
    reply = cors_http.get("/healthz", headers={"Origin": ALLOWED})
    assert reply.status_code == 200
    assert reply.headers["access-control-allow-origin"] == ALLOWED
    exposed = {name.strip().lower()
               for name in reply.headers["access-control-expose-headers"].split(",")}
    assert {"etag", "retry-after"} <= exposed
    # Errors, answered by the service's handlers, carry the headers too.
    missing = cors_http.get("/buffers/no-such-buffer", headers={"Origin": ALLOWED})
    assert missing.status_code == 404
    assert missing.headers["access-control-allow-origin"] == ALLOWED


def test_another_origin_gets_no_cors_headers(cors_http: httpx.Client) -> None:
    for origin in ("https://evil.example", "https://dash.example.org.evil.example",
                   "http://dash.example.org"):
        reply = preflight(cors_http, origin)
        assert reply.status_code == 400
        assert "access-control-allow-origin" not in reply.headers
        plain = cors_http.get("/healthz", headers={"Origin": origin})
        assert "access-control-allow-origin" not in plain.headers


def test_cors_is_off_by_default(http: httpx.Client) -> None:
    reply = preflight(http, ALLOWED)
    assert reply.status_code == 405  # no CORS: OPTIONS is just a method no route takes
    assert not [name for name in reply.headers if name.startswith("access-control-")]
    plain = http.get("/healthz", headers={"Origin": ALLOWED})
    assert not [name for name in plain.headers if name.startswith("access-control-")]


def test_an_origin_with_a_path_is_refused_at_start(redis_server: RedisServer,
                                                   logs_dir: Path) -> None:
    service = ServiceProcess(redis_server.url, logs_dir,
                             cors_origins="https://dash.example.org/app")
    with pytest.raises(RuntimeError, match="cors_origins") as refused:
        service.start(timeout_s=20)
    assert "is not an origin" in str(refused.value)
