"""Compressed buffers through the real service: fields marked `"compression": "zstd"`
travel and rest as one zstd frame per transition, every frame is checked before it is
kept, and what comes back is bit for bit what went in."""

from __future__ import annotations

import struct

import httpx
import numpy as np
import pytest
import redis
import zstandard

from replay_service.service.redis_server import RedisServer
from replay_service.wire.codec import SAFETENSORS, decode_safetensors, encode_safetensors
from replay_service.wire.frames import (
    COMPRESSED_SIZES_TENSOR,
    COMPRESSED_TENSOR,
    Frames,
    compress,
    decompress,
)
from replay_service.wire.schema import Schema
from tests.atari_frames import PONG_SCHEMA, pong_batch
from tests.service.factories import counters, create, read_all, store_binary, store_json

SCHEMA = Schema.model_validate(PONG_SCHEMA)
# The tests' service takes bodies of 4 MB, and so frames that inflate to 4 MB: 74 Pong
# transitions (tests/conftest.py).
FRAME_SIZE = 2 * 4 * 84 * 84


def compressed_body(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What the SDK sends: the plain fields, and the compressed ones as frames."""
    frames = compress(SCHEMA, columns, len(columns["id"]))
    return {**{name: value for name, value in columns.items()
               if SCHEMA.fields[name].compression is None},
            COMPRESSED_TENSOR: np.frombuffer(frames.data, np.uint8),
            COMPRESSED_SIZES_TENSOR: frames.sizes}


def by_id(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    order = np.argsort(columns["id"])
    return {name: value[order] for name, value in columns.items() if name in SCHEMA.fields}


def assert_same(got: dict[str, np.ndarray], sent: dict[str, np.ndarray]) -> None:
    for name in SCHEMA.fields:
        assert got[name].dtype == sent[name].dtype, name
        assert np.array_equal(got[name], sent[name]), name


@pytest.fixture
def pong(http: httpx.Client, buffer_name: str) -> str:
    create(http, buffer_name, 1_000, PONG_SCHEMA)
    return buffer_name


def test_frames_sent_compressed_come_back_bit_for_bit(http: httpx.Client, pong: str) -> None:
    sent = pong_batch(range(70))
    response = store_binary(http, pong, compressed_body(sent))
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 70
    assert_same(by_id(read_all(http, pong)), sent)


def test_plain_columns_are_compressed_by_the_service(http: httpx.Client, pong: str,
                                                     redis_server: RedisServer) -> None:
    """Any language may send the frames plain: the service keeps them compressed."""
    sent = {name: np.concatenate([a, b]) for (name, a), b in zip(
        pong_batch(range(60)).items(), pong_batch(range(60, 120)).values(), strict=True)}
    for first in (0, 60):
        part = {name: column[first:first + 60] for name, column in sent.items()}
        assert store_binary(http, pong, part).status_code == 200
    assert_same(by_id(read_all(http, pong)), sent)
    answer = http.get(f"/buffers/{pong}/sample", params={"batch_size": 120, "replace": False,
                                                         "compressed": True},
                      headers={"accept": SAFETENSORS})
    tensors = decode_safetensors(answer.content).columns
    assert "obs" not in tensors and tensors[COMPRESSED_SIZES_TENSOR].shape == (120,)
    assert len(tensors[COMPRESSED_TENSOR]) < 120 * 1_000
    with redis.Redis.from_url(redis_server.url) as client:
        kept = sum(client.memory_usage(key) or 0
                   for key in client.scan_iter(f"replay:{{{pong}}}:frames:*"))
    assert kept / 120 < 1_000  # against 56,448 bytes raw


def test_a_json_reader_gets_the_frames_inflated(http: httpx.Client, pong: str) -> None:
    sent = pong_batch(range(5))
    assert store_binary(http, pong, compressed_body(sent)).status_code == 200
    document = http.get(f"/buffers/{pong}/sample",
                        params={"batch_size": 5, "replace": False}).json()
    got = {name: np.asarray(values, SCHEMA.fields[name].numpy_dtype)
           for name, values in document["columns"].items()}
    assert_same(by_id(got), sent)


def test_frames_come_only_as_safetensors(http: httpx.Client, pong: str) -> None:
    assert store_binary(http, pong, compressed_body(pong_batch(range(5)))).status_code == 200
    answer = http.get(f"/buffers/{pong}/sample", params={"batch_size": 2, "compressed": True})
    assert answer.status_code == 406
    assert answer.json()["field"] == "compressed"


def test_minibatches_keep_their_frames_apart(http: httpx.Client, pong: str) -> None:
    assert store_binary(http, pong, compressed_body(pong_batch(range(50)))).status_code == 200
    answer = http.get(f"/buffers/{pong}/sample",
                      params={"batch_size": 8, "num_batches": 3, "compressed": True},
                      headers={"accept": SAFETENSORS})
    tensors = decode_safetensors(answer.content).columns
    assert tensors[COMPRESSED_SIZES_TENSOR].shape == (3, 8)
    assert tensors["id"].shape == (3, 8)
    inflated = http.get(f"/buffers/{pong}/sample", params={"batch_size": 8, "num_batches": 3},
                        headers={"accept": SAFETENSORS})
    assert decode_safetensors(inflated.content).columns["obs"].shape == (3, 8, 4, 84, 84)


def test_a_full_ring_keeps_the_newest_frames(http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 64, PONG_SCHEMA)
    for first in range(0, 160, 40):
        batch = compressed_body(pong_batch(range(first, first + 40)))
        assert store_binary(http, buffer_name, batch).status_code == 200
    assert_same(by_id(read_all(http, buffer_name)), pong_batch(range(96, 160)))


def test_reads_in_insertion_order_inflated_or_not(http: httpx.Client, pong: str) -> None:
    sent = pong_batch(range(30))
    assert store_binary(http, pong, compressed_body(sent)).status_code == 200
    params = {"first": 10, "count": 15}
    inflated = http.get(f"/buffers/{pong}/transitions", params=params,
                        headers={"accept": SAFETENSORS})
    assert_same(dict(decode_safetensors(inflated.content).columns), pong_batch(range(10, 25)))
    kept = decode_safetensors(http.get(f"/buffers/{pong}/transitions",
                                       params={**params, "compressed": True},
                                       headers={"accept": SAFETENSORS}).content).columns
    expected = compressed_body(pong_batch(range(10, 25)))
    assert np.array_equal(kept[COMPRESSED_SIZES_TENSOR], expected[COMPRESSED_SIZES_TENSOR])
    assert np.array_equal(kept[COMPRESSED_TENSOR], expected[COMPRESSED_TENSOR])


def test_an_idempotent_store_of_frames_is_kept_once(http: httpx.Client, pong: str) -> None:
    body = encode_safetensors(compressed_body(pong_batch(range(20))))
    for _ in range(2):
        response = http.post(f"/buffers/{pong}/transitions", content=body,
                             headers={"content-type": SAFETENSORS, "idempotency-key": "k-1"})
        assert response.status_code == 200
    assert counters(http, pong)["total_inserted"] == 20


def test_a_prioritized_compressed_buffer_samples_and_updates(http: httpx.Client,
                                                             buffer_name: str) -> None:
    response = http.put(f"/buffers/{buffer_name}", json={
        "capacity": 100, "schema": PONG_SCHEMA, "prioritized": {"alpha": 0.6}})
    assert response.status_code == 201, response.text
    sent = compressed_body(pong_batch(range(40)))
    sent["_priority"] = np.r_[np.full(39, 1e-6), 1e6]  # transition 39 all but always drawn
    assert store_binary(http, buffer_name, sent).status_code == 200
    answer = http.get(f"/buffers/{buffer_name}/sample", params={"batch_size": 16},
                      headers={"accept": SAFETENSORS})
    assert answer.status_code == 200, answer.text
    tensors = decode_safetensors(answer.content).columns
    assert (tensors["id"] == 39).sum() >= 15
    drawn = tensors["obs"][tensors["id"] == 39][0]
    assert np.array_equal(drawn, pong_batch(range(39, 40))["obs"][0])
    update = http.post(f"/buffers/{buffer_name}/priorities", json={
        "indices": tensors["_indices"].tolist(), "inserted": tensors["_inserted"].tolist(),
        "priorities": [1.0] * 16})
    assert update.status_code == 200 and update.json()["updated"] == 16


def test_a_buffer_of_frames_only(http: httpx.Client, buffer_name: str) -> None:
    schema = {"fields": {"obs": PONG_SCHEMA["fields"]["obs"]}}
    create(http, buffer_name, 10, schema)
    obs = pong_batch(range(4))["obs"]
    assert store_binary(http, buffer_name, {"obs": obs}).status_code == 200
    got = read_all(http, buffer_name)["obs"]
    assert sorted(map(bytes, got)) == sorted(map(bytes, obs))


# Bad frames: each refused with the field named, and nothing already stored touched.

def frames_body(frames: list[bytes], count: int | None = None) -> dict[str, np.ndarray]:
    ids = range(count if count is not None else len(frames))
    plain = pong_batch(ids)
    return {"id": plain["id"], "action": plain["action"], "reward": plain["reward"],
            "done": plain["done"],
            COMPRESSED_TENSOR: np.frombuffer(b"".join(frames), np.uint8),
            COMPRESSED_SIZES_TENSOR: np.array([len(frame) for frame in frames], np.uint32)}


def good_frame() -> bytes:
    columns = pong_batch(range(1))
    return compress(SCHEMA, columns, 1).data


def reserved_block() -> bytes:
    """A frame whose first block says it is of the type zstd reserves (3): corrupt."""
    frame = bytearray(good_frame())
    frame[zstandard.frame_header_size(frame)] |= 0b110
    return bytes(frame)


def inflating_past_its_header() -> bytes:
    """A frame whose header declares one transition's size, with blocks that inflate to
    64 MB: the reader must stop at the declared size, not allocate the claim of the
    blocks."""
    frame = zstandard.ZstdCompressor(level=1, write_content_size=False).compress(
        bytes(64 * 1024 * 1024))
    descriptor = frame[4]
    assert descriptor >> 6 == 0 and not descriptor & 0x20  # no size; a window byte follows
    declared = struct.pack("<H", FRAME_SIZE - 256)  # a 2-byte size field counts from 256
    return frame[:4] + bytes([descriptor | 0x40]) + frame[5:6] + declared + frame[6:]


BAD_FRAMES = {
    "not zstd": ([b"not a zstd frame at all"], 400, "invalid_compression"),
    "header only": ([good_frame()[:6]], 400, "invalid_compression"),
    "truncated": ([good_frame()[:-3]], 400, "invalid_compression"),
    "trailing bytes": ([good_frame() + b"\0\0"], 400, "invalid_compression"),
    "two frames in one": ([good_frame() * 2], 400, "invalid_compression"),
    "reserved block type": ([reserved_block()], 400, "invalid_compression"),
    "wrong declared size": ([zstandard.ZstdCompressor().compress(bytes(FRAME_SIZE + 1))], 422,
                            "frame_size_mismatch"),
    "huge declared size": ([zstandard.ZstdCompressor().compress(bytes(FRAME_SIZE * 4096))],
                           422, "frame_size_mismatch"),
    "no declared size": ([zstandard.ZstdCompressor(write_content_size=False).compress(
        bytes(FRAME_SIZE))], 422, "frame_size_mismatch"),
    "inflates past its header": ([inflating_past_its_header()], 400, "invalid_compression"),
}


@pytest.mark.parametrize("case", list(BAD_FRAMES))
def test_bad_frames_are_refused_and_nothing_stored_changes(http: httpx.Client, pong: str,
                                                           case: str) -> None:
    kept = pong_batch(range(10))
    assert store_binary(http, pong, compressed_body(kept)).status_code == 200
    frames, status, code = BAD_FRAMES[case]
    response = store_binary(http, pong, frames_body(frames))
    assert response.status_code == status, response.text
    error = response.json()
    assert error["error"] == code and error["field"] == COMPRESSED_TENSOR
    assert "Traceback" not in response.text
    assert counters(http, pong)["total_inserted"] == 10
    assert_same(by_id(read_all(http, pong)), kept)


def test_sizes_must_add_up_to_the_frames(http: httpx.Client, pong: str) -> None:
    body = frames_body([good_frame(), good_frame()])
    body[COMPRESSED_SIZES_TENSOR] = body[COMPRESSED_SIZES_TENSOR] + np.array([1, 0], np.uint32)
    response = store_binary(http, pong, body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_compression"


def test_one_frame_per_transition(http: httpx.Client, pong: str) -> None:
    response = store_binary(http, pong, frames_body([good_frame()] * 3, count=4))
    assert response.status_code == 422
    assert response.json()["error"] == "batch_length_mismatch"


def test_a_field_comes_one_way_only(http: httpx.Client, pong: str) -> None:
    body = {**compressed_body(pong_batch(range(2))), "obs": pong_batch(range(2))["obs"]}
    response = store_binary(http, pong, body)
    assert response.status_code == 422
    assert response.json()["field"] == "obs"


def test_frames_for_a_buffer_that_compresses_nothing(http: httpx.Client,
                                                     buffer_name: str) -> None:
    plain = {"fields": {name: {**spec, "compression": None}
                        for name, spec in PONG_SCHEMA["fields"].items()}}
    create(http, buffer_name, 10, plain)
    response = store_binary(http, buffer_name, compressed_body(pong_batch(range(2))))
    assert response.status_code == 422
    assert response.json() | {"message": ""} == {
        "error": "unknown_field", "field": COMPRESSED_TENSOR, "message": ""}


def test_frames_need_a_schema_to_inflate_with(http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 10)
    response = store_binary(http, buffer_name, compressed_body(pong_batch(range(2))))
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_schema"
    assert response.json()["field"] == COMPRESSED_TENSOR


def test_json_rows_are_compressed_too(http: httpx.Client, pong: str) -> None:
    sent = pong_batch(range(3))
    response = store_json(http, pong, sent)
    assert response.status_code == 200, response.text
    assert_same(by_id(read_all(http, pong)), sent)


@pytest.mark.parametrize(("spec", "value", "code"), [
    ({"dtype": "float32", "shape": [3]}, np.array([[0.0, np.nan, 1.0]], np.float32),
     "non_finite"),
    ({"dtype": "bool", "shape": [3]}, np.array([[0, 2, 1]], np.uint8).view(np.bool_),
     "invalid_dtype")])
def test_compressed_values_are_checked_like_plain_ones(
        http: httpx.Client, buffer_name: str, spec: dict[str, object], value: np.ndarray,
        code: str) -> None:
    """Integers need only inflate right; a float or a bool inside a frame must also be a
    valid value, as it would sent plain."""
    schema = Schema.model_validate({"fields": {"x": {**spec, "compression": "zstd"},
                                               "step": {"dtype": "int64"}}})
    create(http, buffer_name, 10, schema.model_dump(mode="json"))
    frames = compress(schema, {"x": value}, 1)
    response = store_binary(http, buffer_name, {
        "step": np.zeros(1, np.int64), COMPRESSED_TENSOR: np.frombuffer(frames.data, np.uint8),
        COMPRESSED_SIZES_TENSOR: frames.sizes})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == code and response.json()["field"] == "x"
    assert counters(http, buffer_name)["total_inserted"] == 0


def test_a_sharded_compressed_buffer_gives_its_frames_back_bit_for_bit(
        http: httpx.Client, buffer_name: str) -> None:
    made = http.put(f"/buffers/{buffer_name}", json={"capacity": 300, "schema": PONG_SCHEMA,
                                                     "shards": 3})
    assert made.status_code == 201, made.text
    sent = pong_batch(range(60))
    for first in range(0, 60, 15):
        part = {name: value[first:first + 15] for name, value in sent.items()}
        assert store_binary(http, buffer_name, compressed_body(part)).status_code == 200
    assert_same(by_id(read_all(http, buffer_name)), sent)
    reply = http.get(f"/buffers/{buffer_name}/sample", headers={"accept": SAFETENSORS},
                     params={"batch_size": 20, "num_batches": 3, "compressed": "true"})
    assert reply.status_code == 200, reply.text
    columns = decode_safetensors(reply.content).columns
    assert columns[COMPRESSED_SIZES_TENSOR].shape == (3, 20)
    inflated = decompress(SCHEMA, Frames(columns[COMPRESSED_TENSOR].tobytes(),
                                         columns[COMPRESSED_SIZES_TENSOR].ravel()))
    ids = columns["id"].ravel()
    for name, value in inflated.items():  # each frame beside its own transition's fields
        assert np.array_equal(value, sent[name][ids]), name
