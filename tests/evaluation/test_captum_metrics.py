"""Token-aware wrappers of captum.metrics.infidelity and sensitivity_max."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from eval_toy_models import CLS, MASK, PAD, SEP, BagOfWordsModel

from captum_sigma.evaluation import embedding_infidelity, token_sensitivity_max

transformers = pytest.importorskip("transformers")

BERT_CLS, BERT_SEP, BERT_MASK = 2, 3, 4


@pytest.fixture(scope="module")
def tiny_bert():
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=16,
        num_labels=2,
        pad_token_id=PAD,
    )
    return transformers.BertForSequenceClassification(config).eval()


@pytest.fixture(scope="module")
def bert_batch():
    ids = torch.tensor(
        [
            [BERT_CLS, 10, 11, 12, 13, BERT_SEP, PAD],
            [BERT_CLS, 20, 21, BERT_SEP, PAD, PAD, PAD],
        ]
    )
    attention = (ids != PAD).long()
    eligible = attention.bool() & (ids != BERT_CLS) & (ids != BERT_SEP)
    return ids, attention, eligible


def bert_predictor(model):
    def predict_proba(input_ids, attention_mask):
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        return logits.softmax(dim=-1)

    return predict_proba


def no_hooks_left(model: torch.nn.Module) -> bool:
    return all(
        not module._forward_hooks and not module._forward_pre_hooks
        for module in model.modules()
    )


def test_infidelity_on_tiny_bert(tiny_bert, bert_batch) -> None:
    ids, attention, eligible = bert_batch
    predict = bert_predictor(tiny_bert)
    layer = tiny_bert.bert.embeddings
    scores = torch.randn(ids.shape, generator=torch.Generator().manual_seed(1))
    per_token = embedding_infidelity(
        predict, layer, ids, attention, eligible, scores, n_perturb_samples=4
    )
    assert per_token.shape == (2,) and per_token.dtype == np.float64
    assert np.isfinite(per_token).all() and (per_token >= 0).all()
    again = embedding_infidelity(
        predict, layer, ids, attention, eligible, scores, n_perturb_samples=4
    )
    np.testing.assert_allclose(again, per_token)  # seeded
    layer_attr = torch.randn(2, ids.shape[1], 32)
    baseline_ids = torch.where(eligible, PAD, ids)
    per_coordinate = embedding_infidelity(
        predict,
        layer,
        ids,
        attention,
        eligible,
        layer_attr,
        target=[0, 1],
        baseline_ids=baseline_ids,
        n_perturb_samples=4,
        max_examples_per_batch=4,
    )
    assert per_coordinate.shape == (2,) and np.isfinite(per_coordinate).all()
    assert no_hooks_left(tiny_bert)


def test_infidelity_rejects_bad_attributions(tiny_bert, bert_batch) -> None:
    ids, attention, eligible = bert_batch
    with pytest.raises(ValueError, match="attributions"):
        embedding_infidelity(
            bert_predictor(tiny_bert),
            tiny_bert.bert.embeddings,
            ids,
            attention,
            eligible,
            torch.zeros(2, 3),
        )
    with pytest.raises(ValueError, match="noise_std"):
        embedding_infidelity(
            bert_predictor(tiny_bert),
            tiny_bert.bert.embeddings,
            ids,
            attention,
            eligible,
            torch.zeros(ids.shape),
            noise_std=0.0,
        )
    assert no_hooks_left(tiny_bert)


def test_infidelity_prefers_the_true_contributions_of_a_linear_logit() -> None:
    """Bag of words: scaling token t's embedding by (1 - eps_t) moves the logit
    by -eps_t * w_t, so scores equal to the weights predict the change."""
    weights = torch.tensor([0.0, 0.1, -0.2, -0.3, 2.0, -1.0, 0.5, 1.0, 0.25, -0.5])
    model = BagOfWordsModel(weights.double()).eval()
    ids = torch.tensor([[CLS, 4, 5, 6, 7, 8, 9, SEP]])
    attention = torch.ones_like(ids)
    eligible = (ids != CLS) & (ids != SEP)
    truth = weights.double()[ids]
    shuffled = truth[:, [0, 3, 6, 1, 5, 2, 4, 7]]
    args = (model, model.embedding, ids, attention, eligible)
    options = {"target": 1, "noise_std": 0.01, "n_perturb_samples": 20}
    good = embedding_infidelity(*args, truth, **options)
    bad = embedding_infidelity(*args, shuffled, **options)
    assert good[0] < 1e-3 * bad[0]


def test_sensitivity_max_on_tiny_bert(tiny_bert, bert_batch) -> None:
    from captum.attr import LayerIntegratedGradients

    ids, attention, eligible = bert_batch
    lig = LayerIntegratedGradients(bert_predictor(tiny_bert), tiny_bert.bert.embeddings)

    def explain(input_ids, additional_forward_args, target):
        assert not input_ids.dtype.is_floating_point
        return lig.attribute(
            input_ids,
            baselines=torch.where(input_ids == BERT_CLS, input_ids, PAD),
            additional_forward_args=additional_forward_args,
            target=target,
            n_steps=4,
        ).sum(-1)

    values = token_sensitivity_max(
        explain,
        ids,
        attention,
        eligible,
        BERT_MASK,
        target=[1, 0],
        n_perturb_samples=3,
        max_examples_per_batch=4,
    )
    assert values.shape == (2,) and values.dtype == np.float64
    assert np.isfinite(values).all() and (values > 0).all()
    assert no_hooks_left(tiny_bert)


def test_sensitivity_masks_exactly_one_eligible_token_by_hand() -> None:
    ids = torch.tensor([[CLS, 4, 9, 6, SEP, PAD], [CLS, 7, SEP, PAD, PAD, PAD]])
    attention = (ids != PAD).long()
    eligible = attention.bool() & (ids != CLS) & (ids != SEP)
    seen = []

    def id_scores(input_ids, additional_forward_args, target):
        (mask,) = additional_forward_args
        assert input_ids.dtype == torch.long and mask.shape == input_ids.shape
        seen.append(input_ids.clone())
        return input_ids.double() * mask

    values = token_sensitivity_max(
        id_scores, ids, attention, eligible, MASK, n_perturb_samples=40
    )
    perturbed = torch.cat(seen[1:])
    original = ids.repeat_interleave(40, dim=0)
    changed = perturbed != original
    assert (changed.sum(dim=1) == 1).all()
    assert (perturbed[changed] == MASK).all()
    assert eligible.repeat_interleave(40, dim=0)[changed].all()
    # score = id: masking position t changes the norm by |id_t - MASK|; the
    # largest change is for id 9 (first row) and the only word, 7 (second row)
    norms = (ids.double() * attention).norm(dim=1)
    expected = [(9 - MASK) / norms[0].item(), (7 - MASK) / norms[1].item()]
    np.testing.assert_allclose(values, expected)


def test_sensitivity_checks_its_arguments() -> None:
    ids = torch.tensor([[CLS, 4, SEP]])
    attention = torch.ones_like(ids)
    with pytest.raises(ValueError, match="eligible"):
        token_sensitivity_max(
            lambda *a, **k: None, ids, attention, attention[:, :2].bool(), MASK
        )
    with pytest.raises(TypeError, match="mask_token_id"):
        token_sensitivity_max(
            lambda *a, **k: None, ids, attention, attention.bool(), None
        )
    with pytest.raises(ValueError, match="n_perturb_samples"):
        token_sensitivity_max(
            functools.partial(torch.zeros_like),
            ids,
            attention,
            attention.bool(),
            MASK,
            n_perturb_samples=0,
        )
