"""A collector: runs gymnasium environments and stores their experience in the service.

It acts epsilon-greedily with the newest weights the trainer published (random
until there are any), stores transitions in batches through the SDK, reports
finished episodes, and keeps pace with the trainer through the orders that ride
along with the weights (see `replay_service.client.collector.policy.CollectorOrders`).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from replay_service.client.collector.envs import is_image, make_vector_env
from replay_service.client.collector.nstep import NStepTransitions
from replay_service.client.collector.policy import (
    CollectorOrders,
    QPolicy,
    epsilon_greedy,
    q_policy,
)
from replay_service.client.errors import BufferNotFound, ReplayError
from replay_service.client.results import Episode, Weights
from replay_service.client.sync_client import ReplayClient
from replay_service.wire.schema import Schema

__all__ = ["CollectorConfig", "CollectorStats", "default_source", "run_collector",
           "transition_schema"]

log = logging.getLogger("replay.collector")


def default_source() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class CollectorConfig:
    url: str
    buffer: str
    env_id: str = "CartPole-v1"
    num_envs: int = 4
    """Environments stepped together (one gymnasium vector env)."""
    seed: int | None = None
    """Seeds the environments and exploration; None draws one, so scaled-out copies differ."""
    capacity: int | None = None
    """Create the buffer with this capacity if it does not exist. None (the default): wait
    for the trainer to create it, since the trainer chooses its capacity and sampler."""
    warmup_steps: int = 1_000
    """Transitions (in the whole buffer) to collect at random before any weights exist;
    then wait for the trainer's first weights."""
    n_step: int = 1
    """Store n-step transitions (with a `discount` field) instead of 1-step ones."""
    gamma: float = 0.99
    """Discount of the n-step sums (the trainer's gamma)."""
    steps_per_send: int = 256
    """Transitions gathered before each store; weights are checked after each."""
    max_env_steps: int | None = None
    """Stop after this many env steps of this collector (None: until the trainer says stop)."""
    source: str = field(default_factory=default_source)
    """Name under which episodes are reported."""
    api_key: str | None = field(default=None, repr=False)
    """The service's write key, if it has one."""
    poll_interval_s: float = 0.1
    """While held back by the trainer's pace, how often to ask for new weights (a bodiless
    304 while unchanged). Collectors work a round ahead, so this delay is hidden."""


@dataclass
class CollectorStats:
    env_steps: int = 0
    episodes: int = 0
    weights_version: int = 0
    waited_s: float = 0.0


def transition_schema(space: gym.Space[np.ndarray], n_step: int = 1) -> Schema:
    """The DQN schema for an environment's observation space; n-step transitions carry
    their own discount. Image observations are kept compressed: Atari frames shrink
    about 150x, which is what lets a buffer of them fit in Redis."""
    assert space.shape is not None and space.dtype is not None
    observation: dict[str, object] = {"dtype": str(np.dtype(space.dtype)),
                                      "shape": list(space.shape)}
    if is_image(space):
        observation["compression"] = "zstd"
    fields: dict[str, dict[str, object]] = {
        "obs": observation, "action": {"dtype": "int64"}, "reward": {"dtype": "float32"},
        "next_obs": observation, "done": {"dtype": "bool"}}
    if n_step > 1:
        fields["discount"] = {"dtype": "float32"}
    return Schema.model_validate({"fields": fields})


