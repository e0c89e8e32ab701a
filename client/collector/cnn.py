"""The Nature DQN network (Mnih et al. 2015) in numpy, for collectors acting on pixels.

The trainer's torch network and this one share the architecture defined here and
the tensor names it publishes: `convs.{0,2,4}.weight/bias` for the three
convolutions (ReLU after each), `head.{0,2}.weight/bias` for the two Linear layers
(ReLU between), the convolution output flattened channel-first as torch does. The
input is uint8 pixels [N, C, H, W], scaled by 1/255 inside the network.

Each convolution is one matrix product over image patches (im2col): a strided view
of the activations lists every patch without copying, one reshape gathers them, and
BLAS does the rest, about a millisecond for one Atari observation.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = ["CONVS", "HIDDEN", "NatureCnnQPolicy", "conv_output_shape"]

CONVS = ((32, 8, 4), (64, 4, 2), (64, 3, 1))
"""Output channels, kernel size and stride of each convolution."""
HIDDEN = 512
"""Width of the Linear layer after the convolutions."""
_CONV_NAMES = ("convs.0", "convs.2", "convs.4")
_HEAD_NAMES = ("head.0", "head.2")


def conv_output_shape(height: int, width: int) -> tuple[int, int]:
    """Height and width of the last convolution's output (7x7 for 84x84 frames).

    Raises:
        ValueError: the image is too small for the three convolutions (under 36x36).
    """
    for _, kernel, stride in CONVS:
        height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
        if height < 1 or width < 1:
            raise ValueError("images must be at least 36x36 pixels for the Nature CNN")
    return height, width


def _conv_relu(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, kernel: int,
               stride: int) -> np.ndarray:
    """A valid convolution and ReLU on channels-last activations [N, H, W, C];
    `weight` is [kernel * kernel * C, out] in (row, column, channel) order."""
    count, height, width, channels = x.shape
    out_h, out_w = (height - kernel) // stride + 1, (width - kernel) // stride + 1
    s_n, s_h, s_w, s_c = x.strides
    patches = as_strided(x, (count, out_h, out_w, kernel, kernel, channels),
                         (s_n, s_h * stride, s_w * stride, s_h, s_w, s_c), writeable=False)
    y: np.ndarray = patches.reshape(count * out_h * out_w, kernel * kernel * channels) @ weight
    y += bias
    np.maximum(y, 0.0, out=y)
    return y.reshape(count, out_h, out_w, -1)


class NatureCnnQPolicy:
    """Q-values of the Nature CNN from the tensors the trainer publishes."""

    def __init__(self, tensors: dict[str, np.ndarray]) -> None:
        expected = {f"{name}.{part}" for name in (*_CONV_NAMES, *_HEAD_NAMES)
                    for part in ("weight", "bias")}
        if set(tensors) != expected:
            raise ValueError(f"not the weights of a Nature CNN: {sorted(tensors)}, "
                             f"expected {sorted(expected)}")
        arrays = {name: np.asarray(value, np.float32) for name, value in tensors.items()}
        self._convs: list[tuple[np.ndarray, np.ndarray, int, int]] = []
        for name, (channels, kernel, stride) in zip(_CONV_NAMES, CONVS, strict=True):
            weight, bias = arrays[f"{name}.weight"], arrays[f"{name}.bias"]
            if weight.shape[0] != channels or weight.shape[2:] != (kernel, kernel) \
                    or bias.shape != (channels,):
                raise ValueError(f"{name}: weight {weight.shape} and bias {bias.shape}, "
                                 f"expected {channels} filters of {kernel}x{kernel}")
            # [out, in, row, col] -> rows of (row, col, in), the order of the patches.
            matrix = weight.transpose(2, 3, 1, 0).reshape(-1, channels)
            if not self._convs:
                matrix = matrix / 255.0  # the 1/255 input scaling, folded into the first layer
            self._convs.append((np.ascontiguousarray(matrix), bias, kernel, stride))
        hidden, out = arrays["head.0.weight"], arrays["head.2.weight"]
        if hidden.shape[0] != HIDDEN or out.ndim != 2 or out.shape[1] != HIDDEN:
            raise ValueError(f"head: weights {hidden.shape} and {out.shape}, expected "
                             f"[{HIDDEN}, features] and [actions, {HIDDEN}]")
        self._head = [(np.ascontiguousarray(hidden.T), arrays["head.0.bias"]),
                      (np.ascontiguousarray(out.T), arrays["head.2.bias"])]

    @property
    def n_actions(self) -> int:
        return int(self._head[-1][0].shape[1])

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q-values [N, n_actions] of uint8 observations [N, C, H, W]."""
        x = np.ascontiguousarray(np.asarray(obs).transpose(0, 2, 3, 1), dtype=np.float32)
        for weight, bias, kernel, stride in self._convs:
            x = _conv_relu(x, weight, bias, kernel, stride)
        # Flattened channel-first, as torch's Flatten sees [N, C, H, W].
        features = x.transpose(0, 3, 1, 2).reshape(len(x), -1)
        (hidden_w, hidden_b), (out_w, out_b) = self._head
        hidden = features @ hidden_w
        hidden += hidden_b
        np.maximum(hidden, 0.0, out=hidden)
        q: np.ndarray = hidden @ out_w + out_b
        return q

    def greedy(self, obs: np.ndarray) -> np.ndarray:
        actions: np.ndarray = self.q_values(obs).argmax(axis=1)
        return actions
