"""Transitions as Redis keeps them: one fixed-width packed record per transition.

A schema fixes every field's dtype and shape, so a transition packs into the same
number of bytes every time (`Schema.record_size`); the ring keeps slot i at byte
i x record_size of a segment string and reads any slot in O(1).
"""

from __future__ import annotations

import numpy as np

from replay_service.wire.schema import Schema

__all__ = ["pack", "unpack"]


def pack(schema: Schema, columns: dict[str, np.ndarray], count: int) -> bytes:
    """Interleave validated columns into `count` fixed-width records."""
    records = np.empty(count, dtype=schema.record_dtype)
    for name in schema.fields:
        records[name] = columns[name]
    return records.tobytes()


def unpack(schema: Schema, data: bytes) -> dict[str, np.ndarray]:
    """Split packed records back into contiguous columns."""
    records = np.frombuffer(data, dtype=schema.record_dtype)
    return {name: np.ascontiguousarray(records[name]) for name in schema.fields}
