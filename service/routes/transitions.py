"""The hot path: store transitions into a buffer and sample minibatches out of it."""

from typing import Annotated, Any
from zlib import crc32

import numpy as np
from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response

from replay_service.service.bodies import (
    decode_transitions,
    json_answer,
    read_body,
    sample_response,
    wants_binary,
)
from replay_service.service.deps import BufferName, SettingsDep, TransitionsDep
from replay_service.service.errors import InvalidPriority, LimitExceeded, NotAcceptable
from replay_service.service.models import (
    STORE_JSON_BODIES,
    PrioritiesUpdated,
    PriorityUpdate,
    SampleReply,
    StoreReply,
)
from replay_service.service.openapi import component_ref, errors
from replay_service.service.settings import Settings
from replay_service.service.storage.ring import IdempotencyKey
from replay_service.service.storage.transitions import TransitionStore
from replay_service.wire.codec import JSON, SAFETENSORS
from replay_service.wire.errors import ErrorCode

router = APIRouter(prefix="/buffers/{name}", tags=["transitions"])

_ONE = {"obs": [0.01, -0.02, 0.03, 0.04], "action": 1, "reward": 1.0,
        "next_obs": [0.02, 0.17, 0.03, -0.25], "done": False}
_STORE_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        JSON: {
            "schema": {"oneOf": [component_ref(model) for model in STORE_JSON_BODIES]},
            "examples": {
                "one": {"summary": "One transition", "value": {"transition": _ONE}},
                "rows": {"summary": "A batch as rows", "value": {"transitions": [_ONE, _ONE]}},
                "columns": {"summary": "A batch as columns", "value": {"columns": {
                    name: [value, value] for name, value in _ONE.items()}}},
            },
        },
        SAFETENSORS: {"schema": {"type": "string", "format": "binary",
                                 "description": "One tensor per field, batch dimension first, "
                                 "dtypes exactly as in the schema."}},
    },
}
# What the schema check of a stored batch answers (wire.codec), JSON or safetensors.
_BATCH_REFUSALS = (
    ErrorCode.INVALID_JSON, ErrorCode.INVALID_SAFETENSORS, ErrorCode.INVALID_BODY,
    ErrorCode.INVALID_SCHEMA, ErrorCode.INVALID_FIELD_NAME, ErrorCode.INVALID_DTYPE,
    ErrorCode.INVALID_SHAPE, ErrorCode.MISSING_FIELD, ErrorCode.UNKNOWN_FIELD,
    ErrorCode.EMPTY_BATCH, ErrorCode.BATCH_LENGTH_MISMATCH, ErrorCode.INCONSISTENT_ROWS,
    ErrorCode.NON_FINITE, ErrorCode.OUT_OF_RANGE, ErrorCode.INVALID_COMPRESSION,
    ErrorCode.FRAME_SIZE_MISMATCH)
_STORE_ERRORS = errors(
    *_BATCH_REFUSALS, ErrorCode.BUFFER_NOT_FOUND, ErrorCode.BUFFER_CONFLICT,
    ErrorCode.PAYLOAD_TOO_LARGE,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE, ErrorCode.IDEMPOTENCY_KEY_REUSED,
    ErrorCode.NOT_PRIORITIZED, ErrorCode.INVALID_PRIORITY, ErrorCode.INSUFFICIENT_STORAGE)
_Compressed = Annotated[bool, Query(description=(
    "Compressed buffers: answer each transition's compressed fields as the zstd frames "
    "they are kept as (`_compressed`, their sizes in `_compressed_sizes`) instead of "
    "inflating them, leaving that to the reader. Safetensors only."))]
_BATCH_ANSWER = {"model": SampleReply, "content": {SAFETENSORS: {"schema": {
    "type": "string", "format": "binary", "description": "The same columns as tensors, the "
    "slots as `_indices` (and `_weights`, `_inserted`); size and total_inserted in the "
    "metadata."}}}}


