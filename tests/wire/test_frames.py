"""wire.frames: compressed fields become one zstd frame per transition and come back bit
for bit; a frame is inflated only as far as its schema allows."""

from __future__ import annotations

import struct
import tracemalloc

import numpy as np
import pytest
import zstandard

from replay_service.wire.codec import WireError
from replay_service.wire.frames import Frames, compress, decompress
from replay_service.wire.schema import Schema
from tests.atari_frames import PONG_SCHEMA, pong_batch

PONG = Schema.model_validate(PONG_SCHEMA)


def test_pong_frames_round_trip_bit_for_bit_and_small() -> None:
    columns = pong_batch(range(200))
    frames = compress(PONG, columns, 200)
    assert len(frames) == 200 and frames.sizes.dtype == np.uint32
    assert np.median(frames.sizes) < 500  # of 56,448 raw bytes: obs and next_obs together
    inflated = decompress(PONG, frames)
    assert set(inflated) == {"obs", "next_obs"}
    for name, column in inflated.items():
        assert column.dtype == np.uint8 and column.flags.c_contiguous
        assert np.array_equal(column, columns[name])


def test_any_dtype_compresses_exactly() -> None:
    schema = Schema.model_validate({"fields": {
        "depth": {"dtype": "float32", "shape": [3, 5], "compression": "zstd",
                  "allow_nonfinite": True},
        "mask": {"dtype": "bool", "shape": [7], "compression": "zstd"},
        "step": {"dtype": "int16"}}})
    rng = np.random.default_rng(0)
    columns = {"depth": rng.standard_normal((9, 3, 5)).astype(np.float32),
               "mask": rng.random((9, 7)) < 0.5, "step": np.arange(9, dtype=np.int16)}
    columns["depth"][0, 0, 0] = np.nan
    inflated = decompress(schema, compress(schema, columns, 9))
    assert inflated["depth"].tobytes() == columns["depth"].tobytes()  # NaN bits too
    assert np.array_equal(inflated["mask"], columns["mask"])
    assert schema.record_dtype.names == ("step",) and schema.frame_size == 3 * 5 * 4 + 7


def test_a_slice_of_frames_is_those_transitions() -> None:
    columns = pong_batch(range(10))
    part = compress(PONG, columns, 10).slice(3, 7)
    assert np.array_equal(decompress(PONG, part)["obs"], columns["obs"][3:7])


def test_a_frame_claiming_more_than_its_header_allocates_no_more() -> None:
    """Blocks that would inflate to 256 MB behind a header declaring one transition: the
    reader stops at the declared size and never holds more than a few frames' worth."""
    frame = zstandard.ZstdCompressor(level=1, write_content_size=False).compress(
        bytes(256 * 1024 * 1024))
    declared = struct.pack("<H", PONG.frame_size - 256)
    bomb = frame[:4] + bytes([frame[4] | 0x40]) + frame[5:6] + declared + frame[6:]
    tracemalloc.start()
    try:
        with pytest.raises(WireError) as refused:
            decompress(PONG, Frames.join([bomb]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.status == 400
    assert peak < 4 * PONG.frame_size
