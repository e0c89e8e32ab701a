"""The reference DQN loop: everything in one process, synchronous, in the SB3/zoo style.

Collect a round of env steps with epsilon-greedy actions into a local ring buffer,
then train `gradient_steps` minibatches, then evaluate now and then; stop once the
greedy policy's mean return over the evaluation episodes reaches the threshold. It
is the yardstick for the distributed trainer: same learner, same hyperparameters,
no network in between.

    replay train --in-process --seed 0
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from replay_service.client.collector.envs import make_vector_env
from replay_service.trainer.config import TrainConfig
from replay_service.trainer.evaluation import evaluate, greedy_policy
from replay_service.trainer.learner import DQNLearner, resolve_device
from replay_service.trainer.local_buffer import LocalReplayBuffer
from replay_service.trainer.network import load_checkpoint, network_from_weights, save_checkpoint
from replay_service.trainer.schedule import epsilon_at
from replay_service.trainer.summary import write_summary

__all__ = ["EvalRecord", "TrainResult", "confirm", "eval_seed", "final_observations", "train"]

CHECKPOINT_NAME = "q_network.safetensors"


@dataclass(frozen=True)
class EvalRecord:
    env_steps: int
    wall_time_s: float
    mean_return: float
    min_return: float


@dataclass
class TrainResult:
    seed: int
    solved: bool
    env_steps: int
    """Env steps when training stopped: at the solving evaluation, or the budget."""
    gradient_steps: int
    wall_time_s: float
    best_mean_return: float
    best_env_steps: int
    evals: list[EvalRecord] = field(default_factory=list)
    run_dir: str | None = None
    checkpoint: str | None = None
    """The weights of the solving (else the best) evaluation, as safetensors."""
    best_weights: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    confirm_mean_return: float | None = None
    """Mean return of the checkpoint over `confirm_episodes` fresh greedy episodes."""


def final_observations(next_obs: np.ndarray, infos: dict[str, Any]) -> np.ndarray:
    """The observation each transition ended in, under SAME_STEP autoreset.

    Where a sub-environment's episode ended, step() already reset it and returned the
    new episode's first observation; the real last one is in infos["final_obs"].
    """
    ended = np.flatnonzero(infos.get("_final_obs", ()))
    if ended.size == 0:
        return next_obs
    real = next_obs.copy()
    for index in ended:
        real[index] = infos["final_obs"][index]
    return real


def eval_seed(run_seed: int, purpose: int, index: int) -> int:
    """First seed of an evaluation's episodes: never one of the training envs' seeds
    (run_seed + i), new for each evaluation (`index`) and for the confirmation (`purpose`)."""
    return 1_000_000 * (purpose + 1) + 10_000 * run_seed + 1_000 * index


def train(config: TrainConfig) -> TrainResult:
    """Train until solved or out of budget; returns the eval history and the best weights."""
    run_dir: Path | None = None
    writer: SummaryWriter | None = None
    if config.log_dir is not None:
        env = config.env_id.replace("/", "-")  # ALE/Pong-v5: one folder, not two
        run_name = f"{env}__reference__{config.seed}__{int(time.time())}"
        run_dir = Path(config.log_dir) / run_name
        writer = SummaryWriter(str(run_dir))
        table = "\n".join(f"|{key}|{value}|" for key, value in asdict(config).items())
        writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{table}")

    # Seeding: torch for the network's initial weights, one numpy generator for actions,
    # the buffer its own, and the training environments seed, seed + 1, ...
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    buffer = LocalReplayBuffer(config.buffer_size, seed=config.seed + 1)

    # Environments. SAME_STEP autoreset: a sub-env that ends is reset inside step(), which
    # returns the new episode's first observation and puts the last one in info["final_obs"].
    envs = make_vector_env(config.env_id, config.num_envs)
    obs_space, action_space = envs.single_observation_space, envs.single_action_space
    assert isinstance(obs_space, gym.spaces.Box) and isinstance(action_space, gym.spaces.Discrete)
    learner = DQNLearner(obs_space, int(action_space.n), config)

    result = TrainResult(seed=config.seed, solved=False, env_steps=0, gradient_steps=0,
                         wall_time_s=0.0, best_mean_return=-np.inf, best_env_steps=0,
                         run_dir=str(run_dir) if run_dir else None)
    obs, _ = envs.reset(seed=config.seed)
    episode_return = np.zeros(config.num_envs)
    env_steps = rounds = 0
    next_eval = config.eval_interval
    start = time.perf_counter()
    while True:
        # Collect one round of experience (random actions until learning starts, as in SB3).
        round_steps = min(config.env_steps_per_round, config.total_env_steps - env_steps)
        for _ in range(max(round_steps // config.num_envs, 1)):
            epsilon = 1.0 if env_steps < config.learning_starts else epsilon_at(config, env_steps)
            actions = learner.act(obs, epsilon, rng)
            next_obs, rewards, terminated, truncated, infos = envs.step(actions)
            # done = terminated only: a time-limit truncation still bootstraps from next_obs,
            # which is the episode's real last observation, not the reset one.
            buffer.add({"obs": obs, "action": actions, "reward": rewards.astype(np.float32),
                        "next_obs": final_observations(next_obs, infos), "done": terminated})
            episode_return += rewards
            for index in np.flatnonzero(terminated | truncated):
                if writer is not None:
                    writer.add_scalar("charts/episodic_return", episode_return[index], env_steps)
                episode_return[index] = 0.0
            obs = next_obs
            env_steps += config.num_envs

        # Train one round: a fresh target (see TrainConfig.target_sync_rounds), then
        # `gradient_steps` minibatches sampled at once.
        if env_steps > config.learning_starts:
            if rounds % config.target_sync_rounds == 0:
                learner.sync_target()
            metrics = learner.train_round(buffer.sample(config.batch_size, config.gradient_steps))
            rounds += 1
            if writer is not None:
                writer.add_scalar("losses/td_loss", metrics.loss, env_steps)
                writer.add_scalar("losses/q_values", metrics.mean_q, env_steps)
                writer.add_scalar("charts/epsilon", epsilon, env_steps)
                writer.add_scalar("charts/SPS", env_steps / (time.perf_counter() - start),
                                  env_steps)

        # Evaluate the greedy policy on its own environments; stop once solved, or at the
        # end of the budget (steps or time) after a last evaluation.
        out_of_budget = config.out_of_budget(env_steps, time.perf_counter() - start)
        if env_steps >= next_eval or out_of_budget:
            next_eval += config.eval_interval
            returns = evaluate(greedy_policy(learner.online), config.env_id,
                               config.eval_episodes, eval_seed(config.seed, 0, len(result.evals)))
            record = EvalRecord(env_steps, time.perf_counter() - start, float(returns.mean()),
                                float(returns.min()))
            result.evals.append(record)
            print(f"seed {config.seed} step {env_steps:6d} t {record.wall_time_s:6.1f}s "
                  f"eval {record.mean_return:6.1f} (min {record.min_return:5.1f})", flush=True)
            if writer is not None:
                writer.add_scalar("eval/mean_return", record.mean_return, env_steps)
            if record.mean_return > result.best_mean_return:
                result.best_mean_return, result.best_env_steps = record.mean_return, env_steps
                result.best_weights = learner.weights()
            if record.mean_return >= config.solve_threshold:
                result.solved = True
                break
        if out_of_budget:
            break

    result.env_steps, result.gradient_steps = env_steps, learner.gradient_steps
    result.wall_time_s = time.perf_counter() - start
    envs.close()
    if run_dir is not None and result.best_weights:
        result.checkpoint = str(run_dir / CHECKPOINT_NAME)
        save_checkpoint(network_from_weights(result.best_weights), result.checkpoint)
    if writer is not None:
        writer.close()
    if run_dir is not None:
        write_summary(result, config, run_dir)
    return result


def confirm(checkpoint: str | Path, config: TrainConfig) -> np.ndarray:
    """Returns of `confirm_episodes` fresh greedy episodes of a checkpoint loaded from disk."""
    network = load_checkpoint(checkpoint).to(resolve_device(config.device))
    return evaluate(greedy_policy(network), config.env_id, config.confirm_episodes,
                    eval_seed(config.seed, 1, 0))
