"""Acting with published Q-network weights, in numpy.

The trainer publishes its network as safetensors tensors. An MLP (flat
observations) is named `layers.{i}.weight` and `layers.{i}.bias` (a torch
`nn.Sequential` of Linear layers with ReLU between them); the Nature CNN (image
observations) is named as `replay_service.client.collector.cnn` says. A forward
pass over those is a few matrix products, so collectors need no torch, and a
collector in another language needs only a safetensors reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from replay_service.client.collector.cnn import NatureCnnQPolicy

__all__ = ["CollectorOrders", "MlpQPolicy", "QPolicy", "epsilon_greedy", "q_policy"]

_PARAMETER = re.compile(r"^layers\.(\d+)\.(weight|bias)$")


class QPolicy(Protocol):
    """Q-values of a batch of observations, and the greedy actions they imply."""

    @property
    def n_actions(self) -> int: ...
    def q_values(self, obs: np.ndarray) -> np.ndarray: ...
    def greedy(self, obs: np.ndarray) -> np.ndarray: ...


class MlpQPolicy:
    """Q-values of an MLP: Linear layers in index order, ReLU between, none after the last."""

    def __init__(self, tensors: dict[str, np.ndarray]) -> None:
        layers: dict[int, dict[str, np.ndarray]] = {}
        for name, tensor in tensors.items():
            match = _PARAMETER.match(name)
            if match is None:
                raise ValueError(f"unexpected tensor '{name}': an MLP policy has only "
                                 "layers.{i}.weight and layers.{i}.bias")
            layers.setdefault(int(match[1]), {})[match[2]] = np.asarray(tensor, np.float32)
        if not layers:
            raise ValueError("no layers in the published weights")
        self._layers: list[tuple[np.ndarray, np.ndarray]] = []
        for index in sorted(layers):
            parts = layers[index]
            if parts.keys() != {"weight", "bias"}:
                raise ValueError(f"layer {index} needs both a weight and a bias")
            weight, bias = parts["weight"], parts["bias"]
            if weight.ndim != 2 or bias.shape != (weight.shape[0],):
                raise ValueError(f"layer {index}: weight {weight.shape} and bias {bias.shape} "
                                 "do not form a Linear layer")
            if self._layers and self._layers[-1][0].shape[1] != weight.shape[1]:
                raise ValueError(f"layer {index} takes {weight.shape[1]} inputs, the layer "
                                 f"before gives {self._layers[-1][0].shape[1]}")
            self._layers.append((np.ascontiguousarray(weight.T), bias))

    @property
    def obs_dim(self) -> int:
        return int(self._layers[0][0].shape[0])

    @property
    def n_actions(self) -> int:
        return int(self._layers[-1][0].shape[1])

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        x: np.ndarray = np.asarray(obs, np.float32).reshape(len(obs), -1)
        for i, (weight_t, bias) in enumerate(self._layers):
            x = np.matmul(x, weight_t)
            x += bias
            if i < len(self._layers) - 1:
                np.maximum(x, 0, out=x)
        return x

    def greedy(self, obs: np.ndarray) -> np.ndarray:
        actions: np.ndarray = self.q_values(obs).argmax(axis=1)
        return actions


def q_policy(tensors: dict[str, np.ndarray]) -> QPolicy:
    """The policy the published tensors describe: the Nature CNN if they hold its
    convolutions, else an MLP."""
    if "convs.0.weight" in tensors:
        return NatureCnnQPolicy(tensors)
    return MlpQPolicy(tensors)


def epsilon_greedy(policy: QPolicy | None, obs: np.ndarray, epsilon: float, n_actions: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Greedy actions, each replaced by a random one with probability epsilon; all random
    while no policy has been published yet."""
    random_actions = rng.integers(0, n_actions, len(obs))
    if policy is None:
        return random_actions
    explore = rng.random(len(obs)) < epsilon
    if explore.all():  # skip a forward pass whose answer goes unused (long Atari warm-ups)
        return random_actions
    return np.where(explore, random_actions, policy.greedy(obs))


@dataclass(frozen=True)
class CollectorOrders:
    """What a trainer tells its collectors, in the metadata of the weights it publishes.

    `epsilon` is the exploration rate for the transitions collected next (the trainer
    owns the schedule, so every collector explores alike); `insert_limit` is the
    buffer's total_inserted at which collectors wait for newer weights, which keeps
    experience from racing ahead of learning (one round of lead lets collection
    and training overlap); `stop` ends collection when training is over.
    """

    epsilon: float
    insert_limit: int
    stop: bool

    def to_metadata(self) -> dict[str, str]:
        return {"epsilon": repr(self.epsilon), "insert_limit": str(self.insert_limit),
                "stop": "1" if self.stop else "0"}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> CollectorOrders:
        try:
            return cls(epsilon=float(metadata["epsilon"]),
                       insert_limit=int(metadata["insert_limit"]),
                       stop=metadata.get("stop") == "1")
        except (KeyError, ValueError) as error:
            raise ValueError(f"published weights carry no valid collector orders: {error}"
                             ) from None
