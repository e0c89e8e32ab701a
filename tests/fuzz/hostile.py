"""Hostile bodies: safetensors whose headers lie, and JSON that breaks every rule.

Shared by the decoder properties, the allocation checks, the HTTP tests and the
schemathesis run (which draws its application/x-safetensors bodies from here).

Two families:
- anything goes (`safetensors_bodies`, `json_bodies`): valid or not, as a client
  of any language might send;
- mutants of the tracked schema (`tracked_safetensors_mutants`,
  `tracked_json_mutants`): a valid batch of tests.service.factories.TRACKED_SCHEMA
  with one change that makes it invalid, by construction. Every one must be
  refused by a buffer of that schema, and must leave it unchanged.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from replay_service.wire.codec import encode_safetensors
from tests.service.factories import TRACKED_SCHEMA, tracked_columns

__all__ = [
    "GIB",
    "HUGE_CLAIMS",
    "JSON_WORST_CASES",
    "NO_FIELDS",
    "huge_claims_grid",
    "json_bodies",
    "lying_safetensors",
    "safetensors_body",
    "safetensors_bodies",
    "tracked_json_mutants",
    "tracked_safetensors_mutants",
    "valid_safetensors",
]

GIB = 1024**3

# Item sizes of the dtypes the format defines; the first group is what numpy and
# the service can hold, the second what the format (or nobody) knows besides.
STORABLE_DTYPES = {"BOOL": 1, "U8": 1, "I8": 1, "U16": 2, "I16": 2, "U32": 4, "I32": 4,
                   "U64": 8, "I64": 8, "F16": 2, "F32": 4, "F64": 8}
FOREIGN_DTYPES = {"BF16": 2, "C64": 8, "F8_E4M3": 1, "F8_E5M2": 1, "F4": 1, "I4": 1,
                  "f32": 4, "float32": 4, "": 1, "X": 1}
ALL_DTYPES = {**STORABLE_DTYPES, **FOREIGN_DTYPES}

HUGE_DIMS = [2**31 - 1, 2**31, 2**32, 10**10, 2**40, 2**53 + 1, 2**62, 2**63 - 1, 2**63,
             2**64 - 1]
# Header lengths a first 8 bytes may declare besides the true one.
LYING_LENGTHS = [0, 1, 7, 2**31, 100_000_001, 10 * GIB, 2**63, 2**64 - 1]

TRACKED_FIELDS = list(TRACKED_SCHEMA["fields"])
TENSOR_NAMES = [*TRACKED_FIELDS, "colour", "a", "x0", "_indices", "", " obs", "obs\n",
                "ob\u0000s", "\u00e9t\u00e9", "a" * 80]
FIELD_NAMES = st.sampled_from(TENSOR_NAMES)
# A tensor named __metadata__ is what the format reserves for the metadata.
HEADER_KEYS = st.sampled_from([*TENSOR_NAMES, "__metadata__"])


def safetensors_body(header: bytes | dict[str, Any], data: bytes = b"",
                     declared: int | None = None) -> bytes:
    """The 8-byte little-endian header length (the true one unless `declared`), the
    header, then the data."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if declared is None else declared) + raw + data


def _claim(shape: list[int], dtype: str = "U8", data: bytes = b"\0" * 64,
           offsets: list[int] | None = None, declared: int | None = None) -> bytes:
    size = math.prod(shape) * ALL_DTYPES.get(dtype, 1)
    entry = {"dtype": dtype, "shape": shape,
             "data_offsets": offsets if offsets is not None else [0, size]}
    return safetensors_body({"obs": entry}, data, declared)


