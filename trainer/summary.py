"""`summary.json`: a finished run's configuration and result, for programs to read.

The report `replay train` and `replay demo` print is for people, and the TensorBoard
events need TensorBoard to read; a benchmark that runs the commands as a user would
(`replay_service.benchmarks.classic_control`) reads this file from the run's folder.
Floats that are not finite (the best return of a run that never evaluated, the
threshold of a game that is never solved) are written as null, so any JSON reader
takes the file.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the reference loop writes summaries too: no import cycle at run time
    from replay_service.trainer.config import TrainConfig
    from replay_service.trainer.reference import TrainResult

__all__ = ["SUMMARY_NAME", "write_summary"]

SUMMARY_NAME = "summary.json"

Json = None | bool | int | float | str | list["Json"] | dict[str, "Json"]


def _plain(value: object) -> Json:
    """`value` as JSON values: dataclasses as objects, tuples as lists, inf and nan as None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _plain(getattr(value, field.name))
                for field in dataclasses.fields(value) if field.repr}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"no JSON form for {type(value).__name__}")


def write_summary(result: TrainResult, config: TrainConfig, run_dir: str | Path) -> Path:
    """Write `{"config": ..., "result": ...}` to `run_dir`/summary.json and return its path.
    Fields kept out of the dataclasses' repr (the best weights) are left out."""
    path = Path(run_dir) / SUMMARY_NAME
    path.write_text(json.dumps({"config": _plain(config), "result": _plain(result)}, indent=2,
                               allow_nan=False) + "\n")
    return path
