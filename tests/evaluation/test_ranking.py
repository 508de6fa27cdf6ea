"""Token rankings and agreement between two score vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from captum_sigma.evaluation import (
    rank_correlation,
    seed_stability,
    token_ranking,
    top_k_overlap,
)

ELIGIBLE = torch.tensor(
    [[False, True, True, True, True, False], [False, True, False, False, False, False]]
)
A = torch.tensor([[9.0, 3.0, 2.0, 1.0, 0.0, 9.0], [0.0, 1.0, 0.0, 0.0, 0.0, 0.0]])
B = torch.tensor([[0.0, 0.0, 1.0, 2.0, 3.0, 0.0], [0.0, 5.0, 0.0, 0.0, 0.0, 0.0]])


def test_token_ranking_orders_eligible_positions_with_ties_by_position() -> None:
    rankings = token_ranking(np.array([[5.0, 1.0, 2.0, 2.0, 1.0, 5.0]]), ELIGIBLE[:1])
    assert rankings[0].tolist() == [2, 3, 1, 4]
    assert [r.tolist() for r in token_ranking(A, ELIGIBLE)] == [[1, 2, 3, 4], [1]]


def test_rank_correlation_is_kendall_tau_per_example() -> None:
    tau = rank_correlation(A, B, ELIGIBLE)
    assert tau.shape == (2,)
    assert tau[0] == pytest.approx(-1.0)
    assert np.isnan(tau[1])  # a single eligible token
    assert rank_correlation(A, A, ELIGIBLE)[0] == pytest.approx(1.0)


def test_top_k_overlap_by_hand() -> None:
    # top 3 of A: positions 1, 2, 3; of B: 4, 3, 2 -> {2, 3} shared
    overlap = top_k_overlap(A, B, ELIGIBLE, k=3)
    np.testing.assert_allclose(overlap, [2 / 3, 1.0])  # k capped at n = 1
    with pytest.raises(ValueError, match="k"):
        top_k_overlap(A, B, ELIGIBLE, k=0)


def test_seed_stability_bundles_both_measures() -> None:
    stability = seed_stability(A, B, ELIGIBLE)
    np.testing.assert_allclose(stability.top_k_overlap, [2 / 3, 1.0])
    assert stability.kendall_tau[0] == pytest.approx(-1.0)


def test_shape_mismatch_names_the_argument() -> None:
    with pytest.raises(ValueError, match="scores"):
        rank_correlation(A[:, :3], B, ELIGIBLE)
