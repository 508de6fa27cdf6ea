"""TextExplainer on tiny random models (BERT, DistilBERT, RoBERTa-style, encoder)."""

from dataclasses import replace

import pytest
import torch
from rounding import (
    AMPLIFICATION_BOUND,
    relative_forward_difference,
    relative_sigma_change,
)
from text_models import (
    make_tiny_distilbert,
    make_tiny_encoder,
    make_tiny_roberta,
    make_tokenizer,
)
from torch import nn

from captum_sigma import LayerSigmaAttribution, SigmaOptions, estimate_regularization
from captum_sigma.evaluation.methods import classifier_forward
from captum_sigma.text import (
    DEFAULT_TEXT_OPTIONS,
    DEFAULT_TEXT_OUTPUT,
    PRESETS,
    TextExplainer,
    TextExplanation,
)
from captum_sigma.text.model import LogitsOutput, LogOddsOutput, ProbabilitiesOutput

DATA = ["good film", "bad plot .", "the movie is great", "awful , not good !"]
TEXTS = ["unbelievably good film !", "bad", "the plot was not very good ."]
STEPS = 20


@pytest.fixture
def tokenizer():
    return make_tokenizer()


@pytest.fixture
def explainer(tiny_bert, tokenizer):
    return TextExplainer(tiny_bert, tokenizer, data=DATA, n_steps=STEPS)


def test_classifier_explanations_have_tokens_scores_sigma_and_prediction(explainer):
    results = explainer.explain(TEXTS)
    assert [r.text for r in results] == TEXTS
    short = results[1]
    assert short.tokens == ["[CLS]", "bad", "[SEP]"]  # padding removed
    for result in results:
        assert isinstance(result, TextExplanation)
        assert len(result.scores) == len(result.sigma) == len(result.tokens)
        assert all(0 < s < result.scale for s in result.sigma)
        assert all(score > 0 for score in result.scores)
        assert result.predicted_label in (0, 1) and 0.5 <= result.probability <= 1
        assert result.target == result.predicted_label
        # The default preset explains the class's log-odds / r, with 4 chains
        name = f"class {result.target} (LABEL_{result.target})"
        assert result.explained == f"{DEFAULT_TEXT_OUTPUT} of {name} / r"
        assert result.preset is None  # n_steps changed the preset
        assert result.chains == 4 and len(result.standard_error) == len(result.tokens)
        assert result.word_ids[0] is None and result.offsets[0] == (0, 0)
    assert isinstance(explainer.explain(TEXTS[0]), TextExplanation)


@pytest.fixture(params=[1, 2], ids=["1 thread", "2 threads"])
def threads(request):
    previous = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(previous)


def invariance_tolerance(model, tokenizer) -> float:
    """Relative tolerance on σ: the measured amplification bound (test_rounding.py)
    times the rounding that padding causes in this model's logits on this CPU."""
    return AMPLIFICATION_BOUND * relative_forward_difference(model, tokenizer, TEXTS)


def test_batched_rows_equal_single_texts(explainer, tiny_bert, tokenizer, threads):
    tolerance = invariance_tolerance(tiny_bert, tokenizer)
    batched = explainer.explain(TEXTS)
    for text, row in zip(TEXTS, batched):
        alone = explainer.explain(text)
        assert relative_sigma_change(row.sigma, alone.sigma) <= tolerance


def test_batch_size_does_not_change_results(tiny_bert, tokenizer, threads):
    tolerance = invariance_tolerance(tiny_bert, tokenizer)
    one = TextExplainer(tiny_bert, tokenizer, data=DATA, n_steps=STEPS, batch_size=1)
    many = TextExplainer(tiny_bert, tokenizer, data=DATA, n_steps=STEPS)
    for a, b in zip(one.explain(TEXTS), many.explain(TEXTS)):
        assert relative_sigma_change(a.sigma, b.sigma) <= tolerance


