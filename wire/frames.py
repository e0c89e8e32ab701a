"""Compressed fields on the wire and at rest: one zstd frame per transition.

A schema's compressed fields (`FieldSpec.compression`) are packed, in schema order,
into the bytes of `Schema.frame_dtype`, and each transition's bytes become one zstd
frame. Frames of a batch travel back to back in the tensor `_compressed` (uint8),
their sizes in `_compressed_sizes` (uint32, one per transition); the other fields
travel as usual. Compressing obs and next_obs together lets zstd find the three
frames a frame stack shares with the next one: 358 B for a Pong transition against
2 x 315 B for the two compressed apart.

Inflating is where a hostile body could make a reader allocate what a header merely
claims, so `decompress` trusts nothing: every frame must declare exactly the size its
schema implies, must end where its size says, and must inflate to exactly that many
bytes; nothing is allocated beyond `count` x `Schema.frame_size`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import zstandard

from replay_service.wire.codec import WireError
from replay_service.wire.errors import ErrorCode
from replay_service.wire.schema import Schema

__all__ = ["COMPRESSED_SIZES_TENSOR", "COMPRESSED_TENSOR", "Frames", "check", "compress",
           "decompress", "frames_of"]

COMPRESSED_TENSOR = "_compressed"
COMPRESSED_SIZES_TENSOR = "_compressed_sizes"

# zstd's own default: on preprocessed Pong it made smaller frames than level 1 and was
# no slower (358 B in 19 us against 375 B in 21 us per transition, one core here).
LEVEL = 3
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _refuse(code: ErrorCode, message: str) -> WireError:
    """400 for frames that are not well-formed zstd, 422 for frames that are but inflate
    to the wrong size; either names the frames' tensor."""
    return WireError(code, message, field=COMPRESSED_TENSOR)


