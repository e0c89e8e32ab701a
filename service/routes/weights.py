"""Parameter exchange: a trainer publishes policy weights, collectors fetch the newest."""

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from starlette.responses import Response

from replay_service.service.bodies import read_body
from replay_service.service.deps import BufferName, SettingsDep, WeightsDep
from replay_service.service.errors import UnsupportedMediaType
from replay_service.service.models import WeightsReply
from replay_service.service.openapi import errors
from replay_service.service.storage.weights import WeightsStore
from replay_service.wire.codec import BINARY_ALIASES, SAFETENSORS, decode_safetensors
from replay_service.wire.errors import ErrorCode

router = APIRouter(prefix="/buffers/{name}/weights", tags=["weights"])

_BINARY: dict[str, Any] = {SAFETENSORS: {"schema": {"type": "string", "format": "binary"}}}
_ETAG = {"description": "Names this version, quoted: send it back as If-None-Match.",
         "schema": {"type": "string", "examples": ['"3-5d41402abc4b2a76"']}}
_VERSION = {"description": "Counts publications: 1 for the first.",
            "schema": {"type": "integer"}}


@router.put("", response_model=WeightsReply, responses={
    200: {"headers": {"ETag": _ETAG}}, **errors(
        ErrorCode.INVALID_SAFETENSORS, ErrorCode.BUFFER_NOT_FOUND, ErrorCode.PAYLOAD_TOO_LARGE,
        ErrorCode.UNSUPPORTED_MEDIA_TYPE)},
    openapi_extra={"requestBody": {"required": True, "content": _BINARY}})
async def publish_weights(name: BufferName, request: Request, response: Response,
                          weights: WeightsDep, settings: SettingsDep) -> WeightsReply:
    """Publish a new version of the policy's weights as safetensors (any tensors, any
    `__metadata__`); collectors fetching with the previous ETag get this one."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() not in BINARY_ALIASES:
        raise UnsupportedMediaType(f"weights are safetensors: send Content-Type {SAFETENSORS}",
                                   field="content-type")
    body = await read_body(request, settings.max_body_bytes)
    decode_safetensors(body)  # refuse what a collector could not read
    published = await weights.publish(name, body)
    response.headers["ETag"] = f'"{published.etag}"'
    return WeightsReply(version=published.version, etag=published.etag)


@router.get("", response_class=Response, responses={
    200: {"content": _BINARY, "description": "The newest weights; ETag and "
          "X-Replay-Weights-Version name them",
          "headers": {"ETag": _ETAG, "X-Replay-Weights-Version": _VERSION}},
    304: {"description": "The ETag sent in If-None-Match is still the newest",
          "headers": {"ETag": _ETAG, "X-Replay-Weights-Version": _VERSION}},
    **errors(ErrorCode.BUFFER_NOT_FOUND, ErrorCode.WEIGHTS_NOT_FOUND)})
async def fetch_weights(name: BufferName, request: Request,
                        if_none_match: Annotated[str | None, Header()] = None) -> Response:
    """The newest weights. Send the ETag you hold in If-None-Match: while it is still
    the newest, the answer is a bodiless 304, so polling costs almost nothing."""
    return await answer_weights(request, name, if_none_match)


async def answer_weights(request: Request, name: str, if_none_match: str | None) -> Response:
    """Shared with the hot path (service/hot_path.py), which reads the header itself."""
    weights: WeightsStore = request.app.state.weights
    held = if_none_match.strip().strip('"') if if_none_match else None
    fetched = await weights.fetch(name, held)
    headers = {"ETag": f'"{fetched.etag}"', "X-Replay-Weights-Version": str(fetched.version)}
    if fetched.body is None:
        return Response(status_code=304, headers=headers)
    return Response(fetched.body, media_type=SAFETENSORS, headers=headers)
