"""The comparison runner on a tiny random BERT: every method, metric and table."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import importlib.util
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from rounding import AMPLIFICATION_BOUND, relative_forward_difference

from captum_sigma import REFERENCE_OPTIONS, SigmaOptions
from captum_sigma.engine import PREVIOUS_DEFAULT_OPTIONS
from captum_sigma.evaluation import (
    DEFAULT_SIGMA_SETTINGS,
    ERASER_BINS,
    FAITHFUL_SIGMA_SETTINGS,
    METRIC_FAMILIES,
    METRICS,
    STABILITY_METRICS,
    MethodSpec,
    as_method_spec,
    bootstrap_interval,
    classifier_forward,
    compare,
    default_methods,
    faithfulness_metrics,
    paired_bootstrap_interval,
    score_comparison,
)
from captum_sigma.evaluation.methods import DEFAULT_METHOD_NAMES
from captum_sigma.evaluation.report import (
    best_rows,
    cost_table,
    metric_table,
    stability_table,
    write_comparison,
)

from comparison.merge import combine, methods_subset, select

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
        "Sigma": SigmaOptions(n_steps=6, tol=None),  # a fixed budget: exact counts
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
    assert result.metric_names == list(METRICS)
    assert result.families == list(METRIC_FAMILIES)
    for operator in ("delete", "mask"):
        for family, names in METRIC_FAMILIES.items():
            header = metric_table(result, operator, family=family)[0]
            assert header[1:] == [METRICS[name][0] for name in names]
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
        # the change curves start (end) at the unchanged input: exactly 0
        for family in ("distribution", "representation"):
            curves = result.family_curves(operator, "Sigma", family)
            for deletion, insertion in zip(*curves):
                assert deletion[0] == 0.0 and insertion[-1] == 0.0
                assert deletion[-1] == pytest.approx(insertion[0])
    header, cells, _ = cost_table(result)
    assert [line[0] for line in cells] == result.methods
    for method in result.methods:
        assert result.median_seconds(method) >= 0
        forward, backward = result.passes[method]
        assert math.isfinite(forward) and math.isfinite(backward)


def test_counted_passes(result) -> None:
    # Sigma: one pass for the explained scalar's Jacobian (control variate and
    # warm start) + 4 chains x 6 steps of n_samples draws, each draw one forward
    # and one backward
    expected = SigmaOptions(n_steps=6, tol=None).passes_per_example(n_outputs=1)
    assert expected == 1 + 4 * 6 * SigmaOptions.n_samples
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
    """Sigma explains the probability (self-normalised) or the logit / r; the
    solver amplifies the rounding that padding
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
    """The row "Sigma" is TextExplainer's own result (same forward, r, options):
    since the configuration study, the predicted class's probability,
    self-normalised (the explainer's default output)."""
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
    # built as the registry builds it: the explainer's default output
    explainer = TextExplainer(model, tokenizer, data=SIGMA_DATA, options=options)
    assert explainer.output == "log-odds"
    for index, explanation in enumerate(explainer.explain(TEXTS)):
        eligible = compared.eligible[index, : len(explanation.tokens)]
        expected = np.where(eligible, explanation.scores, 0.0)
        np.testing.assert_allclose(
            compared.scores["Sigma"][index, : len(explanation.tokens)],
            expected,
            atol=token_score_tolerance(model, tokenizer),
        )
    sigma = compared.settings["methods"]["Sigma"]
    assert sigma["explained"] == "log-odds of the predicted class / r"
    assert sigma["regularization"].startswith("r from")
    probability = compared.settings["methods"][SIGMA_PROBABILITY_ROW]
    assert probability["regularization"].startswith("None")