# Small bodies whose headers claim at least 10 GB; a decoder that believes them
# before checking them against the body's length would try to allocate it all.
HUGE_CLAIMS: dict[str, bytes] = {
    "a 10 GB tensor whose offsets run past the body": _claim([10 * GIB]),
    "a 10 GB float32 tensor with 64 bytes of data": _claim([GIB, 10], "F32", offsets=[0, 64]),
    "a 10 GB header length before a 50-byte header": safetensors_body(
        b'{"obs": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}', b"\0",
        declared=10 * GIB),
    "a header length of 2^64 - 1": safetensors_body(b"{}", b"", declared=2**64 - 1),
    "a shape whose byte count overflows 64 bits": _claim([2**32, 2**32], offsets=[0, 0]),
    "a shape whose byte count wraps to 64": _claim([2**61 + 8, 8], offsets=[0, 64]),
    "a 10 GB tensor at the end of a valid one": safetensors_body(
        {"a": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]},
         "b": {"dtype": "F64", "shape": [10 * GIB // 8], "data_offsets": [8, 10 * GIB + 8]}},
        b"\0" * 16),
    "an empty batch ten billion wide": _claim([0, 10 * GIB], "F32", data=b"", offsets=[0, 0]),
    "a transition of 2^31 x 2^31 float64": _claim([1, 2**31, 2**31], "F64", offsets=[0, 64]),
    "a thousand tensors each claiming 10 MB": safetensors_body(
        {f"t{i}": {"dtype": "F32", "shape": [10 * 2**20 // 4], "data_offsets": [0, 10 * 2**20]}
         for i in range(1000)}, b"\0" * 64),
    "a negative-looking offset": _claim([8], offsets=[2**64 - 8, 0]),
}


def huge_claims_grid() -> list[bytes]:
    """Every combination of a huge dimension, a dtype, an offsets lie and a header-length
    lie: a deterministic few hundred bodies, each claiming more than the body holds."""
    bodies = []
    for dim in HUGE_DIMS:
        for dtype in ("BOOL", "U8", "F32", "F64", "BF16", "C64"):
            itemsize = ALL_DTYPES[dtype]
            for offsets in ([0, dim * itemsize], [0, 64], [0, 0], [64, 0]):
                bodies.append(_claim([dim], dtype, offsets=offsets))
                bodies.append(_claim([1, dim, 4], dtype, offsets=offsets))
    for declared in LYING_LENGTHS:
        bodies.append(_claim([8], declared=declared))
    return bodies


# ---------------------------------------------------------------- safetensors

_JUNK = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), st.text(max_size=4),
                  st.lists(st.integers(-2, 4), max_size=3), st.dictionaries(
                      st.text(max_size=3), st.integers(0, 3), max_size=2))
_DIMS = st.one_of(st.integers(0, 4), st.sampled_from(HUGE_DIMS))


@st.composite
def _offsets(draw: st.DrawFn, start: int, size: int) -> Any:
    true = [start, start + size]
    return draw(st.one_of(
        st.just(true), st.just(true), st.just(true),
        st.builds(lambda a, b: [a, b], st.integers(0, 300), st.integers(0, 300)),
        st.just([start, start + size + 1]), st.just([start + size, start]),
        st.builds(lambda huge: [start, huge], st.sampled_from(HUGE_DIMS)),
        st.just([-1, size]), st.just([start]), st.just([start, start + size, 0]),
        _JUNK))


@st.composite
def _entry(draw: st.DrawFn, start: int) -> tuple[dict[str, Any], int]:
    """A header entry, and the number of data bytes it truthfully needs (capped)."""
    dtype = draw(st.one_of(st.sampled_from(sorted(ALL_DTYPES)), _JUNK))
    shape = draw(st.one_of(st.lists(_DIMS, max_size=4), st.lists(_DIMS, max_size=4),
                           st.lists(st.integers(-3, -1) | st.floats(0.5, 2) | st.text(max_size=2),
                                    min_size=1, max_size=2), _JUNK))
    itemsize = ALL_DTYPES.get(dtype, 1) if isinstance(dtype, str) else 1
    dims_are_sizes = isinstance(shape, list) and all(
        isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0 for dim in shape)
    size = math.prod(shape) * itemsize if dims_are_sizes else 0
    entry: dict[str, Any] = {"dtype": dtype, "shape": shape,
                             "data_offsets": draw(_offsets(start, size))}
    if draw(st.integers(0, 9)) == 0:
        entry[draw(st.sampled_from(["junk", "dtype", "shape", "offsets"]))] = draw(_JUNK)
    if draw(st.integers(0, 9)) == 0:
        del entry[draw(st.sampled_from(["dtype", "shape", "data_offsets"]))]
    return entry, min(size, 256)


@st.composite
def _header_text(draw: st.DrawFn, pairs: list[tuple[str, Any]]) -> bytes:
    """JSON text of the header, sometimes mangled the ways JSON serializers never would."""
    items = [json.dumps(key).encode() + b": " + json.dumps(value).encode() for key, value in pairs]
    how = draw(st.sampled_from(["plain"] * 6 + ["duplicate", "padding", "nul padding", "not utf8",
                                                 "bom", "truncated", "not an object", "trailing"]))
    if how == "duplicate" and items:
        items = [*items, items[0]]
    text = b"{" + b", ".join(items) + b"}"
    if how == "padding":
        text += b" " * draw(st.integers(1, 16))
    elif how == "nul padding":
        text += b"\0" * draw(st.integers(1, 16))
    elif how == "not utf8":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80",
                                                 b"\xf8\x88\x80\x80\x80"])) + text[at:]
    elif how == "bom":
        text = b"\xef\xbb\xbf" + text
    elif how == "truncated":
        text = text[: draw(st.integers(0, len(text) - 1))]
    elif how == "not an object":
        text = draw(st.sampled_from([b"[]", b"1", b'"obs"', b"null", b"true", b"[{}]", b""]))
    elif how == "trailing":
        text += draw(st.sampled_from([b"{}", b"x", b",", b"]"]))
    return text


