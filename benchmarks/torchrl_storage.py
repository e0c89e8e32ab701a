"""ServiceStorage beside TorchRL's own Redis-backed StoreStorage, on the same Redis in one
run: transitions per second extended and sampled through a TorchRL ReplayBuffer.

StoreStorage keeps each field straight in Redis (GETRANGE/SETRANGE per index);
ServiceStorage goes through the service over HTTP. One client, CartPole-sized
transitions, batches of `--batch`; each storage takes its turn `--repeats` times
for `--seconds` per measurement, and the medians are compared.

    python -m replay_service.benchmarks.torchrl_storage --seconds 3 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import torch
from tensordict import TensorDict
from torchrl.data import ReplayBuffer
from torchrl.data.replay_buffers.storages import Storage, StoreStorage

from replay_service.cli.children import ServiceProcess
from replay_service.integrations.torchrl import ServiceStorage, ServiceWriter
from replay_service.service.redis_server import RedisServer

CAPACITY = 1_000_000


def cartpole(count: int) -> TensorDict:
    return TensorDict({
        "observation": torch.randn(count, 4), "action": torch.randint(0, 2, (count,)),
        "next": {"observation": torch.randn(count, 4), "reward": torch.ones(count),
                 "done": torch.zeros(count, dtype=torch.bool)}}, batch_size=[count])


def rate(step: Callable[[], None], batch: int, seconds: float) -> float:
    """Transitions per second of `step`, one batch each, called back to back."""
    done = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        step()
        done += batch
    return done / elapsed


def measure(rb: ReplayBuffer, batch: int, seconds: float) -> tuple[float, float]:
    """(extend, sample) transitions per second; the buffer is filled by the extends."""
    data = cartpole(batch)
    extend = rate(lambda: rb.extend(data), batch, seconds)
    sample = rate(lambda: rb.sample(batch), batch, seconds)
    return extend, sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    rates: dict[str, list[tuple[float, float]]] = {"StoreStorage": [], "ServiceStorage": []}
    with tempfile.TemporaryDirectory() as scratch, \
            RedisServer(Path(scratch) / "redis", appendfsync=None) as redis:
        service = ServiceProcess(redis.url, Path(scratch)).start()
        try:
            for _ in range(args.repeats):
                store: Storage = StoreStorage(CAPACITY, host="127.0.0.1", port=redis.port)
                rates["StoreStorage"].append(
                    measure(ReplayBuffer(storage=store), args.batch, args.seconds))
                ours = ServiceStorage(CAPACITY, url=service.url,
                                      buffer=f"bench-{uuid.uuid4().hex[:8]}")
                try:
                    rb = ReplayBuffer(storage=ours, writer=ServiceWriter())
                    rates["ServiceStorage"].append(measure(rb, args.batch, args.seconds))
                    rb.empty()
                finally:
                    ours.close()
        finally:
            service.stop()

    print(f"one client, CartPole transitions, batches of {args.batch}, "
          f"medians of {args.repeats} x {args.seconds:g} s")
    print(f"{'storage':<16}{'extend/s':>12}{'sample/s':>12}{'extend vs':>11}{'sample vs':>11}")
    base = [statistics.median(r[i] for r in rates["StoreStorage"]) for i in (0, 1)]
    for name, measured in rates.items():
        medians = [statistics.median(r[i] for r in measured) for i in (0, 1)]
        print(f"{name:<16}{medians[0]:>12,.0f}{medians[1]:>12,.0f}"
              f"{medians[0] / base[0]:>11.2f}{medians[1] / base[1]:>11.2f}")


if __name__ == "__main__":
    main()
