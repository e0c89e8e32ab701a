"""Concurrent writers never lose, duplicate or overlap transitions."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np

from tests.service.factories import (
    TRACKED_SCHEMA,
    counters,
    create,
    read_all,
    store_binary,
)
from tests.support import ServiceProcess

WRITERS = 8
PER_WRITER = 1_000


def write_all(url: str, name: str, writer: int) -> list[tuple[int, int, int]]:
    """Store this writer's ids in batches of random size; return (first id, count, first slot)."""
    rng = np.random.default_rng(writer)
    ids = np.arange(writer * PER_WRITER, (writer + 1) * PER_WRITER, dtype=np.int64)
    placed = []
    with httpx.Client(base_url=url, timeout=30) as http:
        start = 0
        while start < PER_WRITER:
            count = int(min(rng.integers(1, 60), PER_WRITER - start))
            batch = ids[start:start + count]
            columns = {"id": batch, "obs": np.repeat(batch[:, None], 4, 1).astype(np.float32),
                       "action": batch % 2, "reward": batch.astype(np.float32),
                       "next_obs": np.zeros((count, 4), np.float32),
                       "done": np.zeros(count, bool)}
            reply = store_binary(http, name, columns)
            assert reply.status_code == 200, reply.text
            placed.append((int(batch[0]), count, reply.json()["first_slot"]))
            start += count
    return placed


def test_eight_writers_fill_every_slot_exactly_once(service: ServiceProcess,
                                                    buffer_name: str) -> None:
    total = WRITERS * PER_WRITER
    with httpx.Client(base_url=service.url) as http:
        create(http, buffer_name, total, TRACKED_SCHEMA)
        with ThreadPoolExecutor(WRITERS) as pool:
            replies = [placed for result in pool.map(
                lambda w: write_all(service.url, buffer_name, w), range(WRITERS))
                for placed in result]
        assert counters(http, buffer_name) == {"size": total, "capacity": total,
                                               "total_inserted": total, "total_sampled": 0}
        held = read_all(http, buffer_name)

    # The replies claimed disjoint slot ranges that tile the ring...
    claimed = np.concatenate([np.arange(slot, slot + count) for _, count, slot in replies])
    np.testing.assert_array_equal(np.sort(claimed), np.arange(total))
    # ...every id is held exactly once...
    np.testing.assert_array_equal(np.sort(held["id"]), np.arange(total))
    # ...in the slot its reply named, with its own values, not a neighbour's.
    expected_id_at = np.empty(total, np.int64)
    for first_id, count, slot in replies:
        expected_id_at[slot:slot + count] = np.arange(first_id, first_id + count)
    np.testing.assert_array_equal(held["id"], expected_id_at[held["slot"]])
    np.testing.assert_array_equal(held["obs"], np.repeat(held["id"][:, None], 4, 1))
    np.testing.assert_array_equal(held["reward"], held["id"].astype(np.float32))
