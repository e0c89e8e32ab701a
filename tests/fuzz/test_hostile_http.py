"""The worst bodies, sent to the real service over HTTP: a 400, 413 or 422 in the
service's JSON error shape, and nothing stored changed.

Most go to the pool's victim buffer (tests.fuzz.pool), whose schema every one of
them violates; the rest to a fresh buffer without a schema, where a body that gets
through sets the schema and one that does not must leave none behind.
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from replay_service.wire.codec import JSON, SAFETENSORS, decode_safetensors, encode_safetensors
from tests.conftest import SERVICE_LIMITS
from tests.fuzz import hostile
from tests.fuzz.budget import IGNORE_HYPOTHESIS_NOISE, fuzz
from tests.fuzz.pool import VICTIM, Pool, assert_well_formed
from tests.fuzz.tally import TALLY
from tests.service.factories import TRACKED_SCHEMA, create, tracked_columns
from tests.support import ServiceProcess

pytestmark = IGNORE_HYPOTHESIS_NOISE

REFUSED = (400, 413, 422)
LIMIT = SERVICE_LIMITS["max_body_bytes"]
SEGMENT_BYTES = SERVICE_LIMITS["segment_bytes"]
_fresh = itertools.count()


def fresh_name(prefix: str) -> str:
    return f"{prefix}-{next(_fresh)}"


def post(http: httpx.Client, name: str, body: bytes, content_type: str) -> httpx.Response:
    return http.post(f"/buffers/{name}/transitions", content=body,
                     headers={"content-type": content_type})


def one_shot(pool: Pool) -> httpx.Client:
    """A client that opens a connection per request: after a 500 the server drops the
    connection, and the pool's shared client must not be the one to find out."""
    return httpx.Client(base_url=pool.http.base_url, timeout=pool.http.timeout,
                        limits=httpx.Limits(max_keepalive_connections=0))


def _well_formed(response: httpx.Response, request: str) -> None:
    assert_well_formed(response.status_code, response.headers.get("content-type"),
                       response.content, request)


WORST_CASES: dict[str, tuple[str, bytes]] = {
    **{f"safetensors: {name}": (SAFETENSORS, body) for name, body in hostile.HUGE_CLAIMS.items()},
    **{f"JSON: {name}": (JSON, body) for name, body in hostile.JSON_WORST_CASES.items()},
    "safetensors one byte over the body limit": (SAFETENSORS, b"\0" * (LIMIT + 1)),
    "JSON one byte over the body limit": (JSON, b" " * (LIMIT + 1)),
    "JSON sent as safetensors": (SAFETENSORS, b'{"transition": {"id": 1}}'),
    "safetensors sent as JSON": (JSON, encode_safetensors(tracked_columns(range(2)))),
    "safetensors as octet-stream, claiming 10 GB": (
        "application/octet-stream", hostile.HUGE_CLAIMS["a 10 GB tensor whose offsets run "
                                                        "past the body"]),
    "JSON with a charset and a BOM": ("application/json; charset=utf-8",
                                      b'\xef\xbb\xbf{"transition": {"id": 1}}'),
}


@pytest.mark.parametrize(("content_type", "body"), [*WORST_CASES.values()], ids=[*WORST_CASES])
def test_a_worst_case_body_is_refused_and_changes_nothing(pool: Pool, content_type: str,
                                                          body: bytes) -> None:
    response = post(pool.http, VICTIM, body, content_type)
    TALLY.faults["hostile bodies over HTTP, worst cases"] += 1
    _well_formed(response, f"{len(body)} bytes of {content_type}")
    assert response.status_code in REFUSED, response.text
    pool.check(VICTIM, accepted=False, request=f"worst case ({content_type})", transitions=True)


