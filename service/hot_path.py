"""The hot endpoints answered ahead of FastAPI's router: store, sample, priorities and
the weights fetch, the requests a learner and its actors send thousands of times a
second.

FastAPI answering a small sample cost 720 us of CPU, of which the endpoint's own work
was under 200 us: the rest was matching the path against every route, solving the
dependencies (the API key's among them) and the middleware FastAPI wraps each route
in. Here one regular expression finds the operation and its parameters are read by
hand, then the same `answer_*` function the declared route calls does the work.

Only what is plainly valid is read here: a parameter this reader would have to judge
(out of range, oddly written, repeated) hands the whole request to FastAPI's declared
route, which answers it as it always has. So every 4xx stays FastAPI's own, the
declared routes stay the OpenAPI document, and tests/service/test_hot_path.py holds
both doors to the same answers.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from time import perf_counter
from urllib.parse import parse_qsl

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from replay_service.service.auth import bearer_key, check_key
from replay_service.service.bodies import read_body
from replay_service.service.error_handlers import error_answer, internal_error_answer
from replay_service.service.metrics import ServiceMetrics
from replay_service.service.models import PriorityUpdate
from replay_service.service.routes import transitions, weights
from replay_service.service.settings import Settings
from replay_service.wire.codec import JSON
from replay_service.wire.schema import BUFFER_NAME_PATTERN

__all__ = ["HotPath"]

_PATH = re.compile(r"/buffers/([^/]+)/(transitions|sample|priorities|weights)")
_NAME = re.compile(BUFFER_NAME_PATTERN)
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
# Numbers as plainly written as FastAPI's parsers read them; anything else goes to them.
_COUNT = re.compile(r"[1-9][0-9]{0,17}")
_DECIMAL = re.compile(r"[0-9]{1,9}(\.[0-9]{1,17})?")
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}


@dataclass(frozen=True)
class PassOn:
    """Hand the request to FastAPI's declared route after all (with the body, if it was
    read here already)."""

    body: bytes | None = None


Handler = Callable[[Request, str], Awaitable[Response | PassOn]]


class HotPath:
    """The ASGI app `replay serve` runs: the hot operations answered here, everything
    else (and whatever is handed on) by the FastAPI app behind it."""

    def __init__(self, api: FastAPI) -> None:
        self._api = api
        handlers: dict[tuple[str, str], Handler] = {
            ("POST", "transitions"): _store, ("GET", "sample"): _sample,
            ("POST", "priorities"): _priorities, ("GET", "weights"): _weights}
        declared = {(method, route.path) for route in [*transitions.router.routes,
                                                       *weights.router.routes]
                    if isinstance(route, APIRoute) for method in route.methods or ()}
        # Each operation under the path template of the route it stands in for: the
        # metrics label requests by it.
        self._operations: dict[tuple[str, str], tuple[str, Handler]] = {}
        for (method, tail), handler in handlers.items():
            template = f"/buffers/{{name}}/{tail}"
            if (method, template) not in declared:
                raise RuntimeError(f"the hot path stands in for {method} {template}, which "
                                   "no route declares")
            self._operations[(method, tail)] = (template, handler)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = operation = None
        if scope["type"] == "http" and not scope.get("root_path"):
            match = _PATH.fullmatch(scope["path"])
            if match and _NAME.match(match[1]):
                operation = self._operations.get((scope["method"], match[2]))
        if operation is None or match is None:
            await self._api(scope, receive, send)
            return
        state = self._api.state
        settings: Settings = state.settings
        if settings.cors_origins and _has_origin(scope):
            await self._api(scope, receive, send)  # FastAPI's CORS middleware answers
            return
        template, handler = operation
        started = perf_counter()
        scope["app"] = self._api  # as Starlette sets it: the answers read app.state
        request = Request(scope, receive)
        answer: Response | PassOn
        try:
            if settings.write_key or settings.read_key:
                check_key(settings, scope["method"], scope["path"],
                          bearer_key(request.headers.get("authorization")))
            answer = await handler(request, match[1])
        except Exception as error:
            answer = error_answer(error) or internal_error_answer(error)
        if isinstance(answer, PassOn):
            await self._api(scope, receive if answer.body is None
                            else _replaying(answer.body, receive), send)
            return
        await answer(scope, receive, send)
        metrics: ServiceMetrics = state.metrics
        metrics.observe_request(template, scope["method"], answer.status_code,
                                perf_counter() - started)


async def _store(request: Request, name: str) -> Response | PassOn:
    key = request.headers.get("idempotency-key")
    if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
        return PassOn()
    return await transitions.answer_store(request, name, key)


async def _sample(request: Request, name: str) -> Response | PassOn:
    query = _query(request)
    if query is None:
        return PassOn()
    batch_size = _count(query.get("batch_size"))
    num_batches = _count(query.get("num_batches", "1"))
    replace = _BOOLEANS.get(query.get("replace", "true"))
    beta = _decimal(query.get("beta", "0.4"), 1.0)
    timeout_s = _decimal(query.get("timeout_s", "0"), 60.0)
    compressed = _BOOLEANS.get(query.get("compressed", "false"))
    if batch_size is None or num_batches is None or replace is None or beta is None or (
            timeout_s is None) or compressed is None:
        return PassOn()
    return await transitions.answer_sample(request, name, batch_size,
                               num_batches if "num_batches" in query else None, replace, beta,
                               timeout_s, compressed)


async def _priorities(request: Request, name: str) -> Response | PassOn:
    settings: Settings = request.app.state.settings
    body = await read_body(request, settings.max_body_bytes)
    if request.headers.get("content-type") != JSON:
        return PassOn(body)
    try:
        update = PriorityUpdate.model_validate_json(body)
    except ValidationError:
        return PassOn(body)
    return await transitions.answer_priorities(request, name, update)


async def _weights(request: Request, name: str) -> Response | PassOn:
    return await weights.answer_weights(request, name, request.headers.get("if-none-match"))


def _query(request: Request) -> dict[str, str] | None:
    """The query parameters, or None when one is repeated (FastAPI decides which counts)."""
    text = request.scope["query_string"].decode("latin-1")
    if "%" in text or "+" in text:
        pairs = parse_qsl(text, keep_blank_values=True)
    else:  # nothing to decode: the common case, at a third of parse_qsl's cost
        pairs = [part.partition("=")[::2] for part in text.split("&") if part]
    query = dict(pairs)
    return query if len(query) == len(pairs) else None


def _count(text: str | None) -> int | None:
    return int(text) if text is not None and _COUNT.fullmatch(text) else None


def _decimal(text: str, maximum: float) -> float | None:
    if not _DECIMAL.fullmatch(text):
        return None
    value = float(text)
    return value if value <= maximum else None


def _has_origin(scope: Scope) -> bool:
    return any(name == b"origin" for name, _ in scope["headers"])


def _replaying(body: bytes, receive: Receive) -> Receive:
    """`receive` for a request whose body was read already: the body once, then the
    connection's own messages (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
