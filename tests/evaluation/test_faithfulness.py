"""Removal metrics against values computed by hand on a bag-of-words model.

The model's p_1 is sigmoid(bias + sum of token weights), so every perturbed
probability is known in closed form (``closed_form_p1``).
"""

from __future__ import annotations

import dataclasses
import inspect
import math

import numpy as np
import pytest
import torch
from eval_toy_models import CLS, MASK, PAD, SEP, closed_form_p1

from captum_sigma.evaluation import (
    ERASER_BINS,
    ForwardCounter,
    Removal,
    TokenBatch,
    comprehensiveness,
    curve_area,
    deletion_auc,
    deletion_curve,
    dependence_metrics,
    faithfulness_metrics,
    insertion_auc,
    insertion_curve,
    leave_one_out_tau,
    lerf_minus_morf,
    resample_curves,
    sufficiency,
)
from captum_sigma.evaluation.faithfulness import _bin_sizes

SENTENCE = [CLS, 4, 5, 6, 7, SEP]  # word weights 2.0, -1.0, 0.5, 1.0
IDS = torch.tensor([SENTENCE + [PAD]])
ATTENTION = torch.tensor([[1, 1, 1, 1, 1, 1, 0]])
ELIGIBLE = torch.tensor([[False, True, True, True, True, False, False]])
# Huge scores on [CLS]/[SEP]/[PAD] must be ignored. Ranking: 1, 4, 2, 3.
SCORES = torch.tensor([[100.0, 0.9, 0.3, 0.1, 0.7, 100.0, 100.0]])
ALL = {1, 2, 3, 4}
OPERATORS = ["delete", "mask"]


def removal(operator: str) -> Removal:
    return Removal(operator, pad_token_id=PAD, mask_token_id=MASK)


def tokens(target=1, ids=IDS, attention=ATTENTION, eligible=ELIGIBLE) -> TokenBatch:
    """The test sentence (or the given batch) with its target (None: predicted)."""
    return TokenBatch.build(ids, attention, eligible, target)


def p(removed: set, operator: str) -> float:
    return closed_form_p1(SENTENCE, removed, operator)


@pytest.mark.parametrize("operator", OPERATORS)
def test_comprehensiveness_by_hand(bow_model, operator: str) -> None:
    full = p(set(), operator)
    expected = np.mean(
        [full - p({1}, operator), full - p({1, 4}, operator), full - p(ALL, operator)]
    )
    value = comprehensiveness(
        bow_model, tokens(), SCORES, removal(operator), bins=(0.25, 0.5, 1.0)
    )
    assert value.shape == (1,) and value.dtype == np.float64
    assert value[0] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("operator", OPERATORS)
def test_comprehensiveness_default_eraser_bins(bow_model, operator: str) -> None:
    # n = 4: k = ceil(0.04), ceil(0.2), ceil(0.4), ceil(0.8), ceil(2) = 1, 1, 1, 1, 2
    full = p(set(), operator)
    expected = (4 * (full - p({1}, operator)) + (full - p({1, 4}, operator))) / 5
    value = comprehensiveness(bow_model, tokens(), SCORES, removal(operator))
    assert value[0] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("operator", OPERATORS)
def test_sufficiency_by_hand(bow_model, operator: str) -> None:
    full = p(set(), operator)
    # keep the top k = 1, 2, 4 tokens: remove the others
    expected = np.mean([full - p({2, 3, 4}, operator), full - p({2, 3}, operator), 0])
    value = sufficiency(
        bow_model, tokens(), SCORES, removal(operator), bins=(0.25, 0.5, 1.0)
    )
    assert value[0] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("operator", OPERATORS)
def test_deletion_and_insertion_curves_by_hand(bow_model, operator: str) -> None:
    removed_in_order = [set(), {1}, {1, 4}, {1, 4, 2}, ALL]
    expected_deletion = [p(r, operator) for r in removed_in_order]
    expected_insertion = [p(ALL - r, operator) for r in removed_in_order]
    args = (bow_model, tokens(), SCORES, removal(operator))
    deletion = deletion_curve(*args)
    insertion = insertion_curve(*args)
    np.testing.assert_allclose(deletion[0], expected_deletion, atol=1e-12)
    np.testing.assert_allclose(insertion[0], expected_insertion, atol=1e-12)

    def trapezoid_by_hand(c: list) -> float:
        return (c[0] / 2 + c[1] + c[2] + c[3] + c[4] / 2) / 4

    deletion_area = deletion_auc(*args)
    insertion_area = insertion_auc(*args)
    assert deletion_area[0] == pytest.approx(trapezoid_by_hand(expected_deletion))
    assert insertion_area[0] == pytest.approx(trapezoid_by_hand(expected_insertion))


