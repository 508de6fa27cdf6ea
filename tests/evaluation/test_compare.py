"""The comparison runner on a tiny random BERT: every method, metric and table."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from rounding import AMPLIFICATION_BOUND, relative_forward_difference

from captum_sigma import REFERENCE_OPTIONS, SigmaOptions
from captum_sigma.evaluation import (
    METRICS,
    STABILITY_METRICS,
    MethodSpec,
    bootstrap_interval,
    classifier_forward,
    compare,
    default_methods,
    paired_bootstrap_interval,
)
from captum_sigma.evaluation.methods import DEFAULT_METHOD_NAMES
from captum_sigma.evaluation.report import (
    best_rows,
    cost_table,
    metric_table,
    stability_table,
    write_comparison,
)

transformers = pytest.importorskip("transformers")

WORDS = (
    "the a film movie is was good bad great boring fun dull witty plot acting "
    "and but not very too script cast story ending"
).split()
TEXTS = [
    "the film is good .",
    "a boring , dull movie but the acting is great",
    "not very fun",
    "witty plot and great acting .",
    "the script was too dull",
]
#: The Sigma rows' data sample for r (the default sample is Rotten Tomatoes text,
#: mostly [UNK] for the 100-word vocabulary here).
SIGMA_DATA = [
    "the film is good",
    "a dull plot",
    "great acting and a witty script",
    "the story was boring but the cast was fun",
    "not a very good ending",
    "the movie is too dull",
]
SIGNED = {"IntegratedGradients", "InputXGradient", "DeepLift", "FeatureAblation"}
SIGNED |= {"Lime", "KernelShap"}


def root_conftest():
    """tests/conftest.py (its make_tiny_bert), loaded by path."""
    path = Path(__file__).resolve().parents[1] / "conftest.py"
    spec = importlib.util.spec_from_file_location("_captum_sigma_root_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_tokenizer(folder: Path):
    """A 100-token BERT word-piece tokenizer built offline from a vocab file."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + WORDS
    vocab += [f"[unused{i}]" for i in range(100 - len(vocab))]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return transformers.BertTokenizer(vocab=str(path))


def small_methods(**overrides) -> dict:
    settings = {
        "Sigma": SigmaOptions(n_steps=6),
        "Sigma (faithful)": dataclasses.replace(REFERENCE_OPTIONS, n_steps=12),
    }
    options = {
        "sigma_settings": settings,
        "ig_steps": 4,
        "n_samples": 24,
        "sigma_data": SIGMA_DATA,
    }
    options.update(overrides)
    return default_methods(**options)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    model = root_conftest().make_tiny_bert()
    tokenizer = tiny_tokenizer(tmp_path_factory.mktemp("tokenizer"))
    return model, tokenizer


@pytest.fixture(scope="module")
def result(setup):
    model, tokenizer = setup
    return compare(
        model,
        tokenizer,
        TEXTS,
        small_methods(),
        labels=[1, 0, 0, 1, 0],
        batch_size=2,
        stability_n=3,
    )


def test_every_method_and_signed_absolute_row(result) -> None:
    expected = ["Sigma", "Sigma (faithful)", *DEFAULT_METHOD_NAMES]
    assert result.methods == expected
    absolute = [f"|{name}|" for name in expected if name in SIGNED]
    assert result.rows == expected + absolute
    assert {m for m, signed in result.signed.items() if signed} == SIGNED
    for row in result.rows:
        scores = result.scores[row]
        assert scores.shape == result.input_ids.shape
        assert np.all(scores[~result.eligible] == 0)
        assert np.isfinite(scores).all()
    assert np.all(result.scores["Sigma"] >= 0)


