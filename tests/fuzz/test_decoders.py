"""The wire decoders take any bytes and raise nothing but WireError.

decode_safetensors, decode_json_transitions, infer_schema and conform are what a
request body goes through before anything is stored; whatever a client sends,
each must answer a batch or a WireError carrying a 400, 413 or 422, never another
exception, and never a crash of the process (a Rust panic included).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from replay_service.service.models import CARTPOLE_SCHEMA
from replay_service.service.storage import records
from replay_service.wire.codec import (
    DecodedBatch,
    WireError,
    conform,
    decode_json_transitions,
    decode_safetensors,
    infer_schema,
    read_safetensors_metadata,
)
from replay_service.wire.schema import Schema
from tests.fuzz import hostile
from tests.fuzz.budget import IGNORE_HYPOTHESIS_NOISE, fuzz
from tests.fuzz.tally import TALLY
from tests.service.factories import TRACKED_SCHEMA

pytestmark = IGNORE_HYPOTHESIS_NOISE

T = TypeVar("T")

STORABLE = ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
            "float16", "float32", "float64"]
EVERY_DTYPE_SCHEMA = Schema.model_validate({"fields": {
    **{f"s_{dtype}": {"dtype": dtype} for dtype in STORABLE},
    **{f"m_{dtype}": {"dtype": dtype, "shape": [2, 3]} for dtype in STORABLE},
    "nonfinite": {"dtype": "float16", "shape": [1], "allow_nonfinite": True},
}})
SCHEMAS = [Schema.model_validate(TRACKED_SCHEMA), Schema.model_validate(CARTPOLE_SCHEMA),
           EVERY_DTYPE_SCHEMA, Schema.model_validate({"fields": {"a": {"dtype": "uint8"}}})]


def wire_or_none(call: Callable[[], T]) -> T | None:
    """The call's result, or None when it raised a well-formed WireError; any other
    exception (BaseException included: a Rust panic is one) fails the test."""
    try:
        return call()
    except WireError as error:
        assert error.status in (400, 413, 422), error.status
        assert isinstance(error.code, str) and error.code, error.code
        assert isinstance(error.message, str) and error.message
        assert error.field is None or isinstance(error.field, str), error.field
        return None
    except BaseException as error:  # a Rust panic is not an Exception
        raise AssertionError(f"{type(error).__module__}.{type(error).__name__} instead of a "
                             f"WireError: {error}") from error


def exercise(batch: DecodedBatch) -> None:
    """Infer a schema from the batch and conform it to every schema: results or WireErrors."""
    schemas = list(SCHEMAS)
    inferred = wire_or_none(lambda: infer_schema(batch))
    if inferred is not None:
        schemas.append(inferred)
    for schema in schemas:
        result = wire_or_none(lambda schema=schema: conform(schema, batch))  # type: ignore[misc]
        if result is None:
            continue
        columns, count = result
        assert count >= 1
        assert set(columns) == set(schema.fields)
        for name, spec in schema.fields.items():
            assert columns[name].dtype == spec.numpy_dtype, (name, columns[name].dtype)
            assert columns[name].shape == (count, *spec.shape), (name, columns[name].shape)
            if columns[name].dtype.kind == "f" and not spec.allow_nonfinite:
                assert np.isfinite(columns[name]).all(), name
        records.pack(schema, columns, count)


@fuzz(400)
@given(body=hostile.safetensors_bodies())
def test_decode_safetensors_raises_only_wire_errors(body: bytes) -> None:
    TALLY.examples["decode_safetensors, hostile bodies"] += 1
    batch = wire_or_none(lambda: decode_safetensors(body))
    if batch is None:
        return
    assert sum(column.nbytes for column in batch.columns.values()) <= len(body)
    metadata = read_safetensors_metadata(body)  # the SDK reads it after a decode
    assert all(isinstance(key, str) and isinstance(value, str)
               for key, value in metadata.items()), metadata
    exercise(batch)


@fuzz(400)
@given(body=hostile.json_bodies())
def test_decode_json_transitions_raises_only_wire_errors(body: bytes) -> None:
    TALLY.examples["decode_json_transitions, hostile bodies"] += 1
    batch = wire_or_none(lambda: decode_json_transitions(body))
    if batch is not None:
        exercise(batch)


def _object_arrays() -> st.SearchStrategy[np.ndarray]:
    def build(values: list[Any]) -> np.ndarray:
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array
    return st.lists(st.none() | st.integers() | st.text(max_size=3) | st.lists(st.integers()),
                    max_size=4).map(build)


_ANY_DTYPE = st.one_of(
    hnp.scalar_dtypes(), hnp.integer_dtypes(endianness="?"), hnp.floating_dtypes(endianness="?"),
    hnp.byte_string_dtypes(max_len=3), hnp.unicode_string_dtypes(max_len=3),
    st.sampled_from(STORABLE).map(np.dtype))
_ANY_ARRAY = st.one_of(
    hnp.arrays(_ANY_DTYPE, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)),
    hnp.arrays(st.sampled_from(STORABLE).map(np.dtype), st.tuples(
        st.integers(0, 3), st.sampled_from([(), (2, 3), (4,), (1,), (0,), (2, 3, 1)])).map(
            lambda lead_rest: (lead_rest[0], *lead_rest[1]))),
    _object_arrays())
_NAMES = st.sampled_from([*hostile.TENSOR_NAMES, *EVERY_DTYPE_SCHEMA.fields])


@fuzz(400)
@given(columns=st.dictionaries(_NAMES, _ANY_ARRAY, min_size=1, max_size=6),
       exact=st.booleans())
def test_infer_schema_and_conform_raise_only_wire_errors(columns: dict[str, np.ndarray],
                                                         exact: bool) -> None:
    """Whatever arrays a decoder could hand over, of any dtype, byte order or shape."""
    TALLY.examples["infer_schema and conform, any arrays"] += 1
    exercise(DecodedBatch(columns, exact))


DECODERS = {"json": decode_json_transitions, "safetensors": decode_safetensors}


@fuzz(400)
@given(kind_and_body=st.tuples(st.just("safetensors"), hostile.tracked_safetensors_mutants())
       | st.tuples(st.just("json"), hostile.tracked_json_mutants()))
def test_every_tracked_mutant_is_refused_by_the_tracked_schema(kind_and_body: tuple[str, bytes]
                                                              ) -> None:
    """What the HTTP tests and the fuzzer send the victim buffer is invalid by construction."""
    TALLY.examples["tracked mutants, refused"] += 1
    kind, body = kind_and_body
    tracked = Schema.model_validate(TRACKED_SCHEMA)
    with pytest.raises(WireError):
        conform(tracked, DECODERS[kind](body))


@pytest.mark.parametrize("body", [*hostile.JSON_WORST_CASES.values()],
                         ids=[*hostile.JSON_WORST_CASES])
def test_json_worst_cases_raise_only_wire_errors(body: bytes) -> None:
    batch = wire_or_none(lambda: decode_json_transitions(body))
    if batch is not None:
        exercise(batch)


@pytest.mark.parametrize("body", [*hostile.HUGE_CLAIMS.values()], ids=[*hostile.HUGE_CLAIMS])
def test_safetensors_claiming_gigabytes_raise_wire_errors(body: bytes) -> None:
    batch = wire_or_none(lambda: decode_safetensors(body))
    if batch is not None:  # an empty batch, however wide
        assert sum(column.nbytes for column in batch.columns.values()) == 0
        exercise(batch)


def test_the_grid_of_huge_claims_raises_only_wire_errors() -> None:
    for body in hostile.huge_claims_grid():
        batch = wire_or_none(lambda body=body: decode_safetensors(body))  # type: ignore[misc]
        if batch is not None:
            assert sum(column.nbytes for column in batch.columns.values()) <= len(body)
            exercise(batch)


@pytest.mark.parametrize(("kind", "body"), [*hostile.NO_FIELDS.values()],
                         ids=[*hostile.NO_FIELDS])
def test_infer_schema_of_a_batch_with_no_fields_raises_a_wire_error(kind: str, body: bytes
                                                                     ) -> None:
    batch = DECODERS[kind](body)
    assert batch.columns == {}
    with pytest.raises(WireError) as raised:
        infer_schema(batch)
    assert raised.value.status == 422


BOOLEANS_AMONG_NUMBERS = {
    "a boolean among integers": ({"action": {"dtype": "int64"}},
                                 b'{"columns": {"action": [1, true, 0]}}'),
    "a boolean among numbers": ({"reward": {"dtype": "float32"}},
                                b'{"transitions": [{"reward": 0.5}, {"reward": false}]}'),
    "booleans among observations": ({"obs": {"dtype": "float32", "shape": [2]}},
                                    b'{"columns": {"obs": [[true, false], [0.25, 0.5]]}}'),
}


@pytest.mark.parametrize(("fields", "body"), [*BOOLEANS_AMONG_NUMBERS.values()],
                         ids=[*BOOLEANS_AMONG_NUMBERS])
def test_a_json_boolean_among_numbers_is_refused_like_a_boolean_alone(
        fields: dict[str, Any], body: bytes) -> None:
    schema = Schema.model_validate({"fields": fields})
    with pytest.raises(WireError) as raised:
        conform(schema, decode_json_transitions(body))
    assert raised.value.code == "invalid_dtype"
