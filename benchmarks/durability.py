"""What durability costs: store throughput with Redis's append-only file off, fsynced
every second, and fsynced on every write, side by side in one run.

One client stores CartPole-sized transitions through the service (safetensors, with
idempotency keys, as the SDK sends them) for `--seconds` per measurement; the three
Redis settings take turns, `--repeats` times each, and the medians are compared.

    python -m replay_service.benchmarks.durability --seconds 3 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Literal

import httpx
import numpy as np

from replay_service.cli.children import ServiceProcess
from replay_service.service.redis_server import RedisServer
from replay_service.wire.codec import SAFETENSORS, encode_safetensors

Fsync = Literal["always", "everysec"] | None
SETTINGS: list[tuple[str, Fsync]] = [("append-only file off", None),
                                     ("appendfsync everysec", "everysec"),
                                     ("appendfsync always", "always")]


def cartpole_body(count: int) -> bytes:
    rng = np.random.default_rng(0)
    return encode_safetensors({
        "obs": rng.standard_normal((count, 4), dtype=np.float32),
        "action": rng.integers(0, 2, count), "reward": np.ones(count, np.float32),
        "next_obs": rng.standard_normal((count, 4), dtype=np.float32),
        "done": np.zeros(count, bool)})


def stores_per_second(url: str, batch: int, seconds: float) -> float:
    """Transitions stored per second by one client sending batches back to back."""
    body = cartpole_body(batch)
    name = f"bench-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=url, timeout=30) as http:
        http.put(f"/buffers/{name}", json={"capacity": 1_000_000}).raise_for_status()
        stored = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            reply = http.post(f"/buffers/{name}/transitions", content=body, headers={
                "content-type": SAFETENSORS, "idempotency-key": uuid.uuid4().hex})
            reply.raise_for_status()
            stored += batch
        http.delete(f"/buffers/{name}")
    return stored / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 256])
    args = parser.parse_args()
    rates: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.repeats):
            for label, fsync in SETTINGS:
                with RedisServer(Path(scratch) / label.replace(" ", "-"),
                                 appendfsync=fsync) as redis:
                    service = ServiceProcess(redis.url, Path(scratch)).start()
                    try:
                        for batch in args.batches:
                            rates.setdefault((label, batch), []).append(
                                stores_per_second(service.url, batch, args.seconds))
                    finally:
                        service.stop()

    print(f"{'Redis persistence':<24}{'batch':>7}{'transitions/s (median)':>26}"
          f"{'vs off':>9}")
    for batch in args.batches:
        baseline = statistics.median(rates[(SETTINGS[0][0], batch)])
        for label, _ in SETTINGS:
            median = statistics.median(rates[(label, batch)])
            print(f"{label:<24}{batch:>7}{median:>26,.0f}{median / baseline:>9.2f}")


if __name__ == "__main__":
    main()