def test_table_has_every_method_and_metric(result) -> None:
    for operator in ("delete", "mask"):
        header, cells, records = metric_table(result, operator)
        assert header[1:] == [label for label, _ in METRICS.values()]
        assert [line[0] for line in cells] == result.rows
        assert all(len(line) == len(header) for line in cells)
        assert len(records) == len(result.rows) * len(METRICS)
        for row in result.rows:
            for metric in METRICS:
                values = result.metrics[operator][row][metric]
                assert values.shape == (len(TEXTS),)
        # deletion and insertion curves run from the full input to nothing
        for deletion, insertion in zip(*result.curves[operator]["Sigma"]):
            assert deletion[0] == pytest.approx(insertion[-1])
            assert deletion[-1] == pytest.approx(insertion[0])
    header, cells, _ = cost_table(result)
    assert [line[0] for line in cells] == result.methods
    for method in result.methods:
        assert result.median_seconds(method) >= 0
        forward, backward = result.passes[method]
        assert math.isfinite(forward) and math.isfinite(backward)


def test_counted_passes(result) -> None:
    # Sigma: 4 warm-start probes + 6 steps of n_samples draws, each draw one
    # forward and one backward
    expected = SigmaOptions(n_steps=6).passes_per_example()
    assert expected == 4 + 6 * SigmaOptions.n_samples
    assert result.passes["Sigma"][1] == pytest.approx(expected)
    assert result.passes["Sigma (faithful)"][1] == pytest.approx(12)
    assert result.passes["IntegratedGradients"][1] == pytest.approx(4)
    assert result.passes["Saliency"] == (1.0, 1.0)
    assert result.passes["Lime"] == (24.0, 0.0)
    assert result.passes["KernelShap"] == (24.0, 0.0)
    assert result.passes["Random"] == (0.0, 0.0)
    n_eligible = result.eligible.sum(axis=1)
    assert result.passes["FeatureAblation"][0] >= n_eligible.mean()


def test_seed_stability_and_convergence_delta(result) -> None:
    assert set(result.stability) == {"Sigma", "Sigma (faithful)", "Lime", "KernelShap"}
    header, cells, _ = stability_table(result)
    assert header[1:] == [label for label, _ in STABILITY_METRICS.values()]
    for stability in result.stability.values():
        assert stability.kendall_tau.shape == (3,)
        assert np.all((stability.top_k_overlap >= 0) & (stability.top_k_overlap <= 1))
    assert result.convergence_delta["IntegratedGradients"].shape == (len(TEXTS),)
    assert np.isfinite(result.convergence_delta["IntegratedGradients"]).all()


def test_target_is_predicted_class(setup, result) -> None:
    model, tokenizer = setup
    encoded = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        proba = model(**encoded).logits.softmax(-1)
    np.testing.assert_array_equal(result.target, proba.argmax(-1).numpy())
    np.testing.assert_allclose(result.target_proba, proba.max(-1).values, atol=1e-6)


def token_score_tolerance(model, tokenizer) -> float:
    """Sigma explains logit / r; the solver amplifies the rounding that padding
    causes in the logits by at most AMPLIFICATION_BOUND (tests/text/
    test_rounding.py); a token's score ``K · log(scale / σ)`` (K embedding
    elements) then moves by at most ``K · |Δσ / σ|``."""
    rounding = relative_forward_difference(model, tokenizer, TEXTS)
    return model.config.hidden_size * AMPLIFICATION_BOUND * rounding


def test_scores_do_not_depend_on_batching(setup, result) -> None:
    model, tokenizer = setup
    names = ["Sigma", "IntegratedGradients", "FeatureAblation", "Lime", "Random"]
    single = compare(
        model,
        tokenizer,
        TEXTS,
        {name: spec for name, spec in small_methods().items() if name in names},
        operators=(),
        batch_size=1,
        stability_n=0,
    )
    sigma_tolerance = token_score_tolerance(model, tokenizer)
    for name in names:
        atol = sigma_tolerance if name == "Sigma" else 1e-4
        np.testing.assert_allclose(
            single.scores[name], result.scores[name], atol=atol, err_msg=name
        )