@router.post("/transitions", response_model=StoreReply, responses=_STORE_ERRORS,
             openapi_extra={"requestBody": _STORE_BODY})
async def store(name: BufferName, request: Request,
                idempotency_key: Annotated[str | None, Header(
                    pattern=r"^[A-Za-z0-9_.:-]{1,128}$", description=(
                        "A fresh key per batch (e.g. a UUID), sent again with every retry of "
                        "that batch: a batch already stored under it is not stored twice, and "
                        "the answer is the first one."))] = None) -> Response:
    """Store one transition or a batch, in one atomic step. When the buffer is full the
    oldest transitions are overwritten first. A buffer created without a schema takes the
    one this first store implies."""
    return await answer_store(request, name, idempotency_key)


@router.get("/transitions", responses={200: _BATCH_ANSWER, **errors(
    ErrorCode.BUFFER_NOT_FOUND, ErrorCode.BUFFER_CONFLICT, ErrorCode.NOT_ACCEPTABLE,
    ErrorCode.RANGE_NOT_HELD, ErrorCode.LIMIT_EXCEEDED)})
async def read_transitions(
        name: BufferName, request: Request, transitions: TransitionsDep, settings: SettingsDep,
        first: Annotated[int, Query(ge=0, description=(
            "Position of the first transition, counted from the first ever inserted (0); "
            "the buffer holds total_inserted - size up to total_inserted - 1."))],
        count: Annotated[int, Query(ge=1, examples=[10_000])],
        shard: Annotated[int | None, Query(ge=0, description=(
            "A sharded buffer: the shard to read (each keeps its own insertion order, and "
            "`first` counts within it; `per_shard` in `GET /buffers/{name}` gives each "
            "one's counters). Required there; 0 or left out for one ring."))] = None,
        compressed: _Compressed = False) -> Response:
    """Read transitions in insertion order, e.g. to export a buffer. Answers 409 if the
    range is not, or no longer, held (overwritten by newer transitions)."""
    if count > settings.max_sample:
        raise LimitExceeded(f"count {count} is over the limit of {settings.max_sample} "
                            "(REPLAY_MAX_SAMPLE)", field="count")
    binary = _binary_answer(request, compressed)
    return sample_response(await transitions.read(name, first, count, inflate=not compressed,
                                                  shard=shard), binary)


@router.get("/sample", responses={200: _BATCH_ANSWER, **errors(
    ErrorCode.BUFFER_NOT_FOUND, ErrorCode.BUFFER_CONFLICT, ErrorCode.NOT_ACCEPTABLE,
    ErrorCode.NOT_ENOUGH_TRANSITIONS,
    ErrorCode.LIMIT_EXCEEDED, ErrorCode.REPLACEMENT_REQUIRED, ErrorCode.RATE_LIMITED)})
async def sample(name: BufferName, request: Request,
                 batch_size: Annotated[int, Query(ge=1, examples=[64])],
                 num_batches: Annotated[int | None, Query(ge=1, examples=[128], description=(
                     "Draw this many minibatches in one request: every column then has "
                     "shape [num_batches, batch_size, ...]. A learner doing many gradient "
                     "steps per round saves a round trip per minibatch."))] = None,
                 replace: Annotated[bool, Query(
                     description="Sample with replacement (the default); false draws distinct "
                     "slots within each minibatch.")] = True,
                 beta: Annotated[float, Query(ge=0.0, le=1.0, description=(
                     "Prioritized buffers: the importance-sampling exponent (anneal it "
                     "towards 1 over training)."))] = 0.4,
                 timeout_s: Annotated[float, Query(ge=0.0, le=60.0, description=(
                     "How long to wait while the buffer's rate limit holds the sample back, "
                     "before answering 429."))] = 0.0,
                 compressed: _Compressed = False) -> Response:
    """Draw `batch_size` transitions at random: uniformly, or in proportion to priority^alpha
    in a prioritized buffer (which then adds importance-sampling `weights` and the
    `inserted` numbers to pass back with new priorities). JSON by default; send
    `Accept: application/x-safetensors` for tensors (`_indices`, `_weights`, `_inserted`)."""
    return await answer_sample(request, name, batch_size, num_batches, replace, beta,
                               timeout_s, compressed)