def test_registry_defaults_are_the_explainers_and_the_logit_row_is_the_previous(
    setup,
) -> None:
    """DEFAULT_SIGMA_SETTINGS / FAITHFUL_SIGMA_SETTINGS follow the explainer's
    default (probability, rate 1); SIGMA_LOGIT_ROW is the previous default
    (logit / r, SigmaOptions()), computed by TextExplainer(output="logit")."""
    from captum_sigma.evaluation.methods import SIGMA_LOGIT_ROW
    from captum_sigma.text import DEFAULT_TEXT_OPTIONS, TextExplainer

    assert DEFAULT_SIGMA_SETTINGS == {"Sigma": DEFAULT_TEXT_OPTIONS}
    assert FAITHFUL_SIGMA_SETTINGS == {
        "Sigma": DEFAULT_TEXT_OPTIONS,
        "Sigma (faithful)": REFERENCE_OPTIONS,
    }
    specs = default_methods(["Sigma", SIGMA_LOGIT_ROW], sigma_data=SIGMA_DATA)
    assert specs["Sigma"].settings["rate"] == DEFAULT_TEXT_OPTIONS.rate
    assert specs["Sigma"].settings["explained"] == (
        "log-odds of the predicted class / r"
    )
    previous = specs[SIGMA_LOGIT_ROW].settings
    assert previous["rate"] == 0.1 and previous["explained"] == (
        "logit of the predicted class / r"
    )
    assert previous["regularization"] == f"r from {len(SIGMA_DATA)} given texts"
    faithful = default_methods(
        ["Sigma (faithful)"], sigma_settings=FAITHFUL_SIGMA_SETTINGS
    )["Sigma (faithful)"].settings
    assert faithful["explained"] == "log-odds of the predicted class / r"
    assert faithful["n_steps"] == REFERENCE_OPTIONS.n_steps
    model, tokenizer = setup
    compared = compare(
        model,
        tokenizer,
        TEXTS,
        {SIGMA_LOGIT_ROW: specs[SIGMA_LOGIT_ROW]},
        operators=(),
        batch_size=len(TEXTS),
        stability_n=0,
    )
    explainer = TextExplainer(
        model,
        tokenizer,
        data=SIGMA_DATA,
        output="logit",
        options=PREVIOUS_DEFAULT_OPTIONS,
    )
    for index, explanation in enumerate(explainer.explain(TEXTS)):
        eligible = compared.eligible[index, : len(explanation.tokens)]
        np.testing.assert_allclose(
            compared.scores[SIGMA_LOGIT_ROW][index, : len(explanation.tokens)],
            np.where(eligible, explanation.scores, 0.0),
            atol=token_score_tolerance(model, tokenizer),
        )


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
    from captum_sigma.evaluation.methods import SIGMA_LOGIT_ROW

    # Sigma on the logit / r (the previous default): this random tiny model gives
    # p ~ 0.5 to every text, so the default's self-normalised probability leaves
    # every sigma at its cap, the scores flat and LOO tau undefined (5 signed
    # cells, not 6); the report needs a row whose scores vary.
    methods = {
        "Sigma": as_method_spec(
            "Sigma",
            default_methods([SIGMA_LOGIT_ROW], sigma_data=SIGMA_DATA)[SIGMA_LOGIT_ROW],
        ),
        **default_methods(["Saliency", "FeatureAblation", "Random"]),
    }
    result = compare(
        model, tokenizer, texts, methods, operators=("delete",), stability_n=0
    )
    paths = write_comparison(result, tmp_path / "out")
    for key in ("markdown", "csv", "html"):
        assert paths[key].is_file() and paths[key].stat().st_size > 0
    pngs = sorted(p.name for p in (tmp_path / "out" / "figures").glob("*.png"))
    assert pngs == [
        "agreement.png",
        "curves_delete.png",
        "curves_distribution_delete.png",
        "faithfulness_vs_cost.png",
    ]
    markdown = paths["markdown"].read_text()
    for heading, cells in (
        ("signed (drop of p_c)", 6),
        ("distribution change", 4),
        ("representation change (home ground for Sigma)", 4),
    ):
        assert f"## Removal metrics, operator `delete`: {heading}\n" in markdown
        assert f"- {heading}, {cells} cells: significantly better than" in markdown
    assert "home ground for such a row" in markdown
    # the legend says what the scored Sigma row explains (issue #17): here the
    # logit, not what the default explainer explains
    assert "- The row Sigma explains the logit of the predicted class / r" in (markdown)
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


#: Largest change of a probability or a logit of the tiny BERT between two
#: batchings of the same sequences (float32 rounding of O(1) values is ~1e-7).
BATCHING_ATOL = 1e-6


def batching_tolerance(result, row: str, metric: str) -> float:
    """BATCHING_ATOL, carried through D = (Δz / r)² for the representation
    change: Δz moves by at most e = 2 BATCHING_ATOL (two logits), so D moves by
    at most 2 sqrt(D) e / r + (e / r)², D at most the largest curve point."""
    if not metric.startswith("repr_"):
        return BATCHING_ATOL
    r = min(result.settings["regularization"])
    points = [
        value
        for curves in result.family_curves("delete", row, "representation")
        for curve in curves
        for value in curve
    ]
    e = 2 * BATCHING_ATOL / r
    return 2 * np.sqrt(max(points)) * e + e**2


