r"""Token rankings and agreement between two attributions (seed stability)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from scipy.stats import kendalltau
from torch import Tensor

from captum_sigma.evaluation._checks import ScoresLike, scores_to_numpy


def token_ranking(scores: ScoresLike, eligible: Tensor) -> list[np.ndarray]:
    r"""Eligible token positions, most important first.

    Ties are broken deterministically by position: the earlier token ranks
    first. Scores of non-eligible positions are ignored.

    Args:
        scores (Tensor or ndarray): Per-token scores, shape (B, T).
        eligible (Tensor): Bool mask of the tokens that may be ranked, (B, T).

    Returns:
        rankings (list[ndarray]): For each example, the positions of its eligible
        tokens ordered by decreasing score (int64, length n_eligible).

    Raises:
        ValueError: if the shapes differ or an eligible score is not finite.
    """
    eligible_np = _eligible_to_numpy(eligible)
    scores_np = scores_to_numpy(scores, torch.Size(eligible_np.shape))
    rankings = []
    for row_scores, row_eligible in zip(scores_np, eligible_np):
        positions = np.flatnonzero(row_eligible)
        values = row_scores[positions]
        if not np.isfinite(values).all():
            raise ValueError("scores must be finite at eligible positions")
        rankings.append(positions[np.argsort(-values, kind="stable")])
    return rankings


def rank_correlation(
    scores_a: ScoresLike, scores_b: ScoresLike, eligible: Tensor
) -> np.ndarray:
    r"""Kendall tau (tau-b, ``scipy.stats.kendalltau``) between two score vectors.

    Computed per example over its eligible tokens; NaN where fewer than two
    tokens are eligible or a score vector is constant.

    Args:
        scores_a (Tensor or ndarray): Per-token scores, shape (B, T).
        scores_b (Tensor or ndarray): Per-token scores, shape (B, T).
        eligible (Tensor): Bool mask of the tokens to compare, shape (B, T).

    Returns:
        tau (ndarray): Float64 array of shape (B,).
    """
    eligible_np = _eligible_to_numpy(eligible)
    shape = torch.Size(eligible_np.shape)
    a_np, b_np = scores_to_numpy(scores_a, shape), scores_to_numpy(scores_b, shape)
    return np.array(
        [kendall_tau(a[m], b[m]) for a, b, m in zip(a_np, b_np, eligible_np)],
        dtype=np.float64,
    )


def top_k_overlap(
    scores_a: ScoresLike, scores_b: ScoresLike, eligible: Tensor, k: int = 3
) -> np.ndarray:
    r"""Fraction of shared tokens among the top-k of two score vectors.

    k is capped at the number of eligible tokens n; the value is
    ``|top_k(a) & top_k(b)| / min(k, n)`` (ties by position, as in
    :func:`token_ranking`), NaN where no token is eligible.

    Args:
        scores_a (Tensor or ndarray): Per-token scores, shape (B, T).
        scores_b (Tensor or ndarray): Per-token scores, shape (B, T).
        eligible (Tensor): Bool mask of the tokens to rank, shape (B, T).
        k (int, optional): Number of top tokens. Default: 3.

    Returns:
        overlap (ndarray): Float64 array of shape (B,) with values in [0, 1].
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    overlaps = []
    for rank_a, rank_b in zip(
        token_ranking(scores_a, eligible), token_ranking(scores_b, eligible)
    ):
        top = min(k, rank_a.size)
        shared = np.intersect1d(rank_a[:top], rank_b[:top]).size
        overlaps.append(shared / top if top > 0 else np.nan)
    return np.array(overlaps, dtype=np.float64)


class SeedStability(NamedTuple):
    """Per-example agreement between two runs of a stochastic method."""

    kendall_tau: np.ndarray
    top_k_overlap: np.ndarray


def seed_stability(
    scores_a: ScoresLike, scores_b: ScoresLike, eligible: Tensor, k: int = 3
) -> SeedStability:
    r"""Agreement of two attributions of the same sentences (e.g. two seeds).

    Args:
        scores_a (Tensor or ndarray): Scores from the first seed, shape (B, T).
        scores_b (Tensor or ndarray): Scores from the second seed, shape (B, T).
        eligible (Tensor): Bool mask of the tokens to compare, shape (B, T).
        k (int, optional): Size of the top set for the overlap. Default: 3.

    Returns:
        SeedStability: ``kendall_tau`` (:func:`rank_correlation`) and
        ``top_k_overlap`` (:func:`top_k_overlap`), float64 arrays of shape (B,).
    """
    return SeedStability(
        kendall_tau=rank_correlation(scores_a, scores_b, eligible),
        top_k_overlap=top_k_overlap(scores_a, scores_b, eligible, k=k),
    )


def kendall_tau(x: np.ndarray, y: np.ndarray) -> float:
    """``scipy.stats.kendalltau`` statistic; NaN for fewer than two values."""
    if x.size < 2:
        return float("nan")
    return float(kendalltau(x, y).statistic)


def _eligible_to_numpy(eligible: Tensor) -> np.ndarray:
    if isinstance(eligible, Tensor):
        eligible = eligible.detach().cpu().numpy()
    eligible = np.asarray(eligible)
    if eligible.ndim != 2:
        raise ValueError(
            f"eligible must have shape (batch, tokens), got {eligible.shape}"
        )
    return eligible.astype(bool)
