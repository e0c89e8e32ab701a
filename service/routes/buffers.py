"""Buffers as resources: create, inspect, list, delete, and their size."""

from typing import Annotated

from fastapi import APIRouter, Body
from starlette.responses import Response

from replay_service.service.deps import BufferName, RegistryDep, SettingsDep
from replay_service.service.errors import ApiError, LimitExceeded
from replay_service.service.models import BufferInfo, BufferList, BufferSpec, SizeInfo
from replay_service.service.openapi import errors
from replay_service.service.storage.meta import Counters
from replay_service.service.storage.registry import BufferRegistry
from replay_service.wire.errors import ErrorCode

router = APIRouter(prefix="/buffers", tags=["buffers"])

ERRORS = errors(ErrorCode.BUFFER_NOT_FOUND)


@router.put("/{name}", status_code=201, response_model=BufferInfo, responses={
    200: {"model": BufferInfo, "description": "An identical buffer already exists"}, **errors(
        ErrorCode.BUFFER_CONFLICT, ErrorCode.TOO_MANY_BUFFERS, ErrorCode.LIMIT_EXCEEDED,
        ErrorCode.INVALID_RATE_LIMIT, ErrorCode.INSUFFICIENT_STORAGE)})
async def create_buffer(name: BufferName, registry: RegistryDep, settings: SettingsDep,
                        response: Response,
                        spec: Annotated[BufferSpec | None, Body()] = None) -> BufferInfo:
    """Create a buffer. Idempotent: the same request again answers 200; a buffer of the
    same name with another capacity or schema answers 409. Capacity and schema left out
    match any existing buffer (and take the default, and the first store's, when new)."""
    spec = spec or BufferSpec()
    if spec.capacity is not None and spec.capacity > settings.max_capacity:
        raise LimitExceeded(f"capacity {spec.capacity} is over the limit of "
                            f"{settings.max_capacity} (REPLAY_MAX_CAPACITY)", field="capacity")
    schema = spec.buffer_schema
    if schema is not None and schema.transition_size > settings.max_record_bytes:
        raise LimitExceeded(f"one transition would take {schema.transition_size} bytes; the "
                            f"limit is {settings.max_record_bytes} (REPLAY_MAX_RECORD_BYTES)",
                            field="schema")
    _, created = await registry.create(name, spec.capacity, schema,
                                       default_capacity=settings.default_capacity,
                                       prioritized=spec.prioritized, rate_limit=spec.rate_limit,
                                       shards=spec.shards)
    if not created:
        response.status_code = 200
    return await _info(registry, name)


@router.get("", response_model=BufferList)
async def list_buffers(registry: RegistryDep) -> BufferList:
    infos = []
    for name in await registry.names():
        try:
            infos.append(await _info(registry, name))
        except ApiError:  # deleted while listing
            continue
    return BufferList(buffers=infos)


@router.get("/{name}", response_model=BufferInfo, responses=ERRORS)
async def get_buffer(name: BufferName, registry: RegistryDep) -> BufferInfo:
    """Capacity, schema and counters of one buffer."""
    return await _info(registry, name)


@router.get("/{name}/size", response_model=SizeInfo, responses=ERRORS)
async def buffer_size(name: BufferName, registry: RegistryDep) -> SizeInfo:
    """Size, capacity, total inserted and total sampled, read in one call."""
    return _size(await registry.counters(name))


@router.delete("/{name}", status_code=204, responses=ERRORS)
async def delete_buffer(name: BufferName, registry: RegistryDep) -> Response:
    """Delete a buffer and every transition in it."""
    await registry.delete(name)
    return Response(status_code=204)


async def _info(registry: BufferRegistry, name: str) -> BufferInfo:
    meta = await registry.get(name, fresh=True)
    counters = await registry.counters(name)
    return BufferInfo(name=name, schema=meta.schema, created_at=meta.created_at,
                      prioritized=meta.prioritized, rate_limit=meta.rate_limit,
                      shards=len(meta.shards) or 1, per_shard=[
                          _size(shard) for shard in counters.shards] or None,
                      **_size(counters).model_dump())


def _size(counters: Counters) -> SizeInfo:
    return SizeInfo(size=counters.size, capacity=counters.capacity,
                    total_inserted=counters.total_inserted, total_sampled=counters.total_sampled)
