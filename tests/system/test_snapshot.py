"""A buffer exported to a file and imported into another Redis is the same buffer."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from replay_service import ReplayClient
from replay_service.cli.children import REPLAY
from replay_service.client.snapshot import export_buffer, import_buffer
from replay_service.service.redis_server import RedisServer
from replay_service.wire.codec import decode_safetensors, read_safetensors_metadata
from tests.support import REPO, ServiceProcess


def fill(client: ReplayClient, count: int) -> None:
    ids = np.arange(count, dtype=np.int64)
    client.store_batch({"id": ids, "frame": (ids[:, None, None] % 251).astype(np.uint8)
                        * np.ones((1, 3, 3), np.uint8), "done": ids % 7 == 0})


def test_export_then_import_into_another_redis_keeps_every_transition_in_order(
        service: ServiceProcess, buffer_name: str, tmp_path: Path) -> None:
    export = tmp_path / "backup.safetensors"
    with ReplayClient(service.url, buffer_name, capacity=500) as source:
        fill(source, 1_234)  # wrapped: holds the newest 500
        exported = export_buffer(source, export, chunk=128)
        info = source.info()
    assert exported.transitions == 500
    metadata = read_safetensors_metadata(export.read_bytes())
    assert metadata["format"] == "replay-buffer/1" and metadata["capacity"] == "500"

    with RedisServer(tmp_path / "other-redis", appendfsync=None) as other_redis:
        other = ServiceProcess(other_redis.url, tmp_path).start()
        try:
            with ReplayClient(other.url, "restored") as target:
                import_buffer(target, export, chunk=128)
                import_buffer(target, export, chunk=128)  # run again: stores nothing twice
                restored = target.info()
                held = target.read(restored.total_inserted - restored.size, restored.size)
        finally:
            other.stop()
    assert (restored.capacity, restored.schema, restored.size) == (500, info.schema, 500)
    assert restored.total_inserted == 500
    np.testing.assert_array_equal(held["id"], np.arange(734, 1_234))
    np.testing.assert_array_equal(held["frame"][:, 1, 1], np.arange(734, 1_234) % 251)
    np.testing.assert_array_equal(held["done"], np.arange(734, 1_234) % 7 == 0)


def test_replay_export_and_import_commands(service: ServiceProcess, buffer_name: str,
                                           tmp_path: Path) -> None:
    with ReplayClient(service.url, buffer_name, capacity=100) as source:
        fill(source, 60)
    export = tmp_path / "cli.safetensors"
    for command in (["export", str(export), "--url", service.url, "--buffer", buffer_name],
                    ["import", str(export), "--url", service.url, "--buffer",
                     f"{buffer_name}-copy", "--capacity", "200"]):
        done = subprocess.run([*REPLAY, *command], cwd=REPO,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
    assert "exported 60 transitions" in done.stdout or "imported 60 transitions" in done.stdout
    with ReplayClient(service.url, f"{buffer_name}-copy") as copy:
        assert (copy.info().capacity, len(copy)) == (200, 60)
    np.testing.assert_array_equal(decode_safetensors(export.read_bytes()).columns["id"],
                                  np.arange(60))
