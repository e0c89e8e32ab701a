"""What one run measures: the subjects, the cases, and the options that select them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from replay_service.benchmarks.suite.payloads import PAYLOADS, Payload

__all__ = ["RAW_FORMS", "Case", "Config", "Operation", "RawForm", "Subject", "applies", "cases",
           "payloads", "prioritized_fills", "selectors", "subjects"]

Operation = Literal["store", "sample"]
Kind = Literal["in-process", "redis", "http", "sdk"]
RawForm = Literal["pipeline", "script", "hash"]
RAW_FORMS: dict[str, RawForm] = {"raw-pipe": "pipeline", "raw-lua": "script",
                                 "raw-hash": "hash"}
"""The raw Redis subjects by key: the ceiling of a case is the fastest of them."""
STORE_BATCHES = (1, 32, 256)
SAMPLE_BATCHES = (1, 32, 256, 1024)


@dataclass(frozen=True)
class Subject:
    """Who stores and samples: a baseline, a raw Redis form, or the service."""

    key: str
    kind: Kind
    fmt: Literal["safetensors", "json"] | None = None
    workers: int | None = None
    """uvicorn workers of the service this subject talks to."""
    form: RawForm | None = None
    """How a raw Redis subject sends its commands."""

    @property
    def tags(self) -> set[str]:
        tags = {self.key, self.kind}
        if self.fmt:
            tags.add(self.fmt)
        if self.kind in ("http", "sdk"):
            tags.add("service")
        return tags


@dataclass(frozen=True)
class Case:
    op: Operation
    payload: str
    batch: int
    clients: int
    fill: int | None = None
    """Transitions the sampled buffer holds; stores go into the payload's first fill."""

    @property
    def label(self) -> str:
        fill = f" fill {self.fill:>9,}" if self.fill is not None else ""
        return f"{self.payload} {self.op} batch {self.batch:>4}{fill} clients {self.clients}"


@dataclass(frozen=True)
class Config:
    seconds: float = 1.0
    """Length of one repetition of one measurement."""
    repeats: int = 3
    extra_repeats: int = 2
    """Repetitions added to a measurement whose repetitions disagree or were disturbed."""
    workers: int = 2
    """The N of the N-worker service (the other has one)."""
    clients: tuple[int, ...] = (1, 4)
    scale: float = 1.0
    """Multiplies every fill: the smoke test runs with a tiny one."""
    only: frozenset[str] = field(default_factory=frozenset)
    quick: bool = False

    def wants(self, **tags: set[str]) -> bool:
        """Whether `--only` keeps something with these tags (by dimension: payload,
        operation, subject); a dimension `--only` names nothing of keeps everything."""
        known = selectors(self.workers)
        for dimension, words in tags.items():
            chosen = self.only & known[dimension]
            if chosen and not chosen & words:
                return False
        return True

    def fill(self, nominal: int) -> int:
        return max(1, round(nominal * self.scale))


def selectors(workers: int) -> dict[str, frozenset[str]]:
    """The words `--only` knows, by dimension; subjects by kind, format or column name."""
    keys = {"in-proc", "sdk-1w", *RAW_FORMS} | {f"{fmt}-{count}w" for fmt in ("st", "json")
                                     for count in {1, workers}}
    return {"payload": frozenset(PAYLOADS),
            "operation": frozenset({"store", "sample", "prioritized"}),
            "subject": frozenset({"in-process", "redis", "http", "sdk", "service", "json",
                                  "safetensors"} | keys)}


def subjects(config: Config) -> list[Subject]:
    """The subjects, in table order."""
    every = [Subject("in-proc", "in-process"),
             *(Subject(key, "redis", form=form) for key, form in RAW_FORMS.items())]
    for workers in sorted({1, config.workers}):
        every += [Subject(f"st-{workers}w", "http", "safetensors", workers),
                  Subject(f"json-{workers}w", "http", "json", workers)]
    every.append(Subject("sdk-1w", "sdk", "safetensors", 1))
    if config.quick:  # the N-worker service in JSON tells little the others do not
        every = [s for s in every if not (s.fmt == "json" and s.workers != 1)]
    return [subject for subject in every if config.wants(subject=subject.tags)]


def payloads(config: Config) -> list[Payload]:
    """Those `--only` keeps and this machine can make (Pong's frames need ale-py)."""
    return [payload for name, payload in PAYLOADS.items()
            if config.wants(payload={name}) and payload.available]


def cases(config: Config, payload: Payload) -> Iterator[Case]:
    """Stores first (into the first fill), then samples at each fill."""
    def counts(batch: int) -> tuple[int, ...]:
        """Quick mode runs concurrent clients at batch 256 only (the targets' batch)."""
        if config.quick and batch != 256:
            return tuple(count for count in config.clients if count == 1) or config.clients[:1]
        return config.clients

    if config.wants(payload={payload.name}, operation={"store"}):
        for batch in STORE_BATCHES:
            for clients in counts(batch):
                yield Case("store", payload.name, batch, clients)
    if config.wants(payload={payload.name}, operation={"sample"}):
        for nominal in payload.fills:
            for batch in SAMPLE_BATCHES:
                for clients in counts(batch):
                    yield Case("sample", payload.name, batch, clients, config.fill(nominal))


def prioritized_fills(config: Config) -> list[int]:
    """The CartPole fills at which prioritized replay is timed next to uniform (the 1-worker
    service over HTTP, safetensors); none if `--only` leaves that out."""
    if not config.wants(payload={"cartpole"}, operation={"prioritized"},
                        subject={"service", "http", "safetensors", "st-1w"}):
        return []
    nominal = PAYLOADS["cartpole"].fills[:1] if config.quick else PAYLOADS["cartpole"].fills
    return [config.fill(fill) for fill in nominal]


def applies(subject: Subject, case: Case, payload: Payload, config: Config) -> bool:
    """In-process is one process; a compressed payload's raw ceiling is the hash; JSON stops
    at the payload's largest JSON batch (quick mode: at the CartPole payload)."""
    if subject.kind == "in-process" and case.clients != 1:
        return False
    if payload.compressed and subject.form in ("pipeline", "script"):
        return False  # fixed-width strings cannot hold frames of varying size
    if subject.fmt != "json":
        return True
    return case.batch <= payload.json_max_batch and not (
        config.quick and payload.json_max_batch < SAMPLE_BATCHES[-1])
