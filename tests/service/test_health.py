"""Liveness, readiness and the OpenAPI description."""

import httpx


def test_healthz_answers_ok(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}


def test_readyz_answers_ready_when_redis_answers(http: httpx.Client) -> None:
    response = http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_openapi_describes_every_endpoint(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    operations = {(method.upper(), path) for path, item in spec["paths"].items()
                  for method in item}
    assert operations == {
        ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/buffers"),
        ("PUT", "/buffers/{name}"), ("GET", "/buffers/{name}"), ("DELETE", "/buffers/{name}"),
        ("GET", "/buffers/{name}/size"), ("POST", "/buffers/{name}/transitions"),
        ("GET", "/buffers/{name}/sample"), ("GET", "/buffers/{name}/transitions"),
        ("POST", "/buffers/{name}/priorities"),
        ("PUT", "/buffers/{name}/weights"),
        ("GET", "/buffers/{name}/weights"), ("POST", "/buffers/{name}/episodes"),
        ("GET", "/buffers/{name}/episodes"),
    }
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert operation.get("summary") or operation.get("description"), (method, path)


def test_openapi_shows_examples_for_store_and_create(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    store = spec["paths"]["/buffers/{name}/transitions"]["post"]["requestBody"]["content"]
    assert set(store["application/json"]["examples"]) == {"one", "rows", "columns"}
    assert "application/x-safetensors" in store
    assert spec["components"]["schemas"]["BufferSpec"]["examples"]


def test_docs_page_is_served(http: httpx.Client) -> None:
    response = http.get("/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()