@pytest.mark.parametrize("operator", OPERATORS)
def test_lerf_minus_morf_by_hand(bow_model, operator: str) -> None:
    morf = [p(r, operator) for r in [set(), {1}, {1, 4}, {1, 4, 2}, ALL]]
    lerf = [p(r, operator) for r in [set(), {3}, {3, 2}, {3, 2, 4}, ALL]]
    expected = curve_area(np.array(lerf)) - curve_area(np.array(morf))
    value = lerf_minus_morf(bow_model, tokens(), SCORES, removal(operator))
    assert value[0] == pytest.approx(expected, abs=1e-12)
    assert expected > 0  # the scores rank the strongest word first


@pytest.mark.parametrize("operator", OPERATORS)
def test_leave_one_out_tau_by_hand(bow_model, operator: str) -> None:
    # drops follow the weights: position 1 > 4 > 3 > 2; the scores rank
    # 1 > 4 > 2 > 3: one discordant pair of six, tau = (5 - 1) / 6
    value = leave_one_out_tau(bow_model, tokens(), SCORES, removal(operator))
    assert value[0] == pytest.approx(2 / 3)


def test_target_defaults_to_the_predicted_class(bow_model) -> None:
    def value(target) -> np.ndarray:
        return comprehensiveness(bow_model, tokens(target), SCORES, Removal())

    assert p(set(), "delete") > 0.5
    predicted = value(None)
    np.testing.assert_allclose(predicted, value(1))
    np.testing.assert_allclose(value(torch.tensor([0])), -predicted, atol=1e-12)


def test_ties_are_broken_by_position(bow_model) -> None:
    ties = torch.zeros_like(SCORES)
    curve = deletion_curve(bow_model, tokens(), ties, Removal())[0]
    expected = [p(r, "delete") for r in [set(), {1}, {1, 2}, {1, 2, 3}, ALL]]
    np.testing.assert_allclose(curve, expected, atol=1e-12)


def test_lerf_minus_morf_equals_insertion_minus_deletion(bow_model) -> None:
    for operator in OPERATORS:
        args = (bow_model, tokens(), SCORES, removal(operator))
        difference = insertion_auc(*args) - deletion_auc(*args)
        np.testing.assert_allclose(lerf_minus_morf(*args), difference, atol=1e-12)


def batch_of_three() -> tuple:
    ids = torch.tensor(
        [
            [CLS, 4, 5, 6, 7, 8, 9, SEP],
            [CLS, 9, 4, SEP, PAD, PAD, PAD, PAD],
            [CLS, SEP, PAD, PAD, PAD, PAD, PAD, PAD],  # nothing eligible
        ]
    )
    attention = (ids != PAD).long()
    eligible = attention.bool() & (ids != CLS) & (ids != SEP)
    scores = torch.tensor(
        [
            [0.0, 0.5, -0.2, 0.5, 1.0, 0.1, -1.0, 0.0],
            [0.0, -0.3, 0.8, 0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0] * 8,
        ]
    )
    return ids, attention, eligible, scores


@pytest.mark.parametrize("operator", OPERATORS)
def test_combined_metrics_match_single_metrics(bow_model, operator: str) -> None:
    ids, attention, eligible, scores = batch_of_three()
    batch = TokenBatch.build(ids, attention, eligible, [1, 0, 1])
    args = (bow_model, batch, scores, removal(operator))
    result = faithfulness_metrics(*args)
    singles = {
        "comprehensiveness": comprehensiveness,
        "sufficiency": sufficiency,
        "deletion_auc": deletion_auc,
        "insertion_auc": insertion_auc,
        "lerf_minus_morf": lerf_minus_morf,
        "loo_tau": leave_one_out_tau,
    }
    assert set(result.metrics()) == set(singles)
    for name, metric in singles.items():
        np.testing.assert_allclose(result.metrics()[name], metric(*args), atol=1e-12)
    for got, want in zip(result.deletion_curves, deletion_curve(*args)):
        np.testing.assert_allclose(got, want, atol=1e-12)


