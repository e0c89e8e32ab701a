"""Prioritized replay next to uniform: what the sum tree costs to insert into, to sample
from and to update, on the same CartPole-sized transitions, in one run.

For each fill, a uniform and a prioritized buffer (alpha 0.6) are filled with the
same transitions (the prioritized one with random priorities); then one client
times stores of 256, samples of 256 and of a trainer's round (128 x 64), and
priority updates of a round, through the service over HTTP. Medians of repeated
requests.

    python -m benchmarks.prioritized --fills 10000 1000000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

from cli.children import ServiceProcess
from client.codec import SAFETENSORS, decode_safetensors, encode_safetensors
from service.redis_server import RedisServer

ROUND = (64, 128)  # batch_size, num_batches: what the trainer fetches per round


def cartpole(count: int, rng: np.random.Generator, prioritized: bool) -> bytes:
    columns: dict[str, np.ndarray] = {
        "obs": rng.standard_normal((count, 4), dtype=np.float32),
        "action": rng.integers(0, 2, count), "reward": np.ones(count, np.float32),
        "next_obs": rng.standard_normal((count, 4), dtype=np.float32),
        "done": np.zeros(count, bool)}
    if prioritized:
        columns["_priority"] = rng.exponential(1.0, count)
    return encode_safetensors(columns)


def median_seconds(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(http: httpx.Client, fill: int, prioritized: bool, repeats: int
            ) -> dict[str, float]:
    rng = np.random.default_rng(0)
    name = f"bench-{'per' if prioritized else 'uniform'}-{uuid.uuid4().hex[:6]}"
    spec: dict[str, object] = {"capacity": fill}
    if prioritized:
        spec["prioritized"] = {"alpha": 0.6}
    http.put(f"/buffers/{name}", json=spec).raise_for_status()
    store_headers = {"content-type": SAFETENSORS}
    for _ in range(fill // 10_000):
        http.post(f"/buffers/{name}/transitions", content=cartpole(10_000, rng, prioritized),
                  headers=store_headers).raise_for_status()

    def sample(batch_size: int, num_batches: int = 1) -> dict[str, np.ndarray]:
        reply = http.get(f"/buffers/{name}/sample", headers={"accept": SAFETENSORS},
                         params={"batch_size": batch_size, "num_batches": num_batches})
        reply.raise_for_status()
        return decode_safetensors(reply.content).columns

    body = cartpole(256, rng, prioritized)
    results = {
        "store 256": 256 / median_seconds(lambda: http.post(
            f"/buffers/{name}/transitions", content=body, headers=store_headers
        ).raise_for_status(), repeats),
        "sample 256": 256 / median_seconds(lambda: sample(256), repeats),
        "sample a round (128 x 64)": ROUND[0] * ROUND[1] / median_seconds(
            lambda: sample(*ROUND), max(3, repeats // 10)),
    }
    if prioritized:
        drawn = sample(*ROUND)
        update = {"indices": drawn["_indices"].ravel().tolist(),
                  "inserted": drawn["_inserted"].ravel().tolist(),
                  "priorities": rng.exponential(1.0, ROUND[0] * ROUND[1]).tolist()}
        results["update a round's priorities"] = ROUND[0] * ROUND[1] / median_seconds(
            lambda: http.post(f"/buffers/{name}/priorities", json=update).raise_for_status(),
            max(3, repeats // 10))
    http.delete(f"/buffers/{name}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fills", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch, \
            RedisServer(Path(scratch) / "redis", appendfsync=None) as redis:
        service = ServiceProcess(redis.url, Path(scratch), max_capacity=10_000_000,
                                 max_sample=100_000).start()
        try:
            with httpx.Client(base_url=service.url, timeout=120) as http:
                for fill in args.fills:
                    uniform = measure(http, fill, False, args.repeats)
                    prioritized = measure(http, fill, True, args.repeats)
                    for operation, rate in prioritized.items():
                        rows.append((fill, operation, uniform.get(operation), rate))
        finally:
            service.stop()

    print(f"{'fill':>9}  {'operation':<30}{'uniform':>12}{'prioritized':>13}{'ratio':>7}"
          "   (transitions/s, medians)")
    for fill, operation, uniform_rate, per_rate in rows:
        uniform_text = f"{uniform_rate:>12,.0f}" if uniform_rate else f"{'-':>12}"
        ratio = f"{per_rate / uniform_rate:>7.2f}" if uniform_rate else f"{'':>7}"
        print(f"{fill:>9,}  {operation:<30}{uniform_text}{per_rate:>13,.0f}{ratio}")


if __name__ == "__main__":
    main()
