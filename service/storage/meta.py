"""What the service knows of a buffer, read from its Redis metadata hash."""

from __future__ import annotations

from dataclasses import dataclass

from client.schema import Schema
from service.storage import keys


@dataclass(frozen=True)
class BufferMeta:
    """The immutable part of a buffer (the counters live in Redis only).

    `incarnation` is drawn at random when the buffer is created. Every script
    checks it, so a replica holding a cached copy of a buffer that another
    replica deleted and re-created learns of it instead of writing wrongly sized
    records into the new one.
    """

    name: str
    incarnation: str
    capacity: int
    schema: Schema | None
    slots_per_segment: int
    created_at: float

    @classmethod
    def from_hash(cls, name: str, fields: dict[bytes, bytes]) -> BufferMeta:
        schema_json = fields[b"schema"]
        return cls(
            name=name,
            incarnation=fields[b"incarnation"].decode(),
            capacity=int(fields[b"capacity"]),
            schema=Schema.model_validate_json(schema_json) if schema_json else None,
            slots_per_segment=int(fields[b"slots_per_segment"]),
            created_at=float(fields[b"created_at"]),
        )

    @property
    def meta_key(self) -> str:
        return keys.meta(self.name)

    @property
    def all_keys(self) -> list[str]:
        """Every key of the buffer: what deleting it removes."""
        return [*self.script_keys, keys.weights(self.name), keys.episodes(self.name)]

    @property
    def script_keys(self) -> list[str]:
        """The metadata hash, then every segment of the ring, as scripts take them."""
        segments = -(-self.capacity // self.slots_per_segment)
        return [self.meta_key] + [keys.segment(self.name, i) for i in range(segments)]


def slots_per_segment(schema: Schema | None, capacity: int, segment_bytes: int) -> int:
    """Redis strings stop at 512 MB, so a large ring spans several strings."""
    if schema is None:
        return capacity  # no records until a schema is adopted
    return max(1, min(capacity, segment_bytes // schema.record_size))


@dataclass(frozen=True)
class Counters:
    capacity: int
    size: int
    total_inserted: int
    total_sampled: int
