"""Reading transition bodies in and writing sampled batches out, by content type."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from fastapi import Request
from starlette.responses import Response

from replay_service.service.errors import NotAcceptable, PayloadTooLarge, UnsupportedMediaType
from replay_service.service.storage.transitions import SampledBatch
from replay_service.wire.codec import (
    BINARY_ALIASES,
    INDICES_TENSOR,
    JSON,
    SAFETENSORS,
    DecodedBatch,
    decode_json_transitions,
    decode_safetensors,
    encode_safetensors,
)
from replay_service.wire.frames import COMPRESSED_SIZES_TENSOR, COMPRESSED_TENSOR


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes `limit` bytes, before it is all read."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the body is over the limit of {limit} bytes (REPLAY_MAX_BODY_BYTES);"
                           " send fewer transitions per request", field="body")


def decode_transitions(content_type: str | None, body: bytes, json_limit: int) -> DecodedBatch:
    media_type = _media_type(content_type)
    if media_type == JSON:
        if len(body) > json_limit:
            raise PayloadTooLarge(f"a JSON body over {json_limit} bytes "
                                  "(REPLAY_MAX_JSON_BODY_BYTES); send large batches as "
                                  f"{SAFETENSORS}", field="body")
        return decode_json_transitions(body)
    if media_type in BINARY_ALIASES:
        return decode_safetensors(body)
    raise UnsupportedMediaType(
        f"Content-Type '{content_type or ''}' is not supported; send {JSON} or {SAFETENSORS}",
        field="content-type")


def wants_binary(accept: str | None) -> bool:
    """Choose the sample format from Accept; JSON unless safetensors is asked for."""
    offered = {_media_type(part) for part in (accept or "*/*").split(",")}
    if offered & BINARY_ALIASES:
        return True
    if offered & {JSON, "*/*", "application/*", ""}:
        return False
    raise NotAcceptable(f"cannot answer with '{accept}'; accept {JSON} or {SAFETENSORS}",
                        field="accept")


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def json_answer(document: dict[str, Any]) -> Response:
    """A JSON answer without a pydantic model in the way: the hot endpoints' replies are
    a handful of integers."""
    return Response(orjson.dumps(document), media_type=JSON)


def sample_response(batch: SampledBatch, binary: bool) -> Response:
    extras = {key: value for key, value in (("weights", batch.weights),
                                            ("inserted", batch.inserted)) if value is not None}
    if binary:
        tensors = dict(batch.columns)
        if batch.frames is not None:
            tensors[COMPRESSED_TENSOR] = np.frombuffer(batch.frames.data, np.uint8)
            tensors[COMPRESSED_SIZES_TENSOR] = batch.frames.sizes
        tensors[INDICES_TENSOR] = batch.slots
        tensors.update({f"_{key}": value for key, value in extras.items()})
        metadata = {"size": str(batch.size), "total_inserted": str(batch.total_inserted)}
        return Response(encode_safetensors(tensors, metadata), media_type=SAFETENSORS)
    document = {"size": batch.size, "total_inserted": batch.total_inserted,
                "indices": batch.slots, "columns": batch.columns, **extras}
    return Response(orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY), media_type=JSON)

