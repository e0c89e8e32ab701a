"""Export a buffer to a file and import it again: for backups, and for moving a buffer
from one Redis (or service) to another.

The file is safetensors: one tensor per field holding the transitions oldest first,
and in `__metadata__` the format, the schema and the capacity. Any safetensors reader
opens it; nothing in it can run code. A compressed buffer's file keeps its frames as
the service does (tensors `_compressed` and `_compressed_sizes`, see wire/frames.py, in
place of the compressed fields) and says so in `compressed`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replay_service.client.errors import Conflict, ReplayError
from replay_service.client.sync_client import ReplayClient
from replay_service.wire import frames as compression
from replay_service.wire.codec import (
    decode_safetensors,
    encode_safetensors,
    read_safetensors_metadata,
)
from replay_service.wire.frames import COMPRESSED_SIZES_TENSOR, COMPRESSED_TENSOR
from replay_service.wire.schema import Schema

__all__ = ["SnapshotSummary", "export_buffer", "import_buffer"]

FORMAT = "replay-buffer/1"
CHUNK = 50_000
CHUNK_BYTES = 64 * 1024 * 1024
"""Inflated bytes per request at most: 1,188 Atari transitions, 50,000 CartPole ones."""


@dataclass(frozen=True)
class SnapshotSummary:
    transitions: int
    capacity: int
    schema: Schema


def export_buffer(client: ReplayClient, path: Path, chunk: int = CHUNK) -> SnapshotSummary:
    """Write every transition the buffer holds, oldest first, to `path` (a sharded
    buffer's shard after shard, each oldest first).

    The export is consistent: it reads the transitions held when it started, and
    fails (Conflict) rather than mix in newer ones if writers overwrite them meanwhile.
    """
    info = client.info()
    if info.schema is None:
        raise ReplayError(f"buffer '{info.name}' has no schema yet: nothing to export")
    compressed = info.schema.frame_dtype is not None
    empty = _empty_columns(info.schema)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in empty}
    shards = enumerate(info.per_shard) if info.per_shard else [(None, info)]
    for shard, counters in shards:
        for first in range(counters.total_inserted - counters.size, counters.total_inserted,
                           chunk):
            try:
                batch = client.read(first, min(chunk, counters.total_inserted - first),
                                    inflate=not compressed, shard=shard)
            except Conflict as error:
                raise ReplayError(f"the buffer moved on while it was exported ({error}); "
                                  "export again with the writers paused") from error
            for name in parts:
                parts[name].append(batch[name])
    columns = {name: np.concatenate(values) if values else empty[name]
               for name, values in parts.items()}
    metadata = {"format": FORMAT, "schema": info.schema.canonical_json(),
                "capacity": str(info.capacity), "buffer": info.name,
                "total_inserted": str(info.total_inserted), "shards": str(info.shards),
                "compressed": "zstd frames" if compressed else "no"}
    path.write_bytes(encode_safetensors(columns, metadata))
    return SnapshotSummary(info.size, info.capacity, info.schema)


def import_buffer(client: ReplayClient, path: Path, *, capacity: int | None = None,
                  shards: int | None = None, chunk: int = CHUNK) -> SnapshotSummary:
    """Create the buffer with the file's schema (and its capacity and shards, unless
    given) and store the file's transitions in order.

    Each chunk's idempotency key derives from the file's contents, so an import
    interrupted and run again stores nothing twice.
    """
    body = path.read_bytes()
    metadata = read_safetensors_metadata(body)
    if metadata.get("format") != FORMAT:
        raise ReplayError(f"{path} is not a buffer export (format {metadata.get('format')!r}, "
                          f"expected {FORMAT!r})")
    schema = Schema.model_validate_json(metadata["schema"])
    columns = dict(decode_safetensors(body).columns)
    frames = compression.frames_of(columns)
    plain = {name: column for name, column in columns.items()
             if name not in (COMPRESSED_TENSOR, COMPRESSED_SIZES_TENSOR)}
    capacity = capacity or int(metadata["capacity"])
    client.create(capacity, schema, shards or int(metadata.get("shards", 1)))
    count = len(frames) if frames is not None else len(next(iter(plain.values())))
    chunk = min(chunk, max(1, CHUNK_BYTES // schema.transition_size))
    digest = hashlib.blake2b(body, digest_size=12).hexdigest()
    for index, first in enumerate(range(0, count, chunk)):
        part = {name: column[first:first + chunk] for name, column in plain.items()}
        if frames is not None:  # inflated a chunk at a time; the SDK compresses them again
            part.update(compression.decompress(schema, frames.slice(first, first + chunk)))
        client.store_batch(part, idempotency_key=f"import-{digest}-{index}")
    return SnapshotSummary(count, capacity, schema)


def _empty_columns(schema: Schema) -> dict[str, np.ndarray]:
    """The file's tensors for a buffer holding nothing: one per field kept plain, and the
    frames of the compressed ones."""
    columns = {name: np.zeros((0, *spec.shape), spec.numpy_dtype)
               for name, spec in schema.fields.items() if spec.compression is None}
    if schema.frame_dtype is not None:
        columns[COMPRESSED_TENSOR] = np.zeros(0, np.uint8)
        columns[COMPRESSED_SIZES_TENSOR] = np.zeros(0, np.uint32)
    return columns

