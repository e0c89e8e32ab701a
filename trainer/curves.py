"""The learning-curve PNG written at the end of a run."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in containers
import matplotlib.pyplot as plt  # noqa: E402


class Evaluation(Protocol):
    @property
    def env_steps(self) -> int: ...
    @property
    def mean_return(self) -> float: ...


def plot_learning_curve(evals: Sequence[Evaluation], episodes: Sequence[tuple[int, float]],
                        threshold: float, path: str | Path, *, title: str) -> None:
    """Training episode returns (dots) and greedy evaluation means (line) per env step."""
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    if episodes:
        steps, returns = zip(*episodes, strict=True)
        axes.scatter(steps, returns, s=4, alpha=0.3, color="tab:gray",
                     label="training episodes (epsilon-greedy)")
    if evals:
        axes.plot([e.env_steps for e in evals], [e.mean_return for e in evals], marker="o",
                  markersize=3, color="tab:blue", label="greedy evaluation (mean)")
    if math.isfinite(threshold):  # an infinite one: no return counts as solved
        axes.axhline(threshold, color="tab:green", linestyle="--", linewidth=1,
                     label=f"solved ({threshold:g})")
    axes.set_xlabel("environment steps")
    axes.set_ylabel("episode return")
    axes.set_title(title)
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
