"""The raw Redis ceiling: the service's packed ring, written and read by redis-py alone.

Same layout as the service (slot i at byte i * record_size of a segment string, a
ring cut into strings of at most `segment_bytes`), no service, no HTTP, no Lua: a
store is one pipeline of SETRANGE runs and an INCRBY of the insert counter; a sample
draws slots in the client and reads each with GETRANGE in one pipeline.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import redis

__all__ = ["RawRing"]

SEGMENT_BYTES = 64 * 1024 * 1024  # the service's default REPLAY_SEGMENT_BYTES


class RawRing:
    def __init__(self, client: redis.Redis, name: str, capacity: int, record_size: int,
                 segment_bytes: int = SEGMENT_BYTES) -> None:
        self.client = client
        self.capacity = capacity
        self.record_size = record_size
        self.per_segment = max(1, min(capacity, segment_bytes // record_size))
        segments = -(-capacity // self.per_segment)
        self.keys = [f"bench:{{{name}}}:seg:{i}" for i in range(segments)]
        self.counter = f"bench:{{{name}}}:total"
        self.cursor = 0

    def _write(self, pipe: Any, first: int, records: bytes) -> None:
        count = len(records) // self.record_size
        j = max(0, count - self.capacity)
        while j < count:
            slot = (first + j) % self.capacity
            segment, within = divmod(slot, self.per_segment)
            run = min(count - j, self.capacity - slot, self.per_segment - within)
            pipe.setrange(self.keys[segment], within * self.record_size,
                          records[j * self.record_size:(j + run) * self.record_size])
            j += run

    def store(self, records: bytes) -> None:
        """One round trip: the records at this client's cursor, and the counter."""
        count = len(records) // self.record_size
        pipe = self.client.pipeline(transaction=False)
        self._write(pipe, self.cursor, records)
        pipe.incrby(self.counter, count)
        pipe.execute()
        self.cursor = (self.cursor + count) % self.capacity

    def sample(self, slots: np.ndarray) -> bytes:
        """One round trip: a GETRANGE per slot."""
        pipe = self.client.pipeline(transaction=False)
        size = self.record_size
        per_segment = self.per_segment
        for slot in slots.tolist():
            segment, within = divmod(slot, per_segment)
            offset = within * size
            pipe.getrange(self.keys[segment], offset, offset + size - 1)
        return b"".join(pipe.execute())

    def delete(self) -> None:
        self.client.unlink(*self.keys, self.counter)
