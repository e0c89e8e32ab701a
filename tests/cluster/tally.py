"""The failover figures of a run, printed in pytest's terminal summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["FAILOVERS"]


@dataclass
class FailoverTally:
    rows: list[dict[str, Any]] = field(default_factory=list)

    def record(self, **figures: Any) -> None:
        self.rows.append(figures)

    def lines(self) -> list[str]:
        return [", ".join(f"{key} {value}" for key, value in row.items()) for row in self.rows]


FAILOVERS = FailoverTally()