def _raw_post(url: str, path: str, headers: dict[str, str], body: bytes
              ) -> tuple[int, str | None, bytes]:
    """A request whose headers say what httpx would not let them say."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        connection.putrequest("POST", path, skip_accept_encoding=True)
        for key, value in headers.items():
            connection.putheader(key, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.getheader("content-type"), response.read()
    finally:
        connection.close()


def test_a_content_length_of_10_gb_is_refused_before_reading(fuzz_service: ServiceProcess,
                                                              pool: Pool) -> None:
    started = time.monotonic()
    status, content_type, content = _raw_post(
        fuzz_service.url, f"/buffers/{VICTIM}/transitions",
        {"content-type": SAFETENSORS, "content-length": str(10 * hostile.GIB)}, b"\0" * 64)
    TALLY.faults["hostile bodies over HTTP, worst cases"] += 1
    assert status == 413, content
    assert_well_formed(status, content_type, content, "Content-Length: 10 GB")
    assert time.monotonic() - started < 5
    pool.check(VICTIM, accepted=False, request="Content-Length: 10 GB", transitions=True)


def test_a_chunked_body_over_the_limit_is_refused(fuzz_service: ServiceProcess,
                                                  pool: Pool) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(LIMIT // 2**20 + 2):
            yield b"\0" * 2**20

    response = pool.http.post(f"/buffers/{VICTIM}/transitions", content=chunks(),
                              headers={"content-type": SAFETENSORS})
    TALLY.faults["hostile bodies over HTTP, worst cases"] += 1
    assert response.status_code == 413, response.text
    _well_formed(response, "a chunked body over the limit")
    pool.check(VICTIM, accepted=False, request="a chunked body over the limit", transitions=True)


@pytest.mark.parametrize("content_length", ["-1", "12abc", "1, 2", "99999999999999999999999"])
def test_a_malformed_content_length_is_a_400_without_a_trace(fuzz_service: ServiceProcess,
                                                              pool: Pool,
                                                              content_length: str) -> None:
    """The HTTP server answers these before the service sees them: a plain-text 400."""
    status, _, content = _raw_post(
        fuzz_service.url, f"/buffers/{VICTIM}/transitions",
        {"content-type": SAFETENSORS, "content-length": content_length}, b"\0" * 16)
    TALLY.faults["hostile bodies over HTTP, worst cases"] += 1
    assert status in (400, 413), content
    assert b"Traceback" not in content
    pool.check(VICTIM, accepted=False, request=f"Content-Length: {content_length}",
               transitions=True)


@fuzz(120)
@given(body=hostile.safetensors_bodies())
def test_hostile_safetensors_are_refused_by_the_victim_and_change_nothing(pool: Pool,
                                                                          body: bytes) -> None:
    TALLY.examples["HTTP: safetensors to the victim"] += 1
    TALLY.faults["hostile bodies over HTTP, to the victim"] += 1
    response = post(pool.http, VICTIM, body, SAFETENSORS)
    _well_formed(response, f"{len(body)} bytes of safetensors")
    assert response.status_code in REFUSED, response.text
    pool.check(VICTIM, accepted=False, request=f"safetensors {body[:120]!r}", transitions=True)


@fuzz(120)
@given(body=hostile.json_bodies())
def test_hostile_json_is_refused_by_the_victim_and_changes_nothing(pool: Pool,
                                                                   body: bytes) -> None:
    TALLY.examples["HTTP: JSON to the victim"] += 1
    TALLY.faults["hostile bodies over HTTP, to the victim"] += 1
    response = post(pool.http, VICTIM, body, JSON)
    _well_formed(response, f"{len(body)} bytes of JSON")
    assert response.status_code in REFUSED, response.text
    pool.check(VICTIM, accepted=False, request=f"JSON {body[:120]!r}", transitions=True)


@fuzz(80)
@given(content_type_and_body=st.tuples(st.just(SAFETENSORS), hostile.safetensors_bodies())
       | st.tuples(st.just(JSON), hostile.json_bodies()))
def test_a_first_store_sets_a_schema_or_leaves_none(pool: Pool,
                                                    content_type_and_body: tuple[str, bytes]
                                                    ) -> None:
    """Into a buffer without schema: accepted, it sets the schema it implies and can be
    sampled back; refused, it leaves neither schema nor transitions."""
    content_type, body = content_type_and_body
    TALLY.examples["HTTP: first stores into a buffer without schema"] += 1
    http, name = pool.http, fresh_name("fuzz-first")
    create(http, name, 8)
    try:
        response = post(http, name, body, content_type)
        _well_formed(response, f"{len(body)} bytes of {content_type}")
        info = http.get(f"/buffers/{name}").json()
        if response.status_code >= 400:
            TALLY.faults["hostile bodies over HTTP, first stores"] += 1
            assert response.status_code in REFUSED, response.text
            assert (info["schema"], info["total_inserted"]) == (None, 0), info
            return
        stored = response.json()["stored"]
        assert info["schema"] is not None and info["total_inserted"] == stored >= 1, info
        sample = http.get(f"/buffers/{name}/sample", params={"batch_size": 2},
                          headers={"accept": SAFETENSORS})
        assert sample.status_code == 200, sample.text
        columns = decode_safetensors(sample.content).columns
        assert set(columns) == {*info["schema"]["fields"], "_indices"}
        json_sample = http.get(f"/buffers/{name}/sample", params={"batch_size": 2})
        _well_formed(json_sample, "a JSON sample of what was stored")
        assert json_sample.status_code == 200, json_sample.text
    finally:
        http.delete(f"/buffers/{name}")


@fuzz(80)
@given(body=hostile.safetensors_bodies())
def test_weights_are_the_last_accepted_body(pool: Pool, body: bytes) -> None:
    """A refused publication leaves the weights as they were; an accepted one is served
    back byte for byte."""
    TALLY.examples["HTTP: weights to the victim"] += 1
    response = pool.http.put(f"/buffers/{VICTIM}/weights", content=body,
                             headers={"content-type": SAFETENSORS})
    _well_formed(response, f"{len(body)} bytes of weights")
    if response.status_code >= 400:
        TALLY.faults["hostile bodies over HTTP, weights"] += 1
        assert response.status_code in REFUSED, response.text
    pool.check(VICTIM, accepted=response.status_code < 400, request=f"weights {body[:120]!r}",
               weights=True)
    if response.status_code < 400:
        fetched = pool.http.get(f"/buffers/{VICTIM}/weights")
        assert hashlib.sha256(fetched.content).digest() == hashlib.sha256(body).digest()


def test_the_victim_holds_what_it_held_before_the_hostile_bodies(pool: Pool) -> None:
    pool.assert_victim_intact()


# ---------------------------------------------------------------- known bugs


@pytest.mark.parametrize(("kind", "body"), [*hostile.NO_FIELDS.values()],
                         ids=[*hostile.NO_FIELDS])
def test_a_store_with_no_fields_into_a_buffer_without_schema_is_a_422(pool: Pool, kind: str,
                                                                      body: bytes) -> None:
    name = fresh_name("fuzz-nofields")
    create(pool.http, name, 8)
    try:
        with one_shot(pool) as http:
            response = post(http, name, body, SAFETENSORS if kind == "safetensors" else JSON)
        assert response.status_code == 422, response.text
        _well_formed(response, kind)
        assert pool.http.get(f"/buffers/{name}").json()["schema"] is None
    finally:
        pool.http.delete(f"/buffers/{name}")


REFUSED_AFTER_INFERENCE = {
    "NaN in a safetensors batch": (SAFETENSORS, encode_safetensors(
        {"reward": np.array([0.5, np.nan], np.float32)})),
    "a float32 overflow in JSON": (JSON, b'{"transition": {"reward": 1e39}}'),
    "an integer past int64 in JSON": (JSON, b'{"columns": {"id": [9223372036854775808]}}'),
    "one transition over the batch limit": (SAFETENSORS, encode_safetensors(
        {"id": np.zeros(SERVICE_LIMITS["max_batch"] + 1, np.uint8)})),
}


@pytest.mark.parametrize(("content_type", "body"), [*REFUSED_AFTER_INFERENCE.values()],
                         ids=[*REFUSED_AFTER_INFERENCE])
def test_a_refused_first_store_leaves_no_schema(pool: Pool, content_type: str,
                                                body: bytes) -> None:
    name = fresh_name("fuzz-refused-first")
    create(pool.http, name, 8)
    try:
        response = post(pool.http, name, body, content_type)
        _well_formed(response, content_type)
        assert response.status_code in (413, 422), response.text
        assert pool.http.get(f"/buffers/{name}").json()["schema"] is None
    finally:
        pool.http.delete(f"/buffers/{name}")


@pytest.mark.parametrize("after", ["18446744073709551616", "99999999999999999999999",
                                   "1-18446744073709551616",
                                   "18446744073709551615-18446744073709551615"])
def test_episodes_after_an_id_redis_cannot_parse_is_not_a_500(pool: Pool, after: str) -> None:
    with one_shot(pool) as http:
        response = http.get(f"/buffers/{VICTIM}/episodes", params={"after": after})
    _well_formed(response, f"episodes after {after}")
    assert response.status_code in (200, 422), response.text


def test_a_ring_cut_into_many_segments_stores_as_fast_as_one(pool: Pool) -> None:
    name = fresh_name("fuzz-segments")
    schema = {"fields": {"frame": {"dtype": "uint8", "shape": [SEGMENT_BYTES + 1]}}}
    created = pool.http.put(f"/buffers/{name}", json={"capacity": 300_000, "schema": schema})
    if created.status_code == 422:  # refusing such a ring is a fix too
        return
    assert created.status_code == 201, created.text
    try:
        body = encode_safetensors({"frame": np.zeros((1, SEGMENT_BYTES + 1), np.uint8)})
        started = time.monotonic()
        assert post(pool.http, name, body, SAFETENSORS).status_code == 200
        elapsed = time.monotonic() - started
        assert elapsed < 0.25, f"one store of one transition took {elapsed:.2f} s"
    finally:
        pool.http.delete(f"/buffers/{name}", timeout=60)


@pytest.mark.parametrize("field", ["id", "reward", "obs"])
def test_a_json_boolean_among_numbers_is_refused(pool: Pool, field: str) -> None:
    name = fresh_name("fuzz-booleans")
    create(pool.http, name, 8, TRACKED_SCHEMA)
    try:
        rows = [{key: value[0].tolist() for key, value in tracked_columns(range(i, i + 1)).items()}
                for i in range(2)]
        rows[0][field] = [True, False, True, False] if field == "obs" else True
        response = pool.http.post(f"/buffers/{name}/transitions", json={"transitions": rows})
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "invalid_dtype"
    finally:
        pool.http.delete(f"/buffers/{name}")
