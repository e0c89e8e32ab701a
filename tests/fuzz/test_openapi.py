"""Schemathesis fuzzes every operation of the OpenAPI document against the real service.

All phases pytest runs (the document's examples, coverage of each keyword's edges,
random fuzzing), valid and invalid data; the application/x-safetensors bodies come
from tests.fuzz.hostile, since schemathesis cannot make them from `format: binary`.
Every answer must be well formed (no 5xx, every 4xx the service's JSON error, no
stack trace), and the pool buffer a request was aimed at may change only if the
request was accepted (tests.fuzz.pool).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import Case, Config, GenerationMode

from replay_service.service.app import create_app
from replay_service.service.settings import Settings
from replay_service.wire.codec import SAFETENSORS
from tests.fuzz import hostile
from tests.fuzz.budget import IGNORE_HYPOTHESIS_NOISE, SEED, examples, fuzz
from tests.fuzz.conftest import REQUEST_TIMEOUT_S
from tests.fuzz.pool import Pool, assert_well_formed
from tests.fuzz.tally import TALLY
from tests.support import ServiceProcess

pytestmark = IGNORE_HYPOTHESIS_NOISE

# Fuzzing-phase examples per operation in CI; the examples and coverage phases add
# their own cases (a few hundred in all). FUZZ_EXAMPLES raises it.
CI_EXAMPLES_PER_OPERATION = 30
# Examples per binary operation and generation mode in the safetensors-only run.
CI_BINARY_EXAMPLES = 40

# The document the service serves at /openapi.json, built from the same code, so
# that collecting the tests needs no running service.
OPENAPI = create_app(Settings()).openapi()

schemathesis.openapi.media_type(SAFETENSORS, hostile.safetensors_bodies())

SCHEMA = schemathesis.openapi.from_dict(OPENAPI, config=Config.from_dict({
    "seed": SEED if SEED is not None else 20_261_124,
    "generation": {"mode": "all", "max-examples": examples(CI_EXAMPLES_PER_OPERATION),
                   "deterministic": SEED is None, "database": "none"},
}))

_REQUEST_FIELDS = ("method", "url", "headers", "params", "cookies", "data", "json", "files")


@pytest.fixture(scope="module")
def log_start(fuzz_service: ServiceProcess) -> int:
    """Where the service log stood before the fuzzer's first request."""
    return fuzz_service.log_path.stat().st_size if fuzz_service.log_path.exists() else 0


def _prepared(case: Case[Any], base_url: str) -> requests.PreparedRequest:
    """The request exactly as case.call will send it."""
    kwargs = case.as_transport_kwargs(base_url=base_url)
    return requests.Request(**{key: kwargs[key] for key in _REQUEST_FIELDS if key in kwargs}
                            ).prepare()


def _fingerprint(case: Case[Any]) -> bytes:
    body: Any = case.body
    return repr((case.method, case.path, sorted((case.query or {}).items()),
                 sorted((case.headers or {}).items()), body)).encode(errors="replace")


def _send_and_check(case: Case[Any], service: ServiceProcess, pool: Pool) -> None:
    name = (case.path_parameters or {}).get("name")
    target = pool.retarget(name, case.method, _fingerprint(case))
    if target is not None:
        case.path_parameters["name"] = target
    prepared = _prepared(case, service.url)
    body = prepared.body if isinstance(prepared.body, bytes) else str(
        prepared.body or "").encode()
    url = prepared.url or ""
    sent_type = prepared.headers.get("content-type")
    content_type = sent_type.decode() if isinstance(sent_type, bytes) else sent_type
    label = f"{case.method} {case.path}"
    TALLY.requests[label] += 1
    if case.meta is not None and case.meta.generation.mode is GenerationMode.NEGATIVE:
        TALLY.faults["schemathesis, negative mode"] += 1

    response = case.call(base_url=service.url, timeout=REQUEST_TIMEOUT_S)

    TALLY.statuses[response.status_code] += 1
    request = f"{label} as {prepared.method} {url} ({len(body)} body bytes, " \
              f"content-type {content_type!r})"
    answered_type = response.headers.get("content-type")
    assert_well_formed(response.status_code, answered_type[0] if answered_type else None,
                       response.content, request)
    if target is not None:
        pool.check(target, accepted=response.status_code < 400, request=request,
                   weights=case.path.endswith("/weights"),
                   episodes=case.path.endswith("/episodes"),
                   transitions=case.path.endswith("/transitions"))


@SCHEMA.parametrize()
def test_every_answer_is_well_formed_and_refusals_change_nothing(
        case: Case[Any], fuzz_service: ServiceProcess, pool: Pool, log_start: int) -> None:
    _send_and_check(case, fuzz_service, pool)


# Schemathesis picks JSON for most stores; these draw only safetensors bodies.
BINARY_OPERATIONS = [("/buffers/{name}/transitions", "POST"), ("/buffers/{name}/weights", "PUT")]


@pytest.mark.parametrize(("path", "method"), BINARY_OPERATIONS,
                         ids=[f"{method} {path}" for path, method in BINARY_OPERATIONS])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=lambda mode: mode.value)
@fuzz(CI_BINARY_EXAMPLES)
@given(data=st.data())
def test_safetensors_bodies_are_answered_well_and_refusals_change_nothing(
        path: str, method: str, mode: GenerationMode, data: st.DataObject,
        fuzz_service: ServiceProcess, pool: Pool, log_start: int) -> None:
    case = data.draw(SCHEMA[path][method].as_strategy(mode, media_type=SAFETENSORS))
    TALLY.examples[f"schemathesis {method} {path} safetensors, {mode.value}"] += 1
    _send_and_check(case, fuzz_service, pool)


def test_the_victim_holds_what_it_held_before_the_fuzzer(pool: Pool) -> None:
    pool.assert_victim_intact()


def test_the_service_survived_the_fuzzer(fuzz_service: ServiceProcess, pool: Pool,
                                         log_start: int) -> None:
    assert fuzz_service.exit_code() is None, fuzz_service.log()
    assert pool.http.get("/readyz").status_code == 200
    log = Path(fuzz_service.log_path).read_bytes()[log_start:].decode(errors="replace")
    assert "Traceback" not in log, log[-4000:]


def _operations() -> Iterator[str]:
    for path, methods in OPENAPI["paths"].items():
        for method in methods:
            yield f"{method.upper()} {path}"


def test_the_fuzzer_reached_every_operation() -> None:
    if not TALLY.requests:
        pytest.skip("the fuzzer did not run in this session")
    missed = [operation for operation in _operations() if not TALLY.requests[operation]]
    assert not missed, f"no request reached {missed}"
