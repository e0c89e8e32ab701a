"""What both clients share: the requests each operation makes, how answers are
read, and how errors become exceptions.

Nothing here does I/O. An operation is a generator (a `Flow`) that yields the
`Call`s it needs and is sent each `httpx.Response` back, the way httpx's own auth
flows work; the sync client drives it with `httpx.Client`, the async client with
`httpx.AsyncClient`. So the two clients cannot drift apart, and a new step on the
send path (idempotency keys, retries) is written once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

import httpx
import numpy as np
import orjson
from numpy.typing import ArrayLike
from pydantic import TypeAdapter

from replay_service.client.errors import (
    BufferNotFound,
    Conflict,
    ConnectionFailed,
    Forbidden,
    InvalidRequest,
    NotEnoughTransitions,
    PayloadTooLarge,
    ReplayError,
    ServerError,
    ServiceError,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
)
from replay_service.client.pending import Row, copy_row
from replay_service.client.results import (
    Batch,
    BufferInfo,
    Episode,
    EpisodePage,
    SizeInfo,
    StoreResult,
    Weights,
)
from replay_service.wire import frames as compression
from replay_service.wire.codec import (
    INDICES_TENSOR,
    JSON,
    SAFETENSORS,
    DecodedBatch,
    WireError,
    conform,
    decode_safetensors,
    encode_safetensors,
    infer_schema,
    read_safetensors_metadata,
)
from replay_service.wire.errors import ErrorCode
from replay_service.wire.frames import COMPRESSED_SIZES_TENSOR, COMPRESSED_TENSOR
from replay_service.wire.schema import BUFFER_NAME_PATTERN, Prioritized, RateLimit, Schema

__all__ = ["BufferProtocol", "Call", "Done", "Flow", "advance", "connection_failed",
           "error_from_response"]

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """One HTTP request, relative to the client's base URL."""

    method: str
    path: str
    params: dict[str, str | int | float] | None = None
    headers: dict[str, str] | None = None
    content: bytes | None = None


Flow: TypeAlias = Generator[Call, httpx.Response, T]


@dataclass(frozen=True)
class Done(Generic[T]):
    """What a flow returned, once it needs no more calls."""

    result: T


def advance(flow: Flow[T], answer: httpx.Response | None = None) -> Call | Done[T]:
    """Run `flow` to its next call, given the answer to its last one (None: start it).

    Each client's loop is then only "make the call, pass the answer", its one
    difference (awaiting the request or not) left to it.
    """
    try:
        return next(flow) if answer is None else flow.send(answer)
    except StopIteration as stopped:
        return Done(stopped.value)


# Checked here too because a name with a '/' would reach another route, not a clear error.
_BUFFER_NAME = re.compile(BUFFER_NAME_PATTERN)

_STORE_RESULT = TypeAdapter(StoreResult)
_SIZE_INFO = TypeAdapter(SizeInfo)
_BUFFER_INFO = TypeAdapter(BufferInfo)