def test_curve_n_limits_only_the_curve_metrics(setup) -> None:
    model, tokenizer = setup
    options = {"operators": ("delete",), "stability_n": 0, "batch_size": 2}
    full = compare(model, tokenizer, TEXTS, ["Saliency", "Random"], **options)
    part = compare(
        model, tokenizer, TEXTS, ["Saliency", "Random"], curve_n=2, **options
    )
    assert part.settings["curve_n"] == 2 and full.settings["curve_n"] == len(TEXTS)
    curve_metrics = {"deletion_auc", "insertion_auc", "lerf_minus_morf"}
    curve_metrics |= {
        m for m in METRICS if m.endswith(("_deletion_auc", "_insertion_auc"))
    }
    assert len(curve_metrics) == 7
    for row in full.rows:
        got, want = part.metrics["delete"][row], full.metrics["delete"][row]
        for metric in METRICS:
            atol = batching_tolerance(full, row, metric)
            if metric in curve_metrics:
                np.testing.assert_allclose(got[metric][:2], want[metric][:2], atol=atol)
                assert np.isnan(got[metric][2:]).all()
            else:
                np.testing.assert_allclose(got[metric], want[metric], atol=atol)
        for family in METRIC_FAMILIES:
            deletion, insertion = part.family_curves("delete", row, family)
            assert all(len(c) == 0 for c in deletion[2:] + insertion[2:])
            assert all(len(c) > 0 for c in deletion[:2] + insertion[:2])
    interval = part.interval("delete", "Saliency", "deletion_auc")
    assert interval.n == 2


def test_select_and_combine_results_of_the_same_sentences(setup) -> None:
    model, tokenizer = setup
    options = {"operators": ("mask",), "batch_size": 2}
    main = compare(model, tokenizer, TEXTS, ["Sigma", "Saliency"], **options)
    extra = compare(model, tokenizer, TEXTS[:3], ["Random"], stability_n=0, **options)
    subset = select(main, range(3))
    assert subset.texts == TEXTS[:3] and subset.settings["n_sentences"] == 3
    assert subset.input_ids.shape[1] == int(subset.attention_mask.sum(1).max())
    np.testing.assert_array_equal(subset.stability_indices, [0, 1, 2])
    both = combine(subset, extra)
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
        combine(main, extra)
    with pytest.raises(ValueError, match="both results"):
        combine(both, extra)
    for family in METRIC_FAMILIES:  # every family's curves follow the rows
        deletion, _ = both.family_curves("mask", "Random", family)
        assert len(deletion) == 3


def test_combine_unscored_results_then_score_them(setup) -> None:
    model, tokenizer = setup
    options = {"batch_size": 2, "stability_n": 0, "sigma_data": SIGMA_DATA}
    saliency = compare(model, tokenizer, TEXTS, ["Saliency"], operators=(), **options)
    random = compare(model, tokenizer, TEXTS, ["Random"], operators=(), **options)
    both = combine(saliency, random)
    assert both.metrics == {} and both.rows == ["Saliency", "Random"]
    scored = score_comparison(both, model, tokenizer, sigma_data=SIGMA_DATA)
    together = compare(model, tokenizer, TEXTS, ["Saliency", "Random"], **options)
    for operator in ("delete", "mask"):
        for row in together.rows:
            for metric in METRICS:
                np.testing.assert_array_equal(
                    scored.metrics[operator][row][metric],
                    together.metrics[operator][row][metric],
                )
    with pytest.raises(ValueError, match="both with metrics or both without"):
        combine(scored, compare(model, tokenizer, TEXTS, ["Saliency"], operators=()))
    signed_only = dataclasses.replace(
        random,
        metrics={
            op: {
                row: {m: v for m, v in by.items() if m in METRIC_FAMILIES["signed"]}
                for row, by in by_row.items()
            }
            for op, by_row in together.metrics.items()
        },
        curves={op: {"Random": c["Random"]} for op, c in together.curves.items()},
    )
    with pytest.raises(ValueError, match="same metrics"):
        combine(
            score_comparison(saliency, model, tokenizer, sigma_data=SIGMA_DATA),
            signed_only,
        )


