"""Sharded buffers (`"shards": K`): one buffer over K rings. Stores land whole in one
shard and spread evenly; uniform sampling stays uniform over every held transition
and prioritized sampling proportional to priority^alpha over the whole buffer; the
counters, priority updates, rate limits, ordered reads and exports see one buffer."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import numpy as np
import pytest
import redis

from replay_service import ReplayClient
from replay_service.client.snapshot import export_buffer, import_buffer
from replay_service.service.redis_server import RedisServer
from replay_service.wire.codec import INDICES_TENSOR, SAFETENSORS, decode_safetensors
from replay_service.wire.schema import Schema
from tests.service.factories import TRACKED_SCHEMA, store_binary, tracked_columns
from tests.stats import chi_square_rejects, chi_square_rejects_uniform
from tests.support import ServiceProcess

ID_SCHEMA = {"fields": {"id": {"dtype": "int64"}}}


def create(http: httpx.Client, name: str, capacity: int, shards: int,
           **options: Any) -> httpx.Response:
    return http.put(f"/buffers/{name}", json={"capacity": capacity, "schema": ID_SCHEMA,
                                              "shards": shards, **options})


def store_ids(http: httpx.Client, name: str, ids: range, **headers: str) -> httpx.Response:
    reply = http.post(f"/buffers/{name}/transitions", json={"columns": {"id": list(ids)}},
                      headers=headers)
    assert reply.status_code == 200, reply.text
    return reply


def sample(http: httpx.Client, name: str, batch_size: int, **params: Any
           ) -> dict[str, np.ndarray]:
    reply = http.get(f"/buffers/{name}/sample", headers={"accept": SAFETENSORS},
                     params={"batch_size": batch_size, **params})
    assert reply.status_code == 200, reply.text
    return dict(decode_safetensors(reply.content).columns)


def per_shard(http: httpx.Client, name: str) -> list[dict[str, int]]:
    info = http.get(f"/buffers/{name}").json()
    shards: list[dict[str, int]] = info["per_shard"]
    return shards


def test_the_capacity_is_split_over_the_shards_and_the_buffer_reads_as_one(
        http: httpx.Client, buffer_name: str) -> None:
    assert create(http, buffer_name, 10, 3).status_code == 201
    info = http.get(f"/buffers/{buffer_name}").json()
    assert info["shards"] == 3 and info["capacity"] == 10
    assert [shard["capacity"] for shard in info["per_shard"]] == [4, 3, 3]
    assert create(http, buffer_name, 10, 3).status_code == 200
    conflict = create(http, buffer_name, 10, 2)
    assert conflict.status_code == 409 and conflict.json()["field"] == "shards"
    left_out = http.put(f"/buffers/{buffer_name}", json={"capacity": 10})
    assert left_out.status_code == 200 and left_out.json()["shards"] == 3
    listed = [entry["name"] for entry in http.get("/buffers").json()["buffers"]]
    assert listed.count(buffer_name) == 1 and not [name for name in listed if "/" in name]
    one_ring = http.get("/buffers").json()["buffers"]
    assert all(entry["shards"] >= 1 for entry in one_ring)


@pytest.mark.parametrize(("shards", "why"), [(11, "at least one transition"), (65, "at most")])
def test_impossible_shard_counts_are_refused_naming_the_field(
        http: httpx.Client, buffer_name: str, shards: int, why: str) -> None:
    reply = create(http, buffer_name, 10 if shards == 11 else 1000, shards)
    assert reply.status_code == 422, reply.text
    assert reply.json()["field"] == "shards" and why in reply.json()["message"]
    assert http.get(f"/buffers/{buffer_name}").status_code == 404


def test_stores_land_whole_in_one_shard_and_spread_evenly(
        http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 300, 3)
    replies = [store_ids(http, buffer_name, range(10 * i, 10 * i + 10)).json()
               for i in range(30)]
    assert [reply["total_inserted"] for reply in replies] == list(range(10, 301, 10))
    assert replies[-1]["size"] == 300 and replies[-1]["capacity"] == 300
    counts = [shard["total_inserted"] for shard in per_shard(http, buffer_name)]
    assert counts == [100, 100, 100]
    # a batch is contiguous in its shard: its first slot and the nine after it
    held = sample(http, buffer_name, 300, replace="false")
    slot_of = dict(zip(held["id"].tolist(), held[INDICES_TENSOR].tolist(), strict=True))
    for i, reply in enumerate(replies):
        assert [slot_of[10 * i + k] for k in range(10)] == list(
            range(reply["first_slot"], reply["first_slot"] + 10))


def test_uniform_sampling_weighs_shards_by_what_they_hold(
        http: httpx.Client, buffer_name: str) -> None:
    # Shards of 1, 5 and 12 transitions: drawing a shard uniformly (instead of in
    # proportion to its size) would give the lone transition 12 times its share.
    create(http, buffer_name, 60, 3)
    for ids in (range(0, 1), range(1, 6), range(6, 18)):
        store_ids(http, buffer_name, ids)
    assert sorted(shard["size"] for shard in per_shard(http, buffer_name)) == [1, 5, 12]
    drawn = sample(http, buffer_name, 500, num_batches=36)["id"]
    assert drawn.shape == (36, 500)
    counts = np.bincount(drawn.ravel(), minlength=18)
    assert not chi_square_rejects_uniform(counts), counts


def test_without_replacement_each_minibatch_is_distinct_and_uniform(
        http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 60, 3)
    for ids in (range(0, 2), range(2, 9), range(9, 20)):
        store_ids(http, buffer_name, ids)
    everything = sample(http, buffer_name, 20, replace="false")["id"]
    assert sorted(everything.tolist()) == list(range(20))
    drawn = sample(http, buffer_name, 10, num_batches=400, replace="false")["id"]
    assert all(len(set(batch)) == 10 for batch in drawn.tolist())
    assert not chi_square_rejects_uniform(np.bincount(drawn.ravel(), minlength=20))
    too_many = http.get(f"/buffers/{buffer_name}/sample",
                        params={"batch_size": 21, "replace": "false"})
    assert too_many.status_code == 409, too_many.text


def test_prioritized_sampling_follows_priority_to_the_alpha_over_all_shards(
        http: httpx.Client, buffer_name: str) -> None:
    alpha, beta = 0.7, 0.5
    create(http, buffer_name, 30, 3, prioritized={"alpha": alpha})
    priorities = np.array([0.5, 8.0, 1.0, 2.0, 4.0, 0.25, 3.0, 1.5, 6.0, 0.75, 5.0, 2.5])
    for first in range(0, 12, 4):
        reply = http.post(f"/buffers/{buffer_name}/transitions", json={"columns": {
            "id": list(range(first, first + 4)),
            "_priority": priorities[first:first + 4].tolist()}})
        assert reply.status_code == 200, reply.text
    expected = priorities**alpha / (priorities**alpha).sum()
    drawn = sample(http, buffer_name, 200, num_batches=100, beta=beta)
    counts = np.bincount(drawn["id"].ravel(), minlength=12)
    assert not chi_square_rejects(counts, expected), counts
    # weights: (N P(i))^-beta, the largest of each minibatch 1
    weights = (12 * expected[drawn["id"]]) ** -beta
    weights /= weights.max(axis=1, keepdims=True)
    np.testing.assert_allclose(drawn["_weights"], weights, rtol=1e-5)

    # new priorities reach every shard by the slots the sample answered with
    batch = sample(http, buffer_name, 12, beta=beta)
    ids = batch["id"]
    unique = np.unique(ids, return_index=True)[1]
    new = np.where(ids[unique] < 6, 10.0, 0.1)
    reply = http.post(f"/buffers/{buffer_name}/priorities", json={
        "indices": batch[INDICES_TENSOR][unique].tolist(),
        "inserted": batch["_inserted"][unique].tolist(), "priorities": new.tolist()})
    assert reply.status_code == 200 and reply.json()["skipped"] == 0, reply.text
    updated = priorities.copy()
    updated[ids[unique]] = new
    expected = updated**alpha / (updated**alpha).sum()
    counts = np.bincount(sample(http, buffer_name, 200, num_batches=100)["id"].ravel(),
                         minlength=12)
    assert not chi_square_rejects(counts, expected), counts


def test_a_retried_store_lands_once_in_the_same_shard(
        http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 90, 3)
    key = {"idempotency-key": "batch-1"}
    first = store_ids(http, buffer_name, range(5), **key).json()
    for batch in range(1, 6):  # the round robin moves on; the key's shard does not
        store_ids(http, buffer_name, range(10 * batch, 10 * batch + 2))
    again = store_ids(http, buffer_name, range(5), **key).json()
    assert (again["stored"], again["first_slot"]) == (first["stored"], first["first_slot"])
    assert again["total_inserted"] == 15 == http.get(
        f"/buffers/{buffer_name}/size").json()["total_inserted"]
    reused = http.post(f"/buffers/{buffer_name}/transitions", json={"columns": {"id": [9]}},
                       headers=key)
    assert reused.status_code == 422, reused.text
    assert reused.json()["error"] == "idempotency_key_reused"


def test_concurrent_writers_lose_and_duplicate_nothing(
        service: ServiceProcess, http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 4_000, 4)

    def write(writer: int) -> None:
        with httpx.Client(base_url=service.url, timeout=30) as own:
            for batch in range(25):
                first = writer * 1_000 + batch * 20
                store_ids(own, buffer_name, range(first, first + 20))

    threads = [threading.Thread(target=write, args=(writer,)) for writer in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    held = sample(http, buffer_name, 2_000, replace="false")["id"]
    assert sorted(held.tolist()) == sorted(
        writer * 1_000 + k for writer in range(4) for k in range(500))
    assert sum(shard["size"] for shard in per_shard(http, buffer_name)) == 2_000


def test_ordered_reads_name_a_shard_and_cover_the_buffer(
        http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 30, 3)
    for i in range(9):  # 3 stores per shard; each shard's ring of 10 wraps
        store_ids(http, buffer_name, range(4 * i, 4 * i + 4))
    unnamed = http.get(f"/buffers/{buffer_name}/transitions", params={"first": 0, "count": 1})
    assert unnamed.status_code == 422 and unnamed.json()["field"] == "shard", unnamed.text
    beyond = http.get(f"/buffers/{buffer_name}/transitions",
                      params={"first": 0, "count": 1, "shard": 3})
    assert beyond.status_code == 422 and "0 to 2" in beyond.json()["message"]
    seen = []
    for shard, counters in enumerate(per_shard(http, buffer_name)):
        assert counters == {**counters, "size": 10, "total_inserted": 12}
        old = http.get(f"/buffers/{buffer_name}/transitions",
                       params={"first": 0, "count": 1, "shard": shard})
        assert old.status_code == 409, old.text
        ids = http.get(f"/buffers/{buffer_name}/transitions",
                       params={"first": 2, "count": 10, "shard": shard}).json()["columns"]["id"]
        assert ids == sorted(ids)
        seen += ids
    assert sorted(seen) == sorted(sample(http, buffer_name, 30, replace="false")["id"].tolist())


def test_the_rate_limit_counts_every_shard(http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 30, 3, rate_limit={"min_size": 7, "samples_per_insert": 2.0})
    for ids in (range(0, 3), range(3, 6)):
        store_ids(http, buffer_name, ids)
    held = http.get(f"/buffers/{buffer_name}/sample", params={"batch_size": 2})
    assert held.status_code == 429 and held.json()["error"] == "rate_limited", held.text
    assert "holds 6 transitions of the 7" in held.json()["message"]
    store_ids(http, buffer_name, range(6, 9))  # 9 held: 2 x (9 - 7) = 4 samples allowed
    assert sample(http, buffer_name, 4)["id"].shape == (4,)
    over = http.get(f"/buffers/{buffer_name}/sample", params={"batch_size": 2})
    assert over.status_code == 429 and over.json()["excess"] == 2, over.text
    assert http.get(f"/buffers/{buffer_name}/size").json()["total_sampled"] == 4


def test_a_first_store_sets_every_shards_schema(http: httpx.Client, buffer_name: str) -> None:
    assert http.put(f"/buffers/{buffer_name}",
                    json={"capacity": 40, "shards": 2}).status_code == 201
    columns = tracked_columns(range(12))
    for part in range(3):
        assert store_binary(http, buffer_name, {
            key: value[4 * part:4 * part + 4] for key, value in columns.items()}
        ).status_code == 200
    drawn = sample(http, buffer_name, 12, replace="false")
    order = np.argsort(drawn["id"])
    for key, value in columns.items():
        np.testing.assert_array_equal(drawn[key][order], value)
    assert http.get(f"/buffers/{buffer_name}").json()["schema"]["fields"].keys() == \
        TRACKED_SCHEMA["fields"].keys()


def test_delete_removes_every_shard_and_a_new_buffer_starts_empty(
        http: httpx.Client, buffer_name: str, redis_server: RedisServer) -> None:
    create(http, buffer_name, 30, 3)
    store_ids(http, buffer_name, range(6))
    own = redis.Redis.from_url(redis_server.url)
    assert own.keys(f"replay:{{{buffer_name}/*")
    assert http.delete(f"/buffers/{buffer_name}").status_code == 204
    assert not own.keys(f"replay:{{{buffer_name}*")
    assert not [field for field in own.hkeys("replay:reservations")
                if field.decode().startswith(buffer_name)]
    create(http, buffer_name, 20, 2)
    assert http.get(f"/buffers/{buffer_name}/size").json()["size"] == 0
    store_ids(http, buffer_name, range(100, 103))
    assert sorted(sample(http, buffer_name, 3, replace="false")["id"].tolist()) == [
        100, 101, 102]


def test_the_sdk_exports_and_imports_a_sharded_buffer(
        service: ServiceProcess, buffer_name: str, tmp_path: Any) -> None:
    schema = Schema.model_validate(TRACKED_SCHEMA)
    columns = tracked_columns(range(50), seed=3)
    with ReplayClient(service.url, buffer_name, capacity=150, schema=schema,
                      shards=3) as client:
        for first in range(0, 50, 10):
            client.store_batch({key: value[first:first + 10] for key, value in columns.items()})
        client.flush()
        info = client.info()
        assert info.shards == 3 and info.per_shard is not None and len(info.per_shard) == 3
        summary = export_buffer(client, tmp_path / "sharded.safetensors")
        assert summary.transitions == 50
    with ReplayClient(service.url, f"{buffer_name}-copy") as copy:
        import_buffer(copy, tmp_path / "sharded.safetensors")
        assert copy.info().shards == 3
        batch = copy.sample(50, replace=False)
    order = np.argsort(batch["id"])
    for key, value in columns.items():
        np.testing.assert_array_equal(batch[key][order], value)


def test_a_full_buffer_stays_uniform_as_its_shards_overwrite(
        http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 30, 3)
    for first in range(0, 90, 5):  # every shard wraps at least once
        store_ids(http, buffer_name, range(first, first + 5))
    for _ in range(2):
        held = sample(http, buffer_name, 30, replace="false")["id"]
        drawn = sample(http, buffer_name, 300, num_batches=30)["id"].ravel()
        assert set(drawn.tolist()) == set(held.tolist())
        counts = np.unique(drawn, return_counts=True)[1]
        assert not chi_square_rejects_uniform(counts), counts
        store_ids(http, buffer_name, range(1000, 1012))  # newer ones replace the oldest
    assert 1011 in held