class BufferProtocol:
    """The operations on one buffer, and what the client has learned of it.

    `schema` is the buffer's schema as last read from the service: stores are cast
    to it before they are encoded, so a float64 array from numpy arrives as the
    float32 the buffer holds, and a value that does not fit fails here, naming
    its field, before anything is sent. Stores use it only once the buffer has
    been checked against what the client declared (`_settled`).
    """

    def __init__(self, buffer: str, *, capacity: int | None, schema: Schema | None,
                 binary: bool, prioritized: Prioritized | None = None,
                 rate_limit: RateLimit | None = None, shards: int | None = None) -> None:
        if not _BUFFER_NAME.match(buffer):
            raise ValueError(f"buffer name '{buffer}' must start with a letter or digit and "
                             "hold only letters, digits, '_', '.' and '-' (128 at most)")
        if capacity is not None and capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        if shards is not None and shards < 1:
            raise ValueError(f"shards must be at least 1, not {shards}")
        self._path = f"/buffers/{buffer}"
        self._capacity = capacity
        self._declared = schema
        self._options = {"prioritized": prioritized, "rate_limit": rate_limit}
        self._shards = shards
        self._binary = binary
        self.schema: Schema | None = None
        self._settled: Schema | None = None

    def check_row(self, row: Mapping[str, ArrayLike]) -> Row:
        """Copy one transition, and check it now if the schema is known, so that a bad
        value fails the call that stored it rather than a whole batch later on."""
        copied = copy_row(row)
        schema = self._settled or self._declared or self.schema
        if schema is not None and not _plainly_fits(schema, copied):
            _fit(schema, {name: value[np.newaxis] for name, value in copied.items()})
        return copied

    def create(self, capacity: int | None = None, schema: Schema | None = None,
               shards: int | None = None) -> Flow[BufferInfo]:
        """PUT the buffer; left out, capacity, schema and shards are the ones the client
        declared.

        Idempotent on the service: the same declaration again is accepted, another
        capacity or schema is a Conflict.
        """
        body: dict[str, Any] = {}
        if (capacity := capacity or self._capacity) is not None:
            body["capacity"] = capacity
        if (schema := schema or self._declared) is not None:
            body["schema"] = schema.model_dump(mode="json")
        body.update({key: option.model_dump(mode="json")
                     for key, option in self._options.items() if option is not None})
        if (shards := shards or self._shards) is not None:
            body["shards"] = shards
        response = yield Call("PUT", self._path, headers={"content-type": JSON},
                              content=orjson.dumps(body))
        return self._learn(_parse(_BUFFER_INFO, response))

    def info(self) -> Flow[BufferInfo]:
        response = yield Call("GET", self._path)
        return self._learn(_parse(_BUFFER_INFO, response))

    def size(self) -> Flow[SizeInfo]:
        response = yield Call("GET", f"{self._path}/size")
        return _parse(_SIZE_INFO, response)

    def delete(self) -> Flow[None]:
        response = yield Call("DELETE", self._path)
        _raise_for_error(response)
        self.schema = self._settled = None

    def sample(self, batch_size: int, replace: bool, num_batches: int | None = None,
               beta: float | None = None, timeout_s: float | None = None) -> Flow[Batch]:
        params: dict[str, str | int | float] = {"batch_size": batch_size,
                                                "replace": "true" if replace else "false"}
        for name, value in (("num_batches", num_batches), ("beta", beta),
                            ("timeout_s", timeout_s)):
            if value is not None:
                params[name] = value
        return (yield from self._get_batch("sample", params))

    def read(self, first: int, count: int, inflate: bool = True, shard: int | None = None
             ) -> Flow[Batch]:
        """Transitions `first` .. `first + count - 1` in insertion order (0: the first ever),
        of shard `shard` in a sharded buffer."""
        params: dict[str, str | int | float] = {"first": first, "count": count}
        if shard is not None:
            params["shard"] = shard
        return (yield from self._get_batch("transitions", params, inflate))

    def _get_batch(self, resource: str, params: dict[str, str | int | float],
                   inflate: bool = True) -> Flow[Batch]:
        if self._binary:  # a compressed buffer's frames are inflated here, not by the service
            params = {**params, "compressed": "true"}
        response = yield Call("GET", f"{self._path}/{resource}", params=params,
                              headers={"accept": SAFETENSORS if self._binary else JSON})
        _raise_for_error(response)
        if self._binary:
            tensors = _read(response, _tensors)
            if COMPRESSED_TENSOR not in tensors or not inflate:
                return _read(response, lambda answer: _binary_batch(answer, tensors))
            schema = self.schema or (yield from self.info()).schema
            return _read(response, lambda answer: _binary_batch(answer, _inflated(schema,
                                                                                  tensors)))
        schema = self.schema or (yield from self.info()).schema
        return _read(response, lambda answer: _json_batch(answer, schema))

    def update_priorities(self, indices: np.ndarray, inserted: np.ndarray,
                          priorities: np.ndarray) -> Flow[tuple[int, int]]:
        """New priorities for sampled slots; returns (updated, skipped as overwritten)."""
        document = {"indices": np.asarray(indices, np.int64).ravel(),
                    "inserted": np.asarray(inserted, np.int64).ravel(),
                    "priorities": np.asarray(priorities, np.float64).ravel()}
        response = yield Call("POST", f"{self._path}/priorities",
                              headers={"content-type": JSON},
                              content=orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY))
        _raise_for_error(response)
        answer = _read(response, lambda reply: orjson.loads(reply.content))
        return int(answer["updated"]), int(answer["skipped"])

    def publish_weights(self, tensors: Mapping[str, np.ndarray],
                        metadata: Mapping[str, str] | None) -> Flow[int]:
        """Publish weights as safetensors; returns the new version number."""
        body = encode_safetensors({name: np.ascontiguousarray(value)
                                   for name, value in tensors.items()}, dict(metadata or {}))
        response = yield Call("PUT", f"{self._path}/weights",
                              headers={"content-type": SAFETENSORS}, content=body)
        _raise_for_error(response)
        return _read(response, lambda answer: int(orjson.loads(answer.content)["version"]))

    def fetch_weights(self, held: Weights | None) -> Flow[Weights | None]:
        """The newest weights, or None when `held` is still the newest or none exist yet."""
        headers = {"if-none-match": f'"{held.etag}"'} if held is not None else {}
        response = yield Call("GET", f"{self._path}/weights", headers=headers)
        if response.status_code == 304 or (
                response.status_code == 404
                and _error_body(response).get("error") == ErrorCode.WEIGHTS_NOT_FOUND):
            return None
        _raise_for_error(response)
        return _read(response, _weights)

    def record_episodes(self, episodes: list[Episode]) -> Flow[None]:
        document = {"episodes": [{"return": item.episode_return, "length": item.length,
                                  "source": item.source} for item in episodes]}
        response = yield Call("POST", f"{self._path}/episodes", headers={"content-type": JSON},
                              content=orjson.dumps(document))
        _raise_for_error(response)

    def episodes(self, after: str, limit: int) -> Flow[EpisodePage]:
        response = yield Call("GET", f"{self._path}/episodes",
                              params={"after": after, "limit": limit})
        _raise_for_error(response)
        return _read(response, _episode_page)

    def store(self, columns: Mapping[str, ArrayLike], idempotency_key: str,
              packed: Schema | None = None) -> Flow[StoreResult]:
        """Store one batch; the first store creates the buffer if it is missing.

        The key goes with every attempt at this batch, so the service stores it once.
        A buffer deleted since its schema was learned answers 404: it is created
        again and the store retried, once. `packed`: the schema `pack` made the
        batch's frames with; frames the buffer's schema no longer is known to match
        (it was learned again since) are inflated and sent the plain way.
        """
        arrays = {name: np.asarray(values) for name, values in columns.items()}
        if packed is not None and packed is not self._settled:
            arrays, packed = _unpacked(packed, arrays), None
        schema = self._settled or (yield from self._settle(arrays))
        response = yield self._store_call(schema, arrays, idempotency_key, packed is not None)
        if _is_buffer_not_found(response):
            self.schema = self._settled = None
            if packed is not None:
                arrays, packed = _unpacked(packed, arrays), None
            schema = yield from self._settle(arrays)
            response = yield self._store_call(schema, arrays, idempotency_key)
        return _parse(_STORE_RESULT, response)

    def pack(self, columns: dict[str, np.ndarray]
             ) -> tuple[dict[str, np.ndarray], Schema] | None:
        """A batch of a compressed buffer as `store` sends it, and the schema it was made
        with: cast to the buffer's schema, the compressed fields as frames. Made by the
        caller of store_batch, a client keeps kilobytes per batch in its outbox where
        it would copy and keep megabytes, and its sender only sends.

        None where there is nothing to pack with, the batch then goes as it is: before
        the first store has learned the schema, for a buffer that compresses nothing
        or a JSON client, and for columns that do not fit the schema (their error
        comes from the store, as for any batch).
        """
        schema = self._settled
        if schema is None or schema.frame_dtype is None or not self._binary:
            return None
        try:
            fitted = _fit(schema, columns)
        except InvalidRequest:
            return None
        return _compressed(schema, fitted), schema

    def _settle(self, columns: dict[str, np.ndarray]) -> Flow[Schema]:
        """Make sure the buffer exists with a schema, and learn it, before a first store.

        A missing buffer is created with what the client declared, its schema
        otherwise inferred from the rows. An existing one is declared again when the
        client declared a capacity or schema (so a buffer that contradicts them is a
        Conflict, not a surprise later) or when it has no schema yet.
        """
        response = yield Call("GET", self._path)
        if _is_buffer_not_found(response):
            info = yield from self.create(self._capacity, self._declared or _infer(columns))
        else:
            info = _parse(_BUFFER_INFO, response)
            if info.schema is None or self._declared is not None or self._capacity is not None:
                schema = self._declared or info.schema or _infer(columns)
                info = yield from self.create(self._capacity or info.capacity, schema)
        if info.schema is None:
            raise ReplayError(f"the service kept no schema for buffer '{info.name}'")
        self.schema = self._settled = info.schema
        return info.schema

    def _store_call(self, schema: Schema, columns: dict[str, np.ndarray], idempotency_key: str,
                    packed: bool = False) -> Call:
        if packed:  # cast and compressed already, by `pack`
            content_type, body = SAFETENSORS, encode_safetensors(columns)
        elif self._binary:
            content_type = SAFETENSORS
            body = encode_safetensors(_compressed(schema, _fit(schema, columns)))
        else:
            content_type = JSON
            body = orjson.dumps({"columns": _fit(schema, columns)},
                                option=orjson.OPT_SERIALIZE_NUMPY)
        return Call("POST", f"{self._path}/transitions", content=body, headers={
            "content-type": content_type, "idempotency-key": idempotency_key})

    def _learn(self, info: BufferInfo) -> BufferInfo:
        if info.schema is not None:
            self.schema = info.schema
        return info