@st.composite
def lying_safetensors(draw: st.DrawFn) -> bytes:
    """Headers that lie about dtypes, shapes, offsets, names or their own length."""
    pairs: list[tuple[str, Any]] = []
    data_needed = 0
    for _ in range(draw(st.integers(0, 4))):
        entry, size = draw(_entry(data_needed))
        pairs.append((draw(HEADER_KEYS), entry))
        data_needed += size
    if draw(st.integers(0, 4)) == 0:
        metadata = draw(st.one_of(st.dictionaries(st.text(max_size=4), st.text(max_size=4),
                                                  max_size=3), _JUNK))
        pairs.insert(draw(st.integers(0, len(pairs))), ("__metadata__", metadata))
    header = draw(_header_text(pairs))
    data_size = draw(st.one_of(st.just(data_needed), st.just(data_needed),
                               st.integers(0, data_needed + 8)))
    data = draw(st.binary(min_size=data_size, max_size=data_size))
    declared = draw(st.one_of(st.none(), st.none(), st.none(), st.sampled_from(LYING_LENGTHS),
                              st.integers(-8, 8).map(lambda delta: max(0, len(header) + delta))))
    body = safetensors_body(header, data, declared)
    if draw(st.integers(0, 7)) == 0:
        body = body[: draw(st.integers(0, len(body)))]
    return body


_NUMPY_DTYPES = st.sampled_from(["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32",
                                 "uint64", "int64", "float16", "float32", "float64"])


@st.composite
def valid_safetensors(draw: st.DrawFn) -> bytes:
    """Well-formed safetensors of up to five tensors of any storable dtype and shape."""
    rows = draw(st.integers(0, 3))
    columns = {}
    for name in draw(st.lists(FIELD_NAMES, min_size=1, max_size=5, unique=True)):
        shape = (draw(st.sampled_from([rows, rows, rows + 1])),
                 *draw(st.lists(st.integers(0, 3), max_size=2)))
        columns[name] = draw(hnp.arrays(np.dtype(draw(_NUMPY_DTYPES)), shape))
    metadata = draw(st.none() | st.dictionaries(st.text(max_size=4), st.text(max_size=4),
                                                 max_size=2))
    return encode_safetensors(columns, metadata)


Columns = dict[str, np.ndarray]
Mutation = Callable[[Columns], None]


def _replace(name: str, new: Callable[[np.ndarray], np.ndarray]) -> Mutation:
    def change(columns: Columns) -> None:
        with np.errstate(all="ignore"):
            columns[name] = new(columns[name])
    return change


def _drop(name: str) -> Mutation:
    def change(columns: Columns) -> None:
        del columns[name]
    return change


def _rename(name: str) -> Mutation:
    def change(columns: Columns) -> None:
        columns[name.upper()] = columns.pop(name)
    return change


def _holding(name: str, value: float) -> Mutation:
    def change(columns: Columns) -> None:
        columns[name].flat[-1] = value
    return change


def _add(name: str) -> Mutation:
    def change(columns: Columns) -> None:
        columns[name] = columns["id"].copy()
    return change


def _no_rows(columns: Columns) -> None:
    columns.update({name: column[:0] for name, column in columns.items()})