def test_metrics_do_not_depend_on_batch_composition(bow_model) -> None:
    ids, attention, eligible, scores = batch_of_three()
    for operator in OPERATORS:
        batch = TokenBatch.build(ids, attention, eligible)
        batched = faithfulness_metrics(
            bow_model, batch, scores, removal(operator), batch_size=5
        ).metrics()
        for row, length in [(0, 8), (1, 4)]:
            alone = faithfulness_metrics(
                bow_model,
                batch.select([row]),
                scores[row : row + 1, :length],
                removal(operator),
                batch_size=1,
            ).metrics()
            for name, values in batched.items():
                assert values[row] == pytest.approx(alone[name][0], abs=1e-12), name


def test_example_without_eligible_tokens_gives_nan(bow_model) -> None:
    ids, attention, eligible, scores = batch_of_three()
    batch = TokenBatch.build(ids, attention, eligible)
    result = faithfulness_metrics(bow_model, batch, scores, Removal())
    for name, values in result.metrics().items():
        assert np.isnan(values[2]), name
        assert np.isfinite(values[:2]).all(), name
    assert result.deletion_curves[2].shape == (1,)
    assert result.deletion_curves[0].shape == (7,)


def test_single_eligible_token(bow_model) -> None:
    ids = torch.tensor([[CLS, 4, SEP]])
    attention = torch.ones_like(ids)
    eligible = torch.tensor([[False, True, False]])
    batch = TokenBatch.build(ids, attention, eligible, 1)
    result = faithfulness_metrics(bow_model, batch, ids * 1.0, Removal())
    full, empty = closed_form_p1([CLS, 4, SEP], set(), "delete"), closed_form_p1(
        [CLS, 4, SEP], {1}, "delete"
    )
    np.testing.assert_allclose(result.deletion_curves[0], [full, empty])
    assert result.deletion_auc[0] == pytest.approx((full + empty) / 2)
    assert result.comprehensiveness[0] == pytest.approx(full - empty)
    assert np.isnan(result.loo_tau[0])


