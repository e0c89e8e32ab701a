"""Export a buffer to a file and import it again: for backups, and for moving a buffer
from one Redis (or service) to another.

The file is safetensors: one tensor per field holding the transitions oldest first,
and in `__metadata__` the format, the schema and the capacity. Any safetensors reader
opens it; nothing in it can run code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replay_service.client.errors import Conflict, ReplayError
from replay_service.client.sync_client import ReplayClient
from replay_service.wire.codec import (
    decode_safetensors,
    encode_safetensors,
    read_safetensors_metadata,
)
from replay_service.wire.schema import Schema

__all__ = ["SnapshotSummary", "export_buffer", "import_buffer"]

FORMAT = "replay-buffer/1"
CHUNK = 50_000


@dataclass(frozen=True)
class SnapshotSummary:
    transitions: int
    capacity: int
    schema: Schema


def export_buffer(client: ReplayClient, path: Path, chunk: int = CHUNK) -> SnapshotSummary:
    """Write every transition the buffer holds, oldest first, to `path`.

    The export is consistent: it reads the transitions held when it started, and
    fails (Conflict) rather than mix in newer ones if writers overwrite them meanwhile.
    """
    info = client.info()
    if info.schema is None:
        raise ReplayError(f"buffer '{info.name}' has no schema yet: nothing to export")
    oldest = info.total_inserted - info.size
    parts: dict[str, list[np.ndarray]] = {name: [] for name in info.schema.fields}
    for first in range(oldest, info.total_inserted, chunk):
        try:
            batch = client.read(first, min(chunk, info.total_inserted - first))
        except Conflict as error:
            raise ReplayError(f"the buffer moved on while it was exported ({error}); "
                              "export again with the writers paused") from error
        for name in parts:
            parts[name].append(batch[name])
    columns = {name: np.concatenate(values) if values else
               np.zeros((0, *spec.shape), spec.numpy_dtype)
               for (name, values), spec in zip(parts.items(), info.schema.fields.values(),
                                                strict=True)}
    metadata = {"format": FORMAT, "schema": info.schema.canonical_json(),
                "capacity": str(info.capacity), "buffer": info.name,
                "total_inserted": str(info.total_inserted)}
    path.write_bytes(encode_safetensors(columns, metadata))
    return SnapshotSummary(info.size, info.capacity, info.schema)


def import_buffer(client: ReplayClient, path: Path, *, capacity: int | None = None,
                  chunk: int = CHUNK) -> SnapshotSummary:
    """Create the buffer with the file's schema (and its capacity, unless given) and store
    the file's transitions in order.

    Each chunk's idempotency key derives from the file's contents, so an import
    interrupted and run again stores nothing twice.
    """
    body = path.read_bytes()
    metadata = read_safetensors_metadata(body)
    if metadata.get("format") != FORMAT:
        raise ReplayError(f"{path} is not a buffer export (format {metadata.get('format')!r}, "
                          f"expected {FORMAT!r})")
    schema = Schema.model_validate_json(metadata["schema"])
    columns = decode_safetensors(body).columns
    capacity = capacity or int(metadata["capacity"])
    client.create(capacity, schema)
    count = len(next(iter(columns.values())))
    digest = hashlib.blake2b(body, digest_size=12).hexdigest()
    for index, first in enumerate(range(0, count, chunk)):
        part = {name: column[first:first + chunk] for name, column in columns.items()}
        client.store_batch(part, idempotency_key=f"import-{digest}-{index}")
    return SnapshotSummary(count, capacity, schema)