def test_target_by_index_name_and_per_text(tiny_bert, tokenizer):
    # The logit: with two classes the self-normalised probabilities of class 0
    # and class 1 change by the same amount, and this near-uniform random model
    # gives them nearly the same scale, so only the logit tells the targets apart.
    explainer = TextExplainer(
        tiny_bert, tokenizer, data=DATA, n_steps=STEPS, output="logit"
    )
    by_index = explainer.explain(TEXTS[:2], target=1)
    by_name = explainer.explain(TEXTS[:2], target="label_1")
    per_text = explainer.explain(TEXTS[:2], target=[1, "LABEL_1"])
    for a, b, c in zip(by_index, by_name, per_text):
        assert a.target == b.target == c.target == 1
        assert a.target_name == "LABEL_1"
        assert a.sigma == pytest.approx(b.sigma) and a.sigma == pytest.approx(c.sigma)
    other = explainer.explain(TEXTS[0], target=0)
    assert other.sigma != pytest.approx(by_index[0].sigma)


@pytest.mark.parametrize(
    "target, match",
    [(2, "out of range"), ("neutral", "unknown class"), ([0, 1, 0], "one per text")],
)
def test_bad_targets_name_the_argument(explainer, target, match):
    with pytest.raises(ValueError, match=match):
        explainer.explain(TEXTS[:2], target=target)


def test_layer_hidden_state(explainer):
    result = explainer.explain(TEXTS[0], layer=2)
    assert result.layer == 2 and result.target is None
    assert result.explained == "layer 2 hidden state"
    assert result.predicted_label in (0, 1)  # the prediction is still reported
    last = explainer.explain(TEXTS[0], layer=-1)
    assert last.sigma == pytest.approx(result.sigma)
    for bad in (0, 3, -3, 1.5):
        with pytest.raises(ValueError, match="layer"):
            explainer.explain(TEXTS[0], layer=bad)
    with pytest.raises(ValueError, match="not both"):
        explainer.explain(TEXTS[0], layer=1, target=0)


def test_layer_matches_the_core_api_with_r_from_the_same_sample(tiny_bert, tokenizer):
    explainer = TextExplainer(tiny_bert, tokenizer, data=DATA, n_steps=STEPS)
    ours = explainer.explain(TEXTS[2], layer=1)

    def hidden(ids, mask):
        return tiny_bert.bert(input_ids=ids, attention_mask=mask).last_hidden_state

    layer = tiny_bert.bert.encoder.layer[0]
    sample = tokenizer(DATA, padding=True, return_tensors="pt")
    mask = sample["attention_mask"]
    batch = {"inputs": sample["input_ids"], "additional_forward_args": (mask,)}
    r = estimate_regularization(hidden, [{**batch, "token_mask": mask}], None, layer)
    torch.testing.assert_close(explainer.regularization(1), r)
    encoding = tokenizer([TEXTS[2]], return_tensors="pt")
    _, sigma = LayerSigmaAttribution(hidden, tiny_bert.bert.embeddings).attribute(
        encoding["input_ids"],
        additional_forward_args=(encoding["attention_mask"],),
        token_mask=encoding["attention_mask"],
        explained_layer=layer,
        regularization=r,
        return_input_shape=False,
        return_sigma=True,
        # the explainer's default options, layers too
        options=SigmaOptions(n_steps=STEPS, rate=DEFAULT_TEXT_OPTIONS.rate),
    )
    torch.testing.assert_close(torch.tensor(ours.sigma), sigma[0], rtol=1e-4, atol=0)


def test_regularization_is_estimated_once_and_cached(tiny_bert, tokenizer):
    # r of the logits: only output="logit" uses it (the probability, the
    # default, is self-normalised and has none).
    explainer = TextExplainer(
        tiny_bert, tokenizer, data=DATA, n_steps=STEPS, output="logit"
    )
    logits_r = explainer.regularization()
    assert logits_r.shape == (2,)
    assert explainer.regularization() is logits_r
    layer_r = explainer.regularization(2)
    assert layer_r.shape == (32,) and explainer.regularization(-1) is layer_r


