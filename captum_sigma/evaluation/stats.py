r"""Seeded percentile-bootstrap intervals of means over sentences.

``bootstrap_interval`` resamples sentences with replacement
(``scipy.stats.bootstrap``, percentile method, seeded numpy generator) and returns
the 2.5 / 97.5 % percentiles of the resampled means;
``paired_bootstrap_interval`` does the same for the per-sentence difference of
two methods on the same sentences (the paired comparison used to decide bold
entries and the comparison against IG). NaN values (e.g. Kendall tau of a
constant score vector) are dropped first, pairwise for the paired version.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats

__all__ = ["Interval", "bootstrap_interval", "paired_bootstrap_interval"]


class Interval(NamedTuple):
    """Mean with its bootstrap confidence interval over ``n`` finite values."""

    mean: float
    low: float
    high: float
    n: int

    def contains(self, value: float) -> bool:
        """Whether ``low <= value <= high``."""
        return bool(self.low <= value <= self.high)


def bootstrap_interval(
    values: np.ndarray,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Interval:
    r"""Mean and percentile-bootstrap interval of the mean.

    Args:
        values (ndarray): One value per sentence; NaN values are ignored.
        confidence (float, optional): Coverage of the interval. Default: 0.95.
        n_resamples (int, optional): Bootstrap resamples. Default: 2000.
        seed (int, optional): Seed of ``numpy.random.default_rng``. Default: 0.

    Returns:
        Interval: ``(mean, low, high, n)``; all NaN (n = 0) without finite
        values, and ``low = high = mean`` for a single value.
    """
    _check(confidence, n_resamples)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    mean = float(values.mean())
    if values.size == 1:
        return Interval(mean, mean, mean, 1)
    if np.all(values == values[0]):  # every resample has the same mean
        return Interval(mean, mean, mean, int(values.size))
    result = stats.bootstrap(
        (values,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        batch=256,  # bounded memory
        random_state=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return Interval(mean, float(low), float(high), int(values.size))


def paired_bootstrap_interval(
    values_a: np.ndarray,
    values_b: np.ndarray,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Interval:
    r"""Bootstrap interval of the mean per-sentence difference ``a - b``.

    Args:
        values_a (ndarray): One value per sentence for method a.
        values_b (ndarray): The same sentences for method b.
        confidence, n_resamples, seed: As in :func:`bootstrap_interval`.

    Returns:
        Interval: Of ``a - b`` over the sentences where both are finite.
    """
    a = np.asarray(values_a, dtype=np.float64).reshape(-1)
    b = np.asarray(values_b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(
            f"values_a and values_b must have the same length, got {a.size} "
            f"and {b.size}"
        )
    both = np.isfinite(a) & np.isfinite(b)
    return bootstrap_interval(
        a[both] - b[both],
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
    )


def _check(confidence: float, n_resamples: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int):
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
