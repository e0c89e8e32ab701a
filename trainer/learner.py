"""The DQN update: online and target networks, Adam, and epsilon-greedy actions.

The learner knows nothing about where minibatches come from (a local ring buffer or
the replay service), so the reference loop and the distributed trainer share it.
Batches are dicts of numpy arrays with the fields obs, action, reward, next_obs and
done, where `done` means terminated only: a time-limit truncation is stored with
done=False so that its value still bootstraps from next_obs. Observations keep their
stored dtype on the way to the device (uint8 frames stay uint8); the network converts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from replay_service.trainer.config import TrainConfig
from replay_service.trainer.network import export_weights, import_weights, q_network

__all__ = ["DQNLearner", "TensorBatch", "UpdateMetrics", "resolve_device"]

Batch = Mapping[str, np.ndarray]


def resolve_device(name: str) -> torch.device:
    """Turn "auto" into CUDA when available, else CPU; pass any other name to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _to_tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    # from_numpy shares memory; arrays decoded straight from a response body are
    # read-only, which torch would warn about, so those are copied instead. From
    # pageable memory a copy to a GPU returns only once the host array has been read,
    # whatever non_blocking says, so the numpy array may be dropped right after.
    if array.flags.writeable and array.flags.c_contiguous:
        tensor = torch.from_numpy(array)
    else:
        tensor = torch.tensor(array)
    return tensor.to(device, non_blocking=True)


@dataclass(frozen=True)
class TensorBatch:
    """One minibatch [batch_size, ...] or a round of them [num_batches, batch_size, ...]."""

    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: torch.Tensor
    done: torch.Tensor
    discount: torch.Tensor | None = None
    """Per-transition discount of the bootstrap (n-step returns); None: gamma."""
    weights: torch.Tensor | None = None
    """Importance-sampling weights of prioritized replay; None: all 1."""

    @classmethod
    def from_numpy(cls, batch: Batch, device: torch.device,
                   weights: np.ndarray | None = None) -> TensorBatch:
        """Move each field to `device` once, with the dtypes the update needs; observations
        as stored (the network converts them on the device)."""
        discount = batch.get("discount")
        return cls(
            obs=_to_tensor(batch["obs"], device),
            action=_to_tensor(batch["action"], device).long(),
            reward=_to_tensor(batch["reward"], device).float(),
            next_obs=_to_tensor(batch["next_obs"], device),
            done=_to_tensor(batch["done"], device).float(),
            discount=None if discount is None else _to_tensor(discount, device).float(),
            weights=None if weights is None else _to_tensor(weights, device).float(),
        )

    def __len__(self) -> int:
        return int(self.action.shape[0])

    def __getitem__(self, index: int) -> TensorBatch:
        """The minibatch at `index` of the leading (num_batches) dimension: views, no copies."""
        return TensorBatch(self.obs[index], self.action[index], self.reward[index],
                           self.next_obs[index], self.done[index],
                           None if self.discount is None else self.discount[index],
                           None if self.weights is None else self.weights[index])


@dataclass(frozen=True)
class UpdateMetrics:
    """Averages over the gradient steps of one update or one round."""

    loss: float
    """Huber loss between Q(s, a) and the TD target."""
    mean_q: float
    """Mean Q(s, a) of the sampled actions: a drift upwards is the first sign of divergence."""
    gradient_steps: int
    td_errors: np.ndarray | None = None
    """|TD error| of every sampled transition, shaped like the batch: new priorities."""


