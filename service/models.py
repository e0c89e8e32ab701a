"""Request and response bodies as the OpenAPI document shows them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema, WithJsonSchema

from replay_service.wire.errors import ErrorCode
from replay_service.wire.schema import Prioritized, RateLimit, Schema

CARTPOLE_SCHEMA: dict[str, Any] = {
    "fields": {
        "obs": {"dtype": "float32", "shape": [4]},
        "action": {"dtype": "int64", "shape": []},
        "reward": {"dtype": "float32", "shape": []},
        "next_obs": {"dtype": "float32", "shape": [4]},
        "done": {"dtype": "bool", "shape": []},
    }
}


# Lists a field value may nest: a shape has at most 8 dimensions (wire.schema), columns
# add one per transition, num_batches one per minibatch.
_MAX_NESTING = 10


def _nested_values(depth: int) -> dict[str, Any]:
    scalar: list[dict[str, Any]] = [{"type": "number"}, {"type": "boolean"}]
    if depth == 0:
        return {"anyOf": scalar}
    return {"anyOf": [*scalar, {"type": "array", "items": _nested_values(depth - 1)}]}


# One field's value in a JSON body or answer: a number or a boolean for a scalar field,
# nested lists of them for a field with a shape. Spelled out to a fixed depth rather
# than as a recursive schema, which TypeScript generators turn into `any`.
FieldValue = Annotated[Any, WithJsonSchema(_nested_values(_MAX_NESTING))]
FieldValues = dict[str, FieldValue]


class OneTransition(BaseModel):
    """A store of one transition: `{"transition": {field: value}}`."""

    model_config = ConfigDict(extra="forbid")

    transition: FieldValues


class TransitionRows(BaseModel):
    """A batch as rows: `{"transitions": [{field: value}, ...]}`, every row with the same
    fields."""

    model_config = ConfigDict(extra="forbid")

    transitions: Annotated[list[FieldValues], Field(min_length=1)]


class TransitionColumns(BaseModel):
    """A batch as columns: `{"columns": {field: [value, ...]}}`, one value per transition
    in every column. A prioritized buffer also takes a `_priority` column."""

    model_config = ConfigDict(extra="forbid")

    columns: dict[str, list[FieldValue]]


# The JSON bodies of a store, in the order the README gives them. The route reads the
# raw body itself (it also takes safetensors), so these models only describe it.
STORE_JSON_BODIES: tuple[type[BaseModel], ...] = (TransitionRows, TransitionColumns,
                                                  OneTransition)


class BufferSpec(BaseModel):
    """What `PUT /buffers/{name}` creates."""

    model_config = ConfigDict(
        strict=True, extra="forbid", populate_by_name=True,
        json_schema_extra={"examples": [{"capacity": 100_000, "schema": CARTPOLE_SCHEMA},
                                        {"capacity": 50_000}]})

    capacity: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Slots in the ring; the service default when left out.")
    buffer_schema: Schema | None = Field(
        default=None, alias="schema",
        description="Fields with dtype and shape; left out, the first store sets it.")
    prioritized: Prioritized | None = Field(
        default=None, description="Prioritized replay; left out, sampling is uniform.")
    rate_limit: RateLimit | None = Field(
        default=None, description="Hold samplers back to a ratio of inserts.")
    shards: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Spread the buffer over this many rings, each under its "
        "own hash tag, so that a Redis Cluster keeps them on different masters and the "
        "buffer can outgrow one; the capacity is split over them. Left out, one ring.")


class SizeInfo(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"size": 2048, "capacity": 100_000, "total_inserted": 2048, "total_sampled": 65_536}]})

    size: int = Field(description="Transitions held now: at most the capacity.")
    capacity: int
    total_inserted: int = Field(description="Transitions stored since creation, overwritten "
                                "ones included.")
    total_sampled: int = Field(description="Transitions handed out by sample since creation.")


class BufferInfo(SizeInfo):
    model_config = ConfigDict(serialize_by_alias=True, json_schema_extra={"examples": [
        {"name": "cartpole", "schema": CARTPOLE_SCHEMA, "created_at": 1795534359.05,
         "size": 2048, "capacity": 100_000, "total_inserted": 2048, "total_sampled": 65_536}]})

    name: str
    buffer_schema: Schema | None = Field(alias="schema")
    created_at: float = Field(description="Unix time of creation.")
    prioritized: Prioritized | None = None
    rate_limit: RateLimit | None = None
    shards: int = Field(default=1, description="Rings the buffer is spread over.")
    per_shard: list[SizeInfo] | None = Field(
        default=None, description="A sharded buffer: each shard's own counters, in order "
        "(the ones above are their sums); read a shard in its insertion order with "
        "`GET /transitions?shard=`.")


class BufferList(BaseModel):
    buffers: list[BufferInfo]


class StoreReply(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"stored": 256, "first_slot": 1792, "size": 2048, "capacity": 100_000,
         "total_inserted": 2048}]})

    stored: int = Field(description="Transitions stored by this request.")
    first_slot: int = Field(description="Slot of the first one; the rest follow it, wrapping "
                            "at the capacity.")
    size: int
    capacity: int
    total_inserted: int


class SampleReply(BaseModel):
    """The JSON form of a sample; `Accept: application/x-safetensors` gets the same
    columns as tensors, the slots as the tensor `_indices` (and `_weights`, `_inserted`).
    With `num_batches`, every list gains a leading level: one entry per minibatch."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"size": 2048, "total_inserted": 2048, "indices": [17, 1203],
         "columns": {"obs": [[0.01, -0.02, 0.03, 0.04], [0.1, 0.2, -0.1, 0.0]], "action": [1, 0],
                     "reward": [1.0, 1.0], "next_obs": [[0.02, 0.17, 0.03, -0.25],
                                                        [0.1, 0.4, -0.1, -0.3]],
                     "done": [False, True]}},
        {"size": 2048, "total_inserted": 4113, "indices": [[17], [1203]],
         "columns": {"obs": [[[0.01, -0.02, 0.03, 0.04]], [[0.1, 0.2, -0.1, 0.0]]],
                     "action": [[1], [0]], "reward": [[1.0], [1.0]],
                     "next_obs": [[[0.02, 0.17, 0.03, -0.25]], [[0.1, 0.4, -0.1, -0.3]]],
                     "done": [[False], [True]]},
         "weights": [[1.0], [1.0]], "inserted": [[4113], [1203]]}]})

    size: int
    total_inserted: int
    indices: list[int] | list[list[int]] = Field(
        description="The slot each transition was read from (a list per minibatch, with "
        "num_batches).")
    columns: dict[str, list[FieldValue]] = Field(
        description="One list per field, one entry per transition (per minibatch first, "
        "with num_batches).")
    # Left out of the answer, never null, for a uniform buffer: hence no null in the schema.
    weights: list[float] | list[list[float]] | SkipJsonSchema[None] = Field(
        default=None, description="Prioritized buffers: importance-sampling weights, the "
        "largest of each minibatch 1.")
    inserted: list[int] | list[list[int]] | SkipJsonSchema[None] = Field(
        default=None, description="Prioritized buffers: which transition ever inserted each "
        "slot held; send it back with new priorities.")


