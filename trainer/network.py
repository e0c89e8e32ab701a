"""The Q-networks and their weights as named arrays, the form they travel in.

Weights leave the trainer as safetensors (checkpoints on disk, and the weights that
collectors fetch), named like the network's state_dict. A collector without torch
runs the same network in numpy from those names
(`replay_service.client.collector.policy`):

- flat observations get an MLP, `QNetwork`: `layers.{i}.weight` and `layers.{i}.bias`
  for the Linear layers at even indices of `layers`, in index order, ReLU between
  them, none after the last;
- image observations (uint8, channel-first) get the Nature DQN network, `NatureCNN`:
  `convs.{0,2,4}` and `head.{0,2}` (`replay_service.client.collector.cnn`).

Both take observations in the dtype they are stored in and convert on the device, so
a minibatch of Atari frames crosses to a GPU as uint8, a quarter of its float size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from replay_service.client.collector.cnn import CONVS, HIDDEN, conv_output_shape
from replay_service.client.collector.envs import is_image

__all__ = [
    "NatureCNN",
    "QNetwork",
    "export_weights",
    "import_weights",
    "load_checkpoint",
    "network_from_weights",
    "q_network",
    "save_checkpoint",
]


class QNetwork(nn.Module):
    """An MLP from observations to one Q-value per action."""

    def __init__(self, obs_dim: int, num_actions: int, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        widths = [obs_dim, *hidden]
        modules: list[nn.Module] = []
        for width_in, width_out in zip(widths, widths[1:], strict=False):
            modules += [nn.Linear(width_in, width_out), nn.ReLU()]
        modules.append(nn.Linear(widths[-1], num_actions))
        self.layers = nn.Sequential(*modules)
        self.obs_dim = obs_dim
        self.num_actions = num_actions
        self.hidden = tuple(hidden)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        q_values: torch.Tensor = self.layers(obs.float())
        return q_values


class NatureCNN(nn.Module):
    """The Nature DQN network (Mnih et al. 2015): three convolutions and two Linear
    layers, from uint8 pixels [N, C, H, W] scaled by 1/255 inside."""

    def __init__(self, in_channels: int, num_actions: int, features: int = 64 * 7 * 7):
        """`features`: the flattened size of the last convolution's output, 3,136 for
        84x84 frames (`for_shape` works it out for other sizes)."""
        super().__init__()
        convs: list[nn.Module] = []
        for out_channels, kernel, stride in CONVS:
            convs += [nn.Conv2d(in_channels, out_channels, kernel, stride), nn.ReLU()]
            in_channels = out_channels
        self.convs = nn.Sequential(*convs)
        self.head = nn.Sequential(nn.Linear(features, HIDDEN), nn.ReLU(),
                                  nn.Linear(HIDDEN, num_actions))
        self.num_actions = num_actions

    @classmethod
    def for_shape(cls, shape: Sequence[int], num_actions: int) -> NatureCNN:
        """The network for observations [C, H, W].

        Raises:
            ValueError: `shape` is not [C, H, W] of at least 36x36.
        """
        if len(shape) != 3:
            raise ValueError(f"the Nature CNN takes channel-first images [C, H, W], "
                             f"not observations shaped {list(shape)}")
        height, width = conv_output_shape(shape[1], shape[2])
        return cls(shape[0], num_actions, CONVS[-1][0] * height * width)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        # [..., C, H, W]: a round's [num_batches, batch] or a single minibatch's [batch].
        leading = obs.shape[:-3]
        pixels = obs.reshape(-1, *obs.shape[-3:]).float() / 255.0
        q_values: torch.Tensor = self.head(self.convs(pixels).flatten(1))
        return q_values.reshape(*leading, -1)


def q_network(space: gym.spaces.Box, num_actions: int, hidden: Sequence[int]) -> nn.Module:
    """The Nature CNN for image observations, else an MLP of widths `hidden`."""
    if is_image(space):
        return NatureCNN.for_shape(space.shape, num_actions)
    return QNetwork(int(np.prod(space.shape)), num_actions, hidden)


def export_weights(network: nn.Module) -> dict[str, np.ndarray]:
    """The state_dict as contiguous float32 numpy arrays (copies, safe to keep or send)."""
    return {
        name: np.ascontiguousarray(tensor.detach().to("cpu", torch.float32).numpy().copy())
        for name, tensor in network.state_dict().items()
    }


def import_weights(network: nn.Module, weights: Mapping[str, np.ndarray | torch.Tensor]) -> None:
    """Load named arrays into `network`; names and shapes must match exactly (strict)."""
    state = {name: torch.as_tensor(np.asarray(value)) if isinstance(value, np.ndarray) else value
             for name, value in weights.items()}
    network.load_state_dict(state, strict=True)


def network_from_weights(weights: Mapping[str, np.ndarray | torch.Tensor]) -> nn.Module:
    """Rebuild the QNetwork or NatureCNN whose architecture the weight names and shapes
    give."""
    if "convs.0.weight" in weights:
        cnn = NatureCNN(int(weights["convs.0.weight"].shape[1]),
                        int(weights["head.2.weight"].shape[0]),
                        int(weights["head.0.weight"].shape[1]))
        import_weights(cnn, weights)
        return cnn
    shapes = [tuple(weights[f"layers.{index}.weight"].shape)
              for index in range(0, 2 * len(weights), 2) if f"layers.{index}.weight" in weights]
    if not shapes or len(shapes) * 2 != len(weights):
        raise ValueError(f"not the weights of a QNetwork: {sorted(weights)}")
    network = QNetwork(int(shapes[0][1]), int(shapes[-1][0]), [int(s[0]) for s in shapes[:-1]])
    import_weights(network, weights)
    return network


def save_checkpoint(network: nn.Module, path: str | Path) -> None:
    """Write the weights as a safetensors file (no pickle: loading it runs no code)."""
    state = {name: tensor.detach().to("cpu").contiguous()
             for name, tensor in network.state_dict().items()}
    save_file(state, str(path))


def load_checkpoint(path: str | Path) -> nn.Module:
    """A CPU network (QNetwork or NatureCNN) holding the weights of a safetensors
    checkpoint."""
    return network_from_weights(load_file(str(path), device="cpu"))