class Collector:
    def __init__(self, config: CollectorConfig) -> None:
        self.config = config
        self.stats = CollectorStats()
        self._envs = make_vector_env(config.env_id, config.num_envs)
        self._rng = np.random.default_rng(config.seed)
        self._client = ReplayClient(config.url, config.buffer, capacity=config.capacity,
                                    api_key=config.api_key, schema=transition_schema(
                                        self._envs.single_observation_space, config.n_step))
        self._n_step = (NStepTransitions(config.n_step, config.gamma, config.num_envs)
                        if config.n_step > 1 else None)
        self._n_actions = int(self._envs.single_action_space.n)  # type: ignore[attr-defined]
        self._weights: Weights | None = None
        self._policy: QPolicy | None = None
        self._orders = CollectorOrders(epsilon=1.0, insert_limit=config.warmup_steps,
                                       stop=False)
        self._total_inserted = 0
        self._returns = np.zeros(config.num_envs)
        self._lengths = np.zeros(config.num_envs, dtype=np.int64)

    def run(self) -> CollectorStats:
        if self.config.capacity is None:
            self._wait_for_buffer()
        seed = int(self._rng.integers(2**31))
        obs, _ = self._envs.reset(seed=seed)
        self._refresh_weights()
        try:
            while not self._finished():
                self._wait_for_pace()
                if self._orders.stop:
                    break
                obs = self._collect(obs)
        finally:
            self._client.close()
            self._envs.close()
        return self.stats

    def _wait_for_buffer(self) -> None:
        logged = False
        while True:
            try:
                self._client.info()
                return
            except BufferNotFound:
                if not logged:
                    log.info("collector %s: waiting for the trainer to create buffer %s",
                             self.config.source, self.config.buffer)
                    logged = True
                time.sleep(self.config.poll_interval_s * 5)

    def _finished(self) -> bool:
        budget = self.config.max_env_steps
        return self._orders.stop or (budget is not None and self.stats.env_steps >= budget)

    def _collect(self, obs: np.ndarray) -> np.ndarray:
        """Step the environments for one send's worth of transitions, then store them."""
        steps = max(1, self.config.steps_per_send // self.config.num_envs)
        parts: list[dict[str, np.ndarray]] = []
        finished: list[Episode] = []
        for _ in range(steps):
            actions = epsilon_greedy(self._policy, obs, self._orders.epsilon, self._n_actions,
                                     self._rng)
            next_obs, rewards, terminated, truncated, info = self._envs.step(actions)
            ended = terminated | truncated
            stored_next = next_obs.copy()
            if ended.any():
                for i in np.flatnonzero(ended):
                    stored_next[i] = info["final_obs"][i]
            # Only a real terminal state stops bootstrapping; a time limit does not.
            if self._n_step is None:
                parts.append({"obs": obs, "action": actions, "reward": rewards,
                              "next_obs": stored_next, "done": terminated})
            elif (ready := self._n_step.add(obs, actions, rewards, stored_next, terminated,
                                            truncated)) is not None:
                parts.append(ready)
            finished += self._track_episodes(rewards, ended)
            obs = next_obs
        self.stats.env_steps += steps * self.config.num_envs
        if parts:  # none while the n-step windows of a fresh start fill
            stored = self._client.store_batch({
                name: np.concatenate([part[name] for part in parts]) for name in parts[0]})
            self._total_inserted = stored.total_inserted
        if finished:
            self._client.record_episodes(finished)
            self.stats.episodes += len(finished)
        self._refresh_weights()
        return obs

    def _track_episodes(self, rewards: np.ndarray, ended: np.ndarray) -> list[Episode]:
        self._returns += rewards
        self._lengths += 1
        episodes = [Episode(float(self._returns[i]), int(self._lengths[i]), self.config.source)
                    for i in np.flatnonzero(ended)]
        self._returns[ended] = 0.0
        self._lengths[ended] = 0
        return episodes

    def _refresh_weights(self) -> None:
        try:
            newer = self._client.fetch_weights(self._weights)
        except BufferNotFound:  # not created yet: the first store creates it
            return
        if newer is None:
            return
        first, self._weights = self._weights is None, newer
        if first and CollectorOrders.from_metadata(newer.metadata).stop:
            # The last words of a finished run, still in a kept buffer: wait for the next
            # trainer's weights rather than stop before it starts.
            return
        self._policy = q_policy(newer.tensors)
        self._orders = CollectorOrders.from_metadata(newer.metadata)
        self.stats.weights_version = newer.version

    def _wait_for_pace(self) -> None:
        """Hold back while the buffer is as far ahead of the trainer as it allows.

        Other collectors insert too, so the total this one last saw may be behind: it
        then overshoots the limit by at most one send, which the next limit absorbs.
        """
        started = time.monotonic()
        while self._total_inserted >= self._orders.insert_limit and not self._orders.stop:
            time.sleep(self.config.poll_interval_s)
            self._refresh_weights()
        self.stats.waited_s += time.monotonic() - started


def run_collector(config: CollectorConfig) -> CollectorStats:
    """Collect until the trainer says stop (or `max_env_steps`); survive nothing silently:
    a service error ends the run with the service's message."""
    collector = Collector(config)
    log.info("collector %s: %s x%d into %s at %s", config.source, config.env_id,
             config.num_envs, config.buffer, config.url)
    try:
        stats = collector.run()
    except ReplayError as error:
        log.error("collector %s stopped: %s", config.source, error)
        raise
    log.info("collector %s done: %d env steps, %d episodes, weights v%d, %.1f s held back",
             config.source, stats.env_steps, stats.episodes, stats.weights_version,
             stats.waited_s)
    return stats