def _tracked_mutations() -> dict[str, Mutation]:
    """Changes that each make a valid tracked batch invalid for TRACKED_SCHEMA."""
    mutations: dict[str, Mutation] = {}
    for name, spec in TRACKED_SCHEMA["fields"].items():
        mutations[f"drop {name}"] = _drop(name)
        mutations[f"rename {name}"] = _rename(name)
        # a 0-d array for a scalar field, one row of four for obs
        mutations[f"{name} without the batch dimension"] = _replace(
            name, lambda column: np.array(column[0]))
        mutations[f"{name} one row longer"] = _replace(
            name, lambda column: np.concatenate([column, column[:1]]))
        mutations[f"{name} with an extra dimension"] = _replace(
            name, lambda column: np.ascontiguousarray(column[..., None]))
        for dtype in ("bool", "uint8", "int32", "int64", "uint64", "float16", "float32", "float64"):
            if dtype != spec["dtype"]:
                mutations[f"{name} as {dtype}"] = _replace(
                    name, lambda column, dtype=dtype: column.astype(dtype))  # type: ignore[misc]
        if spec["dtype"].startswith("float"):
            for bad in (np.nan, np.inf, -np.inf):
                mutations[f"{name} holding {bad}"] = _holding(name, bad)
    mutations["an extra field"] = _add("colour")
    mutations["a field named _indices"] = _add("_indices")
    mutations["no rows"] = _no_rows
    mutations["obs of five"] = _replace("obs", lambda column: np.zeros((len(column), 5),
                                                                       np.float32))
    return mutations


TRACKED_MUTATIONS = _tracked_mutations()

# Byte-level damage to an encoded, otherwise valid tracked batch: each leaves
# bytes that no longer parse, or whose header no longer matches its data.
_BYTE_DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "truncated data": lambda body: body[:-3],
    "one byte of data too many": lambda body: body + b"\0",
    "header length one short": lambda body: struct.pack(
        "<Q", struct.unpack_from("<Q", body)[0] - 1) + body[8:],
    "header length one long": lambda body: struct.pack(
        "<Q", struct.unpack_from("<Q", body)[0] + 1) + body[8:],
    "F32 relabelled F64": lambda body: body.replace(b'"F32"', b'"F64"', 1),
    "I64 relabelled I32": lambda body: body.replace(b'"I64"', b'"I32"', 1),
    "BOOL relabelled U8": lambda body: body.replace(b'"BOOL"', b'"U8"  ', 1),
    "first shape doubled": lambda body: body.replace(b'"shape":[', b'"shape":[2,', 1),
    "header cut": lambda body: body[: 8 + struct.unpack_from("<Q", body)[0] // 2],
}


@st.composite
def tracked_safetensors_mutants(draw: st.DrawFn) -> bytes:
    """A tracked batch with one invalidating change, as safetensors."""
    count = draw(st.integers(1, 4))
    columns = tracked_columns(range(10_000, 10_000 + count), seed=draw(st.integers(0, 1000)))
    damage = draw(st.sampled_from(sorted(_BYTE_DAMAGE)) | st.none())
    if damage is None:
        TRACKED_MUTATIONS[draw(st.sampled_from(sorted(TRACKED_MUTATIONS)))](columns)
        return encode_safetensors(columns)
    return _BYTE_DAMAGE[damage](encode_safetensors(columns))


def safetensors_bodies() -> st.SearchStrategy[bytes]:
    """Anything a client might send as application/x-safetensors."""
    return st.one_of(lying_safetensors(), valid_safetensors(), tracked_safetensors_mutants(),
                     st.binary(max_size=96))


# ----------------------------------------------------------------------- JSON

_HUGE_INTS = [2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**30, -(10**30)]
_JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.sampled_from(_HUGE_INTS),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([1e39, -1e39, 1e308, 5e-324]),
    st.text(max_size=6))
_JSON_VALUES = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from([*TRACKED_FIELDS, "a", "", "_x", "transition"]) | st.text(max_size=4),
        inner, max_size=4),
    max_leaves=16)

# Text that stands where a JSON value should: literals orjson refuses, numbers out
# of any range, nesting deeper than any parser goes. None of these parse...
_INVALID_RAW_VALUES = [
    b"NaN", b"-NaN", b"Infinity", b"-Infinity", b"nan", b"inf", b"1e400", b"-1e400",
    b"1" + b"0" * 400, b"-" + b"9" * 5000, b"0x10", b"+1", b"1.", b"--1",
    b'"\\ud800"', b"undefined", b"None", b"True", b"'a'", b"[1,]", b"{,}",
    b"[" * 5000 + b"]" * 5000, b'{"a":' * 2000 + b"1" + b"}" * 2000]
# ...and these may (".5" alone does not, "10.5" does), as a number that underflows to
# 0, a NUL and nesting numpy refuses.
_RAW_VALUES = [*_INVALID_RAW_VALUES, b"01", b".5", b"0." + b"0" * 400 + b"1", b"1e-400",
               b'"\\u0000"',
               b"[" * 100 + b"]" * 100, b"[" * 65 + b"1" + b"]" * 65]


