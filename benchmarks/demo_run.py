"""`replay demo` run as a user runs it, in a child process, and the summary.json its
trainer writes (`replay_service.trainer.summary`).

The learning benchmarks go through the command rather than call the trainer, so what
they report is what `replay demo` does: its presets, its collectors, its service.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replay_service.cli.children import REPLAY
from replay_service.trainer.summary import SUMMARY_NAME

__all__ = ["DemoRun", "run_demo"]


@dataclass(frozen=True)
class DemoRun:
    exit_code: int
    """0: solved; 1: not solved, or failed (then `summary` is None)."""
    wall_s: float
    """Wall time of the whole command: the stack's start and stop included."""
    log: Path
    """The command's output."""
    summary: dict[str, Any] | None
    """The run's summary.json; None when the run ended without one (it failed)."""

    def log_tail(self, chars: int = 2_000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def run_demo(options: list[str], log_dir: Path) -> DemoRun:
    """`replay demo OPTIONS` with its logs, run folder and output in `log_dir`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / "demo.log"
    began = time.time()
    started = time.perf_counter()
    with log.open("ab") as output:
        exit_code = subprocess.run(
            [*REPLAY, "demo", *options, "--log-dir", str(log_dir), "--no-progress"],
            stdout=output, stderr=subprocess.STDOUT, check=False).returncode
    wall_s = time.perf_counter() - started
    # This run's summary: a folder used before may hold older ones.
    fresh = [path for path in log_dir.glob(f"*__service__*/{SUMMARY_NAME}")
             if path.stat().st_mtime >= began]
    summary = json.loads(max(fresh, key=lambda path: path.stat().st_mtime).read_text()
                         ) if fresh else None
    return DemoRun(exit_code, wall_s, log, summary)