def test_without_data_each_text_normalises_itself(tiny_bert, tokenizer):
    explainer = TextExplainer(tiny_bert, tokenizer, n_steps=STEPS, output="logit")
    assert explainer.regularization() is None and explainer.regularization(1) is None
    assert explainer.explain(TEXTS[1]).explained.startswith("logit of class")
    assert not explainer.explain(TEXTS[1]).explained.endswith("/ r")
    result = explainer.explain(TEXTS[0], layer=1)
    assert all(0 < s < result.scale for s in result.sigma)


@pytest.mark.parametrize(
    "build, n_layers", [(make_tiny_distilbert, 2), (make_tiny_roberta, 2)]
)
def test_distilbert_and_roberta_style_classifiers(build, n_layers, tokenizer):
    model = build()
    explainer = TextExplainer(model, tokenizer, data=DATA, n_steps=STEPS)
    assert explainer.is_classifier and explainer.num_layers == n_layers
    assert explainer.embeddings is model.base_model.embeddings
    results = explainer.explain(TEXTS[:2], words=True)
    assert results[0].tokens == ["[CLS]", "unbelievably", "good", "film", "!", "[SEP]"]
    assert results[0].merged and results[0].predicted_label is not None
    assert explainer.explain(TEXTS[1], layer=n_layers).layer == n_layers
    view = explainer.explain_layers(TEXTS[1])
    assert view.matrix.shape == (n_layers, 3)


def test_bare_encoder_explains_its_pooled_embedding(tokenizer):
    encoder = make_tiny_encoder()
    explainer = TextExplainer(encoder, tokenizer, data=DATA, n_steps=STEPS)
    assert not explainer.is_classifier and explainer.labels == {}
    result = explainer.explain(TEXTS[0])
    assert result.explained == "mean-pooled embedding"
    assert result.predicted_label is None and result.probability is None
    assert explainer.regularization().shape == (32,)
    with pytest.raises(ValueError, match="not a sequence classifier"):
        explainer.explain(TEXTS[0], target=1)
    for pooling in ("cls", "pooler"):
        pooled = TextExplainer(encoder, tokenizer, data=DATA, pooling=pooling)
        assert pooled.explain(TEXTS[1]).explained == f"{pooling}-pooled embedding"
    with pytest.raises(ValueError, match="pooling"):
        TextExplainer(encoder, tokenizer, pooling="max")


def test_resolver_errors_are_clear(tokenizer):
    with pytest.raises(ValueError, match="embeddings"):
        TextExplainer(nn.Linear(2, 2), tokenizer)

    class NoLayers(nn.Module):
        def __init__(self):
            super().__init__()
            self.embeddings = nn.Embedding(100, 8)

    explainer = TextExplainer(NoLayers(), tokenizer)
    with pytest.raises(ValueError, match="encoder layers"):
        explainer.explain("good", layer=1)


@pytest.mark.parametrize(
    "texts, error, match",
    [
        ("", ValueError, "empty"),
        (["good", "  "], ValueError, "text 2 is empty"),
        ([], ValueError, "at least 1"),
        ([3], TypeError, "not a str"),
    ],
)
def test_bad_texts(explainer, texts, error, match):
    with pytest.raises(error, match=match):
        explainer.explain(texts)


def test_bad_constructor_arguments(tiny_bert, tokenizer):
    with pytest.raises(ValueError, match="data"):
        TextExplainer(tiny_bert, tokenizer, data=["only one"])
    with pytest.raises(ValueError, match="batch_size"):
        TextExplainer(tiny_bert, tokenizer, batch_size=0)
    with pytest.raises(ValueError, match="n_steps"):
        TextExplainer(tiny_bert, tokenizer, n_steps=0)
    with pytest.raises(TypeError, match="model"):
        TextExplainer("bert", tokenizer)


def test_long_texts_are_truncated_with_a_warning(tiny_bert, tokenizer):
    explainer = TextExplainer(tiny_bert, tokenizer, n_steps=5, max_length=6)
    with pytest.warns(UserWarning, match="truncated"):
        result = explainer.explain("the plot was not very good at all")
    assert result.truncated and len(result.tokens) == 6 and result.tokens[-1] == "[SEP]"
    assert not explainer.explain("good").truncated


