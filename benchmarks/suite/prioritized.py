"""Prioritized replay next to uniform: what the sum tree costs to insert into, to sample
from and to update, on the same CartPole transitions, in the same run.

At each fill a uniform and a prioritized buffer (alpha 0.6) are filled with the same
transitions (the prioritized one with random priorities); one client then times
stores of 256, samples of 256 and of a trainer's round (128 x 64), and the priority
update of a round, over HTTP with safetensors, against the 1-worker service. The two
buffers take turns, request by request, so a disturbance hits both.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import numpy as np

from replay_service.benchmarks.suite.replies import checked
from replay_service.wire.codec import SAFETENSORS, decode_safetensors, encode_safetensors

__all__ = ["PriorityRow", "measure"]

ROUND = (64, 128)
"""batch_size, num_batches: what the trainer fetches per round."""
_FILL_CHUNK = 10_000


@dataclass(frozen=True)
class PriorityRow:
    fill: int
    operation: str
    uniform: float | None
    """Transitions per second, median; None where uniform has no such operation."""
    prioritized: float


def measure(http: httpx.Client, fills: list[int], repeats: int,
            progress: Callable[[str], None]) -> list[PriorityRow]:
    rows: list[PriorityRow] = []
    for fill in fills:
        progress(f"prioritized vs uniform at fill {fill:,}: filling both buffers")
        buffers = {kind: _Buffer(http, f"bench-{kind}-{fill}", fill, kind == "prioritized")
                   for kind in ("uniform", "prioritized")}
        try:
            progress(f"prioritized vs uniform at fill {fill:,}: {repeats} requests each")
            timings = {kind: buffer.timings() for kind, buffer in buffers.items()}
            for index in range(repeats):
                for kind, buffer in buffers.items():
                    if index % 10 == 0 or index < 3:  # a round is 32x a sample: fewer
                        buffer.time_round(timings[kind])
                    buffer.time_small(timings[kind])
            for operation, prioritized in timings["prioritized"].items():
                uniform = timings["uniform"].get(operation)
                rows.append(PriorityRow(fill, operation,
                                        _rate(operation, uniform) if uniform else None,
                                        _rate(operation, prioritized)))
        finally:
            for buffer in buffers.values():
                http.delete(f"/buffers/{buffer.name}")
    return rows


_TRANSITIONS = {"store 256": 256, "sample 256": 256,
                "sample a round (128 x 64)": ROUND[0] * ROUND[1],
                "update a round's priorities": ROUND[0] * ROUND[1]}


def _rate(operation: str, seconds: list[float]) -> float:
    return _TRANSITIONS[operation] / statistics.median(seconds)


class _Buffer:
    def __init__(self, http: httpx.Client, name: str, fill: int, prioritized: bool) -> None:
        self.http, self.name, self.prioritized = http, name, prioritized
        self.rng = np.random.default_rng(0)
        spec: dict[str, object] = {"capacity": fill}
        if prioritized:
            spec["prioritized"] = {"alpha": 0.6}
        http.delete(f"/buffers/{name}")
        checked(http.put(f"/buffers/{name}", json=spec))
        for start in range(0, fill, _FILL_CHUNK):
            self._store(self._body(min(_FILL_CHUNK, fill - start)))
        self.small_body = self._body(256)

    def timings(self) -> dict[str, list[float]]:
        names = list(_TRANSITIONS) if self.prioritized else list(_TRANSITIONS)[:3]
        return {name: [] for name in names}

    def time_small(self, timings: dict[str, list[float]]) -> None:
        timings["store 256"].append(_seconds(lambda: self._store(self.small_body)))
        timings["sample 256"].append(_seconds(lambda: self._sample(256, 1)))

    def time_round(self, timings: dict[str, list[float]]) -> None:
        timings["sample a round (128 x 64)"].append(_seconds(lambda: self._sample(*ROUND)))
        if self.prioritized:
            drawn = self._sample(*ROUND)
            update = {"indices": drawn["_indices"].ravel().tolist(),
                      "inserted": drawn["_inserted"].ravel().tolist(),
                      "priorities": self.rng.exponential(1.0, ROUND[0] * ROUND[1]).tolist()}
            timings["update a round's priorities"].append(_seconds(lambda: checked(self.http.post(
                f"/buffers/{self.name}/priorities", json=update))))

    def _body(self, count: int) -> bytes:
        rng = self.rng
        columns: dict[str, np.ndarray] = {
            "obs": rng.standard_normal((count, 4), dtype=np.float32),
            "action": rng.integers(0, 2, count), "reward": np.ones(count, np.float32),
            "next_obs": rng.standard_normal((count, 4), dtype=np.float32),
            "done": np.zeros(count, bool)}
        if self.prioritized:
            columns["_priority"] = rng.exponential(1.0, count)
        return encode_safetensors(columns)

    def _store(self, body: bytes) -> None:
        checked(self.http.post(f"/buffers/{self.name}/transitions", content=body,
                           headers={"content-type": SAFETENSORS}))

    def _sample(self, batch_size: int, num_batches: int) -> dict[str, np.ndarray]:
        reply = checked(self.http.get(
            f"/buffers/{self.name}/sample", headers={"accept": SAFETENSORS},
            params={"batch_size": batch_size, "num_batches": num_batches}))
        return decode_safetensors(reply.content).columns


def _seconds(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start
