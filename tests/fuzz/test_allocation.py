"""Decoding a small hostile body allocates about the body, never what its header claims.

tracemalloc sees what Python and numpy allocate. The Rust safetensors parser
allocates out of its sight, so a child process also decodes every claim under an
address-space limit (RLIMIT_AS) of a few hundred MiB above what it has mapped:
there, trying to allocate a claimed 10 GB fails loudly (MemoryError, or Rust's
abort on a failed allocation), where a machine with enough swap would just slow down.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import given

from replay_service.wire.codec import (
    DecodedBatch,
    WireError,
    conform,
    decode_json_transitions,
    decode_safetensors,
    infer_schema,
)
from replay_service.wire.schema import Schema
from tests.fuzz import hostile
from tests.fuzz.budget import IGNORE_HYPOTHESIS_NOISE, fuzz
from tests.fuzz.tally import TALLY
from tests.service.factories import TRACKED_SCHEMA
from tests.support import REPO

pytestmark = IGNORE_HYPOTHESIS_NOISE

TRACKED = Schema.model_validate(TRACKED_SCHEMA)
# What a decode may take beyond its body: exception objects, messages, headers parsed
# into dicts, numpy's array objects; a header's claim is 10 GB or more.
SLACK_BYTES = 256 * 1024
# Peak bytes per body byte a safetensors decode (and conform, and infer) may take.
SAFETENSORS_FACTOR = 4
# JSON becomes Python objects first: about 16 bytes per byte for a list of numbers,
# 36 to 42 for rows of objects or lists of empty containers (measured with CPython
# 3.11, orjson 3.13, numpy 2.4).
JSON_FACTOR = 64


def _quietly(call: Callable[[], object]) -> None:
    try:
        call()
    except WireError:
        pass


def _decode_everything(decode: Callable[[bytes], DecodedBatch], body: bytes) -> None:
    """What the service does with a body: decode it, infer a schema, conform it."""
    try:
        batch = decode(body)
    except WireError:
        return
    _quietly(lambda: infer_schema(batch))
    _quietly(lambda: conform(TRACKED, batch))


def peak_bytes(call: Callable[[], None]) -> int:
    """The most memory Python and numpy held during the call, beyond what they held before."""
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not tracing:
            tracemalloc.stop()
    return max(0, peak - before)


def _record(key: str, value: float) -> None:
    TALLY.measurements[key] = max(TALLY.measurements.get(key, 0.0), value)


@pytest.mark.parametrize("body", [*hostile.HUGE_CLAIMS.values()], ids=[*hostile.HUGE_CLAIMS])
def test_a_header_claiming_gigabytes_allocates_about_the_body(body: bytes) -> None:
    peak = peak_bytes(lambda: _decode_everything(decode_safetensors, body))
    _record("peak bytes decoding a body that claims >= 10 GB (max)", peak)
    assert peak <= SLACK_BYTES + SAFETENSORS_FACTOR * len(body), (peak, len(body))


def test_the_grid_of_huge_claims_allocates_about_each_body() -> None:
    for body in hostile.huge_claims_grid():
        peak = peak_bytes(lambda body=body: _decode_everything(  # type: ignore[misc]
            decode_safetensors, body))
        _record("peak bytes decoding a body that claims >= 10 GB (max)", peak)
        assert peak <= SLACK_BYTES + SAFETENSORS_FACTOR * len(body), (peak, len(body), body[:200])


@fuzz(150)
@given(body=hostile.safetensors_bodies())
def test_a_hostile_safetensors_body_allocates_about_the_body(body: bytes) -> None:
    TALLY.examples["safetensors decode memory, hostile bodies"] += 1
    peak = peak_bytes(lambda: _decode_everything(decode_safetensors, body))
    assert peak <= SLACK_BYTES + SAFETENSORS_FACTOR * len(body), (peak, len(body))


def _rows(count: int) -> bytes:
    return b'{"transitions": [' + b",".join([b'{"a": 1}'] * count) + b"]}"


JSON_MEMORY_CASES = {
    "half a million zeros": b'{"columns": {"a": [' + b",".join([b"0"] * 500_000) + b"]}}",
    "distinct integers": b'{"columns": {"a": [' + b",".join(
        str(10**6 + i).encode() for i in range(100_000)) + b"]}}",
    "numbers with a fraction": b'{"columns": {"a": [' + b",".join([b"0.5"] * 150_000) + b"]}}",
    "rows of one field": _rows(75_000),
    "empty lists": b'{"columns": {"a": [' + b",".join([b"[]"] * 150_000) + b"]}}",
    "empty objects": b'{"columns": {"a": [' + b",".join([b"{}"] * 150_000) + b"]}}",
    "nesting 1,000 deep": b'{"columns": {"a": [' + b"[" * 1000 + b"]" * 1000 + b"]}}",
}


@pytest.mark.parametrize("body", [*JSON_MEMORY_CASES.values()], ids=[*JSON_MEMORY_CASES])
def test_json_decoding_allocates_a_bounded_multiple_of_the_body(body: bytes) -> None:
    peak = peak_bytes(lambda: _decode_everything(decode_json_transitions, body))
    _record("peak bytes per body byte decoding JSON (max)", round(peak / len(body), 1))
    assert peak <= SLACK_BYTES + JSON_FACTOR * len(body), (peak, len(body))


CHILD = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    from replay_service.wire.codec import WireError, conform, decode_safetensors, infer_schema
    from replay_service.wire.schema import Schema
    from tests.fuzz import hostile
    from tests.service.factories import TRACKED_SCHEMA

    tracked = Schema.model_validate(TRACKED_SCHEMA)
    bodies = [*hostile.HUGE_CLAIMS.values(), *hostile.huge_claims_grid()]
    with open("/proc/self/status") as status:
        mapped = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize"))
    limit = mapped + 384 * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    try:
        np.ones(2**30, dtype=np.uint8)  # the limit must bite, or this test proves nothing
        print(json.dumps({"error": "the address-space limit does not hold"}))
        sys.exit(2)
    except MemoryError:
        pass
    outcomes = {"refused": 0, "decoded": 0}
    for body in bodies:
        try:
            batch = decode_safetensors(body)
        except WireError:
            outcomes["refused"] += 1
            continue
        outcomes["decoded"] += 1
        for call in (lambda: infer_schema(batch), lambda: conform(tracked, batch)):
            try:
                call()
            except WireError:
                pass
    print(json.dumps(outcomes))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux's")
def test_huge_claims_decode_under_an_address_space_limit() -> None:
    child = subprocess.run([sys.executable, "-c", CHILD], cwd=REPO, capture_output=True,
                           text=True, timeout=120)
    assert child.returncode == 0, f"exit {child.returncode}\n{child.stdout}\n{child.stderr[-3000:]}"
    outcomes = json.loads(child.stdout.strip().splitlines()[-1])
    assert outcomes["refused"] + outcomes["decoded"] == len(hostile.HUGE_CLAIMS) + len(
        hostile.huge_claims_grid()), outcomes
    TALLY.examples["safetensors claims under RLIMIT_AS"] += sum(outcomes.values())
