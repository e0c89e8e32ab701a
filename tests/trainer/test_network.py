"""Weights: the exported names, and a bit-exact round trip through safetensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy

from replay_service.trainer.network import (
    QNetwork,
    export_weights,
    import_weights,
    load_checkpoint,
    network_from_weights,
    save_checkpoint,
)


def numpy_forward(weights: dict[str, np.ndarray], obs: np.ndarray) -> np.ndarray:
    """The collectors' convention: Linear layers in index order, ReLU between them."""
    indices = sorted(int(name.split(".")[1]) for name in weights if name.endswith(".weight"))
    hidden = obs
    for position, index in enumerate(indices):
        hidden = hidden @ weights[f"layers.{index}.weight"].T + weights[f"layers.{index}.bias"]
        if position < len(indices) - 1:
            hidden = np.maximum(hidden, 0.0)
    return hidden


def test_export_names_follow_layers_convention() -> None:
    weights = export_weights(QNetwork(4, 2, (256, 256)))
    assert list(weights) == [f"layers.{i}.{kind}" for i in (0, 2, 4) for kind in ("weight", "bias")]
    assert weights["layers.0.weight"].shape == (256, 4)
    assert weights["layers.4.weight"].shape == (2, 256)
    assert all(w.dtype == np.float32 and w.flags.c_contiguous for w in weights.values())


def test_numpy_forward_on_exported_weights_matches_torch() -> None:
    torch.manual_seed(0)
    network = QNetwork(4, 2, (32, 16))
    obs = np.random.default_rng(0).standard_normal((10, 4), dtype=np.float32)
    expected = network(torch.from_numpy(obs)).detach().numpy()
    np.testing.assert_allclose(numpy_forward(export_weights(network), obs), expected,
                               rtol=1e-5, atol=1e-6)


def test_checkpoint_round_trip_is_bit_exact(tmp_path: Path) -> None:
    torch.manual_seed(0)
    network = QNetwork(4, 2, (64, 32))
    save_checkpoint(network, tmp_path / "q.safetensors")
    restored = load_checkpoint(tmp_path / "q.safetensors")
    assert restored.hidden == (64, 32)
    for name, array in export_weights(network).items():
        np.testing.assert_array_equal(export_weights(restored)[name], array, strict=True)


def test_exported_weights_round_trip_through_safetensors(tmp_path: Path) -> None:
    # The path weights take to a collector: numpy arrays -> safetensors bytes -> numpy.
    weights = export_weights(QNetwork(4, 2))
    save_numpy(weights, str(tmp_path / "w.safetensors"))
    loaded = load_numpy(str(tmp_path / "w.safetensors"))
    assert loaded.keys() == weights.keys()
    for name in weights:
        assert loaded[name].tobytes() == weights[name].tobytes()
    rebuilt = network_from_weights(loaded)
    target = QNetwork(4, 2)
    import_weights(target, loaded)
    for name in weights:
        assert export_weights(rebuilt)[name].tobytes() == weights[name].tobytes()
        assert export_weights(target)[name].tobytes() == weights[name].tobytes()
