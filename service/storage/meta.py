"""What the service knows of a buffer, read from its Redis metadata hash."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from replay_service.service.storage import keys
from replay_service.wire.schema import Prioritized, RateLimit, Schema

FANOUT = 16  # children per node of a prioritized buffer's sum tree (lua/sum_tree.lua)
# What a compressed buffer reserves per slot for its frame: this share of the raw bytes,
# plus a hash entry's own cost in Redis. Preprocessed Atari frames shrink 150x, so 1/32
# leaves room for busier images; frames larger still hit Redis's maxmemory (507), never
# another buffer's reservation.
FRAME_RESERVE_SHARE = 1 / 32
FRAME_ENTRY_BYTES = 64


def tree_level_sizes(capacity: int) -> list[int]:
    """Nodes per level of the sum tree, leaves first, down to the single root."""
    sizes = [capacity]
    while sizes[-1] > 1:
        sizes.append(-(-sizes[-1] // FANOUT))
    return sizes


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
    prioritized: Prioritized | None = None
    rate_limit: RateLimit | None = None
    shards: tuple[str, ...] = ()
    """A sharded buffer: the names its rings are kept under (storage/sharded.py), each a
    buffer of its own with its own hash tag; this one then holds no ring itself."""

    @classmethod
    def from_hash(cls, name: str, fields: dict[bytes, bytes]) -> BufferMeta:
        schema_json = fields[b"schema"]
        alpha = fields.get(b"alpha", b"")
        per_insert = fields.get(b"samples_per_insert", b"")
        min_size = int(fields.get(b"min_size", b"0"))
        tolerance = float(fields.get(b"tolerance", b"0"))
        shards = fields.get(b"shards", b"").decode()
        return cls(
            name=name,
            incarnation=fields[b"incarnation"].decode(),
            capacity=int(fields[b"capacity"]),
            schema=Schema.model_validate_json(schema_json) if schema_json else None,
            slots_per_segment=int(fields[b"slots_per_segment"]),
            created_at=float(fields[b"created_at"]),
            prioritized=Prioritized(alpha=float(alpha)) if alpha else None,
            rate_limit=RateLimit(min_size=min_size, tolerance=tolerance,
                                 samples_per_insert=float(per_insert) if per_insert else None)
            if (min_size or per_insert) else None,
            shards=tuple(shards.split(",")) if shards else (),
        )

    def new_hash(self) -> dict[str, str | int | float]:
        """The meta hash a new buffer starts with: what `from_hash` reads back, and
        counters at zero."""
        limit = self.rate_limit or RateLimit()
        return {"incarnation": self.incarnation, "capacity": self.capacity,
                "schema": self.schema.canonical_json() if self.schema else "",
                "record_size": self.schema.record_size if self.schema else 0,
                "frames": int(self.compressed),
                "slots_per_segment": self.slots_per_segment, "created_at": self.created_at,
                "total_inserted": 0, "total_sampled": 0,
                "alpha": self.prioritized.alpha if self.prioritized else "",
                "levels": len(tree_level_sizes(self.capacity)) if self.prioritized else 0,
                "max_priority": 1.0, "min_size": limit.min_size,
                "samples_per_insert": limit.samples_per_insert or "",
                "tolerance": limit.tolerance, "shards": ",".join(self.shards)}

    @property
    def compressed(self) -> bool:
        """Whether each slot also holds a zstd frame of the schema's compressed fields."""
        return self.schema is not None and self.schema.frame_dtype is not None

    @property
    def meta_key(self) -> str:
        return keys.meta(self.name)

    @property
    def all_keys(self) -> list[str]:
        """Every key of the buffer: what deleting it removes."""
        return [*(key.decode() for key in self.script_keys), keys.weights(self.name),
                keys.episodes(self.name)]

    @cached_property
    def script_keys(self) -> tuple[bytes, ...]:
        """The metadata hash, every segment of the ring, then (prioritized buffers) every
        level of the sum tree, leaves first, then (compressed buffers) each segment's
        frames: the keys the scripts take, in that order (lua/layout.lua). Kept with the
        (cached) metadata, encoded: every store and sample sends them. A sharded buffer's
        rings are its shards': its own scripts take only its metadata."""
        if self.shards:
            return (self.meta_key.encode(),)
        segments = -(-self.capacity // self.slots_per_segment)
        levels = len(tree_level_sizes(self.capacity)) if self.prioritized else 0
        names = ([self.meta_key] + [keys.segment(self.name, i) for i in range(segments)]
                 + [keys.tree_level(self.name, level) for level in range(levels)]
                 + [keys.frames(self.name, i) for i in range(segments if self.compressed else 0)])
        return tuple(name.encode() for name in names)

    @property
    def bytes_per_slot(self) -> float:
        """What one slot takes in Redis: its record, its frame as reserved, and its share
        of the sum tree."""
        tree = 8 * sum(tree_level_sizes(self.capacity)) / self.capacity if self.prioritized else 0
        return (slot_bytes(self.schema) if self.schema else 0) + tree

    @property
    def reserved_bytes(self) -> int:
        """What the memory budget holds for the ring: nothing until a schema sizes it, and
        nothing for a sharded buffer (its shards reserve their own)."""
        if self.schema is None or self.shards:
            return 0
        return int(self.capacity * self.bytes_per_slot)


def slots_per_segment(schema: Schema | None, capacity: int, segment_bytes: int) -> int:
    """Redis strings stop at 512 MB, so a large ring spans several strings."""
    if schema is None:
        return capacity  # no records until a schema is adopted
    return max(1, min(capacity, int(segment_bytes // slot_bytes(schema))))


def slot_bytes(schema: Schema) -> float:
    """One transition's record, and the room held for its frame when it has one."""
    frame = schema.frame_size * FRAME_RESERVE_SHARE + FRAME_ENTRY_BYTES if schema.frame_size else 0
    return schema.record_size + frame


@dataclass(frozen=True)
class Counters:
    capacity: int
    size: int
    total_inserted: int
    total_sampled: int
    shards: tuple[Counters, ...] = ()
    """A sharded buffer: each shard's own, in order (the fields above are their sums)."""
