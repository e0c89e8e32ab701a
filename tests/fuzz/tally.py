"""What the fuzz suite did, counted as it runs and printed at the end of the session
(and written as JSON to $FUZZ_REPORT when that is set)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TALLY", "Tally"]


@dataclass
class Tally:
    requests: Counter[str] = field(default_factory=Counter)
    """Requests schemathesis generated and sent, by operation ("GET /buffers/{name}")."""
    statuses: Counter[int] = field(default_factory=Counter)
    """Statuses of those requests."""
    faults: Counter[str] = field(default_factory=Counter)
    """Requests built to be invalid, by source: schemathesis' negative mode and the
    hostile bodies of tests/fuzz/test_hostile_http.py."""
    examples: Counter[str] = field(default_factory=Counter)
    """Examples each hypothesis property ran (shrinking included)."""
    """Generated requests not sent because they would hit a known, unfixed bug."""
    transitions_checked: int = 0
    """Transitions compared byte for byte with what was stored before hostile requests."""
    transitions_lost: int = 0
    """Of those, how many were missing or changed."""
    state_checks: int = 0
    """Times a buffer's counters, schema, weights or episodes were compared after a request."""
    measurements: dict[str, float] = field(default_factory=dict)
    """Numbers worth reporting, e.g. the peak memory of a decode per body byte."""

    def is_empty(self) -> bool:
        return not (self.requests or self.faults or self.examples or self.state_checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "schemathesis_requests": sum(self.requests.values()),
            "schemathesis_requests_by_operation": dict(sorted(self.requests.items())),
            "statuses": {str(code): count for code, count in sorted(self.statuses.items())},
            "faults_injected": sum(self.faults.values()),
            "faults_by_source": dict(sorted(self.faults.items())),
            "hypothesis_examples": dict(sorted(self.examples.items())),
            "transitions_checked": self.transitions_checked,
            "transitions_lost": self.transitions_lost,
            "state_checks": self.state_checks,
            "measurements": dict(sorted(self.measurements.items())),
        }

    def lines(self) -> list[str]:
        data = self.as_dict()
        lines = [
            f"requests tried by schemathesis: {data['schemathesis_requests']} over "
            f"{len(self.requests)} method and path pairs; statuses {data['statuses']}",
            f"faults injected: {data['faults_injected']} {data['faults_by_source']}",
            f"transitions checked: {self.transitions_checked}, lost or changed: "
            f"{self.transitions_lost}; buffer states compared: {self.state_checks}",
            "hypothesis examples per property:",
            *(f"  {name}: {count}" for name, count in data["hypothesis_examples"].items()),
        ]
        if self.measurements:
            lines.append("measurements:")
            lines.extend(f"  {name}: {value:g}" for name, value in data["measurements"].items())
        lines.append("requests by operation:")
        lines.extend(f"  {name}: {count}"
                     for name, count in data["schemathesis_requests_by_operation"].items())
        return lines

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n")


TALLY = Tally()
