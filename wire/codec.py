"""The wire format, defined once for the service and the SDK.

Transitions travel as JSON (rows, columns or one transition) for any language,
or as safetensors for speed: an 8-byte header length, a JSON header of dtype,
shape and offsets, then raw little-endian bytes. Nothing here ever unpickles.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Any, get_args

import numpy as np
import orjson
import safetensors
import safetensors.numpy

from replay_service.wire.errors import ErrorCode
from replay_service.wire.schema import FIELD_NAME_PATTERN, DType, FieldSpec, Schema

__all__ = [
    "JSON",
    "SAFETENSORS",
    "BINARY_ALIASES",
    "INDICES_TENSOR",
    "DecodedBatch",
    "WireError",
    "decode_json_transitions",
    "decode_safetensors",
    "conform",
    "infer_schema",
    "encode_safetensors",
    "read_safetensors_metadata",
]

JSON = "application/json"
SAFETENSORS = "application/x-safetensors"
BINARY_ALIASES = frozenset({SAFETENSORS, "application/octet-stream"})
# Sampled batches in safetensors carry each transition's slot under this name;
# field names cannot start with an underscore, so it never collides.
INDICES_TENSOR = "_indices"

_STORABLE_DTYPES = frozenset(get_args(DType))
# By numpy's dtype.str (byte order first), which costs far less to read than dtype.name.
_SAFETENSORS_DTYPES = {"|b1": "BOOL", "|u1": "U8", "|i1": "I8", "<u2": "U16", "<i2": "I16",
                       "<u4": "U32", "<i4": "I32", "<u8": "U64", "<i8": "I64", "<f2": "F16",
                       "<f4": "F32", "<f8": "F64"}

# Which numpy kinds a JSON value may arrive as, per target dtype kind. JSON has
# one number type, so integers are fine for float fields (JavaScript writes 1.0
# as 1), but a fraction for an integer field or a number for a bool is an error.
_JSON_KINDS_ACCEPTED = {"b": "b", "u": "iu", "i": "iu", "f": "iuf"}
_KIND_NAMES = {
    "b": "booleans",
    "i": "integers",
    "u": "integers",
    "f": "numbers with a fraction",
    "U": "strings",
    "O": "null, objects or numbers out of range",
}


class WireError(ValueError):
    """A body that cannot become a valid batch of transitions; its code's status is 400
    when the bytes do not parse, 422 when they parse but do not fit the buffer's schema."""

    def __init__(self, code: ErrorCode, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.status = code.status


@dataclass(frozen=True)
class DecodedBatch:
    """Columns decoded from a request body, not yet checked against a schema.

    `exact_dtypes` is true for binary bodies, whose dtypes must match the schema
    exactly; JSON numbers only say integer or not, so they are cast.
    """

    columns: dict[str, np.ndarray]
    exact_dtypes: bool


def decode_json_transitions(body: bytes) -> DecodedBatch:
    """Accept `{"transition": {...}}`, `{"transitions": [{...}, ...]}` or `{"columns": {...}}`."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise WireError(ErrorCode.INVALID_JSON, f"body is not valid JSON: {error}") from None
    if not isinstance(document, dict) or len(document) != 1:
        raise WireError(
            ErrorCode.INVALID_BODY,
            'body must be an object with exactly one key: "transition", "transitions" or "columns"',
        )
    ((layout, payload),) = document.items()
    if layout == "transition":
        rows = [_expect_object(payload, "transition")]
    elif layout == "transitions":
        if not isinstance(payload, list):
            raise WireError(ErrorCode.INVALID_BODY, '"transitions" must be a list of objects',
                            field="transitions")
        rows = [_expect_object(row, f"transitions[{i}]") for i, row in enumerate(payload)]
    elif layout == "columns":
        return DecodedBatch(_columns_from_json(_expect_object(payload, "columns")), False)
    else:
        raise WireError(
            ErrorCode.INVALID_BODY,
            f'unknown key "{layout}": use "transition", "transitions" or "columns"',
            field=layout,
        )
    if not rows:
        raise WireError(ErrorCode.EMPTY_BATCH,
                        "the batch holds no transitions", field="transitions")
    names = list(rows[0])
    for i, row in enumerate(rows):
        if row.keys() != rows[0].keys():
            missing = sorted(set(names) - row.keys())
            extra = sorted(row.keys() - set(names))
            detail = f"lacks {missing}" if missing else f"has extra {extra}"
            raise WireError(
                ErrorCode.INCONSISTENT_ROWS,
                f"transitions[{i}] {detail}: every transition needs the same fields",
                field=(missing or extra)[0],
            )
    return DecodedBatch(_columns_from_json({name: [row[name] for row in rows] for name in names}),
                        False)


def _expect_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WireError(ErrorCode.INVALID_BODY,
                        f"{where} must be an object of field: value", field=where)
    return value


def _columns_from_json(raw: dict[str, Any]) -> dict[str, np.ndarray]:
    columns = {}
    for name, values in raw.items():
        if not isinstance(values, list):
            raise WireError(ErrorCode.INVALID_SHAPE,
                            f"field '{name}': expected a list with one value "
                            "per transition", field=name)
        try:
            column = np.asarray(values)
        except (ValueError, OverflowError):
            raise WireError(ErrorCode.INVALID_SHAPE,
                            f"field '{name}': nested lists of unequal length",
                            field=name) from None
        if column.dtype.kind in "iuf" and _holds_bool(values):
            # numpy reads [1, true] as [1, 1]: a boolean among numbers is a type error
            raise WireError(ErrorCode.INVALID_DTYPE, f"field '{name}': booleans mixed with numbers",
                            field=name)
        columns[name] = column
    return columns


def _holds_bool(values: list[Any]) -> bool:
    """Whether nested lists hold a bool anywhere (numbers only were already checked)."""
    stack: list[Any] = [values]
    while stack:
        item = stack.pop()
        if isinstance(item, bool):
            return True
        if isinstance(item, list):
            stack.extend(item)
    return False


def decode_safetensors(body: bytes) -> DecodedBatch:
    """Decode a safetensors body; the library checks offsets before allocating anything."""
    try:
        tensors = safetensors.numpy.load(body)
    except Exception as error:  # the Rust parser raises one error type, or panics
        raise WireError(ErrorCode.INVALID_SAFETENSORS,
                        f"body is not valid safetensors: {error}") from None
    return DecodedBatch(tensors, True)


def read_safetensors_metadata(body: bytes) -> dict[str, str]:
    """The `__metadata__` strings of a safetensors body (the library drops them)."""
    (length,) = struct.unpack_from("<Q", body)
    header = orjson.loads(body[8 : 8 + length])
    metadata: dict[str, str] = header.get("__metadata__") or {}
    return metadata


def encode_safetensors(columns: dict[str, np.ndarray], metadata: dict[str, str] | None = None
                       ) -> bytes:
    """The tensors in the order given, each little-endian and C-contiguous.

    Written here, not by safetensors.numpy.save: the format is a JSON header and the
    bytes, and the library took 31 us for a CartPole minibatch's six tensors (most of a
    small sample's encoding) where this takes 6 us. safetensors reads it back
    (tests/wire/test_codec.py holds the two to the same bytes' meaning).
    """
    header: dict[str, Any] = {}
    data: list[memoryview] = []
    offset = 0
    for name, values in columns.items():
        tensor = np.asarray(values)
        dtype = _SAFETENSORS_DTYPES.get(tensor.dtype.str)
        if dtype is None and tensor.dtype.str[0] == ">":
            tensor = tensor.astype(tensor.dtype.newbyteorder("<"))
            dtype = _SAFETENSORS_DTYPES.get(tensor.dtype.str)
        if dtype is None:
            raise ValueError(f"tensor '{name}': safetensors has no dtype {tensor.dtype}")
        if not tensor.flags.c_contiguous:
            tensor = np.ascontiguousarray(tensor)
        header[name] = {"dtype": dtype, "shape": tensor.shape,
                        "data_offsets": (offset, offset + tensor.nbytes)}
        data.append(tensor.data)
        offset += tensor.nbytes
    if metadata:
        header["__metadata__"] = metadata
    text = orjson.dumps(header)
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    return b"".join([len(text).to_bytes(8, "little"), text, *data])


def conform(schema: Schema, batch: DecodedBatch) -> tuple[dict[str, np.ndarray], int]:
    """Check every field against the schema; return the columns in schema dtypes and the count.

    Raises WireError naming the first field at fault. Nothing is cast that would
    change a value: JSON integers out of range and floats that overflow are errors.
    """
    columns = batch.columns
    missing = [name for name in schema.fields if name not in columns]
    if missing:
        raise WireError(ErrorCode.MISSING_FIELD,
                        f"field '{missing[0]}' is missing; the buffer's fields "
                        f"are {list(schema.fields)}", field=missing[0])
    extra = [name for name in columns if name not in schema.fields]
    if extra:
        raise WireError(ErrorCode.UNKNOWN_FIELD,
                        f"field '{extra[0]}' is not in the buffer's schema "
                        f"{list(schema.fields)}", field=extra[0])
    count = _batch_length(columns)
    conformed = {
        name: _conform_field(name, spec, columns[name], batch.exact_dtypes)
        for name, spec in schema.fields.items()
    }
    return conformed, count


def _batch_length(columns: dict[str, np.ndarray]) -> int:
    if not columns:
        raise WireError(ErrorCode.EMPTY_BATCH, "the batch holds no fields")
    lengths = {}
    for name, column in columns.items():
        if column.ndim == 0:
            raise WireError(ErrorCode.INVALID_SHAPE, f"field '{name}': expected a leading batch "
                            "dimension, got a scalar", field=name)
        lengths[name] = column.shape[0]
    values = list(lengths.values())
    count: int = max(set(values), key=values.count)
    odd = [name for name, length in lengths.items() if length != count]
    if odd:
        raise WireError(ErrorCode.BATCH_LENGTH_MISMATCH,
                        f"field '{odd[0]}' holds {lengths[odd[0]]} "
                        f"transitions where the other fields hold {count}", field=odd[0])
    if count == 0:
        raise WireError(ErrorCode.EMPTY_BATCH, "the batch holds no transitions")
    return count


def _conform_field(name: str, spec: FieldSpec, column: np.ndarray, exact: bool) -> np.ndarray:
    if list(column.shape[1:]) != spec.shape:
        raise WireError(ErrorCode.INVALID_SHAPE, f"field '{name}': expected shape {spec.shape} per "
                        f"transition, got {list(column.shape[1:])}", field=name)
    target = spec.numpy_dtype
    if exact:
        if column.dtype != target:
            raise WireError(ErrorCode.INVALID_DTYPE, f"field '{name}': expected {spec.dtype}, got "
                            f"{column.dtype}", field=name)
        if target.kind == "b" and (column.view(np.uint8) > 1).any():
            raise WireError(ErrorCode.INVALID_DTYPE, f"field '{name}': a bool byte must be 0 or 1",
                            field=name)
        result = column
    elif column.dtype == target:  # already what it would become: nothing to cast or range
        result = column
    else:
        result = _cast_json_column(name, spec, column)
    if target.kind == "f" and not spec.allow_nonfinite and not np.isfinite(result).all():
        raise WireError(ErrorCode.NON_FINITE,
                        f"field '{name}': NaN or infinity (or a value too large "
                        f"for {spec.dtype}); the schema forbids non-finite values", field=name)
    return result


def _cast_json_column(name: str, spec: FieldSpec, column: np.ndarray) -> np.ndarray:
    target = spec.numpy_dtype
    if column.dtype.kind not in _JSON_KINDS_ACCEPTED[target.kind]:
        got = _KIND_NAMES.get(column.dtype.kind, str(column.dtype))
        raise WireError(ErrorCode.INVALID_DTYPE,
                        f"field '{name}': expected {spec.dtype} values, got "
                        f"{got}", field=name)
    if target.kind in "iu" and column.size:
        info = np.iinfo(spec.dtype)
        low, high = int(column.min()), int(column.max())
        if low < info.min or high > info.max:
            raise WireError(ErrorCode.OUT_OF_RANGE,
                            f"field '{name}': values from {low} to {high} do "
                            f"not fit {spec.dtype}", field=name)
    with np.errstate(over="ignore"):
        return column.astype(target)


def infer_schema(batch: DecodedBatch) -> Schema:
    """The schema a first store implies: binary dtypes as sent; JSON numbers as
    float32, integers as int64, booleans as bool (the usual DQN dtypes)."""
    _batch_length(batch.columns)
    fields = {}
    for name, column in batch.columns.items():
        if not re.match(FIELD_NAME_PATTERN, name):
            raise WireError(ErrorCode.INVALID_FIELD_NAME,
                            f"field name '{name}' must start with a letter "
                            "and hold only letters, digits and underscores (64 at most)",
                            field=name)
        if batch.exact_dtypes:
            dtype = str(column.dtype)
        else:
            dtype = {"b": "bool", "i": "int64", "u": "int64", "f": "float32"}.get(
                column.dtype.kind, "")
        if dtype not in _STORABLE_DTYPES:
            got = _KIND_NAMES.get(column.dtype.kind, str(column.dtype))
            raise WireError(ErrorCode.INVALID_DTYPE,
                            f"field '{name}': cannot store {got}", field=name)
        fields[name] = {"dtype": dtype, "shape": list(column.shape[1:])}
    try:
        return Schema.model_validate({"fields": fields})
    except ValueError as error:
        raise WireError(ErrorCode.INVALID_SCHEMA, f"cannot infer a schema from this batch: {error}"
                        ) from None
