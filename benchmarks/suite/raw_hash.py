"""A ring kept as one Redis hash, one field per slot: the layout that lets Redis read a
whole random batch with a single native command (HMGET), where the segment strings
need one GETRANGE per slot. It is a ceiling, not a design the service could take
over as is: a field costs some 70 bytes beside a CartPole record (the memory table).

A store is one HSET of every record at the writer's cursor plus the counter's INCRBY,
in one round trip; a sample is one HMGET of slots drawn in the client.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import redis

__all__ = ["HashRing"]


class HashRing:
    def __init__(self, client: redis.Redis, name: str, capacity: int, record_size: int) -> None:
        self.client = client
        self.capacity = capacity
        self.record_size = record_size
        self.key = f"bench:{{{name}}}:hash"
        self.counter = f"bench:{{{name}}}:hash-total"
        self.cursor = 0

    def store(self, records: bytes) -> None:
        size = self.record_size
        self.store_each([records[j * size:(j + 1) * size] for j in range(len(records) // size)])

    def store_each(self, records: list[bytes]) -> None:
        """Records of any size, one per slot (a compressed buffer's record and frame)."""
        count = len(records)
        items: list[int | bytes] = []
        for j in range(max(0, count - self.capacity), count):
            items += [(self.cursor + j) % self.capacity, records[j]]
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(self.key, items=items)
        pipe.incrby(self.counter, count)
        pipe.execute()
        self.cursor = (self.cursor + count) % self.capacity

    def sample(self, slots: np.ndarray) -> bytes:
        # every slot below the fill holds a record: no None among the answers
        return b"".join(cast(list[bytes], self.client.hmget(self.key, slots.tolist())))

    def delete(self) -> None:
        self.client.unlink(self.key, self.counter)
