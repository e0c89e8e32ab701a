"""The figures of one run: every repetition, and the medians quoted from them."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from replay_service.benchmarks.suite.plan import Case, Config, Subject
from replay_service.benchmarks.suite.prioritized import PriorityRow

__all__ = ["DISTURBED_CORES", "Measurement", "Memory", "Repetition", "Results"]

DISTURBED_CORES = 0.3
"""CPU that processes other than the bench's used meanwhile, in cores, above which a
repetition counts as disturbed."""


@dataclass
class Repetition:
    rate: float
    """Transitions per second, all clients together."""
    p50_ms: float
    p99_ms: float
    ops: int
    transitions: int
    window_s: float
    service_cpu_s: float | None
    redis_cpu_s: float
    client_cpu_s: float
    foreign_cores: float
    """CPU used by processes outside the bench during the window, in cores."""
    load: float
    redis_commands: dict[str, dict[str, float]] = field(default_factory=dict)
    error: str | None = None

    @property
    def disturbed(self) -> bool:
        return self.foreign_cores > DISTURBED_CORES

    def per_1k(self, cpu_s: float | None) -> float | None:
        """Milliseconds of CPU per thousand transitions."""
        if cpu_s is None or not self.transitions:
            return None
        return cpu_s * 1e6 / self.transitions

    def per_request(self, cpu_s: float | None) -> float | None:
        """Microseconds of CPU per request (per call, for the SDK)."""
        if cpu_s is None or not self.ops:
            return None
        return cpu_s * 1e6 / self.ops


@dataclass
class Measurement:
    case: Case
    subject: Subject
    repetitions: list[Repetition] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        return next((rep.error for rep in self.repetitions if rep.error), None)

    @property
    def quoted(self) -> list[Repetition]:
        """The repetitions the medians come from: the undisturbed ones, if there are two."""
        good = [rep for rep in self.repetitions if not rep.error]
        calm = [rep for rep in good if not rep.disturbed]
        return calm if len(calm) >= 2 else good

    def spread(self) -> float:
        """Largest over smallest rate of the quoted repetitions."""
        rates = [rep.rate for rep in self.quoted]
        return max(rates) / min(rates) if len(rates) > 1 and min(rates) > 0 else 1.0

    @property
    def noisy(self) -> bool:
        """Disturbed repetitions had to be used, or the quoted ones disagree by over 30%."""
        return any(rep.disturbed for rep in self.quoted) or self.spread() > 1.3

    @property
    def worth_repeating(self) -> bool:
        """A repetition was disturbed, or they disagree by over 50%: on two shared cores a
        30% spread is common and more repetitions rarely settle it."""
        return any(rep.disturbed for rep in self.repetitions) or self.spread() > 1.5

    def median(self, name: str) -> float | None:
        values = [getattr(rep, name) for rep in self.quoted]
        values = [value for value in values if value is not None]
        return statistics.median(values) if values else None

    def median_per_1k(self, name: str) -> float | None:
        values = [rep.per_1k(getattr(rep, name)) for rep in self.quoted]
        present = [value for value in values if value is not None]
        return statistics.median(present) if present else None

    def median_per_request(self, name: str) -> float | None:
        values = [rep.per_request(getattr(rep, name)) for rep in self.quoted]
        present = [value for value in values if value is not None]
        return statistics.median(present) if present else None


@dataclass
class Memory:
    payload: str
    fill: int
    record_size: int
    service_bytes: float | None
    """Redis used_memory grown per transition, filled through the service."""
    raw_bytes: float | None
    """The same for the raw segment strings (raw-pipe and raw-lua read them)."""
    hash_bytes: float | None = None
    """The same for the raw hash, a field per slot (raw-hash)."""


@dataclass
class Results:
    config: Config
    environment: dict[str, Any]
    subjects: list[Subject]
    measurements: list[Measurement] = field(default_factory=list)
    memory: list[Memory] = field(default_factory=list)
    prioritized: list[PriorityRow] = field(default_factory=list)
    seconds: float = 0.0

    def find(self, subject: str, **case: Any) -> Measurement | None:
        for measurement in self.measurements:
            if measurement.subject.key == subject and all(
                    getattr(measurement.case, key) == value for key, value in case.items()):
                return measurement
        return None

    def to_json(self) -> dict[str, Any]:
        config = asdict(self.config)
        config["only"] = sorted(self.config.only)
        return {
            "config": config,
            "environment": self.environment,
            "seconds": self.seconds,
            "memory": [asdict(memory) for memory in self.memory],
            "prioritized": [asdict(row) for row in self.prioritized],
            "measurements": [{
                "case": asdict(m.case), "subject": asdict(m.subject),
                "median": {name: m.median(name) for name in ("rate", "p50_ms", "p99_ms")} | {
                    f"{name}_ms_per_1k": m.median_per_1k(name)
                    for name in ("service_cpu_s", "redis_cpu_s", "client_cpu_s")},
                "noisy": m.noisy,
                "repetitions": [asdict(rep) | {"disturbed": rep.disturbed}
                                for rep in m.repetitions],
            } for m in self.measurements],
        }
