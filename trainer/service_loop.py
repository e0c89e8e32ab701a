"""The DQN trainer fed by the replay service: the learner half of an actor/learner loop.

Collectors (other processes) store experience in a buffer of the service; this
loop pulls a round of minibatches per HTTP request on a background thread,
trains on them, and publishes its weights after every round. The weights carry
the collectors' orders (`replay_service.client.collector.policy.CollectorOrders`): the
exploration rate,
and how far the buffer may run ahead of training. Collection of the next round
overlaps training of this one, which is where it can beat an in-process loop.

Round r trains once the buffer has received learning_starts + r * E transitions
(E = env_steps_per_round, 256 by default: 0.5 gradient steps per transition, as
in the zoo's settings), and collectors may insert up to one round beyond what
the finished rounds have paid for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from replay_service.client.collector.envs import make_env
from replay_service.client.collector.loop import transition_schema
from replay_service.client.collector.policy import CollectorOrders
from replay_service.client.results import Batch
from replay_service.client.sync_client import ReplayClient
from replay_service.trainer.config import TrainConfig
from replay_service.trainer.curves import plot_learning_curve
from replay_service.trainer.evaluation import evaluate, greedy_policy
from replay_service.trainer.learner import DQNLearner
from replay_service.trainer.network import load_checkpoint, save_checkpoint
from replay_service.trainer.prefetch import Prefetcher
from replay_service.trainer.reference import EvalRecord, TrainResult, eval_seed
from replay_service.trainer.schedule import epsilon_at
from replay_service.trainer.summary import write_summary
from replay_service.wire.schema import Prioritized

__all__ = ["ServiceTrainResult", "train_from_service"]

log = logging.getLogger("replay.trainer")

SOLVED_CHECKPOINT = "solved.safetensors"
BEST_CHECKPOINT = "best.safetensors"
# How often the prefetch thread asks whether a round's experience has arrived. It
# waits ahead of the learner, so this only needs to beat the length of a round.
_POLL_S = 0.025


class _Stopped(Exception):
    """The trainer is shutting down; a fetch waiting for data gives up."""


@dataclass
class ServiceTrainResult(TrainResult):
    sample_wait_share: float = 0.0
    """Share of the learning phase's wall time spent waiting for batches."""
    gradient_steps_per_s: float = 0.0
    """Gradient steps per second of the learning phase (evaluations included)."""
    curve: str | None = None
    """The learning-curve PNG."""