@st.composite
def _damaged(draw: st.DrawFn, text: bytes, raw_values: list[bytes]) -> bytes:
    """The text, or the text broken at the byte level (every way but a valid raw value
    leaves it invalid JSON)."""
    how = draw(st.sampled_from(["none"] * 8 + ["truncated", "not utf8", "bom", "trailing",
                                                "raw value", "duplicate key"]))
    if how == "truncated":
        return text[: draw(st.integers(0, len(text) - 1))]
    if how == "not utf8":
        at = draw(st.integers(0, len(text)))
        invalid = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"]))
        return text[:at] + invalid + text[at:]
    if how == "bom":
        return b"\xef\xbb\xbf" + text
    if how == "trailing":
        return text + draw(st.sampled_from([b"x", b"}", b",", b"{}", b"\0"]))
    if how == "raw value":
        # replace the last number, true, false or null in the text by one of the raw values
        for token in (b"1", b"0", b"true", b"false", b"null"):
            at = text.rfind(token)
            if at >= 0:
                return text[:at] + draw(st.sampled_from(raw_values)) + text[at + len(token):]
        return text
    if how == "duplicate key" and text.startswith(b"{") and len(text) > 2:
        return text[:-1] + b", " + text[1:]
    return text


@st.composite
def _numeric_columns(draw: st.DrawFn) -> dict[str, Any]:
    """Columns of booleans, integers or numbers of one length: what a store should be."""
    rows = draw(st.integers(1, 3))
    columns = {}
    for name in draw(st.lists(FIELD_NAMES, min_size=1, max_size=4, unique=True)):
        shape = (rows, *draw(st.sampled_from([(), (), (2,), (1, 3)])))
        dtype = draw(st.sampled_from(["bool", "int64", "uint64", "float64"]))
        elements = (st.floats(allow_nan=False, allow_infinity=False) if dtype == "float64"
                    else None)
        columns[name] = draw(hnp.arrays(np.dtype(dtype), shape, elements=elements)).tolist()
    return columns


@st.composite
def json_bodies(draw: st.DrawFn) -> bytes:
    """Anything a client might send as application/json: every layout, wrong types at
    every level, and text no JSON parser should take."""
    layout = draw(st.sampled_from(["transition", "transitions", "columns", "two layouts",
                                   "unknown layout", "no layout", "tracked", "numbers",
                                   "numbers"]))
    document: Any
    if layout == "numbers":
        document = {"columns": draw(_numeric_columns())}
    elif layout == "transition":
        document = {"transition": draw(_JSON_VALUES)}
    elif layout == "transitions":
        document = {"transitions": draw(st.lists(_JSON_VALUES, max_size=4) | _JSON_VALUES)}
    elif layout == "columns":
        document = {"columns": draw(st.dictionaries(st.text(max_size=4), _JSON_VALUES,
                                                    max_size=4) | _JSON_VALUES)}
    elif layout == "two layouts":
        document = {"transition": {}, "columns": draw(_JSON_VALUES)}
    elif layout == "unknown layout":
        document = {draw(st.text(max_size=6)): draw(_JSON_VALUES)}
    elif layout == "no layout":
        document = draw(_JSON_VALUES)
    else:
        return draw(tracked_json_mutants())
    return draw(_damaged(json.dumps(document).encode(), _RAW_VALUES))


def _tracked_rows(count: int, seed: int) -> list[dict[str, Any]]:
    columns = tracked_columns(range(20_000, 20_000 + count), seed=seed)
    return [{name: column[i].tolist() for name, column in columns.items()} for i in range(count)]


# Values that each make one field of a tracked row invalid, whatever the other rows
# hold (a float field takes integers, so no integer is a wrong value for one).
_WRONG_VALUES: dict[str, list[Any]] = {
    "int64": [0.5, 1.0, "1", None, [1], {}, 2**63, 2**64, -(2**63) - 1, 1e30],
    "float32": ["1.0", None, [1.0], {}, 1e39, -1e39, [[1.0]]],
    "float32[4]": [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0, 5.0], [[1.0, 2.0, 3.0, 4.0]], 1.0,
                   [1.0, 2.0, 3.0, "4"], [1.0, 2.0, 3.0, None], [1.0, 2.0, 3.0, 1e39],
                   [[1.0], [2.0], [3.0], [4.0]], "obs", None, {}],
    "bool": [0, 1, "true", None, [True], {}, 0.0],
}


def _field_kind(name: str) -> str:
    spec = TRACKED_SCHEMA["fields"][name]
    return str(spec["dtype"]) + (str(spec["shape"]) if spec["shape"] else "")