class DQNLearner:
    """Online and target Q-networks trained with Huber loss, Adam and gradient clipping."""

    def __init__(self, obs_space: gym.spaces.Box, num_actions: int, config: TrainConfig,
                 device: torch.device | None = None) -> None:
        """The network fits `obs_space`: the Nature CNN for images, else an MLP."""
        # One thread (process-wide): a [256, 256] MLP on batches of 64 is too little work
        # per op to split. On this 2-core machine two threads gained nothing when it was
        # idle (700-830 vs 700 steps/s) and ran 4-5x slower than one (150-180 steps/s)
        # as soon as another process was busy, which is the normal case here: collectors,
        # the replay service and the prefetch thread share the cores (others measured
        # up to 20x). `python -m trainer.benchmark --threads 1 2` repeats the measurement.
        torch.set_num_threads(1)
        self.config = config
        self.device = device if device is not None else resolve_device(config.device)
        self.num_actions = num_actions
        self.online = q_network(obs_space, num_actions, config.net_arch).to(self.device)
        self.target = q_network(obs_space, num_actions, config.net_arch).to(self.device)
        self.target.requires_grad_(False)
        self.sync_target()
        # The fused Adam kernel updates all parameters in one op: the same algorithm, about
        # 15% more gradient steps per second than the default on this CPU.
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=config.learning_rate,
                                          fused=True)
        self.gradient_steps = 0

    @torch.no_grad()
    def td_target(self, reward: torch.Tensor, next_obs: torch.Tensor, done: torch.Tensor,
                  discount: torch.Tensor | None = None) -> torch.Tensor:
        """r + gamma * (1 - done) * Q_target(s', a'), with a' = argmax of Q_target (DQN)
        or of Q_online (Double DQN, which reduces the max operator's overestimation).
        n-step transitions bring their own discount (gamma^n, shorter at an episode's end)
        in place of gamma."""
        next_q_target = self.target(next_obs)
        if self.config.double_dqn:
            next_action = self.online(next_obs).argmax(dim=-1, keepdim=True)
            next_value = next_q_target.gather(-1, next_action).squeeze(-1)
        else:
            next_value = next_q_target.max(dim=-1).values
        gamma = self.config.gamma if discount is None else discount
        target: torch.Tensor = reward + gamma * (1.0 - done) * next_value
        return target

    def _step(self, minibatch: TensorBatch
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        target = self.td_target(minibatch.reward, minibatch.next_obs, minibatch.done,
                                minibatch.discount)
        q_taken = self.online(minibatch.obs).gather(-1, minibatch.action.unsqueeze(-1))
        q_taken = q_taken.squeeze(-1)
        if minibatch.weights is None:
            loss = F.smooth_l1_loss(q_taken, target)
        else:  # prioritized replay: each transition's loss scaled by its weight
            loss = (minibatch.weights * F.smooth_l1_loss(q_taken, target, reduction="none")
                    ).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(self.online.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.gradient_steps += 1
        return loss.detach(), q_taken.detach().mean(), (q_taken.detach() - target).abs()

    def update(self, minibatch: TensorBatch | Batch) -> UpdateMetrics:
        """One gradient step on one minibatch [batch_size, ...]."""
        if not isinstance(minibatch, TensorBatch):
            minibatch = TensorBatch.from_numpy(minibatch, self.device)
        loss, mean_q, td_errors = self._step(minibatch)
        return UpdateMetrics(loss=loss.item(), mean_q=mean_q.item(), gradient_steps=1,
                             td_errors=td_errors.cpu().numpy())

    def train_round(self, batches: TensorBatch | Batch,
                    weights: np.ndarray | None = None) -> UpdateMetrics:
        """One gradient step per minibatch of a round shaped [num_batches, batch_size, ...].

        Each field crosses to the device once for the whole round, and the metrics are
        read back once at the end, so a GPU is not synchronised after every step.
        """
        if not isinstance(batches, TensorBatch):
            batches = TensorBatch.from_numpy(batches, self.device, weights)
        losses, mean_qs, td_errors = [], [], []
        for index in range(len(batches)):
            loss, mean_q, errors = self._step(batches[index])
            losses.append(loss)
            mean_qs.append(mean_q)
            td_errors.append(errors)
        return UpdateMetrics(loss=torch.stack(losses).mean().item(),
                             mean_q=torch.stack(mean_qs).mean().item(),
                             gradient_steps=len(batches),
                             td_errors=torch.stack(td_errors).cpu().numpy())

    def sync_target(self) -> None:
        """Copy the online weights into the target network."""
        self.target.load_state_dict(self.online.state_dict())

    def weights(self) -> dict[str, np.ndarray]:
        """The online weights as contiguous float32 arrays, named as the network's
        state_dict (see `replay_service.trainer.network`)."""
        return export_weights(self.online)

    def load_weights(self, weights: Mapping[str, np.ndarray | torch.Tensor]) -> None:
        """Set the online and target networks to `weights` (e.g. to resume a checkpoint)."""
        import_weights(self.online, weights)
        self.sync_target()

    def act(self, obs: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
        """Epsilon-greedy int64 actions for a batch of observations [n, ...].

        Each row explores with probability `epsilon`; epsilon=0 is the greedy policy.
        The random draws do not depend on the network, so a seeded `rng` makes runs
        repeatable however often the weights change.
        """
        count = len(obs)
        explore = rng.random(count) < epsilon
        random_actions = rng.integers(self.num_actions, size=count)
        if explore.all():
            return random_actions.astype(np.int64)
        with torch.inference_mode():
            q_values = self.online(_to_tensor(np.asarray(obs), self.device))
            greedy = q_values.argmax(dim=-1).cpu().numpy()
        return np.where(explore, random_actions, greedy).astype(np.int64)