class PriorityUpdate(BaseModel):
    """New priorities for sampled transitions (e.g. |TD error| + epsilon), with the slots
    and insertion numbers the sample gave: a slot overwritten since is skipped."""

    model_config = ConfigDict(strict=True, extra="forbid", json_schema_extra={"examples": [
        {"indices": [17, 1203], "inserted": [4113, 1203], "priorities": [0.8, 0.05]}]})

    indices: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]
    inserted: list[Annotated[int, Field(ge=0)]]
    priorities: list[Annotated[float, Field(ge=0.0, allow_inf_nan=False)]]


class PrioritiesUpdated(BaseModel):
    updated: int
    skipped: int = Field(description="Slots overwritten since they were sampled.")


class WeightsReply(BaseModel):
    version: int = Field(description="Counts publications: 1 for the first.")
    etag: str = Field(description="Send it as If-None-Match to fetch only newer weights.")


class EpisodeResult(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True,
                              serialize_by_alias=True)

    episode_return: float = Field(alias="return", allow_inf_nan=False,
                                  description="Undiscounted sum of rewards.")
    length: Annotated[int, Field(ge=0, le=2**31 - 1)]
    source: Annotated[str, Field(max_length=128)] = Field(
        default="", description="Who ran it, e.g. a collector's name.")


class EpisodeReport(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", json_schema_extra={"examples": [
        {"episodes": [{"return": 187.0, "length": 187, "source": "collector-0"}]}]})

    episodes: Annotated[list[EpisodeResult], Field(min_length=1, max_length=1_000)]


class EpisodesRecorded(BaseModel):
    recorded: int
    last_id: str


class LoggedEpisode(EpisodeResult):
    id: str = Field(description="Stream id: increasing, usable as `after`.")


class EpisodeList(BaseModel):
    episodes: list[LoggedEpisode]
    last_id: str = Field(description="Pass as `after` to get only newer episodes.")


class ErrorReply(BaseModel):
    """Every error answer. Some codes add details: `size` (not_enough_transitions),
    `oldest` and `total_inserted` (range_not_held), `excess` (rate_limited)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"error": "invalid_shape", "field": "obs",
         "message": "field 'obs': expected shape [4] per transition, got [3]"}]})

    error: ErrorCode = Field(description="A stable code; each status lists the codes it "
                             "travels with.")
    message: str = Field(description="For people: what went wrong and what to do instead.")
    field: str | None = Field(description="The field, parameter or header at fault, if any.")
    size: int | SkipJsonSchema[None] = Field(
        default=None, description="not_enough_transitions: what the buffer holds.")
    oldest: int | SkipJsonSchema[None] = Field(
        default=None, description="range_not_held: the oldest position still held.")
    total_inserted: int | SkipJsonSchema[None] = Field(
        default=None, description="range_not_held: one past the newest position.")
    excess: int | SkipJsonSchema[None] = Field(
        default=None, description="rate_limited: transitions over the allowed ratio.")
