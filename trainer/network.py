"""The Q-network and its weights as named arrays, the form they travel in.

Weights leave the trainer as safetensors (checkpoints on disk, and the weights that
collectors fetch), named like the network's state_dict: `layers.{i}.weight` and
`layers.{i}.bias` for the Linear layers at even indices of `layers`. A collector
without torch runs the same MLP in numpy from those names
(`replay_service.client.collector.policy`):
Linear layers in index order, ReLU between them, none after the last.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

__all__ = [
    "QNetwork",
    "export_weights",
    "import_weights",
    "load_checkpoint",
    "network_from_weights",
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
        q_values: torch.Tensor = self.layers(obs)
        return q_values


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


def network_from_weights(weights: Mapping[str, np.ndarray | torch.Tensor]) -> QNetwork:
    """Rebuild a QNetwork whose architecture is read from the weight shapes."""
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


def load_checkpoint(path: str | Path) -> QNetwork:
    """A CPU QNetwork holding the weights of a safetensors checkpoint."""
    return network_from_weights(load_file(str(path), device="cpu"))