def test_sigma_row_is_the_text_explainers_and_probability_row_is_extra(
    setup,
) -> None:
    """The row "Sigma" is TextExplainer's own result (same forward, r, options)."""
    from captum_sigma.evaluation.methods import SIGMA_PROBABILITY_ROW
    from captum_sigma.text import TextExplainer

    model, tokenizer = setup
    options = SigmaOptions(n_steps=6)
    methods = default_methods(
        ["Sigma", SIGMA_PROBABILITY_ROW],
        sigma_settings={"Sigma": options},
        sigma_data=SIGMA_DATA,
    )
    compared = compare(
        model, tokenizer, TEXTS, methods, operators=(), batch_size=1, stability_n=0
    )
    explainer = TextExplainer(model, tokenizer, data=SIGMA_DATA, options=options)
    for index, explanation in enumerate(explainer.explain(TEXTS)):
        eligible = compared.eligible[index, : len(explanation.tokens)]
        expected = np.where(eligible, explanation.scores, 0.0)
        np.testing.assert_allclose(
            compared.scores["Sigma"][index, : len(explanation.tokens)],
            expected,
            atol=token_score_tolerance(model, tokenizer),
        )
    assert "logit" in compared.settings["methods"]["Sigma"]["explained"]
    probability = compared.settings["methods"][SIGMA_PROBABILITY_ROW]
    assert probability["regularization"].startswith("None")


def test_bootstrap_interval_contains_the_mean(result) -> None:
    rng = np.random.default_rng(3)
    for values in (rng.normal(size=40), rng.exponential(size=7), np.ones(5)):
        interval = bootstrap_interval(values, seed=1)
        assert interval.low <= interval.mean <= interval.high
        assert interval.mean == pytest.approx(values.mean())
        assert interval == bootstrap_interval(values, seed=1)  # seeded
    for operator in result.operators:
        for row in result.rows:
            for metric in METRICS:
                interval = result.interval(operator, row, metric)
                if interval.n:
                    assert (
                        interval.low - 1e-12 <= interval.mean <= interval.high + 1e-12
                    )
    with_nan = bootstrap_interval(np.array([1.0, np.nan, 3.0]))
    assert with_nan.n == 2 and with_nan.mean == 2.0
    assert bootstrap_interval(np.array([np.nan])).n == 0


def test_bold_only_when_paired_interval_excludes_runner_up() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=60)
    clear = {"a": base + 1.0, "b": base, "c": base - 1.0}
    assert best_rows(clear, higher_is_better=True) == {"a"}
    assert best_rows(clear, higher_is_better=False) == {"c"}
    tied = {"a": base + rng.normal(scale=0.01, size=60), "b": base}
    assert best_rows(tied, higher_is_better=True) == set()
    difference = paired_bootstrap_interval(clear["a"], clear["b"])
    assert difference.mean == pytest.approx(1.0)


def test_user_methods_callable_and_captum_object(setup) -> None:
    from captum.attr import LayerGradientXActivation, LayerIntegratedGradients

    model, tokenizer = setup

    def first_token(input_ids, attention_mask, target):
        scores = torch.zeros(input_ids.shape)
        scores[:, 1] = 1.0
        return scores

    gradient = LayerGradientXActivation(
        classifier_forward(model), model.bert.embeddings
    )
    spec = MethodSpec(
        name="IG, 2 steps",
        build=lambda forward, layer: LayerIntegratedGradients(forward, layer),
        kwargs=lambda batch, seed: {"baselines": batch.baseline_ids, "n_steps": 2},
    )
    result = compare(
        model,
        tokenizer,
        TEXTS[:3],
        {
            "First": first_token,
            "Gradient": gradient,
            "Spec": spec,
        },
        operators=("mask",),
        stability_n=0,
    )
    assert result.methods == ["First", "Gradient", "Spec"]
    assert "|Gradient|" in result.rows
    assert math.isnan(result.passes["Gradient"][0])
    assert result.passes["Spec"] == (4.0, 2.0)  # + inputs and baselines
    ranks = result.scores["First"].argmax(axis=1)
    assert np.all(ranks == 1)


