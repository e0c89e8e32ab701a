"""What an Atari transition costs in Redis when its frames are compressed, on real frames.

For each game and player, `--steps` transitions of real play (standard preprocessing:
84x84 grayscale, frame skip 4, stacks of 4, channel-first) go through the SDK into a
compressed buffer of that capacity on a private Redis and service; Redis's used_memory
before and after gives the bytes per stored transition, beside the 56,469 bytes the
same transition takes uncompressed. Two players: random actions, and a scripted one
that follows the ball (read from the emulator's RAM), standing in for a trained agent:
its frames hold long rallies rather than quick misses. The last column prices storing
each frame once (the memory-optimised buffers of Dopamine and SB3): the newest frame of
each transition compressed alone, which a frame store would keep instead of a frame
pair.

    python -m replay_service.benchmarks.atari_memory --steps 20000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import redis
import zstandard

from replay_service.cli.children import ServiceProcess
from replay_service.client.collector.envs import make_env
from replay_service.client.sync_client import ReplayClient
from replay_service.service.redis_server import RedisServer
from replay_service.wire.frames import LEVEL, compress
from replay_service.wire.schema import Schema

Player = Callable[[gym.Env[np.ndarray, np.int64]], int]

# Emulator RAM addresses of the ball and the player's paddle (as the Atari research
# community mapped them; e.g. the AtariARI annotations).
_PONG_BALL_Y, _PONG_PADDLE_Y = 54, 51
_BREAKOUT_BALL_X, _BREAKOUT_PADDLE_X = 99, 72


def random_player(env: gym.Env[np.ndarray, np.int64]) -> int:
    return int(env.action_space.sample())


def ball_follower(env: gym.Env[np.ndarray, np.int64]) -> int:
    """Moves the paddle towards the ball; FIRE when the ball is not in play (Breakout)."""
    ram = env.unwrapped.ale.getRAM()  # type: ignore[attr-defined]
    game = env.unwrapped.spec.id if env.unwrapped.spec else ""
    if "Pong" in game:  # actions: NOOP FIRE RIGHT(up) LEFT(down) ...
        gap = int(ram[_PONG_BALL_Y]) - int(ram[_PONG_PADDLE_Y]) - 8
        return 0 if abs(gap) < 4 else (3 if gap > 0 else 2)
    ball, paddle = int(ram[_BREAKOUT_BALL_X]), int(ram[_BREAKOUT_PADDLE_X])
    if ball == 0:
        return 1
    gap = ball - paddle - 8  # actions: NOOP FIRE RIGHT LEFT
    return 0 if abs(gap) < 3 else (2 if gap > 0 else 3)


PLAYERS: dict[str, Player] = {"random": random_player, "follows the ball": ball_follower}


def transitions(game: str, player: Player, steps: int, seed: int
                ) -> Iterator[dict[str, np.ndarray]]:
    env = make_env(game)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    for _ in range(steps):
        action = player(env)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        yield {"obs": obs, "action": np.asarray(action, np.int64),
               "reward": np.asarray(reward, np.float32), "next_obs": next_obs,
               "done": np.asarray(terminated, np.bool_)}
        obs = env.reset()[0] if terminated or truncated else next_obs
    env.close()


def schema(shape: tuple[int, ...]) -> Schema:
    frames = {"dtype": "uint8", "shape": list(shape), "compression": "zstd"}
    return Schema.model_validate({"fields": {
        "obs": frames, "action": {"dtype": "int64"}, "reward": {"dtype": "float32"},
        "next_obs": frames, "done": {"dtype": "bool"}}})


def measure(url: str, client: redis.Redis, game: str, player: str, steps: int
            ) -> dict[str, float]:
    rows = list(transitions(game, PLAYERS[player], steps, seed=0))
    shape = rows[0]["obs"].shape
    columns = {name: np.stack([row[name] for row in rows]) for name in rows[0]}
    buffer = f"{game.split('/')[-1]}-{player.replace(' ', '-')}"
    before = _used_memory(client)
    with ReplayClient(url, buffer, capacity=steps, schema=schema(shape)) as B:
        for first in range(0, steps, 256):
            B.store_batch({name: column[first:first + 256] for name, column in columns.items()},
                          wait=False)
    used = (_used_memory(client) - before) / steps
    frames = compress(schema(shape), columns, steps)
    newest = zstandard.ZstdCompressor(level=LEVEL)
    raw = schema(shape).transition_size
    return {"redis": used, "raw": raw, "frame": float(statistics.median(frames.sizes.tolist())),
            "newest_frame": statistics.median(
                len(newest.compress(row["next_obs"][-1].tobytes())) for row in rows)}


def _used_memory(client: redis.Redis) -> int:
    """Once Redis's count stops moving (the SDK's last store lands, buffers shrink)."""
    reading = -1
    for _ in range(40):
        time.sleep(0.1)
        previous, reading = reading, int(client.info("memory")["used_memory"])
        if reading == previous:
            break
    return reading


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--games", default="ALE/Pong-v5,ALE/Breakout-v5")
    args = parser.parse_args()
    print("| game | player | bytes per transition in Redis | of raw | zstd frame (median) "
          "| newest frame alone (median) |\n|---|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory(prefix="atari-memory-") as scratch, \
            RedisServer(Path(scratch) / "redis", appendfsync=None) as redis_server:
        service = ServiceProcess(redis_server.url, Path(scratch)).start()
        try:
            with redis.Redis.from_url(redis_server.url) as client:
                for game in args.games.split(","):
                    for player in PLAYERS:
                        row = measure(service.url, client, game, player, args.steps)
                        print(f"| {game} | {player} | {row['redis']:,.0f} B | "
                              f"{row['raw'] / row['redis']:,.0f}x smaller | "
                              f"{row['frame']:,.0f} B | {row['newest_frame']:,.0f} B |",
                              flush=True)
        finally:
            service.stop()


if __name__ == "__main__":
    main()
