"""The service's packed ring written and read by redis-py alone, in two ways: a pipeline of
one command per run or slot, and one Lua script (EVALSHA) doing the same commands.

Same layout as the service (slot i at byte i * record_size of a segment string, a
ring cut into strings of at most `segment_bytes`), no service, no HTTP. A store
writes the records at the writer's cursor with SETRANGE runs and adds their count
to the insert counter (INCRBY); a sample draws slots in the client and reads each
with GETRANGE. Both forms use the same keys, so one fill serves them both. The
script passes its records back as a list: joining megabytes of frames in Lua costs
Redis far more than joining them in the client (about 6x slower at Atari size).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import redis

__all__ = ["SEGMENT_BYTES", "PipelinedRing", "ScriptedRing", "SegmentRing"]

SEGMENT_BYTES = 64 * 1024 * 1024  # the service's default REPLAY_SEGMENT_BYTES

# KEYS: the segments, then the counter; ARGV: count, then (segment number, byte offset,
# bytes) per run.
_STORE = """
for i = 2, #ARGV, 3 do
  redis.call('SETRANGE', KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2])
end
return redis.call('INCRBY', KEYS[#KEYS], ARGV[1])
"""
# KEYS: the segments; ARGV: record size, slots per segment, then the slots.
_SAMPLE = """
local size = tonumber(ARGV[1])
local per_segment = tonumber(ARGV[2])
local records = {}
for i = 3, #ARGV do
  local slot = tonumber(ARGV[i])
  local segment = math.floor(slot / per_segment)
  local offset = (slot - segment * per_segment) * size
  records[i - 2] = redis.call('GETRANGE', KEYS[segment + 1], offset, offset + size - 1)
end
return records
"""


class SegmentRing:
    """The layout and the keys; the forms below differ in how they send the commands."""

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

    def runs(self, records: bytes) -> Iterator[tuple[int, int, bytes]]:
        """(segment number, byte offset, bytes) of each run of consecutive slots the records
        take from the cursor on; a batch longer than the ring keeps its newest records."""
        size = self.record_size
        count = len(records) // size
        j = max(0, count - self.capacity)
        while j < count:
            slot = (self.cursor + j) % self.capacity
            segment, within = divmod(slot, self.per_segment)
            run = min(count - j, self.capacity - slot, self.per_segment - within)
            yield segment, within * size, records[j * size:(j + run) * size]
            j += run

    def advance(self, records: bytes) -> int:
        count = len(records) // self.record_size
        self.cursor = (self.cursor + count) % self.capacity
        return count

    def delete(self) -> None:
        self.client.unlink(*self.keys, self.counter)


class PipelinedRing(SegmentRing):
    """One round trip of many commands: redis-py's pipeline."""

    def store(self, records: bytes) -> None:
        pipe = self.client.pipeline(transaction=False)
        for segment, offset, run in self.runs(records):
            pipe.setrange(self.keys[segment], offset, run)
        pipe.incrby(self.counter, self.advance(records))
        pipe.execute()

    def sample(self, slots: np.ndarray) -> bytes:
        pipe = self.client.pipeline(transaction=False)
        size = self.record_size
        for slot in slots.tolist():
            segment, within = divmod(slot, self.per_segment)
            offset = within * size
            pipe.getrange(self.keys[segment], offset, offset + size - 1)
        return b"".join(pipe.execute())


class ScriptedRing(SegmentRing):
    """One command: EVALSHA of a script that runs the pipeline's commands inside Redis."""

    def __init__(self, client: redis.Redis, name: str, capacity: int, record_size: int,
                 segment_bytes: int = SEGMENT_BYTES) -> None:
        super().__init__(client, name, capacity, record_size, segment_bytes)
        self._store = client.register_script(_STORE)
        self._sample = client.register_script(_SAMPLE)

    def store(self, records: bytes) -> None:
        args: list[int | bytes] = []
        for segment, offset, run in self.runs(records):
            args += [segment + 1, offset, run]
        self._store(keys=[*self.keys, self.counter], args=[self.advance(records), *args])

    def sample(self, slots: np.ndarray) -> bytes:
        records = self._sample(keys=self.keys,
                               args=[self.record_size, self.per_segment, *slots.tolist()])
        return b"".join(records)