def test_write_comparison_files_and_escapes_html(setup, tmp_path) -> None:
    model, tokenizer = setup
    texts = ["the film is <img src=x onerror=alert(1)> good", "a dull plot"]
    result = compare(
        model,
        tokenizer,
        texts,
        ["Sigma", "Saliency", "FeatureAblation", "Random"],
        operators=("delete",),
        stability_n=0,
    )
    paths = write_comparison(result, tmp_path / "out")
    for key in ("markdown", "csv", "html"):
        assert paths[key].is_file() and paths[key].stat().st_size > 0
    pngs = sorted(p.name for p in (tmp_path / "out" / "figures").glob("*.png"))
    assert pngs == ["agreement.png", "curves_delete.png", "faithfulness_vs_cost.png"]
    markdown = paths["markdown"].read_text()
    for method in result.rows:
        assert f"| {method.replace('|', chr(92) + '|')} |" in markdown
    page = paths["html"].read_text()
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    lines = paths["csv"].read_text().splitlines()
    assert lines[0] == "table,operator,row,metric,mean,ci_low,ci_high,n,bold"
    assert len(lines) > len(result.rows) * len(METRICS)


def test_argument_errors(setup) -> None:
    model, tokenizer = setup
    with pytest.raises(ValueError, match="operators"):
        compare(model, tokenizer, TEXTS, ["Random"], operators=("erase",))
    with pytest.raises(ValueError, match="unknown method"):
        compare(model, tokenizer, TEXTS, ["Occlusion2"])
    with pytest.raises(ValueError, match="labels"):
        compare(model, tokenizer, TEXTS, ["Random"], labels=[1])
    with pytest.raises(ValueError, match="batch_size"):
        compare(model, tokenizer, TEXTS, ["Random"], batch_size=0)
    with pytest.raises(TypeError, match="texts"):
        compare(model, tokenizer, "one sentence", ["Random"])
    with pytest.raises(TypeError, match="method 'bad'"):
        compare(model, tokenizer, TEXTS, {"bad": 3})


def test_curve_n_limits_only_the_curve_metrics(setup) -> None:
    model, tokenizer = setup
    options = {"operators": ("delete",), "stability_n": 0, "batch_size": 2}
    full = compare(model, tokenizer, TEXTS, ["Saliency", "Random"], **options)
    part = compare(
        model, tokenizer, TEXTS, ["Saliency", "Random"], curve_n=2, **options
    )
    assert part.settings["curve_n"] == 2 and full.settings["curve_n"] == len(TEXTS)
    for row in full.rows:
        got, want = part.metrics["delete"][row], full.metrics["delete"][row]
        for metric in ("comprehensiveness", "sufficiency", "loo_tau"):
            np.testing.assert_allclose(got[metric], want[metric], atol=1e-6)
        for metric in ("deletion_auc", "insertion_auc", "lerf_minus_morf"):
            np.testing.assert_allclose(got[metric][:2], want[metric][:2], atol=1e-6)
            assert np.isnan(got[metric][2:]).all()
        deletion, insertion = part.curves["delete"][row]
        assert all(len(c) == 0 for c in deletion[2:] + insertion[2:])
    interval = part.interval("delete", "Saliency", "deletion_auc")
    assert interval.n == 2


def test_select_and_combine_results_of_the_same_sentences(setup) -> None:
    model, tokenizer = setup
    options = {"operators": ("mask",), "batch_size": 2}
    main = compare(model, tokenizer, TEXTS, ["Sigma", "Saliency"], **options)
    extra = compare(model, tokenizer, TEXTS[:3], ["Random"], stability_n=0, **options)
    subset = main.select(range(3))
    assert subset.texts == TEXTS[:3] and subset.settings["n_sentences"] == 3
    assert subset.input_ids.shape[1] == int(subset.attention_mask.sum(1).max())
    np.testing.assert_array_equal(subset.stability_indices, [0, 1, 2])
    both = subset.combine(extra)
    assert both.methods == ["Sigma", "Saliency", "Random"]
    assert set(both.metrics["mask"]) == set(both.rows)
    for row in both.rows:
        assert both.scores[row].shape == both.input_ids.shape
    np.testing.assert_allclose(
        both.metrics["mask"]["Saliency"]["comprehensiveness"],
        main.metrics["mask"]["Saliency"]["comprehensiveness"][:3],
    )
    np.testing.assert_allclose(
        both.scores["Random"][:, : extra.scores["Random"].shape[1]],
        extra.scores["Random"],
    )
    with pytest.raises(ValueError, match="same sentences"):
        main.combine(extra)
    with pytest.raises(ValueError, match="both results"):
        both.combine(extra)