def test_score_comparison_of_a_pickled_result_equals_compare(setup) -> None:
    """The attributions of compare(operators=()) (pickled, even by a version
    without ``dependence_curves``) scored later give exactly compare()'s metrics."""
    model, tokenizer = setup
    methods = ["Saliency", "IntegratedGradients", "FeatureAblation", "Random"]
    options = {"batch_size": 2, "stability_n": 0, "sigma_data": SIGMA_DATA}
    scored = compare(model, tokenizer, TEXTS, methods, curve_n=3, **options)
    bare = compare(model, tokenizer, TEXTS, methods, operators=(), **options)
    assert bare.metrics == {} and bare.curves == {} and bare.operators == []
    legacy = copy.copy(bare)
    del legacy.__dict__["dependence_curves"]  # as pickled before the field
    restored = pickle.loads(pickle.dumps(legacy))
    assert restored.dependence_curves == {}
    again = score_comparison(
        restored, model, tokenizer, curve_n=3, sigma_data=SIGMA_DATA
    )
    assert again.rows == scored.rows and again.operators == ["delete", "mask"]
    for operator in ("delete", "mask"):
        for row in scored.rows:
            for metric in METRICS:
                np.testing.assert_array_equal(
                    again.metrics[operator][row][metric],
                    scored.metrics[operator][row][metric],
                )
            for family in METRIC_FAMILIES:
                for got, want in zip(
                    again.family_curves(operator, row, family),
                    scored.family_curves(operator, row, family),
                ):
                    for a, b in zip(got, want):
                        np.testing.assert_array_equal(a, b)
    for key in ("operators", "bins", "curve_n", "regularization"):
        assert again.settings[key] == scored.settings[key], key
    assert again.settings["regularization_source"].endswith(
        f"data={len(SIGMA_DATA)} texts).regularization()"
    )
    # r of the logits is the Sigma rows' r: TextExplainer's on the same data
    from captum_sigma.text import TextExplainer

    expected_r = TextExplainer(
        model, tokenizer, data=SIGMA_DATA, output="logit"
    ).regularization()
    np.testing.assert_array_equal(
        again.settings["regularization"], expected_r.double().numpy()
    )
    given = score_comparison(
        bare, model, tokenizer, operators=("mask",), regularization=[1.0, 1.0]
    )
    assert given.operators == ["mask"] and given.settings["regularization_source"] == (
        "given"
    )
    with pytest.raises(ValueError, match="at least one"):
        score_comparison(bare, model, tokenizer, operators=())


compare_module = importlib.import_module("captum_sigma.evaluation.compare")


def test_unsigned_families_add_no_forward_pass(setup) -> None:
    """Every family together runs the very rows of the signed family alone."""
    model, tokenizer = setup
    bare = compare(
        model,
        tokenizer,
        TEXTS,
        ["Saliency", "IntegratedGradients", "Random"],
        operators=(),
        stability_n=0,
    )
    batch = _token_batch(bare, tokenizer)
    scores = {row: bare.scores[row] for row in bare.rows}
    logits = classifier_forward(model, "logit")
    rows = {}
    for dependence in (False, True):
        metrics, _, dependence_curves, cached = compare_module._removal_metrics(
            scores,
            batch,
            3,
            ("delete", "mask"),
            ERASER_BINS,
            logits,
            256,
            np.array([1.0, 1.0]),
            dependence=dependence,
        )
        rows[dependence] = (cached.model_rows, cached.requested_rows)
        names = METRICS if dependence else METRIC_FAMILIES["signed"]
        assert list(metrics["delete"]["Saliency"]) == list(names)
    assert rows[True][0] == rows[False][0] > 0
    assert rows[True][1] > rows[False][1]  # the families read the cache
    scored = score_comparison(bare, model, tokenizer, curve_n=3, sigma_data=SIGMA_DATA)
    assert scored.settings["metric_forward_rows"] == rows[False][0]


def _token_batch(result, tokenizer):
    from captum_sigma.evaluation import TokenBatch

    return TokenBatch.build(
        torch.as_tensor(result.input_ids),
        torch.as_tensor(result.attention_mask),
        torch.as_tensor(result.eligible),
        torch.as_tensor(result.target),
        pad_token_id=tokenizer.pad_token_id,
        mask_token_id=tokenizer.mask_token_id,
    )


