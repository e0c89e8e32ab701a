"""A buffer is a capped ring: when full, the oldest transitions go first."""

import httpx
import redis

from replay_service.service.redis_server import RedisServer
from replay_service.wire.schema import Schema
from tests.service.factories import (
    TRACKED_SCHEMA,
    counters,
    create,
    read_all,
    store_binary,
    tracked_columns,
)


def held_ids_by_slot(http: httpx.Client, name: str) -> dict[int, int]:
    everything = read_all(http, name)
    return dict(zip(everything["slot"].tolist(), everything["id"].tolist(), strict=True))


def test_filling_to_capacity_keeps_everything(http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 10, TRACKED_SCHEMA)
    store_binary(http, buffer_name, tracked_columns(range(10)))
    assert held_ids_by_slot(http, buffer_name) == {slot: slot for slot in range(10)}
    assert counters(http, buffer_name)["size"] == 10


def test_storing_past_capacity_overwrites_the_oldest_first(http: httpx.Client,
                                                           buffer_name: str) -> None:
    create(http, buffer_name, 10, TRACKED_SCHEMA)
    for start in range(0, 23, 3):  # batches that straddle the wrap-around point
        store_binary(http, buffer_name, tracked_columns(range(start, min(start + 3, 23))))
    assert held_ids_by_slot(http, buffer_name) == {i % 10: i for i in range(13, 23)}
    assert counters(http, buffer_name) == {"size": 10, "capacity": 10, "total_inserted": 23,
                                           "total_sampled": 10}


def test_a_batch_longer_than_the_ring_leaves_its_newest(http: httpx.Client,
                                                        buffer_name: str) -> None:
    create(http, buffer_name, 10, TRACKED_SCHEMA)
    store_binary(http, buffer_name, tracked_columns(range(4)))
    reply = store_binary(http, buffer_name, tracked_columns(range(4, 29))).json()
    assert reply["first_slot"] == 4
    assert held_ids_by_slot(http, buffer_name) == {i % 10: i for i in range(19, 29)}
    assert counters(http, buffer_name)["total_inserted"] == 29


def test_a_ring_split_over_several_redis_strings_wraps_the_same(
        http: httpx.Client, buffer_name: str, redis_server: RedisServer) -> None:
    # The test service cuts rings into 16 KiB strings (Redis strings stop at 512 MB,
    # so large rings span several); slots must run on seamlessly across them.
    create(http, buffer_name, 500, TRACKED_SCHEMA)
    for start in range(0, 1234, 97):
        store_binary(http, buffer_name, tracked_columns(range(start, min(start + 97, 1234))))
    assert held_ids_by_slot(http, buffer_name) == {i % 500: i for i in range(734, 1234)}
    strings = redis.Redis.from_url(redis_server.url).keys(f"replay:{{{buffer_name}}}:seg:*")
    per_string = 16_384 // Schema.model_validate(TRACKED_SCHEMA).record_size
    assert len(strings) == -(-500 // per_string) > 1
