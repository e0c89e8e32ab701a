"""Transitions as Redis keeps them: one fixed-width packed record per transition.

A schema fixes every field's dtype and shape, so the fields it keeps uncompressed pack
into the same number of bytes every time (`Schema.record_size`); the ring keeps slot
i at byte i x record_size of a segment string and reads any slot in O(1). Compressed
fields are not in the record: they travel as frames (wire/frames.py).
"""

from __future__ import annotations

import numpy as np

from replay_service.wire.schema import Schema

__all__ = ["pack", "unpack"]


def pack(schema: Schema, columns: dict[str, np.ndarray], count: int) -> bytes:
    """Interleave validated columns into `count` fixed-width records."""
    if not schema.record_size:
        return b""  # every field is compressed
    records = np.empty(count, dtype=schema.record_dtype)
    for name in schema.record_dtype.names or ():
        records[name] = columns[name]
    return records.tobytes()


def unpack(schema: Schema, data: bytes) -> dict[str, np.ndarray]:
    """Split packed records back into contiguous columns."""
    if not schema.record_size:
        return {}
    records = np.frombuffer(data, dtype=schema.record_dtype)
    return {name: np.ascontiguousarray(records[name]) for name in schema.record_dtype.names or ()}
