"""Stable-Baselines3's replay buffer, kept in the replay service.

    from replay_service.integrations.sb3 import ServiceReplayBuffer

    model = DQN("MlpPolicy", env, replay_buffer_class=ServiceReplayBuffer,
                replay_buffer_kwargs={"url": "http://localhost:8000", "buffer": "cartpole"})
    model.learn(50_000)
    model.replay_buffer.close()  # sends what is still unsent

Any off-policy SB3 algorithm takes it (DQN, SAC, TD3, and sb3-contrib's QR-DQN),
with Box or Discrete actions and any number of envs. Needs the `sb3` extra.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer, ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from replay_service.client.results import Batch
from replay_service.client.sync_client import ReplayClient
from replay_service.integrations._sb3_rounds import RoundSource
from replay_service.integrations._sb3_schema import action_dtype, schema_for_spaces

__all__ = ["ServiceReplayBuffer"]


class ServiceReplayBuffer(ReplayBuffer):
    """An SB3 `ReplayBuffer` whose transitions live in a service buffer named `buffer`.

    SB3 passes the first six arguments; `url`, `buffer` and `api_key` (the
    service's write key, if it has one) come through `replay_buffer_kwargs`. The
    service buffer is created with SB3's capacity (`buffer_size` rounded down to a
    multiple of `n_envs`, as SB3 does) and a schema from the spaces in SB3's dtypes;
    one that exists with another capacity or schema raises Conflict here. An
    existing one is resumed: `pos`, `full` and `size()` start from what it holds.

    Semantics are SB3's: `add` takes what SB3's collector passes (the collector
    has already put `terminal_observation` in `next_obs` for finished episodes),
    with `handle_timeout_termination` a step whose `infos[i]["TimeLimit.truncated"]`
    is set samples with done 0, and `sample` draws uniformly over every stored
    transition of every env and normalises observations and rewards with `env`
    (VecNormalize) at sampling time. `pos`, `full` and `size()` count `add` calls
    (steps of all envs), as SB3's do.

    Staleness, the one difference: stores are batched (SDK `store_row`, sent per
    256 transitions or per second) and `sample` serves minibatches from a round of
    `num_batches` drawn in one request, the next round drawn in the background
    while the learner trains on this one. A round is drawn only after a flush, so
    it holds every transition added before it was drawn; it is used while at most
    `max_staleness` transitions have been added since, and replaced by a fresh one
    otherwise. So a minibatch may miss the latest `max_staleness` transitions,
    which SB3's buffer would include. The default, two rounds' worth of steps of
    all envs, lets a loop of one step and one update (SAC's, TD3's defaults) run
    without waiting, and makes a loop that collects longer between updates (DQN's
    train_freq) draw its first round of each phase fresh, one round trip per phase.
    `max_staleness=0` samples exactly what SB3 would, at a round trip per `add`.

    Call `close()` when training ends: transitions not yet sent are lost otherwise.
    """

    def __init__(self, buffer_size: int, observation_space: spaces.Space[Any],
                 action_space: spaces.Space[Any], device: th.device | str = "auto",
                 n_envs: int = 1, optimize_memory_usage: bool = False,
                 handle_timeout_termination: bool = True, *, url: str, buffer: str,
                 api_key: str | None = None, num_batches: int = 32,
                 max_staleness: int | None = None) -> None:
        if optimize_memory_usage:
            raise ValueError("optimize_memory_usage does not apply: the service stores obs and "
                             "next_obs of each transition, and nothing is kept in memory here")
        if num_batches < 1:
            raise ValueError(f"num_batches must be at least 1, not {num_batches}")
        # Not ReplayBuffer.__init__: it would allocate the arrays the service replaces.
        BaseBuffer.__init__(self, buffer_size, observation_space, action_space, device,
                            n_envs=n_envs)
        self.buffer_size = max(buffer_size // n_envs, 1)
        self.optimize_memory_usage = False
        self.handle_timeout_termination = handle_timeout_termination
        self.num_batches = num_batches
        self.max_staleness = (2 * num_batches * n_envs if max_staleness is None
                              else max_staleness)
        self._action_dtype = action_dtype(action_space)
        self.client = ReplayClient(url, buffer, capacity=self.buffer_size * n_envs,
                                   schema=schema_for_spaces(observation_space, action_space),
                                   api_key=api_key)
        self._added = 0
        self._rounds: RoundSource | None = None
        self._batch_size = 0
        try:
            created = self.client.create()
        except BaseException:
            self.client.close()  # a buffer refused at construction leaves no connection
            raise
        self._resume(created.total_inserted)

    def _resume(self, total_inserted: int) -> None:
        steps = total_inserted // self.n_envs
        self.full = steps >= self.buffer_size
        self.pos = steps % self.buffer_size

    def add(self, obs: np.ndarray, next_obs: np.ndarray, action: np.ndarray,
            reward: np.ndarray, done: np.ndarray, infos: list[dict[str, Any]]) -> None:
        """Queue one step of every env: `n_envs` transitions."""
        shape = (self.n_envs, *self.obs_shape)
        observations = np.asarray(obs).reshape(shape)
        next_observations = np.asarray(next_obs).reshape(shape)
        actions = np.asarray(action, dtype=self._action_dtype).reshape(
            (self.n_envs, self.action_dim))
        rewards = np.asarray(reward, dtype=np.float32).reshape(self.n_envs)
        dones = np.asarray(done, dtype=np.float32).reshape(self.n_envs)
        timeouts = np.zeros(self.n_envs, np.float32)
        if self.handle_timeout_termination:
            timeouts[:] = [info.get("TimeLimit.truncated", False) for info in infos]
        for env in range(self.n_envs):
            self.client.store_row({"obs": observations[env], "action": actions[env],
                                   "reward": rewards[env], "next_obs": next_observations[env],
                                   "done": dones[env], "timeout": timeouts[env]})
        self._added += self.n_envs
        self.pos += 1
        if self.pos == self.buffer_size:
            self.full = True
            self.pos = 0

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> ReplayBufferSamples:
        """`batch_size` transitions drawn uniformly, as tensors on the model's device."""
        if self._rounds is None or batch_size != self._batch_size:
            self._restart_rounds(batch_size)
        assert self._rounds is not None
        batch, position = self._rounds.next_minibatch()
        done = batch["done"][position] * (1 - batch["timeout"][position])
        data = (
            self._normalize_obs(batch["obs"][position], env),
            batch["action"][position],
            self._normalize_obs(batch["next_obs"][position], env),
            done.reshape(-1, 1),
            self._normalize_reward(batch["reward"][position].reshape(-1, 1), env),
        )
        return ReplayBufferSamples(*(self.to_torch(cast(np.ndarray, part)) for part in data))

    @property
    def fresh_draws(self) -> int:
        """Rounds drawn while `sample` waited, none drawn ahead being fresh enough."""
        return self._rounds.fresh_draws if self._rounds is not None else 0

    def _restart_rounds(self, batch_size: int) -> None:
        if self._rounds is not None:
            self._rounds.close()
        self._batch_size = batch_size
        self._rounds = RoundSource(lambda: self._draw(batch_size), lambda: self._added,
                                   self.max_staleness)

    def _draw(self, batch_size: int) -> Batch:
        self.client.flush()
        return self.client.sample(batch_size, num_batches=self.num_batches)

    def reset(self) -> None:
        """Empty the service buffer (it is created again on the next add)."""
        if self._rounds is not None:
            self._rounds.close()
            self._rounds = None
        self.client.delete()
        super().reset()

    def close(self) -> None:
        """Stop drawing rounds, send what is unsent and release the connection."""
        if self._rounds is not None:
            self._rounds.close()
            self._rounds = None
        self.client.close()
