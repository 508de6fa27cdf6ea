"""Distribution- and representation-change metrics in closed form (bag of words).

The bag-of-words model's logits are ``[0, z]`` with z = bias + sum of the attended
token weights (a masked token counts the [MASK] weight), so every perturbed
logit, probability, total variation and ((Δz) / r)² is known by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from eval_toy_models import CLS, HAND_BIAS, HAND_WEIGHTS, MASK, PAD, SEP, sigmoid

from captum_sigma.evaluation import (
    ERASER_BINS,
    METRIC_FAMILIES,
    METRICS,
    DependenceResult,
    ForwardCounter,
    Removal,
    TokenBatch,
    curve_area,
    deletion_curve,
    dependence_metrics,
    distribution_change,
    faithfulness_metrics,
    insertion_curve,
    representation_change,
)
from captum_sigma.evaluation._cache import CachedForward
from captum_sigma.evaluation.dependence import DEPENDENCE_METRICS

#: float64 rounding of p and z here: a handful of ulps of values of order 1-10;
#: the library and the test compute the same sums in other orders.
ATOL = 64 * np.finfo(np.float64).eps

SENTENCE = [CLS, 4, 5, 6, 7, SEP]  # word weights 2.0, -1.0, 0.5, 1.0
IDS = torch.tensor([SENTENCE + [PAD]])
ATTENTION = torch.tensor([[1, 1, 1, 1, 1, 1, 0]])
ELIGIBLE = torch.tensor([[False, True, True, True, True, False, False]])
SCORES = torch.tensor([[100.0, 0.9, 0.3, 0.1, 0.7, 100.0, 100.0]])  # 1, 4, 2, 3
RANKING = [1, 4, 2, 3]
BINS = (0.25, 0.5, 1.0)  # k = 1, 2, 4
R = np.array([0.5, 2.0])  # r per class; the explained class is 1


def removal(operator: str) -> Removal:
    return Removal(operator, pad_token_id=PAD, mask_token_id=MASK)


BATCH = TokenBatch.build(IDS, ATTENTION, ELIGIBLE, 1)


def bow_logits(model):
    """The bag of words' logits [0, z] (its forward returns their softmax)."""

    def predict_logits(input_ids, attention_mask):
        contributions = model.embedding(input_ids).squeeze(-1)
        logit = (contributions * attention_mask).sum(dim=1) + model.bias
        return torch.stack([torch.zeros_like(logit), logit], dim=1)

    return predict_logits


def z(removed: set, operator: str, sentence=SENTENCE) -> float:
    """Closed-form logit of class 1 with the tokens at ``removed`` removed."""
    logit = HAND_BIAS
    for position, token in enumerate(sentence):
        if position not in removed:
            logit += HAND_WEIGHTS[token]
        elif operator == "mask":
            logit += HAND_WEIGHTS[MASK]
    return logit


def tv(removed: set, operator: str) -> float:
    """Total variation of the two-class distributions: |Δp_1|."""
    return abs(sigmoid(z(set(), operator)) - sigmoid(z(removed, operator)))


def d(removed: set, operator: str) -> float:
    return ((z(removed, operator) - z(set(), operator)) / R[1]) ** 2


@pytest.mark.parametrize("operator", ["delete", "mask"])
def test_both_families_by_hand(bow_model, operator: str) -> None:
    result = dependence_metrics(
        bow_logits(bow_model),
        BATCH,
        SCORES,
        removal(operator),
        regularization=R,
        bins=BINS,
    )
    assert isinstance(result, DependenceResult)
    top = [set(RANKING[:k]) for k in (1, 2, 4)]
    only = [set(RANKING[k:]) for k in (1, 2, 4)]
    for name, change in (("dist", tv), ("repr", d)):
        metrics = result.metrics()
        comprehensiveness = np.mean([change(s, operator) for s in top])
        sufficiency = np.mean([change(s, operator) for s in only])
        deletion = [change(set(RANKING[:k]), operator) for k in range(5)]
        insertion = [change(set(RANKING[k:]), operator) for k in range(5)]
        assert metrics[f"{name}_comprehensiveness"][0] == pytest.approx(
            comprehensiveness, abs=ATOL
        )
        assert metrics[f"{name}_sufficiency"][0] == pytest.approx(sufficiency, abs=ATOL)
        np.testing.assert_allclose(
            result.curves[f"{name}_deletion"][0], deletion, atol=ATOL
        )
        np.testing.assert_allclose(
            result.curves[f"{name}_insertion"][0], insertion, atol=ATOL
        )
        assert metrics[f"{name}_deletion_auc"][0] == pytest.approx(
            curve_area(np.array(deletion)), abs=ATOL
        )
        assert metrics[f"{name}_insertion_auc"][0] == pytest.approx(
            curve_area(np.array(insertion)), abs=ATOL
        )
    # nothing removed: no change; the first deletion point and the last
    # insertion point are the input itself
    assert result.curves["dist_deletion"][0][0] == 0.0
    assert result.curves["repr_insertion"][0][-1] == 0.0