@router.post("/priorities", response_model=PrioritiesUpdated, responses=errors(
    ErrorCode.BUFFER_NOT_FOUND, ErrorCode.BUFFER_CONFLICT, ErrorCode.NOT_PRIORITIZED,
    ErrorCode.INVALID_PRIORITY))
async def update_priorities(name: BufferName, update: PriorityUpdate,
                            request: Request) -> Response:
    """Set new priorities of sampled transitions (prioritized buffers), e.g. each
    transition's |TD error| plus a small epsilon. The service raises them to alpha."""
    return await answer_priorities(request, name, update)


# What each hot endpoint does once its parameters are read: FastAPI's routes above read
# them from their declarations, the hot path (service/hot_path.py) reads them itself.

async def answer_store(request: Request, name: str, idempotency_key: str | None) -> Response:
    settings: Settings = request.app.state.settings
    transitions: TransitionStore = request.app.state.transitions
    body = await read_body(request, settings.max_body_bytes)
    idempotency = None
    if idempotency_key is not None:
        # The digest tells a retry from a key reused for another body (a client's bug),
        # so it need not resist forgery; blake2b cost 40 ms per 1k Atari transitions.
        digest = f"{len(body)}:{crc32(body):08x}"
        idempotency = IdempotencyKey(idempotency_key, digest, settings.idempotency_ttl_s)
    batch = decode_transitions(request.headers.get("content-type"), body,
                               settings.max_json_body_bytes)
    stored = await transitions.store(name, batch, idempotency)
    inserted = stored.inserted
    return json_answer({"stored": inserted.count, "first_slot": inserted.first_slot,
                        "size": inserted.size, "capacity": stored.capacity,
                        "total_inserted": inserted.total_inserted})


async def answer_sample(request: Request, name: str, batch_size: int, num_batches: int | None,
                        replace: bool, beta: float, timeout_s: float,
                        compressed: bool) -> Response:
    settings: Settings = request.app.state.settings
    transitions: TransitionStore = request.app.state.transitions
    if batch_size * (num_batches or 1) > settings.max_sample:
        field = "num_batches" if num_batches else "batch_size"
        raise LimitExceeded(f"{batch_size * (num_batches or 1)} transitions in one sample is "
                            f"over the limit of {settings.max_sample} (REPLAY_MAX_SAMPLE)",
                            field=field)
    binary = _binary_answer(request, compressed)
    batch = await transitions.sample(name, batch_size, num_batches, with_replacement=replace,
                                     beta=beta, wait_s=timeout_s, inflate=not compressed)
    return sample_response(batch, binary)


def _binary_answer(request: Request, compressed: bool) -> bool:
    binary = wants_binary(request.headers.get("accept"))
    if compressed and not binary:
        raise NotAcceptable("compressed frames come only as safetensors: send "
                            f"Accept: {SAFETENSORS}, or leave compressed out for JSON",
                            field="compressed")
    return binary


async def answer_priorities(request: Request, name: str, update: PriorityUpdate) -> Response:
    transitions: TransitionStore = request.app.state.transitions
    lengths = {len(update.indices), len(update.inserted), len(update.priorities)}
    if len(lengths) != 1:
        raise InvalidPriority("indices, inserted and priorities need one entry each per "
                              "transition", field="priorities")
    updated, skipped = await transitions.update_priorities(
        name, np.asarray(update.indices, np.int64), np.asarray(update.inserted, np.int64),
        np.asarray(update.priorities, np.float64))
    return json_answer({"updated": updated, "skipped": skipped})
