"""The configuration study: candidates, the criterion, the choice, the variants."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_compare import SIGMA_DATA, TEXTS, root_conftest, tiny_tokenizer

from captum_sigma import SigmaOptions
from captum_sigma.engine import PREVIOUS_DEFAULT_OPTIONS
from captum_sigma.evaluation import compare
from captum_sigma.evaluation.methods import (
    SIGMA_LOGIT_ROW,
    SIGMA_OUTPUTS,
    classifier_forward,
    default_methods,
    sigma_variant,
)
from captum_sigma.evaluation.study import (
    CRITERION_CELLS,
    RATES,
    StudyConfig,
    adopt,
    choose,
    study_configs,
)
from captum_sigma.regularization import RELATIVE_FLOOR
from captum_sigma.text import DEFAULT_TEXT_OUTPUT, TextExplainer

FAST = SigmaOptions(n_steps=4)


def test_candidates_cover_outputs_rates_and_both_scales() -> None:
    configs = study_configs(0.0556, 0.4927)
    assert configs[0].is_default()
    assert len({c.name for c in configs}) == len(configs) == 30
    assert {c.output for c in configs} == set(SIGMA_OUTPUTS)
    for output in SIGMA_OUTPUTS:
        rates = {c.rate for c in configs if c.output == output and c.scale == 0.5}
        assert rates == set(RATES)
        scales = {c.scale for c in configs if c.output == output and c.rate == 0.1}
        assert scales == {0.5, 0.556, 4.927}
    assert len(study_configs(0.0556)) == 24


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="output"):
        StudyConfig("softmax", 0.1, 0.5)
    with pytest.raises(ValueError, match="rate"):
        StudyConfig("logit", 0.0, 0.5)
    with pytest.raises(ValueError, match="scale"):
        StudyConfig("logit", 0.1, float("nan"))


def _metrics(values: dict[str, dict[str, float]]) -> dict:
    """metrics[operator][row][metric] with the same per-sentence value 3 times."""
    return {
        op: {
            row: {m: np.full(3, v) for m, v in by_metric.items()}
            for row, by_metric in values.items()
        }
        for op in ("delete", "mask")
    }


def test_choose_ranks_in_each_direction_and_picks_the_lowest_mean_rank() -> None:
    configs = study_configs(0.0556)[:3]
    good = {"comprehensiveness": 0.5, "sufficiency": 0.1}
    good |= {"dist_comprehensiveness": 0.5, "dist_sufficiency": 0.1}
    bad = {k: (0.1 if "comprehensiveness" in k else 0.5) for k in good}
    middle = {k: 0.3 for k in good}
    metrics = _metrics(
        {configs[0].name: bad, configs[1].name: middle, configs[2].name: good}
    )
    choice = choose(metrics, configs)
    assert choice.chosen == configs[2]
    assert choice.mean_rank.tolist() == [3.0, 2.0, 1.0]
    assert choice.order() == [2, 1, 0]
    assert len(CRITERION_CELLS) * 2 == 8


def test_exact_tie_goes_to_the_default() -> None:
    configs = study_configs(0.0556)[:2]
    same = {m: 0.2 for m, _ in CRITERION_CELLS}
    choice = choose(_metrics({c.name: same for c in configs}), configs[::-1])
    assert choice.chosen.is_default()


def test_adoption_rule() -> None:
    assert adopt([1, 1, 1, 1, 1, 0, 0, 0])
    assert not adopt([1, 1, 1, 1, 0, 0, 0, 0])
    assert not adopt([1, 1, 1, 1, 1, 1, 1, -1])
    with pytest.raises(ValueError):
        adopt([2])


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    model = root_conftest().make_tiny_bert()
    tokenizer = tiny_tokenizer(tmp_path_factory.mktemp("tokenizer"))
    return model, tokenizer


def test_logit_variant_is_the_previous_default_explainers_row(setup) -> None:
    # The explainer's default became the probability; the "logit" variant is the
    # previous default's row, SIGMA_LOGIT_ROW (TextExplainer(output="logit")).
    model, tokenizer = setup
    specs = default_methods([SIGMA_LOGIT_ROW], sigma_data=SIGMA_DATA)
    specs["variant"] = sigma_variant(
        "variant", "logit", PREVIOUS_DEFAULT_OPTIONS, data=SIGMA_DATA
    )
    result = compare(model, tokenizer, TEXTS, specs, operators=(), stability_n=0)
    np.testing.assert_array_equal(
        result.scores["variant"], result.scores[SIGMA_LOGIT_ROW]
    )


def test_default_row_is_the_adopted_candidate(setup) -> None:
    """The row "Sigma" (TextExplainer's default) computes the study candidate of
    the default preset's output, by construction."""
    model, tokenizer = setup
    chosen = SigmaOptions(n_steps=4, rate=1.0)
    specs = default_methods(["Sigma"], sigma_settings={"Sigma": chosen})
    specs["candidate"] = sigma_variant("candidate", DEFAULT_TEXT_OUTPUT, chosen)
    result = compare(model, tokenizer, TEXTS, specs, operators=(), stability_n=0)
    np.testing.assert_array_equal(result.scores["candidate"], result.scores["Sigma"])


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_pooled_variants_explain_the_encoder_as_a_bare_encoder(setup, pooling):
    model, tokenizer = setup
    spec = sigma_variant(pooling, pooling, FAST, data=SIGMA_DATA)
    result = compare(
        model, tokenizer, TEXTS[:2], {pooling: spec}, operators=(), stability_n=0
    )
    explainer = TextExplainer(
        model.base_model, tokenizer, data=SIGMA_DATA, pooling=pooling, options=FAST
    )
    ids = torch.as_tensor(result.input_ids)
    mask = torch.as_tensor(result.attention_mask)
    expected, _ = explainer.attribute_tokens(ids, mask, seed=0)
    expected = expected.double().numpy() * result.eligible
    np.testing.assert_allclose(result.scores[pooling], expected, rtol=0, atol=0)


def test_probability_variant_divides_by_r_of_the_probabilities(setup) -> None:
    model, tokenizer = setup
    spec = sigma_variant("p", "probability / r", FAST, data=SIGMA_DATA)
    forward = classifier_forward(model, "proba", tokenizer)
    method = spec.build(forward, model.base_model.embeddings)
    encoded = tokenizer(SIGMA_DATA, return_tensors="pt", padding=True)
    with torch.no_grad():
        p = forward(encoded["input_ids"], encoded["attention_mask"]).double()
    # population std floored at RELATIVE_FLOOR x RMS, as estimate_regularization
    floor = RELATIVE_FLOOR * p.pow(2).mean().sqrt()
    expected = p.std(dim=0, unbiased=False).clamp_min(floor)
    # float32 probabilities carry a relative error of about eps32 each; the std
    # of values near their mean amplifies it by max|p| / std (derived bound, x4)
    eps = torch.finfo(torch.float32).eps
    rtol = float(4 * eps * p.abs().max() / expected.min())
    torch.testing.assert_close(
        method.method.forward_func.r.double(), expected, rtol=rtol, atol=0
    )
    result = compare(
        model, tokenizer, TEXTS[:2], {"p": spec}, operators=(), stability_n=0
    )
    scores = result.scores["p"]
    assert np.isfinite(scores).all() and (scores >= 0).all()
    assert (scores[~result.eligible] == 0).all()


def test_unknown_output_is_refused() -> None:
    with pytest.raises(ValueError, match="output must be one of"):
        sigma_variant("x", "hidden", FAST)