@pytest.mark.parametrize("operator", ["delete", "mask"])
def test_two_class_total_variation_is_the_absolute_signed_change(
    bow_model, operator: str
) -> None:
    rng = np.random.default_rng(0)
    ids = torch.tensor(
        [[CLS, 4, 5, 6, 7, 8, 9, SEP], [CLS, 9, 8, 4, SEP, PAD, PAD, PAD]]
    )
    mask = (ids != PAD).long()
    eligible = (ids > SEP) & (ids != MASK)
    scores = torch.from_numpy(rng.normal(size=ids.shape))
    common = (TokenBatch.build(ids, mask, eligible), scores, removal(operator))
    change = dependence_metrics(bow_logits(bow_model), *common, regularization=R)
    signed = {
        kind: curves(bow_model, *common)
        for kind, curves in (
            ("deletion", deletion_curve),
            ("insertion", insertion_curve),
        )
    }
    for kind in ("deletion", "insertion"):
        for i, (tv_curve, p_curve) in enumerate(
            zip(change.curves[f"dist_{kind}"], signed[kind])
        ):
            full = signed["deletion"][i][0]  # p_c(x)
            np.testing.assert_allclose(tv_curve, np.abs(full - p_curve), atol=ATOL)
    # distribution_change is the total variation of any two distributions
    p = np.array([[0.2, 0.5, 0.3], [1.0, 0.0, 0.0]])
    q = np.array([[0.1, 0.5, 0.4], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(distribution_change(p, q), [0.1, 1.0], atol=ATOL)
    np.testing.assert_allclose(
        representation_change(np.array([1.0, 2.0]), np.array([3.0, 2.0]), 4.0),
        [0.25, 0.0],
    )


# three words of positive weights 2.0, 0.5 and 1.0 and one of 0.25: removing a
# token lowers z by its weight, so the leave-one-out change orders the tokens
# 2.0 > 1.0 > 0.5 > 0.25 under both changes (TV and D grow with |Δz| here)
MONOTONE = [CLS, 6, 8, 4, 7, SEP]
MONOTONE_IDS = torch.tensor([MONOTONE])
MONOTONE_MASK = torch.ones_like(MONOTONE_IDS)
MONOTONE_ELIGIBLE = torch.tensor([[False, True, True, True, True, False]])


def leave_one_out_scores() -> torch.Tensor:
    """The exact leave-one-out distribution change of every word (delete)."""
    full = sigmoid(z(set(), "delete", MONOTONE))
    scores = torch.zeros(MONOTONE_IDS.shape, dtype=torch.float64)
    for position in range(1, 5):
        removed = sigmoid(z({position}, "delete", MONOTONE))
        scores[0, position] = abs(full - removed)
    return scores


def monotone_metrics(bow_model, scores: torch.Tensor) -> dict[str, float]:
    result = dependence_metrics(
        bow_logits(bow_model),
        TokenBatch.build(MONOTONE_IDS, MONOTONE_MASK, MONOTONE_ELIGIBLE, 1),
        scores,
        removal("delete"),
        regularization=R,
        bins=(0.25, 0.5, 0.75),
    )
    return {name: float(value[0]) for name, value in result.metrics().items()}


def test_ideal_ranking_beats_its_reverse_and_constant_scores(bow_model) -> None:
    ideal = leave_one_out_scores()
    reverse = torch.where(MONOTONE_ELIGIBLE, -ideal, torch.zeros_like(ideal))
    # constant scores: ties go to the earlier token, here the least important
    constant = MONOTONE_ELIGIBLE.double()
    best = monotone_metrics(bow_model, ideal)
    for other_scores in (reverse, constant):
        other = monotone_metrics(bow_model, other_scores)
        for name in DEPENDENCE_METRICS:
            higher = METRICS[name][1]
            assert (best[name] > other[name]) == higher, name
            assert best[name] != other[name], name


def test_curves_false_keeps_the_bin_metrics_and_runs_fewer_rows(bow_model) -> None:
    common = (BATCH, SCORES, Removal())
    counted = ForwardCounter(bow_logits(bow_model))
    full = dependence_metrics(counted, *common, regularization=R, bins=BINS)
    with_curves = counted.sequences
    counted.reset()
    part = dependence_metrics(
        counted, *common, regularization=R, bins=BINS, curves=False
    )
    assert counted.sequences < with_curves
    for name in DEPENDENCE_METRICS:
        if name.endswith("_auc"):
            assert np.isnan(part.metrics()[name]).all()
        else:
            np.testing.assert_array_equal(part.metrics()[name], full.metrics()[name])
    assert all(len(curve) == 0 for curves in part.curves.values() for curve in curves)


def test_scalar_regularization_and_argument_errors(bow_model) -> None:
    common = (bow_logits(bow_model), BATCH, SCORES, Removal())
    scalar = dependence_metrics(*common, regularization=2.0, bins=BINS)
    vector = dependence_metrics(
        *common, regularization=torch.tensor([7.0, 2.0]), bins=BINS
    )
    for name in DEPENDENCE_METRICS:
        np.testing.assert_array_equal(scalar.metrics()[name], vector.metrics()[name])
    for bad, message in (
        (np.ones(3), "one r per class"),
        (np.array([1.0, 0.0]), "finite and positive"),
        (np.array([1.0, np.nan]), "finite and positive"),
        ("r", "hold numbers"),
    ):
        with pytest.raises(ValueError, match=message):
            dependence_metrics(*common, regularization=bad)
    with pytest.raises(ValueError, match="mask_token_id"):
        dependence_metrics(*common[:3], Removal("mask"), regularization=R)


def test_example_without_eligible_tokens_gives_nan(bow_model) -> None:
    eligible = ELIGIBLE.clone()
    eligible[0] = False
    batch = TokenBatch.build(IDS, ATTENTION, eligible, 1)
    result = dependence_metrics(
        bow_logits(bow_model), batch, SCORES, Removal(), regularization=R
    )
    for name in DEPENDENCE_METRICS:
        assert np.isnan(result.metrics()[name]).all()


def test_the_families_reuse_the_signed_metrics_forward_passes(bow_model) -> None:
    """Behind the shared cache, the unsigned families run no sequence of their
    own, and the signed metrics get the cache's softmax of the same logits."""
    ids = torch.tensor(
        [[CLS, 4, 5, 6, 7, 8, 9, SEP], [CLS, 9, 8, 4, SEP, PAD, PAD, PAD]]
    )
    mask = (ids != PAD).long()
    eligible = (ids > SEP) & (ids != MASK)
    scores = torch.from_numpy(np.random.default_rng(1).normal(size=ids.shape))
    batch = TokenBatch.build(ids, mask, eligible)
    for operator in ("delete", "mask"):
        common = (batch, scores, removal(operator))
        counted = ForwardCounter(bow_logits(bow_model))
        cached = CachedForward(counted, max_rows=5)
        signed = faithfulness_metrics(cached.predict_proba, *common)
        rows, requested = cached.model_rows, cached.requested_rows
        assert counted.sequences == rows
        change = dependence_metrics(cached.predict_logits, *common, regularization=R)
        assert cached.model_rows == rows and counted.sequences == rows
        assert cached.requested_rows > requested  # they did read the cache
        direct = faithfulness_metrics(bow_model, *common)
        for name, value in signed.metrics().items():
            np.testing.assert_allclose(value, direct.metrics()[name], atol=ATOL)
        uncached = dependence_metrics(bow_logits(bow_model), *common, regularization=R)
        for name, value in change.metrics().items():
            np.testing.assert_allclose(value, uncached.metrics()[name], atol=ATOL)


def test_registry_has_both_families_with_their_directions() -> None:
    assert METRIC_FAMILIES["distribution"] == DEPENDENCE_METRICS[:4]
    assert METRIC_FAMILIES["representation"] == DEPENDENCE_METRICS[4:]
    assert list(METRICS) == [m for names in METRIC_FAMILIES.values() for m in names]
    for prefix in ("dist", "repr"):
        assert METRICS[f"{prefix}_comprehensiveness"][1] is True
        assert METRICS[f"{prefix}_sufficiency"][1] is False
        assert METRICS[f"{prefix}_deletion_auc"][1] is True
        assert METRICS[f"{prefix}_insertion_auc"][1] is False
    assert ERASER_BINS == (0.01, 0.05, 0.10, 0.20, 0.50)
