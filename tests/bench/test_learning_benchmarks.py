"""The learning benchmarks' reading of runs and their reports, on made-up runs (the
runs themselves take minutes to hours: `benchmarks/classic_control.py`, `pong_cpu.py`)."""

from __future__ import annotations

from pathlib import Path

from replay_service.benchmarks.classic_control import Outcome, budget_of, summary_table
from replay_service.benchmarks.demo_run import DemoRun
from replay_service.benchmarks.markdown import table
from replay_service.benchmarks.pong_cpu import Evaluation, Side, report


def evals(*returns: float) -> list[dict[str, float]]:
    return [{"env_steps": 2_048 * (index + 1), "wall_time_s": 10.0 * index,
             "mean_return": value, "min_return": value} for index, value in enumerate(returns)]


def test_a_run_solved_after_a_failed_confirmation_reports_both_steps(tmp_path: Path) -> None:
    summary = {"config": {"solve_threshold": -100.0},
               "result": {"solved": True, "env_steps": 6_144, "gradient_steps": 6_144,
                          "wall_time_s": 30.0, "best_mean_return": -80.0,
                          "confirm_mean_return": -95.5, "evals": evals(-300, -99, -80)}}
    outcome = Outcome.of("Acrobot-v1", 1, 150_000, DemoRun(0, 42.0, tmp_path / "log", summary))
    assert (outcome.first_at_threshold, outcome.solved_at) == (4_096, 6_144)
    assert outcome.solved and outcome.confirm_mean_return == -95.5
    failed = Outcome.of("Acrobot-v1", 2, 150_000, DemoRun(1, 3.0, tmp_path / "log", None))
    assert failed.error is not None and not failed.solved
    assert "| Acrobot-v1 | 1 / 2 " in summary_table([outcome, failed])


def test_budgets_are_the_issues_or_the_presets_scaled() -> None:
    assert budget_of("Acrobot-v1", "issue", 1.0) == 150_000
    assert budget_of("Acrobot-v1", "preset", 0.5) == 50_000
    assert budget_of("CartPole-v1", "issue", 1.0) == 100_000  # no issue budget: the preset's


def test_the_pong_report_divides_service_by_sb3_whatever_the_order() -> None:
    sb3 = Side("sb3", "SB3", env_steps=1_000, gradient_steps=100, batch_size=32, train_s=10.0,
               wall_s=12.0, evals=[Evaluation(10.0, 1_000, -21.0)])
    service = Side("service", "service", env_steps=2_000, gradient_steps=300, batch_size=32,
                   train_s=10.0, wall_s=15.0)
    rows = {cells[0]: cells[1:] for cells in (
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in report([sb3, service]).splitlines())}
    assert rows["env frames/s"] == ["400.0", "800.0", "2.00"]
    assert rows["learner updates/s"] == ["10.0", "30.0", "3.00"]

def test_markdown_tables_pad_every_column() -> None:
    assert table(["a", "bb"], [[1, 2], ["long", 3]]).splitlines() == [
        "| a    | bb |", "|------|----|", "| 1    | 2  |", "| long | 3  |"]
