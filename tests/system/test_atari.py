"""Pong through the whole system, briefly: `replay collect` steps real ALE frames into a
compressed buffer, `replay train` picks the Nature CNN and its Atari preset, trains a few
rounds on what it samples, and the collector acts with the numpy CNN it publishes."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from replay_service.cli.children import REPLAY
from replay_service.service.redis_server import RedisServer
from tests.support import REPO, ServiceProcess

LEARNING_STARTS = 256
BUDGET = 768  # two rounds of 64 gradient steps, one every 256 env steps


@pytest.fixture(scope="module")
def atari_service(redis_server: RedisServer, logs_dir: Path) -> Iterator[ServiceProcess]:
    """The service with its default limits: a collector's send of 256 Atari transitions
    inflates to 14 MB, over the 4 MiB body limit of the shared test service."""
    process = ServiceProcess(redis_server.url, logs_dir).start()
    yield process
    process.stop()


@pytest.mark.slow
def test_replay_train_on_pong_learns_from_compressed_frames_a_collector_stores(
        atari_service: ServiceProcess, buffer_name: str, tmp_path: Path) -> None:
    service = atari_service
    where = ["--url", service.url, "--buffer", buffer_name, "--env", "ALE/Pong-v5"]
    collector_log = tmp_path / "collector.log"
    with collector_log.open("wb") as out:
        collector = subprocess.Popen(
            [*REPLAY, "collect", *where, "--num-envs", "1", "--seed", "3",
             "--warmup-steps", str(LEARNING_STARTS), "--name", "pong"],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        # A small budget, buffer and batch; the rest is the Atari preset (one round every
        # 256 env steps; over so short a budget epsilon is soon small, so the collector
        # acts with the network).
        trainer = subprocess.run(
            [*REPLAY, "train", *where, "--total-env-steps", str(BUDGET), "--learning-starts",
             str(LEARNING_STARTS), "--capacity", "2000", "--batch-size", "8", "--device", "cpu",
             "--log-dir", str(tmp_path / "runs"), "--no-progress"],
            cwd=REPO, capture_output=True, text=True, timeout=240)
        assert collector.wait(60) == 0, collector_log.read_text()
    finally:
        if collector.poll() is None:
            collector.kill()
    output = trainer.stdout + trainer.stderr
    assert trainer.returncode == 1 and "not solved: " in output, output  # Pong takes millions
    steps = re.search(r"(\d+) env steps, (\d+) gradient steps", output)
    assert steps and int(steps[1]) >= BUDGET and int(steps[2]) >= 2 * 64, output

    schema = httpx.get(f"{service.url}/buffers/{buffer_name}").json()["schema"]["fields"]
    assert schema["obs"] == schema["next_obs"] == {
        "dtype": "uint8", "shape": [4, 84, 84], "allow_nonfinite": False, "compression": "zstd"}
    weights = re.findall(r"weights v(\d+)", collector_log.read_text())
    assert weights and int(weights[-1]) > 1, collector_log.read_text()
    assert "Traceback" not in collector_log.read_text()
