"""summary.json: what a finished run writes for programs (the benchmarks) to read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from replay_service.trainer.config import TrainConfig
from replay_service.trainer.reference import EvalRecord, TrainResult, train
from replay_service.trainer.service_loop import ServiceTrainResult
from replay_service.trainer.summary import write_summary


def test_summary_holds_config_and_result_without_weights_or_infinities(tmp_path: Path) -> None:
    config = TrainConfig(env_id="ALE/Breakout-v5", solve_threshold=float("inf"))
    result = ServiceTrainResult(seed=3, solved=False, env_steps=512, gradient_steps=64,
                                wall_time_s=1.5, best_mean_return=float("-inf"),
                                best_env_steps=0, evals=[EvalRecord(512, 1.4, -21.0, -21.0)],
                                best_weights={"w": np.zeros(3)},
                                gradient_steps_per_s=40.0)
    path = write_summary(result, config, tmp_path)
    summary = json.loads(path.read_text())  # strict JSON: no Infinity
    assert summary["config"]["env_id"] == "ALE/Breakout-v5"
    assert summary["config"]["solve_threshold"] is None
    assert summary["config"]["net_arch"] == [256, 256]
    assert summary["result"]["best_mean_return"] is None
    assert summary["result"]["evals"] == [
        {"env_steps": 512, "wall_time_s": 1.4, "mean_return": -21.0, "min_return": -21.0}]
    assert summary["result"]["gradient_steps_per_s"] == 40.0
    assert "best_weights" not in summary["result"]


def test_a_run_stops_at_its_time_limit_after_a_last_evaluation(tmp_path: Path) -> None:
    # A budget it cannot use up: only the time limit, reached within the first round, ends it.
    config = TrainConfig(total_env_steps=1_000_000, max_minutes=1e-6, learning_starts=256,
                         gradient_steps=16, gradient_steps_per_transition=0.125,
                         eval_episodes=2, net_arch=(8,), log_dir=str(tmp_path))
    result: TrainResult = train(config)
    assert result.env_steps == 128 and not result.solved
    assert [record.env_steps for record in result.evals] == [128]
    assert result.run_dir is not None
    summary = json.loads((Path(result.run_dir) / "summary.json").read_text())
    assert summary["config"]["max_minutes"] == 1e-6
    assert summary["result"]["env_steps"] == 128