class RecordingPredictor:
    """predict_proba that records every batch it is given."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.batches: list = []

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        assert not torch.is_grad_enabled()
        self.batches.append((input_ids.clone(), attention_mask.clone()))
        return self.model(input_ids, attention_mask)


@pytest.mark.parametrize("operator", OPERATORS)
def test_special_tokens_and_padding_are_never_removed(bow_model, operator) -> None:
    ids, attention, eligible, scores = batch_of_three()
    scores = scores + 50.0 * (~eligible)  # tempt the ranking with specials
    spy = RecordingPredictor(bow_model)
    batch = TokenBatch.build(ids, attention, eligible)
    faithfulness_metrics(spy, batch, scores, removal(operator), batch_size=4)
    rows = torch.cat([batch for batch, _ in spy.batches])
    masks = torch.cat([mask for _, mask in spy.batches])
    assert max(batch.shape[0] for batch, _ in spy.batches) <= 4
    assert (rows[:, 0] == CLS).all()
    assert ((rows == SEP).sum(dim=1) == 1).all()
    # the [SEP] closes every sequence: it is the last attended token
    last = masks.sum(dim=1) - 1
    assert (rows[torch.arange(rows.shape[0]), last] == SEP).all()
    assert (rows[masks == 0] == PAD).all()
    if operator == "mask":  # every row is a source row with eligible ids masked
        for row, mask in zip(rows, masks):
            assert any(
                torch.equal(mask, attention[s])
                and torch.equal(row[row != MASK], ids[s][row != MASK])
                and eligible[s][row == MASK].all()
                for s in range(ids.shape[0])
            )
    else:
        assert not (rows == MASK).any()


def test_forward_passes_are_batched_and_counted(bow_model) -> None:
    counter = ForwardCounter(bow_model)
    faithfulness_metrics(counter, tokens(), SCORES, Removal(), batch_size=4)
    # 1 unperturbed + 4 deletion rows + 3 new insertion rows (keeping nothing is
    # deleting all) + 2 new leave-one-out rows (removing the top token is the
    # first deletion step, removing the last one keeps the top three)
    assert counter.sequences == 10
    assert counter.calls == 1 + math.ceil(9 / 4)
    counter.reset()
    assert (counter.calls, counter.sequences) == (0, 0)
    comprehensiveness(counter, tokens(), SCORES, Removal(), batch_size=64)
    assert (counter.calls, counter.sequences) == (2, 1 + 2)  # k = 1 and k = 2


def test_bin_sizes_are_ceil_of_bin_times_n() -> None:
    assert _bin_sizes((0.1,), 30) == [3]  # 0.1 * 30 = 3.0000000000000004
    assert _bin_sizes(ERASER_BINS, 4) == [1, 1, 1, 1, 2]
    assert _bin_sizes(ERASER_BINS, 20) == [1, 1, 2, 4, 10]
    assert _bin_sizes((1.0,), 7) == [7]


@pytest.mark.parametrize("bins", [(), (0.0,), (0.5, 1.5), (-0.1,), "ab"])
def test_bins_outside_unit_interval_are_rejected(bow_model, bins) -> None:
    with pytest.raises(ValueError, match="bins"):
        comprehensiveness(bow_model, tokens(), SCORES, Removal(), bins=bins)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scores": SCORES[:, :5]}, "scores"),
        ({"target": 2}, "target"),
        ({"batch_size": 0}, "batch_size"),
        ({"scores": torch.full_like(SCORES, float("nan"))}, "finite"),
        # a TokenBatch built directly, past the checks of TokenBatch.build
        (
            {"batch": dataclasses.replace(tokens(), eligible=ELIGIBLE | True)},
            "eligible marks padding",
        ),
    ],
)
def test_bad_arguments_raise_value_error(bow_model, change, message) -> None:
    kwargs = {
        "predict_proba": bow_model,
        "batch": tokens(None),
        "scores": SCORES,
        "removal": Removal(),
    }
    kwargs.update(change)
    if "target" in kwargs:
        kwargs["batch"] = tokens(kwargs.pop("target"))
    with pytest.raises(ValueError, match=message):
        faithfulness_metrics(**kwargs)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"eligible": ELIGIBLE[:, :5]}, "eligible"),
        ({"eligible": torch.ones_like(ELIGIBLE)}, "eligible marks padding"),
        ({"attention": ATTENTION[:, :5]}, "attention_mask"),
        ({"ids": IDS.float()}, "input_ids"),
        ({"target": [1, 1]}, "target"),
        ({"target": [1.0]}, "target"),
    ],
)
def test_bad_token_batch_raises_value_error(change, message) -> None:
    with pytest.raises(ValueError, match=message):
        tokens(**change)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "erase"}, "operator"),
        ({"kind": "mask", "pad_token_id": PAD}, "mask_token_id"),
    ],
)
def test_bad_removal_raises_value_error(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        Removal(**kwargs)


def test_metrics_take_a_token_batch_and_a_removal() -> None:
    """One order everywhere: forward, batch, scores, removal; the argument lists
    of the old API (ids, mask, eligible, scores, target, operator=...) fail."""
    signed = [comprehensiveness, sufficiency, deletion_curve, insertion_curve]
    signed += [deletion_auc, insertion_auc, lerf_minus_morf, leave_one_out_tau]
    signed.append(faithfulness_metrics)
    for metric in signed + [dependence_metrics]:
        names = list(inspect.signature(metric).parameters)
        assert names[1:4] == ["batch", "scores", "removal"], metric.__name__
        assert not {"operator", "pad_token_id", "mask_token_id"} & set(names)
    with pytest.raises(TypeError, match="batch must be a TokenBatch"):
        comprehensiveness(None, IDS, ATTENTION, ELIGIBLE)
    with pytest.raises(TypeError, match="removal must be a Removal"):
        comprehensiveness(None, tokens(), SCORES, "delete")
    with pytest.raises(TypeError, match="operator"):
        comprehensiveness(None, tokens(), SCORES, Removal(), operator="mask")
    batch = TokenBatch.build(IDS, ATTENTION, ELIGIBLE, mask_token_id=MASK)
    assert batch.removal("mask") == Removal("mask", PAD, MASK)
    assert batch.removal() == Removal("delete", PAD, MASK)
    with pytest.raises(dataclasses.FrozenInstanceError):
        batch.removal().kind = "mask"
    with pytest.raises(dataclasses.FrozenInstanceError):
        batch.target = None


def test_predict_proba_must_return_a_batch_of_class_scores() -> None:
    def flat(input_ids, attention_mask):
        return torch.ones(input_ids.shape[0])

    with pytest.raises(ValueError, match="predict_proba"):
        comprehensiveness(flat, tokens(), SCORES, Removal())


def test_curve_helpers() -> None:
    assert curve_area(np.array([1.0, 0.0])) == pytest.approx(0.5)
    assert curve_area(np.array([1.0, 1.0, 0.0])) == pytest.approx(0.75)
    assert math.isnan(curve_area(np.array([0.3])))
    grid = resample_curves([np.array([1.0, 0.0]), np.array([0.2])], n_points=3)
    np.testing.assert_allclose(grid[0], [1.0, 0.5, 0.0])
    assert np.isnan(grid[1]).all()
