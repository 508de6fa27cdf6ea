"""On an additive model the true per-token contributions beat random scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from eval_toy_models import CLS, MASK, PAD, SEP, BagOfWordsModel

from captum_sigma.evaluation import Removal, TokenBatch, faithfulness_metrics

N_WORDS = 36


def additive_setup() -> tuple:
    generator = torch.Generator().manual_seed(5)
    weights = torch.randn(4 + N_WORDS, generator=generator, dtype=torch.float64) * 1.5
    weights[[PAD, CLS, SEP]] = torch.tensor([0.0, 0.1, -0.1], dtype=torch.float64)
    weights[MASK] = 0.3
    model = BagOfWordsModel(weights, bias=-0.2).eval()
    lengths = torch.randint(5, 15, (12,), generator=generator).tolist()
    ids = torch.full((len(lengths), max(lengths) + 2), PAD)
    for row, length in enumerate(lengths):
        # distinct words: a repeated word ties in the scores, while float
        # rounding may split the tie in the leave-one-out drops
        words = 4 + torch.randperm(N_WORDS, generator=generator)[:length]
        ids[row, : length + 2] = torch.cat(
            [torch.tensor([CLS]), words, torch.tensor([SEP])]
        )
    attention = (ids != PAD).long()
    eligible = attention.bool() & (ids != CLS) & (ids != SEP)
    with torch.no_grad():
        predicted = model(ids, attention).argmax(dim=1)
    # contribution of each token to the logit of the predicted class
    sign = torch.where(predicted == 1, 1.0, -1.0).double()
    true_scores = sign[:, None] * weights[ids] * attention
    random_scores = torch.rand(ids.shape, generator=generator)
    return model, ids, attention, eligible, true_scores, random_scores


@pytest.mark.parametrize("operator", ["delete", "mask"])
def test_true_contributions_beat_random_on_every_metric(operator: str) -> None:
    model, ids, attention, eligible, true_scores, random_scores = additive_setup()
    batch = TokenBatch.build(ids, attention, eligible)
    removal = Removal(operator, pad_token_id=PAD, mask_token_id=MASK)
    truth = faithfulness_metrics(model, batch, true_scores, removal, batch_size=32)
    random = faithfulness_metrics(model, batch, random_scores, removal, batch_size=32)
    better_when_higher = ["comprehensiveness", "insertion_auc", "lerf_minus_morf"]
    better_when_higher.append("loo_tau")
    for name in better_when_higher:
        assert truth.metrics()[name].mean() > random.metrics()[name].mean(), name
    for name in ["sufficiency", "deletion_auc"]:
        assert truth.metrics()[name].mean() < random.metrics()[name].mean(), name
    # the true ranking is optimal for every example, not only on average
    assert (truth.comprehensiveness >= random.comprehensiveness - 1e-12).all()
    assert (truth.deletion_auc <= random.deletion_auc + 1e-12).all()
    np.testing.assert_allclose(truth.loo_tau, 1.0)