@dataclass(frozen=True)
class Frames:
    """A batch's frames back to back, and where each ends."""

    data: bytes
    sizes: np.ndarray
    """uint32, one per transition."""

    def __len__(self) -> int:
        return int(self.sizes.size)

    def split(self) -> list[memoryview]:
        ends = np.cumsum(self.sizes, dtype=np.int64).tolist()
        view = memoryview(self.data)
        return [view[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]

    def slice(self, start: int, stop: int) -> Frames:
        """Transitions `start` .. `stop - 1`'s frames."""
        ends = np.concatenate([[0], np.cumsum(self.sizes, dtype=np.int64)])
        stop = min(stop, len(self.sizes))
        return Frames(self.data[ends[start]:ends[stop]], self.sizes[start:stop])

    @classmethod
    def join(cls, frames: list[bytes]) -> Frames:
        return cls(b"".join(frames), np.fromiter(map(len, frames), np.uint32, len(frames)))


class _Contexts(threading.local):
    """zstd contexts are costly to set up and unsafe to share between threads: one pair
    per thread (the SDK compresses in the thread that calls store_batch, and on its
    sender thread for rows; the trainer inflates on its prefetch thread)."""

    def __init__(self) -> None:
        self.compressor = zstandard.ZstdCompressor(level=LEVEL)
        self.decompressor = zstandard.ZstdDecompressor()


_CONTEXTS = _Contexts()


def compress(schema: Schema, columns: dict[str, np.ndarray], count: int) -> Frames:
    """One frame per transition of the schema's compressed fields (already conformed).

    Each transition's fields are packed into one reused row, not the whole batch into a
    new [count, frame_size] array: that array is megabytes even for small batches, and
    memory fresh from the system costs more to touch than zstd takes to compress it.
    """
    frame_dtype = schema.frame_dtype
    assert frame_dtype is not None
    compressor = _CONTEXTS.compressor
    parts = _parts(frame_dtype, {name: _as_bytes(columns[name], count)
                                 for name in frame_dtype.names or ()})
    if len(parts) == 1:  # the row is the field's own bytes
        (column, _, size), = parts
        return Frames.join([compressor.compress(column[i * size:(i + 1) * size])
                            for i in range(count)])
    row = bytearray(schema.frame_size)
    packed = memoryview(row)
    frames = []
    for i in range(count):
        for column, offset, size in parts:
            packed[offset:offset + size] = column[i * size:(i + 1) * size]
        frames.append(compressor.compress(row))
    return Frames.join(frames)


def _as_bytes(column: np.ndarray, count: int) -> np.ndarray:
    """Each transition's value as its little-endian bytes, back to back: [count * nbytes]
    uint8."""
    return np.ascontiguousarray(column).reshape(count, -1).view(np.uint8).reshape(-1)


def _parts(frame_dtype: np.dtype[Any], columns: Mapping[str, np.ndarray]
           ) -> list[tuple[memoryview, int, int]]:
    """Each field's bytes, where its part of a frame starts, and its size."""
    layout: Mapping[str, tuple[Any, ...]] = frame_dtype.fields or {}
    return [(column.data, layout[name][1], frame_dtype[name].itemsize)
            for name, column in columns.items()]


def decompress(schema: Schema, frames: Frames) -> dict[str, np.ndarray]:
    """The compressed fields' columns, each C-contiguous, each frame checked before and
    while it inflates."""
    frame_dtype = schema.frame_dtype
    assert frame_dtype is not None
    count = len(frames)
    columns = {name: np.empty((count, *schema.fields[name].shape),
                              schema.fields[name].numpy_dtype)
               for name in frame_dtype.names or ()}
    parts = _parts(frame_dtype, {name: column.reshape(-1).view(np.uint8)
                                 for name, column in columns.items()})
    decompressor = _CONTEXTS.decompressor
    for i, frame in enumerate(frames.split()):
        inflated = memoryview(_inflate(decompressor, frame, schema.frame_size, i))
        for column, offset, size in parts:
            column[i * size:(i + 1) * size] = inflated[offset:offset + size]
    return columns


def check(schema: Schema, frames: Frames) -> None:
    """What `decompress` checks, keeping none of the inflated bytes: for a writer's frames
    of fields whose every value is valid (integers), the bytes need not be looked at."""
    decompressor = _CONTEXTS.decompressor
    for i, frame in enumerate(frames.split()):
        _inflate(decompressor, frame, schema.frame_size, i)


def _inflate(decompressor: zstandard.ZstdDecompressor, frame: memoryview, size: int,
             index: int) -> bytes:
    """One frame's bytes, inflated into exactly the `size` its header must declare: zstd
    allocates that much, refuses a frame whose blocks hold more or less, and (with
    `allow_extra_data=False`) one followed by anything, another frame included."""
    if frame[:4] != _ZSTD_MAGIC:
        raise _refuse(ErrorCode.INVALID_COMPRESSION,
                      f"frame {index} is not a zstd frame (no magic number)")
    try:
        declared = zstandard.get_frame_parameters(frame).content_size
    except zstandard.ZstdError as error:
        raise _refuse(ErrorCode.INVALID_COMPRESSION,
                      f"frame {index} has no valid zstd header: {error}") from None
    if declared != size:
        claim = "no content size" if declared == zstandard.CONTENTSIZE_UNKNOWN else (
            f"{declared} bytes")
        raise _refuse(ErrorCode.FRAME_SIZE_MISMATCH,
                      f"frame {index} declares {claim}; the compressed fields of one "
                      f"transition take {size} bytes")
    try:
        inflated = decompressor.decompress(frame, allow_extra_data=False)
    except zstandard.ZstdError as error:
        problem = ("does not end where its size says" if "unused data" in str(error) else
                   "is cut short" if "full frame" in str(error) else
                   f"does not inflate: {error}")
        raise _refuse(ErrorCode.INVALID_COMPRESSION, f"frame {index} {problem}") from None
    if len(inflated) != size:
        raise _refuse(ErrorCode.FRAME_SIZE_MISMATCH,
                      f"frame {index} inflates to {len(inflated)} bytes, not {size}")
    return inflated


def frames_of(columns: dict[str, np.ndarray]) -> Frames | None:
    """The frames a decoded body carries, with their sizes checked against the bytes; None
    when it carries none (its compressed fields come as plain columns)."""
    data, sizes = columns.get(COMPRESSED_TENSOR), columns.get(COMPRESSED_SIZES_TENSOR)
    if data is None and sizes is None:
        return None
    if data is None or sizes is None:
        missing = COMPRESSED_TENSOR if data is None else COMPRESSED_SIZES_TENSOR
        raise _refuse(ErrorCode.INVALID_COMPRESSION,
                               f"compressed frames need both {COMPRESSED_TENSOR} and "
                               f"{COMPRESSED_SIZES_TENSOR}; {missing} is missing")
    if data.dtype != np.uint8 or data.ndim != 1:
        raise _refuse(ErrorCode.INVALID_COMPRESSION,
                               f"{COMPRESSED_TENSOR} must be one flat uint8 tensor")
    if sizes.dtype.kind not in "iu" or sizes.ndim != 1 or (sizes < 1).any():
        raise _refuse(ErrorCode.INVALID_COMPRESSION,
                               f"{COMPRESSED_SIZES_TENSOR} must be one positive integer per "
                               "transition")
    if int(sizes.sum(dtype=np.int64)) != len(data):
        raise _refuse(ErrorCode.INVALID_COMPRESSION,
                               f"{COMPRESSED_SIZES_TENSOR} add up to {int(sizes.sum())} bytes; "
                               f"{COMPRESSED_TENSOR} holds {len(data)}")
    return Frames(data.tobytes(), sizes.astype(np.uint32))
