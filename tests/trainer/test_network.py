"""The Q-networks: which one an observation space gets, the exported names, the numpy
forward passes of collectors against torch, and a bit-exact round trip through safetensors."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy
from torch import nn

from replay_service.client.collector.cnn import NatureCnnQPolicy
from replay_service.client.collector.policy import MlpQPolicy, q_policy
from replay_service.trainer.network import (
    NatureCNN,
    QNetwork,
    export_weights,
    import_weights,
    load_checkpoint,
    network_from_weights,
    q_network,
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


def test_image_observations_get_the_nature_cnn_flat_ones_the_mlp() -> None:
    frames = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    cnn = q_network(frames, 6, (256, 256))
    assert isinstance(cnn, NatureCNN)
    assert [tuple(layer.weight.shape) for layer in cnn.convs if isinstance(layer, nn.Conv2d)
            ] == [(32, 4, 8, 8), (64, 32, 4, 4), (64, 64, 3, 3)]
    assert [tuple(layer.weight.shape) for layer in cnn.head if isinstance(layer, nn.Linear)
            ] == [(512, 3136), (6, 512)]
    flat = q_network(gym.spaces.Box(-1.0, 1.0, (6,), np.float32), 3, (64,))
    assert isinstance(flat, QNetwork) and flat.obs_dim == 6 and flat.hidden == (64,)


def test_the_cnn_scales_uint8_pixels_inside_and_takes_a_round_of_minibatches() -> None:
    torch.manual_seed(0)
    network = NatureCNN.for_shape((4, 84, 84), 6)
    pixels = torch.randint(0, 256, (3, 2, 4, 84, 84), dtype=torch.uint8)
    q_values = network(pixels)
    assert q_values.shape == (3, 2, 6) and q_values.dtype == torch.float32
    scaled = pixels[1].float() / 255.0
    torch.testing.assert_close(q_values[1], network.head(network.convs(scaled).flatten(1)))


def test_numpy_nature_cnn_on_exported_weights_matches_torch() -> None:
    torch.manual_seed(0)
    network = NatureCNN.for_shape((4, 84, 84), 6)
    obs = np.random.default_rng(0).integers(0, 256, (5, 4, 84, 84), dtype=np.uint8)
    with torch.no_grad():
        expected = network(torch.from_numpy(obs)).numpy()
    policy = q_policy(export_weights(network))
    assert isinstance(policy, NatureCnnQPolicy) and policy.n_actions == 6
    np.testing.assert_allclose(policy.q_values(obs), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(policy.greedy(obs), expected.argmax(axis=1))


def test_collectors_read_the_architecture_from_the_tensor_names() -> None:
    assert isinstance(q_policy(export_weights(QNetwork(4, 2))), MlpQPolicy)
    assert isinstance(q_policy(export_weights(NatureCNN(4, 2))), NatureCnnQPolicy)
    weights = export_weights(NatureCNN(4, 2))
    del weights["head.2.bias"]
    with pytest.raises(ValueError, match="not the weights of a Nature CNN"):
        q_policy(weights)


def test_cnn_checkpoint_round_trip_is_bit_exact(tmp_path: Path) -> None:
    torch.manual_seed(0)
    network = NatureCNN.for_shape((4, 84, 84), 4)
    save_checkpoint(network, tmp_path / "q.safetensors")
    restored = load_checkpoint(tmp_path / "q.safetensors")
    assert isinstance(restored, NatureCNN)
    for name, array in export_weights(network).items():
        np.testing.assert_array_equal(export_weights(restored)[name], array, strict=True)


def test_the_cnn_refuses_images_it_cannot_convolve() -> None:
    with pytest.raises(ValueError, match="at least 36x36"):
        NatureCNN.for_shape((4, 32, 32), 2)
    with pytest.raises(ValueError, match=r"channel-first images \[C, H, W\]"):
        q_network(gym.spaces.Box(0, 255, (84, 84), np.uint8), 2, (64,))
