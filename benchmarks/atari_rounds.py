"""A DQN learner's round of Atari minibatches through the SDK: frames kept compressed
against the same frames kept plain, with the raw Redis ceiling for the compressed bytes.

One request per round (`sample(32, num_batches=64)`: the zoo's batch of 32, a round of 64
gradient steps), from a buffer of `--fill` real Pong transitions (random play, the
`replay bench` pong payload's pool) stored compressed, and from a buffer of the same
transitions stored plain. The ceiling is one HMGET of as many random slots from a hash
holding each slot's record and frame, the bytes the compressed buffer keeps. Medians of
`--repeats` alternating runs of `--rounds` rounds each.

    python -m replay_service.benchmarks.atari_rounds --fill 20000 --rounds 10 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import redis

from replay_service.benchmarks.suite.payloads import PONG
from replay_service.benchmarks.suite.raw_hash import HashRing
from replay_service.cli.children import ServiceProcess
from replay_service.client.sync_client import ReplayClient
from replay_service.service.redis_server import RedisServer
from replay_service.wire.schema import Schema

BATCH, ROUND = 32, 64


def plain(schema: Schema) -> Schema:
    return Schema.model_validate({"fields": {
        name: {**spec.model_dump(), "compression": None} for name, spec in schema.fields.items()}})


def rate(sample: Callable[[], object], rounds: int) -> float:
    """Transitions per second over `rounds` rounds."""
    started = time.perf_counter()
    for _ in range(rounds):
        sample()
    return rounds * BATCH * ROUND / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fill", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="atari-rounds-") as scratch, \
            RedisServer(Path(scratch) / "redis", appendfsync=None) as redis_server:
        service = ServiceProcess(redis_server.url, Path(scratch)).start()
        try:
            with ReplayClient(service.url, "compressed", capacity=args.fill,
                              schema=PONG.schema) as compressed, \
                    ReplayClient(service.url, "plain", capacity=args.fill,
                                 schema=plain(PONG.schema)) as uncompressed, \
                    redis.Redis.from_url(redis_server.url) as client:
                ceiling = HashRing(client, "ceiling", args.fill, PONG.schema.record_size)
                for first in range(0, args.fill, 256):
                    count = min(256, args.fill - first)
                    compressed.store_batch(PONG.columns(count, first % 1024), wait=False)
                    uncompressed.store_batch(PONG.columns(count, first % 1024), wait=False)
                    ceiling.store_each(PONG.stored(count, first % 1024))
                compressed.flush()
                uncompressed.flush()
                runs: dict[str, Callable[[], object]] = {
                    "compressed": lambda: compressed.sample(BATCH, num_batches=ROUND),
                    "plain": lambda: uncompressed.sample(BATCH, num_batches=ROUND),
                    "raw HMGET": lambda: ceiling.sample(rng.integers(0, args.fill,
                                                                     BATCH * ROUND)),
                }
                figures: dict[str, list[float]] = {name: [] for name in runs}
                for _ in range(args.repeats):
                    for name, sample in runs.items():
                        sample()  # warm
                        figures[name].append(rate(sample, args.rounds))
        finally:
            service.stop()
    medians = {name: statistics.median(values) for name, values in figures.items()}
    print(f"learner rounds of {ROUND} x {BATCH} Pong transitions, fill {args.fill:,}, "
          f"medians of {args.repeats} (transitions sampled per second)")
    for name, value in medians.items():
        print(f"  {name:<12}{value:>10,.0f}")
    print(f"  compressed / plain: {medians['compressed'] / medians['plain']:.2f}x; "
          f"compressed / raw ceiling: {medians['compressed'] / medians['raw HMGET']:.2f}")


if __name__ == "__main__":
    main()