def test_model_mode_is_restored_and_dropout_is_off(tiny_bert, tokenizer):
    explainer = TextExplainer(tiny_bert, tokenizer, data=DATA, n_steps=STEPS)
    expected = explainer.explain(TEXTS[0])
    tiny_bert.train()
    result = explainer.explain(TEXTS[0])
    assert tiny_bert.training
    assert result.sigma == pytest.approx(expected.sigma)


def test_seed_controls_the_noise(explainer):
    a = explainer.explain(TEXTS[0], seed=1)
    b = explainer.explain(TEXTS[0], seed=1)
    c = explainer.explain(TEXTS[0], seed=2)
    assert a.sigma == b.sigma and a.sigma != c.sigma


def test_markup_in_texts_is_escaped_in_html(explainer):
    texts = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"]
    for result in explainer.explain(texts, words=True):
        page = result.to_html().lower()
        assert "<script" not in page and "<img" not in page
        assert "&lt;script&gt;" in page or "&lt;img" in page


def _encoded(tokenizer, texts):
    encoding = tokenizer(texts, padding=True, return_tensors="pt")
    return encoding["input_ids"], encoding["attention_mask"]


def _predicted(model, ids, mask):
    with torch.no_grad():
        return LogitsOutput(model)(ids, mask).argmax(-1)


def test_default_is_the_default_preset_through_the_captum_class(tiny_bert, tokenizer):
    """One default: the "default" preset's output, and its options are
    SigmaOptions() (what the Captum classes use); the explainer's numbers are
    LayerSigmaAttribution's on the same forward, standard errors included."""
    preset = PRESETS["default"]
    assert DEFAULT_TEXT_OUTPUT == preset.output == "log-odds"
    assert DEFAULT_TEXT_OPTIONS == preset.options == SigmaOptions()
    explainer = TextExplainer(tiny_bert, tokenizer, data=DATA)
    assert explainer.output == "log-odds" and explainer.preset == "default"
    sample_ids, sample_mask = _encoded(tokenizer, DATA)
    r = estimate_regularization(
        LogOddsOutput(tiny_bert),
        [{"inputs": sample_ids, "additional_forward_args": (sample_mask,)}],
    )
    torch.testing.assert_close(explainer.regularization(), r)
    ids, mask = _encoded(tokenizer, TEXTS)
    target = _predicted(tiny_bert, ids, mask)
    scores, sigma = explainer.attribute_tokens(ids, mask)
    expected, expected_sigma, expected_error = LayerSigmaAttribution(
        LogOddsOutput(tiny_bert, r), tiny_bert.bert.embeddings
    ).attribute(
        ids,
        target=target,
        additional_forward_args=(mask,),
        token_mask=mask,
        regularization=1.0,
        return_input_shape=False,
        return_sigma=True,
        return_standard_error=True,
    )
    torch.testing.assert_close(scores, expected.float(), rtol=0, atol=0)
    torch.testing.assert_close(
        sigma, expected_sigma.float(), rtol=0, atol=0, equal_nan=True
    )
    # explain() returns the same numbers, text by text of the same batch
    for row, result in enumerate(explainer.explain(TEXTS)):
        real = mask[row].bool()
        assert result.scores == scores[row][real].tolist()
        assert result.standard_error == expected_error[row][real].float().tolist()
        assert result.preset == "default"