class ServiceTrainer:
    def __init__(self, config: TrainConfig, url: str, buffer: str, *, progress: bool = True,
                 check_collectors: Callable[[], None] | None = None,
                 api_key: str | None = None) -> None:
        self.config = config
        probe = make_env(config.env_id)  # the spaces collectors see, preprocessing included
        obs_space, action_space = probe.observation_space, probe.action_space
        probe.close()
        assert isinstance(obs_space, gym.spaces.Box), "this DQN takes Box observations"
        assert isinstance(action_space, gym.spaces.Discrete), "DQN needs discrete actions"
        torch.manual_seed(config.seed)
        self.learner = DQNLearner(obs_space, int(action_space.n), config)
        self.client = ReplayClient(
            url, buffer, capacity=config.buffer_size, shards=config.shards, api_key=api_key,
            schema=transition_schema(obs_space, config.n_step),
            prioritized=Prioritized(alpha=config.per_alpha) if config.prioritized else None)
        self._progress = progress
        self._check_collectors = check_collectors
        self._stopping = threading.Event()
        self._rounds_fetched = 0
        self._steps = 0
        """Transitions inserted since this run began: its env steps."""
        self._baseline = 0
        """The buffer's total_inserted when this run began (a kept buffer has a past)."""
        self._episodes_after = "0"
        self._recent_returns: list[float] = []
        self._episode_points: list[tuple[int, float]] = []
        # Priority updates go out on their own thread, in order, while the learner trains
        # on: a round's 8,192 updates cost the service tens of milliseconds.
        self._priority_sender = ThreadPoolExecutor(max_workers=1,
                                                   thread_name_prefix="replay-priorities")
        self._priority_update: Future[tuple[int, int]] | None = None
        self.run_dir = self._make_run_dir()
        self.writer = SummaryWriter(str(self.run_dir)) if self.run_dir else None

    def _make_run_dir(self) -> Path | None:
        if self.config.log_dir is None:
            return None
        env = self.config.env_id.replace("/", "-")  # ALE/Pong-v5: one folder, not two
        name = f"{env}__service__{self.config.seed}__{int(time.time())}"
        run_dir = Path(self.config.log_dir) / name
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir

    def run(self) -> ServiceTrainResult:
        """Train, then stop whether training succeeded or not: collectors waiting for
        their stop order, and an open client or writer, must not outlive a failed run."""
        try:
            result = self._train()
        except BaseException as error:
            self._stop(error)
            raise
        self._stop(None)
        self._finish(result)
        return result

    def _stop(self, training_error: BaseException | None) -> None:
        """Every step runs, even after one fails, so nothing stays open. A failure here
        never replaces the error that ended training: it is logged and noted on that
        error. After a training that succeeded, the first failure is raised, with the
        later ones noted on it."""
        steps: list[tuple[str, Callable[[], object]]] = [
            ("sending the last priorities", self._drain_priorities),
            ("publishing the stop order", lambda: self._publish(stop=True)),
            ("closing the replay client", self.client.close)]
        if self.writer:
            steps.append(("closing the TensorBoard writer", self.writer.close))
        first: Exception | None = None
        for what, step in steps:
            try:
                step()
            except Exception as error:
                kept = training_error or first
                if kept is None:
                    first = error
                    continue
                log.warning("%s failed while stopping", what, exc_info=error)
                kept.add_note(f"while stopping, {what} failed too: {error!r}")
        if first is not None:
            raise first

    def _drain_priorities(self) -> None:
        """Wait for the last round's priority update; raises if it failed, as an earlier
        round's update does at the next round."""
        self._priority_sender.shutdown(wait=True)
        if self._priority_update is not None:
            self._priority_update.result()

    def _train(self) -> ServiceTrainResult:
        config = self.config
        result = ServiceTrainResult(seed=config.seed, solved=False, env_steps=0,
                                    gradient_steps=0, wall_time_s=0.0,
                                    best_mean_return=-np.inf, best_env_steps=0,
                                    run_dir=str(self.run_dir) if self.run_dir else None)
        self._log_hyperparameters()
        self.client.create()
        self._baseline = self.client.size().total_inserted
        self._publish(stop=False)
        start = time.perf_counter()
        bar = tqdm(total=config.total_env_steps, unit="step", disable=not self._progress,
                   dynamic_ncols=True, desc="training")
        prefetcher = Prefetcher(self._fetch_round, depth=2, name="replay-prefetch")
        learning_started: float | None = None
        next_eval = config.learning_starts + config.eval_interval
        try:
            while True:
                batch = prefetcher.get()
                if learning_started is None:  # wait share counts from the first batch on
                    learning_started = time.perf_counter()
                    prefetcher.wait_s = 0.0
                rounds = self.learner.gradient_steps // config.gradient_steps
                if rounds % config.target_sync_rounds == 0:
                    self.learner.sync_target()
                metrics = self.learner.train_round(batch, batch.weights)
                if config.prioritized:
                    assert metrics.td_errors is not None and batch.inserted is not None
                    self._send_priorities(batch.indices, batch.inserted,
                                          metrics.td_errors + config.per_epsilon)
                self._steps = max(self._steps, batch.total_inserted - self._baseline)
                steps = self._steps
                out_of_budget = config.out_of_budget(steps, time.perf_counter() - start)
                self._publish(stop=False)
                self._read_episodes()
                self._log_round(metrics.loss, metrics.mean_q, steps, prefetcher.wait_s,
                                time.perf_counter() - learning_started)
                bar.update(min(steps, config.total_env_steps) - bar.n)
                if steps >= next_eval or out_of_budget:
                    next_eval = steps + config.eval_interval
                    if self._evaluate(result, steps, time.perf_counter() - start):
                        break
                    bar.set_postfix(eval=f"{result.evals[-1].mean_return:.0f}",
                                    train=f"{self._recent_mean():.0f}", loss=f"{metrics.loss:.3f}")
                if out_of_budget:
                    break
        finally:
            self._stopping.set()
            prefetcher.close()
            bar.close()
        result.env_steps = self._steps
        result.gradient_steps = self.learner.gradient_steps
        result.wall_time_s = time.perf_counter() - start
        learning_s = time.perf_counter() - (learning_started or start)
        result.sample_wait_share = prefetcher.wait_s / learning_s if learning_s else 0.0
        result.gradient_steps_per_s = self.learner.gradient_steps / learning_s if learning_s else 0
        return result

    def _send_priorities(self, indices: np.ndarray, inserted: np.ndarray,
                         priorities: np.ndarray) -> None:
        previous, self._priority_update = self._priority_update, None
        if previous is not None:
            previous.result()  # the previous round's: raises if it failed, once
        self._priority_update = self._priority_sender.submit(
            self.client.update_priorities, indices, inserted, priorities)

    def _fetch_round(self) -> Batch:
        """A round of minibatches, drawn once the buffer holds the experience that round
        is due (runs on the prefetch thread, ahead of the learner)."""
        config = self.config
        due = (self._baseline + config.learning_starts
               + self._rounds_fetched * config.env_steps_per_round)
        self._rounds_fetched += 1
        inserted = self.client.size().total_inserted
        while inserted < due:
            if self._stopping.wait(_POLL_S):
                raise _Stopped
            if self._check_collectors is not None:
                self._check_collectors()
            inserted = self.client.size().total_inserted
        beta = None
        if config.prioritized:  # annealed from per_beta_start to 1 over the budget
            progress = min(1.0, (inserted - self._baseline) / config.total_env_steps)
            beta = config.per_beta_start + (1.0 - config.per_beta_start) * progress
        return self.client.sample(config.batch_size, num_batches=config.gradient_steps,
                                  beta=beta)

    def _publish(self, *, stop: bool) -> None:
        config = self.config
        rounds = self.learner.gradient_steps // config.gradient_steps
        orders = CollectorOrders(
            epsilon=epsilon_at(config, self._steps)
            if self._steps >= config.learning_starts else 1.0,
            insert_limit=self._baseline + config.learning_starts
            + (rounds + 1) * config.env_steps_per_round,
            stop=stop)
        self.client.publish_weights(self.learner.weights(), {
            **orders.to_metadata(), "gradient_steps": str(self.learner.gradient_steps)})

    def _read_episodes(self) -> None:
        page = self.client.episodes(after=self._episodes_after)
        self._episodes_after = page.last_id
        for episode in page.episodes:
            self._recent_returns = (self._recent_returns + [episode.episode_return])[-20:]
            self._episode_points.append((self._steps, episode.episode_return))
            if self.writer:
                self.writer.add_scalar("charts/episodic_return", episode.episode_return,
                                       self._steps)
                self.writer.add_scalar("charts/episodic_length", episode.length,
                                       self._steps)

    def _recent_mean(self) -> float:
        return float(np.mean(self._recent_returns)) if self._recent_returns else 0.0

    def _log_round(self, loss: float, mean_q: float, steps: int, wait_s: float,
                   learning_s: float) -> None:
        if self.writer is None:
            return
        self.writer.add_scalar("losses/td_loss", loss, steps)
        self.writer.add_scalar("losses/q_values", mean_q, steps)
        self.writer.add_scalar("charts/epsilon", epsilon_at(self.config, steps), steps)
        self.writer.add_scalar("charts/batches_per_second",
                               self.learner.gradient_steps / learning_s, steps)
        self.writer.add_scalar("charts/sample_wait_share", wait_s / learning_s, steps)

    def _evaluate(self, result: ServiceTrainResult, steps: int, elapsed_s: float) -> bool:
        """Evaluate the greedy policy; True once solved and confirmed by a fresh checkpoint."""
        config = self.config
        returns = evaluate(greedy_policy(self.learner.online), config.env_id,
                           config.eval_episodes, eval_seed(config.seed, 0, len(result.evals)))
        record = EvalRecord(steps, elapsed_s, float(returns.mean()), float(returns.min()))
        result.evals.append(record)
        if self.writer:
            self.writer.add_scalar("eval/mean_return", record.mean_return, steps)
        log.debug("eval at %d steps: %.1f", steps, record.mean_return)
        if record.mean_return > result.best_mean_return:
            result.best_mean_return, result.best_env_steps = record.mean_return, steps
            result.best_weights = self.learner.weights()
        if record.mean_return < config.solve_threshold or self.run_dir is None:
            return record.mean_return >= config.solve_threshold
        # Solved on the evaluation episodes: the checkpoint saved now must hold up on
        # fresh ones too, else training goes on.
        checkpoint = self.run_dir / SOLVED_CHECKPOINT
        save_checkpoint(self.learner.online, checkpoint)
        saved = load_checkpoint(checkpoint).to(self.learner.device)
        confirmation = evaluate(greedy_policy(saved), config.env_id,
                                config.confirm_episodes, eval_seed(config.seed, 1,
                                                                   len(result.evals)))
        result.confirm_mean_return = float(confirmation.mean())
        if self.writer:
            self.writer.add_scalar("eval/confirm_mean_return", result.confirm_mean_return, steps)
        if result.confirm_mean_return >= config.solve_threshold:
            result.solved = True
            result.checkpoint = str(checkpoint)
            return True
        log.info("eval %.1f at %d steps, but the checkpoint scored %.1f on %d fresh episodes; "
                 "training on", record.mean_return, steps, result.confirm_mean_return,
                 config.confirm_episodes)
        checkpoint.unlink()
        return False

    def _log_hyperparameters(self) -> None:
        if self.writer is None:
            return
        table = "\n".join(f"|{key}|{value}|" for key, value in asdict(self.config).items())
        self.writer.add_text("hyperparameters", f"|param|value|\n|-|-|\n{table}")

    def _finish(self, result: ServiceTrainResult) -> None:
        """The run's checkpoint, learning curve and summary.json, once training has stopped."""
        if self.run_dir is None:
            return
        if result.checkpoint is None and result.best_weights:
            self.learner.load_weights(result.best_weights)
            result.checkpoint = str(self.run_dir / BEST_CHECKPOINT)
            save_checkpoint(self.learner.online, result.checkpoint)
        result.curve = str(self.run_dir / "learning_curve.png")
        plot_learning_curve(result.evals, self._episode_points, self.config.solve_threshold,
                            result.curve, title=f"{self.config.env_id}, seed {self.config.seed}")
        write_summary(result, self.config, self.run_dir)


def train_from_service(config: TrainConfig, url: str, buffer: str, *, progress: bool = True,
                       check_collectors: Callable[[], None] | None = None,
                       api_key: str | None = None) -> ServiceTrainResult:
    """Train a DQN on what collectors store in `buffer`, until solved or out of budget.

    `check_collectors` is called while waiting for experience and should raise if
    the collectors are gone, rather than let the trainer wait for ever.
    """
    return ServiceTrainer(config, url, buffer, progress=progress,
                          check_collectors=check_collectors, api_key=api_key).run()