@st.composite
def tracked_json_mutants(draw: st.DrawFn) -> bytes:
    """A tracked batch in one of the three JSON layouts with one invalidating change."""
    rows = _tracked_rows(draw(st.integers(1, 3)), draw(st.integers(0, 1000)))
    change = draw(st.sampled_from(["wrong value", "wrong value", "drop", "extra", "ragged rows",
                                   "rows with other fields", "empty", "unequal columns",
                                   "column not a list"]))
    victim_row = draw(st.integers(0, len(rows) - 1))
    name = draw(st.sampled_from(TRACKED_FIELDS))
    layout = draw(st.sampled_from(["transition", "transitions", "columns"]))
    if change == "wrong value":
        rows[victim_row][name] = draw(st.sampled_from(_WRONG_VALUES[_field_kind(name)]))
    elif change == "drop":
        for row in rows:
            del row[name]
    elif change == "extra":
        for row in rows:
            row["colour"] = 1
    elif change in ("ragged rows", "rows with other fields") and len(rows) > 1:
        if change == "ragged rows":
            rows[-1]["obs"] = rows[-1]["obs"][:3]
        else:
            del rows[-1][name]
        layout = "transitions"
    elif change == "empty":
        rows = []
        layout = draw(st.sampled_from(["transitions", "columns"]))
    elif change in ("unequal columns", "column not a list"):
        layout = "columns"
    else:
        rows[victim_row][name] = None
    document: dict[str, Any]
    if layout == "transition":
        document = {"transition": rows[victim_row]}
    elif layout == "transitions":
        document = {"transitions": rows}
    else:
        columns = {field: [row[field] for row in rows] for field in TRACKED_FIELDS
                   if all(field in row for row in rows)}
        for row in rows:
            columns.update({key: [value] for key, value in row.items() if key not in columns})
        if not rows:
            columns = {field: [] for field in TRACKED_FIELDS}
        if change == "unequal columns":
            columns[name] = [*columns[name], columns[name][0]]
        if change == "column not a list":
            columns[name] = columns[name][0]
        if change == "drop":
            columns.pop(name, None)
        document = {"columns": columns}
    return draw(_damaged(json.dumps(document).encode(), _INVALID_RAW_VALUES))


# Bodies no parser should take, or should take only to refuse their contents.
JSON_WORST_CASES = {
    "nesting 100,000 deep": b'{"columns": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
    "objects 100,000 deep": b'{"transition": ' + b'{"a":' * 100_000 + b"1" + b"}" * 100_001,
    "a 100,000-digit integer": b'{"transition": {"a": ' + b"7" * 100_000 + b"}}",
    "a 100,000-digit fraction": b'{"transition": {"a": 0.' + b"7" * 100_000 + b"}}",
    "an exponent of a billion": b'{"transition": {"a": 1e1000000000}}',
    "NaN": b'{"transition": {"a": NaN}}',
    "Infinity": b'{"transition": {"a": -Infinity}}',
    "not UTF-8": b'{"transition": {"\xff\xfe": 1}}',
    "a lone surrogate": b'{"transition": {"\\udc00": 1}}',
    "UTF-16": '{"transition": {"a": 1}}'.encode("utf-16"),
    "a NUL byte": b'{"transition": {"a": 1}}\0',
    "nothing": b"",
    "a 64-dimensional value": b'{"columns": {"a": [' + b"[" * 64 + b"1" + b"]" * 64 + b"]}}",
    "65 dimensions": b'{"columns": {"a": [' + b"[" * 65 + b"1" + b"]" * 65 + b"]}}",
    "an integer past uint64": b'{"columns": {"a": [18446744073709551616]}}',
    "int64 min and uint64 max": b'{"columns": {"a": [-9223372036854775808, 18446744073709551615]}}',
    "a million rows of nothing": b'{"transitions": [' + b",".join([b"{}"] * 1_000_000) + b"]}",
}

# Batches of no fields at all.
NO_FIELDS = {
    "JSON, one transition of no fields": ("json", b'{"transition": {}}'),
    "JSON, rows of no fields": ("json", b'{"transitions": [{}, {}]}'),
    "JSON, no columns": ("json", b'{"columns": {}}'),
    "safetensors, no tensors": ("safetensors", safetensors_body(b"{}")),
    "safetensors, only metadata": ("safetensors",
                                   safetensors_body(b'{"__metadata__": {"a": "b"}}')),
}