def test_probabilities_output_is_the_evaluations_proba_forward(tiny_bert, tokenizer):
    ids, mask = _encoded(tokenizer, TEXTS)
    with torch.no_grad():
        ours = ProbabilitiesOutput(tiny_bert)(ids, mask)
        theirs = classifier_forward(tiny_bert, "proba")(ids, mask)
    assert ours.dtype == theirs.dtype
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_output_logit_is_the_logit_over_r(tiny_bert, tokenizer):
    """output="logit": the class's logit / r from data, the default options."""
    explainer = TextExplainer(
        tiny_bert, tokenizer, data=DATA, output="logit", options=SigmaOptions()
    )
    sample_ids, sample_mask = _encoded(tokenizer, DATA)
    r = estimate_regularization(
        LogitsOutput(tiny_bert),
        [
            {
                "inputs": sample_ids,
                "additional_forward_args": (sample_mask,),
                "token_mask": sample_mask,
            }
        ],
    )
    torch.testing.assert_close(explainer.regularization(), r)
    ids, mask = _encoded(tokenizer, TEXTS)
    target = _predicted(tiny_bert, ids, mask)
    scores, _ = explainer.attribute_tokens(ids, mask)
    expected = LayerSigmaAttribution(
        LogitsOutput(tiny_bert, r), tiny_bert.bert.embeddings
    ).attribute(
        ids,
        target=target,
        additional_forward_args=(mask,),
        token_mask=mask,
        regularization=1.0,
        return_input_shape=False,
        options=SigmaOptions(),
    )
    torch.testing.assert_close(scores, expected.float(), rtol=0, atol=0)
    result = explainer.explain(TEXTS[0])
    assert result.explained == f"logit of class {result.target} (LABEL_1) / r".replace(
        "LABEL_1", f"LABEL_{result.target}"
    )
    # the probability and the logit give different scores
    default = TextExplainer(tiny_bert, tokenizer, data=DATA, options=SigmaOptions())
    assert not torch.equal(default.attribute_tokens(ids, mask)[0], scores)


def test_options_merge_like_the_flat_arguments(tiny_bert, tokenizer):
    """preset -> options (its fields that differ from SigmaOptions()) -> flat."""
    given = TextExplainer(tiny_bert, tokenizer, options=SigmaOptions(n_steps=5))
    assert given.options == replace(SigmaOptions(), n_steps=5)
    fast = PRESETS["fast"].options
    merged = TextExplainer(
        tiny_bert, tokenizer, preset="fast", options=SigmaOptions(n_steps=5), rate=1.0
    )
    assert merged.options == replace(fast, n_steps=5, rate=1.0)
    assert merged.preset is None and merged.output == PRESETS["fast"].output
    same = TextExplainer(tiny_bert, tokenizer, preset="fast", seed=3)
    assert same.preset == "fast" and same.options == replace(fast, seed=3)
    assert TextExplainer(tiny_bert, tokenizer, output="logit").preset is None
    with pytest.raises(ValueError, match="preset must be one of"):
        TextExplainer(tiny_bert, tokenizer, preset="slow")


def test_bad_output_values_raise(tiny_bert, tokenizer):
    for bad in ("proba", "logits", "", 1):
        with pytest.raises(ValueError, match="output"):
            TextExplainer(tiny_bert, tokenizer, output=bad)
    encoder = make_tiny_encoder()
    for given in ("probability", "logit"):
        with pytest.raises(ValueError, match="output.*not a sequence classifier"):
            TextExplainer(encoder, tokenizer, output=given)
    bare = TextExplainer(encoder, tokenizer, data=DATA)
    assert bare.output is None and bare.options == SigmaOptions()  # unchanged


def test_layers_are_explained_the_same_whatever_the_output(tiny_bert, tokenizer):
    options = SigmaOptions(n_steps=STEPS)
    outputs = [
        TextExplainer(tiny_bert, tokenizer, data=DATA, options=options, output=name)
        for name in ("probability", "logit")
    ]
    a, b = (explainer.explain(TEXTS[0], layer=1) for explainer in outputs)
    assert a.explained == b.explained == "layer 1 hidden state"
    assert a.sigma == b.sigma


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_runs_on_the_models_gpu(tiny_bert, tokenizer):
    model = tiny_bert.to("cuda")
    explainer = TextExplainer(model, tokenizer, data=DATA, n_steps=STEPS)
    result = explainer.explain(TEXTS[0])
    cpu = TextExplainer(model.to("cpu"), tokenizer, data=DATA, n_steps=STEPS)
    assert result.sigma == pytest.approx(cpu.explain(TEXTS[0]).sigma, rel=1e-2)