class _ProbabilityCache:
    """The cache before the unsigned families: ``classifier_forward(model,
    "proba")`` run once per distinct sequence, in the same length-sorted,
    trimmed chunks (a copy of the old ``CachedPredictProba``)."""

    def __init__(self, predict_proba, max_rows: int) -> None:
        self.predict_proba, self.max_rows, self.cache = predict_proba, max_rows, {}

    def __call__(self, input_ids, attention_mask):
        ids = input_ids.cpu().numpy()
        lengths = attention_mask.sum(dim=1).cpu().numpy().astype(np.int64)
        keys = [row[:n].tobytes() for row, n in zip(ids, lengths)]
        missing = {}
        for row, key in enumerate(keys):
            if key not in self.cache and key not in missing:
                missing[key] = row
        order = np.array(list(missing.values()), dtype=np.int64)
        order = order[np.argsort(lengths[order], kind="stable")]
        key_of = {row: key for key, row in missing.items()}
        for start in range(0, order.size, self.max_rows):
            chunk = order[start : start + self.max_rows]
            width = max(1, int(lengths[chunk].max()))
            index = torch.from_numpy(chunk)
            with torch.no_grad():
                out = self.predict_proba(
                    input_ids[index, :width], attention_mask[index, :width]
                )
            for row, value in zip(chunk, out.double().numpy()):
                self.cache[key_of[int(row)]] = value
        return torch.from_numpy(np.stack([self.cache[key] for key in keys]))


def test_signed_metrics_are_those_of_the_probability_forward_bit_for_bit(
    setup,
) -> None:
    """The cache now holds logits; the signed metrics read the softmax of each
    batch of logits, which is what ``classifier_forward(model, "proba")``
    returns for that batch: every value equals the old design's exactly."""
    model, tokenizer = setup
    methods = ["Saliency", "IntegratedGradients", "Random"]
    bare = compare(model, tokenizer, TEXTS, methods, operators=(), stability_n=0)
    max_rows = 7  # several chunks
    scored = score_comparison(
        bare, model, tokenizer, max_rows=max_rows, sigma_data=SIGMA_DATA
    )
    batch = _token_batch(bare, tokenizer)
    legacy = _ProbabilityCache(classifier_forward(model, "proba"), max_rows)
    order = np.argsort(bare.attention_mask.sum(axis=1), kind="stable")
    for operator in ("delete", "mask"):
        for row in bare.rows:
            reference = faithfulness_metrics(
                legacy,
                batch.select(order, trim=False),
                bare.scores[row][order],
                batch.removal(operator),
                batch_size=4 * max_rows,
            )
            for name, values in reference.metrics().items():
                np.testing.assert_array_equal(
                    scored.metrics[operator][row][name][order], values, err_msg=name
                )
            deletion, insertion = scored.curves[operator][row]
            for i, sentence in enumerate(order):
                np.testing.assert_array_equal(
                    deletion[sentence], reference.deletion_curves[i]
                )
                np.testing.assert_array_equal(
                    insertion[sentence], reference.insertion_curves[i]
                )


def test_methods_subsets_of_a_partition_combine_back(result) -> None:
    first, second = result.methods[::2], result.methods[1::2]
    halves = [methods_subset(result, first), methods_subset(result, second)]
    for half, methods in zip(halves, (first, second)):
        assert half.methods == methods
        assert {half.method_of(row) for row in half.rows} == set(methods)
        assert set(half.metrics["delete"]) == set(half.rows)
        assert set(half.stability) == set(result.stability) & set(methods)
    back = methods_subset(combine(*halves), result.methods)
    assert back.methods == result.methods and back.rows == result.rows
    for operator in result.operators:
        for row in result.rows:
            for metric in result.metric_names:
                np.testing.assert_array_equal(
                    back.metrics[operator][row][metric],
                    result.metrics[operator][row][metric],
                )
            np.testing.assert_array_equal(back.scores[row], result.scores[row])
    with pytest.raises(ValueError, match="not in the result"):
        methods_subset(result, ["Occlusion"])


def test_given_targets_are_explained_and_checked(setup) -> None:
    model, tokenizer = setup
    options = {"operators": (), "stability_n": 0, "batch_size": 2}
    result = compare(
        model, tokenizer, TEXTS[:2], ["Saliency"], target=[1, 0], **options
    )
    np.testing.assert_array_equal(result.target, [1, 0])
    assert result.settings["target"] == "given classes"
    with pytest.raises(ValueError, match=r"class indices in \[0, 2\)"):
        compare(model, tokenizer, TEXTS[:2], ["Saliency"], target=[0, 2], **options)
    with pytest.raises(ValueError, match="one class per example"):
        compare(model, tokenizer, TEXTS[:2], ["Saliency"], target=[0], **options)
