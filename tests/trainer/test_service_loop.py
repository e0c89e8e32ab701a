"""The trainer fed by the service, when training fails: a real service whose buffer is
deleted under the running trainer, so both the fetch and the stop order fail."""

from __future__ import annotations

import traceback
from pathlib import Path

import httpx
import pytest

from replay_service.client.errors import ReplayError
from replay_service.trainer.config import TrainConfig
from replay_service.trainer.service_loop import ServiceTrainer
from tests.support import ServiceProcess


def test_a_failed_run_raises_its_own_error_and_still_closes_everything(
        service: ServiceProcess, buffer_name: str, tmp_path: Path) -> None:
    config = TrainConfig(total_env_steps=2_000, learning_starts=500, log_dir=str(tmp_path))
    deleted: list[int] = []

    def delete_the_buffer() -> None:
        """Called while the trainer waits for experience: the operator deletes the buffer."""
        if not deleted:
            httpx.delete(f"{service.url}/buffers/{buffer_name}").raise_for_status()
            deleted.append(1)

    trainer = ServiceTrainer(config, service.url, buffer_name, progress=False,
                             check_collectors=delete_the_buffer)
    with pytest.raises(ReplayError) as raised:
        trainer.run()

    assert deleted
    # The error that ended training is the fetch's, not the stop order's that failed after it.
    frames = [frame.name for frame in traceback.extract_tb(raised.value.__traceback__)]
    assert "_fetch_round" in frames and "_publish" not in frames, frames
    notes = getattr(raised.value, "__notes__", [])
    assert any("publishing the stop order failed too" in note for note in notes), notes
    with pytest.raises(ReplayError, match="closed"):
        trainer.client.size()
    assert trainer.writer is not None and trainer.writer.all_writers is None
