"""The OpenAPI document at /openapi.json, finished for clients generated from it.

FastAPI builds it from the routes, but cannot see what happens around them: the
key check runs for every route but the health probes, every route that touches
Redis may answer 503 or 507, and every error is our ErrorReply rather than
FastAPI's validation body. Finishing the document here derives those answers
from the code that gives them (auth.py's open paths and read methods, the error
codes' statuses), so the document cannot drift from the service.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from replay_service.service.auth import OPEN_PATHS, READ_METHODS
from replay_service.service.errors import RETRY_AFTER_SECONDS
from replay_service.service.models import STORE_JSON_BODIES, ErrorReply
from replay_service.service.settings import Settings
from replay_service.wire.codec import JSON
from replay_service.wire.errors import ErrorCode

__all__ = ["component_ref", "errors", "install_openapi"]

_COMPONENTS = "#/components/schemas/"
# Where each error response lists its codes, so that codes added here join the route's.
CODES_KEY = "x-error-codes"
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying "
                                f"({RETRY_AFTER_SECONDS}).", "schema": {"type": "integer"}}}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}
# Every route behind the key check reaches Redis through a Lua script, which Redis
# refuses over maxmemory; and any route may fail unexpectedly.
_STORAGE_CODES = (ErrorCode.REDIS_UNAVAILABLE, ErrorCode.REDIS_OUT_OF_MEMORY,
                  ErrorCode.INTERNAL_ERROR)
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


def component_ref(model: type[BaseModel]) -> dict[str, str]:
    """A reference to a model the document holds among its components."""
    return {"$ref": f"{_COMPONENTS}{model.__name__}"}


def errors(*codes: ErrorCode) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for the error codes a route raises itself, one per status."""
    responses: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        _add_code(responses, code)
    return responses


def _add_code(responses: dict[Any, dict[str, Any]], code: ErrorCode) -> None:
    key = str(code.status)
    response = responses.get(key)
    if response is None or CODES_KEY not in response:
        response = responses[key] = {
            "content": {JSON: {"schema": component_ref(ErrorReply)}}, CODES_KEY: []}
        if code.status in _HEADERS:
            response["headers"] = _HEADERS[code.status]
    if code.value not in response[CODES_KEY]:
        response[CODES_KEY].append(code.value)
    response["description"] = f"{HTTPStatus(code.status).phrase}: " + ", ".join(
        f"`{listed}`" for listed in response[CODES_KEY])


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Serve the finished document; it is built once, at the first request for it."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = finish(FastAPI.openapi(app), settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def finish(document: dict[str, Any], settings: Settings) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    documented: list[type[BaseModel]] = [*STORE_JSON_BODIES, ErrorReply]
    _, described = models_json_schema([(model, "validation") for model in documented],
                                      ref_template=_COMPONENTS + "{model}")
    for name, schema in described.get("$defs", {}).items():
        schemas.setdefault(name, schema)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            _finish_operation(path, method.upper(), operation)
    for name in _FASTAPI_VALIDATION:
        schemas.pop(name, None)
    for schema in schemas.values():
        _optional_without_default(schema)
    document["servers"] = _servers(settings)
    return document


def _finish_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, dict[str, Any]] = operation["responses"]
    validation = responses.get("422", {}).get("content", {}).get(JSON, {}).get("schema", {})
    if validation.get("$ref", "").endswith("/HTTPValidationError"):
        del responses["422"]  # the service never answers FastAPI's body: ours replaces it
    added: list[ErrorCode] = []
    if operation.get("parameters") or operation.get("requestBody"):
        added.append(ErrorCode.INVALID_REQUEST)
    if path in OPEN_PATHS:
        operation["security"] = []
    else:
        added += [ErrorCode.UNAUTHORIZED, *_STORAGE_CODES]
        if method not in READ_METHODS:
            added.append(ErrorCode.FORBIDDEN)
    for code in added:
        _add_code(responses, code)
    operation["responses"] = dict(sorted(responses.items()))
    # Generated clients name their functions after operation ids: the handler's name
    # (create_buffer, store, sample), without the path and method FastAPI appends.
    suffix = re.sub(r"\W", "_", path) + "_" + method.lower()
    operation["operationId"] = operation["operationId"].removesuffix(suffix)


def _optional_without_default(schema: dict[str, Any]) -> None:
    """Say a left-out property's default in words rather than as `default`.

    openapi-typescript (at its defaults) types every component property that has a
    `default` as always present: wrong for bodies a client sends (a FieldSpec
    without `shape` is fine) and for what answers leave out (a uniform sample has no
    `weights`; `default: null` there was never true either).
    """
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        if name in required or "default" not in prop:
            continue
        default = prop.pop("default")
        if default is not None:
            said = f"Left out: {json.dumps(default)}."
            prop["description"] = f"{prop['description']} {said}" if "description" in prop \
                else said


def _servers(settings: Settings) -> list[dict[str, str]]:
    # A wildcard bind address is not one a client can send to.
    host = "localhost" if settings.host in ("0.0.0.0", "::", "") else settings.host
    host = f"[{host}]" if ":" in host else host
    return [{"url": f"http://{host}:{settings.port}",
             "description": "This service as configured (REPLAY_HOST, REPLAY_PORT)"},
            {"url": "/", "description": "Wherever this document was fetched from"}]
