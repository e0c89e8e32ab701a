"""Pearson's chi-square test, for the tests that check sampling distributions."""

from __future__ import annotations

import math

import numpy as np

# Upper 1e-4 quantile of the standard normal: a correct sampler fails once in 10,000 runs.
_Z = 3.719


def chi_square_rejects(counts: np.ndarray, probabilities: np.ndarray) -> bool:
    """Whether `counts` are too far from `probabilities` to be chance, at alpha = 1e-4.

    The critical value comes from the Wilson-Hilferty approximation of the
    chi-square quantile, accurate to a few per cent at these degrees of freedom.
    """
    expected = counts.sum() * np.asarray(probabilities, dtype=float)
    statistic = float(((counts - expected) ** 2 / expected).sum())
    dof = len(counts) - 1
    critical = dof * (1 - 2 / (9 * dof) + _Z * math.sqrt(2 / (9 * dof))) ** 3
    return statistic > critical


def chi_square_rejects_uniform(counts: np.ndarray) -> bool:
    return chi_square_rejects(counts, np.full(len(counts), 1 / len(counts)))