def _fit(schema: Schema, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Cast columns to the schema's dtypes by the rules the service applies to JSON:
    a number may become a float, an integer an integer that holds it, a bool a bool;
    a fraction never becomes an integer, nor an integer a bool."""
    try:
        fitted, _ = conform(schema, DecodedBatch(columns, exact_dtypes=False))
    except WireError as error:
        raise InvalidRequest(error.status, error.code, error.message, field=error.field
                             ) from None
    return {name: np.ascontiguousarray(column) for name, column in fitted.items()}


def _plainly_fits(schema: Schema, row: Row) -> bool:
    """The common case, decided in a few microseconds: the schema's fields, shapes and
    kinds of dtype. Anything else goes through `_fit`, which names the fault or
    accepts a value that casts (an integer for a float field). Values themselves
    (range, NaN) are checked with the batch, before it is sent."""
    if row.keys() != schema.fields.keys():
        return False
    transition = schema.transition_dtype
    for name, value in row.items():
        field = transition[name]
        if value.dtype.kind != field.base.kind or value.shape != field.shape:
            return False
    return True


def _infer(columns: dict[str, np.ndarray]) -> Schema:
    """The schema rows imply: floats as float32, integers as int64, bools as bool."""
    try:
        return infer_schema(DecodedBatch(columns, exact_dtypes=False))
    except WireError as error:
        raise InvalidRequest(error.status, error.code, error.message, field=error.field
                             ) from None


def _compressed(schema: Schema, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A compressed buffer's fields as the service keeps them: the compressed ones as one
    zstd frame per transition, made here on the writer's side (by the caller of
    store_batch, see `BufferProtocol.pack`; for rows, by the sender thread), so only
    the small form crosses the network."""
    if schema.frame_dtype is None:
        return columns
    count = len(next(iter(columns.values())))
    sent = compression.compress(schema, columns, count)
    plain = {name: column for name, column in columns.items()
             if schema.fields[name].compression is None}
    return {**plain, COMPRESSED_TENSOR: np.frombuffer(sent.data, np.uint8),
            COMPRESSED_SIZES_TENSOR: sent.sizes}


def _unpacked(schema: Schema, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A packed batch's columns again, its frames inflated into their fields."""
    frames = compression.frames_of(columns)
    assert frames is not None
    plain = {name: column for name, column in columns.items()
             if name not in (COMPRESSED_TENSOR, COMPRESSED_SIZES_TENSOR)}
    return {**plain, **compression.decompress(schema, frames)}


def _tensors(response: httpx.Response) -> dict[str, np.ndarray]:
    return dict(decode_safetensors(response.content).columns)


def _inflated(schema: Schema | None, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Frames inflated into their fields' columns, in the caller's thread (the trainer's
    prefetch thread, off the learner's): shaped like the sizes, [batch] or
    [num_batches, batch]."""
    if schema is None or schema.frame_dtype is None:
        raise ReplayError("the service sent compressed frames for a buffer whose schema "
                          "compresses no field")
    data, sizes = tensors.pop(COMPRESSED_TENSOR), tensors.pop(COMPRESSED_SIZES_TENSOR)
    frames = compression.frames_of({COMPRESSED_TENSOR: data,
                                    COMPRESSED_SIZES_TENSOR: sizes.reshape(-1)})
    assert frames is not None
    inflated = {name: column.reshape(sizes.shape + column.shape[1:])
                for name, column in compression.decompress(schema, frames).items()}
    fields = {name: tensors.pop(name) if name in tensors else inflated[name]
              for name in schema.fields}
    return {**fields, **tensors}


def _binary_batch(response: httpx.Response, tensors: dict[str, np.ndarray]) -> Batch:
    metadata = read_safetensors_metadata(response.content)
    indices = tensors.pop(INDICES_TENSOR).astype(np.int64, copy=False)
    return Batch(tensors, indices, size=int(metadata["size"]),
                 total_inserted=int(metadata["total_inserted"]),
                 weights=tensors.pop("_weights", None), inserted=tensors.pop("_inserted", None))


def _json_batch(response: httpx.Response, schema: Schema | None) -> Batch:
    if schema is None:
        raise ValueError("the buffer has no schema to read the columns with")
    document = orjson.loads(response.content)
    columns = {name: np.asarray(values, dtype=schema.fields[name].numpy_dtype)
               for name, values in document["columns"].items()}
    extras = {key: np.asarray(document[key], dtype) for key, dtype in
              (("weights", np.float32), ("inserted", np.int64)) if key in document}
    return Batch(columns, np.asarray(document["indices"], dtype=np.int64),
                 size=int(document["size"]), total_inserted=int(document["total_inserted"]),
                 **extras)


def _weights(response: httpx.Response) -> Weights:
    return Weights(tensors=dict(decode_safetensors(response.content).columns),
                   metadata=read_safetensors_metadata(response.content),
                   version=int(response.headers["x-replay-weights-version"]),
                   etag=response.headers["etag"].strip('"'))


def _episode_page(response: httpx.Response) -> EpisodePage:
    document = orjson.loads(response.content)
    return EpisodePage(
        episodes=[Episode(episode_return=float(item["return"]), length=int(item["length"]),
                          source=str(item["source"]), id=str(item["id"]))
                  for item in document["episodes"]],
        last_id=str(document["last_id"]))


def _parse(adapter: TypeAdapter[T], response: httpx.Response) -> T:
    _raise_for_error(response)
    return _read(response, lambda answer: adapter.validate_json(answer.content))


def _read(response: httpx.Response, reader: Callable[[httpx.Response], T]) -> T:
    """Run `reader` on a successful answer; one the SDK cannot read is a ReplayError,
    e.g. when the URL points at another HTTP service."""
    try:
        return reader(response)
    except (KeyError, TypeError, ValueError) as error:
        request = response.request
        raise ReplayError(f"cannot read the answer to {request.method} {request.url.path}: "
                          f"{error}") from error


def _raise_for_error(response: httpx.Response) -> None:
    if not response.is_success:
        raise error_from_response(response)


def _is_buffer_not_found(response: httpx.Response) -> bool:
    return (response.status_code == 404
            and _error_body(response).get("error") == ErrorCode.BUFFER_NOT_FOUND)


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def error_from_response(response: httpx.Response) -> ServiceError:
    """The typed exception for an error answer, carrying the service's own words.

    An answer that is not the service's JSON error body (a proxy's HTML page)
    still maps by status, with its text as the message.
    """
    body = _error_body(response)
    status = response.status_code
    code = _text(body.get("error")) or f"http_{status}"
    message = _text(body.get("message")) or response.text.strip()[:500] or response.reason_phrase
    field = _text(body.get("field"))
    if status in (429, 503):
        kind = TooManyRequests if status == 429 else ServiceUnavailable
        return kind(status, code, message, field=field, body=body,
                    retry_after=_seconds(response.headers.get("retry-after")))
    return _error_class(status, code)(status, code, message, field=field, body=body)


def _error_class(status: int, code: str) -> type[ServiceError]:
    if status == 409:
        return NotEnoughTransitions if code == ErrorCode.NOT_ENOUGH_TRANSITIONS else Conflict
    if status == 404:
        # Any other 404 means the URL does not lead to this API at all.
        return BufferNotFound if code == ErrorCode.BUFFER_NOT_FOUND else ServiceError
    if status == 401:
        return Unauthorized
    if status == 403:
        return Forbidden
    if status == 413:
        return PayloadTooLarge
    if status in (400, 406, 415, 422):
        return InvalidRequest
    return ServerError if status >= 500 else ServiceError


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _seconds(value: str | None) -> float | None:
    """Retry-After in seconds; its other form, an HTTP date, is not worth parsing here."""
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def connection_failed(base_url: httpx.URL, error: httpx.TransportError) -> ConnectionFailed:
    return ConnectionFailed(f"no answer from the replay service at {base_url}: "
                            f"{str(error) or type(error).__name__}")
