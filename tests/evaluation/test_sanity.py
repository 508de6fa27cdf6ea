"""Model randomisation check (Adebayo et al. 2018) on tiny random BERTs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from captum_sigma.evaluation import (
    ComparisonResult,
    SanityResult,
    compare,
    default_methods,
    model_randomization_check,
    randomize_top_layers,
    run_model_randomization,
)

from comparison.merge import select

transformers = pytest.importorskip("transformers")

WORDS = "the a film movie is was good bad great boring fun dull witty plot".split()
TEXTS = [
    "the film is good .",
    "a boring , dull movie but the plot is great",
    "good",  # one eligible token: no correlation
    "witty plot and great fun .",
    "the movie was dull",
]
N_LAYERS = 3
#: Parameter-name prefixes of the head and the pooler of BertForSequenceClassification.
HEAD = ("classifier.", "bert.pooler.")


def tiny_bert(seed: int = 0):
    """A 3-layer, hidden-32 random BERT classifier whose every parameter is off
    its initial value (so a re-initialisation changes every one of them)."""
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=N_LAYERS,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=2,
    )
    model = transformers.BertForSequenceClassification(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def tiny_tokenizer(folder: Path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "and", "but"]
    vocab += WORDS + [f"[unused{i}]" for i in range(100 - len(vocab) - len(WORDS))]
    path = folder / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return transformers.BertTokenizer(vocab=str(path))


def randomized_names(model, n_layers: int) -> set[str]:
    top = [f"bert.encoder.layer.{i}." for i in range(N_LAYERS - n_layers, N_LAYERS)]
    return {
        name
        for name, _ in model.named_parameters()
        if name.startswith(HEAD + tuple(top))
    }


def state(model) -> dict[str, torch.Tensor]:
    return {name: value.clone() for name, value in model.state_dict().items()}


def methods() -> dict:
    return default_methods(["IntegratedGradients", "Saliency"], ig_steps=4)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return tiny_bert(), tiny_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="module")
def trained(setup) -> ComparisonResult:
    model, tokenizer = setup
    return compare(
        model, tokenizer, TEXTS, methods(), operators=(), stability_n=0, batch_size=2
    )


# randomize_top_layers


@pytest.mark.parametrize("n_layers", [0, 1, N_LAYERS])
def test_reinitialises_exactly_head_and_top_layers(setup, n_layers) -> None:
    model, _ = setup
    before = state(model)
    randomized = randomize_top_layers(model, n_layers, seed=0)
    expected = randomized_names(model, n_layers)
    assert len(expected) > 0
    changed = {
        name
        for name, value in randomized.state_dict().items()
        if not torch.equal(value, before[name])
    }
    assert changed == expected
    std = model.config.initializer_range
    for name, value in randomized.named_parameters():
        if name not in expected:
            continue
        if "LayerNorm.weight" in name:
            assert torch.all(value == 1)  # the model's own initialiser
        elif name.endswith("bias"):
            assert torch.all(value == 0)
        else:
            assert abs(value.std().item() - std) < 0.5 * std, name


def test_input_model_and_rng_unchanged(setup) -> None:
    model, _ = setup
    before = state(model)
    rng = torch.get_rng_state()
    randomized = randomize_top_layers(model, 2, seed=3)
    assert torch.equal(torch.get_rng_state(), rng)
    after = model.state_dict()
    assert all(torch.equal(after[name], value) for name, value in before.items())
    assert randomized is not model
    assert not randomized.training and not model.training


def test_reproducible_for_a_seed_and_differs_across_seeds(setup) -> None:
    model, _ = setup
    first = randomize_top_layers(model, 1, seed=7).state_dict()
    again = randomize_top_layers(model, 1, seed=7).state_dict()
    other = randomize_top_layers(model, 1, seed=8).state_dict()
    assert all(torch.equal(first[name], again[name]) for name in first)
    weight = "classifier.weight"
    assert not torch.equal(first[weight], other[weight])
    top = f"bert.encoder.layer.{N_LAYERS - 1}.attention.self.query.weight"
    assert not torch.equal(first[top], other[top])


@pytest.mark.parametrize("n_layers", [-1, N_LAYERS + 1, 1.0, True, None])
def test_bad_n_layers_raise(setup, n_layers) -> None:
    model, _ = setup
    with pytest.raises(ValueError, match="n_layers"):
        randomize_top_layers(model, n_layers)


def test_non_hugging_face_model_raises() -> None:
    with pytest.raises(TypeError, match="_init_weights"):
        randomize_top_layers(torch.nn.Linear(2, 2), 0)


# model_randomization_check


def test_result_with_itself_correlates_exactly(trained) -> None:
    check = model_randomization_check(trained, trained)
    assert isinstance(check, SanityResult)
    expected = ["IntegratedGradients", "Saliency", "|IntegratedGradients|"]
    assert check.rows == trained.rows == expected
    for row in check.rows:
        values = check.spearman[row]
        assert values.shape == (len(TEXTS),)
        defined = np.isfinite(values)
        assert defined.sum() == len(TEXTS) - 1  # all but the one-token sentence
        assert not defined[TEXTS.index("good")]
        np.testing.assert_allclose(values[defined], 1.0, rtol=0, atol=1e-12)
        interval = check.interval(row)
        assert interval.n == len(TEXTS) - 1
        assert interval.mean == pytest.approx(1.0, abs=1e-12)


def test_reversed_scores_give_minus_one(trained) -> None:
    reversed_scores = {**trained.scores, "Saliency": -trained.scores["Saliency"]}
    reversed_result = dataclasses.replace(trained, scores=reversed_scores)
    check = model_randomization_check(trained, reversed_result)
    values = check.spearman["Saliency"]
    defined = np.isfinite(values)
    assert defined.sum() == len(TEXTS) - 1
    np.testing.assert_allclose(values[defined], -1.0, rtol=0, atol=1e-12)
    other = check.spearman["IntegratedGradients"]
    np.testing.assert_allclose(other[np.isfinite(other)], 1.0, rtol=0, atol=1e-12)


def test_constant_scores_give_nan(trained) -> None:
    constant = {**trained.scores, "Saliency": trained.eligible.astype(np.float64)}
    check = model_randomization_check(
        trained, dataclasses.replace(trained, scores=constant)
    )
    assert np.isnan(check.spearman["Saliency"]).all()
    assert check.interval("Saliency").n == 0


def test_mismatched_sentences_or_targets_raise(trained) -> None:
    order = list(range(len(TEXTS)))[::-1]
    with pytest.raises(ValueError, match="same sentences"):
        model_randomization_check(trained, select(trained, order))
    flipped = dataclasses.replace(trained, target=1 - trained.target)
    with pytest.raises(ValueError, match="same targets"):
        model_randomization_check(trained, flipped)
    no_rows = dataclasses.replace(trained, rows=[], scores={})
    with pytest.raises(ValueError, match="no row"):
        model_randomization_check(trained, no_rows)


def test_gradient_scores_change_on_a_randomized_model(setup, trained) -> None:
    model, tokenizer = setup
    randomized = compare(
        randomize_top_layers(model, 1, seed=0),
        tokenizer,
        TEXTS,
        methods(),
        target=trained.target.tolist(),
        operators=(),
        stability_n=0,
        batch_size=2,
    )
    check = model_randomization_check(trained, randomized)
    for row in check.rows:
        values = check.spearman[row]
        assert np.isfinite(values).sum() == len(TEXTS) - 1
        assert np.nanmean(values) < 1.0, row


# run_model_randomization


def test_run_explains_the_trained_targets(setup) -> None:
    model, tokenizer = setup
    encoded = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        own = randomize_top_layers(model, 2, seed=0)(**encoded).logits.argmax(-1)
    target = (1 - own).tolist()  # never what the randomised model predicts
    before = state(model)
    trained = compare(
        model,
        tokenizer,
        TEXTS,
        methods(),
        target=target,
        operators=(),
        stability_n=0,
    )
    randomized, check = run_model_randomization(
        model, tokenizer, TEXTS, methods(), trained, n_layers=2, batch_size=2
    )
    np.testing.assert_array_equal(randomized.target, trained.target)
    np.testing.assert_array_equal(check.target, target)
    assert check.n_layers == 2
    assert randomized.settings["randomization"]["n_layers"] == 2
    assert randomized.settings["randomization"]["modules"] == [
        "classifier",
        "bert.pooler",
        "bert.encoder.layer.1",
        "bert.encoder.layer.2",
    ]
    assert randomized.operators == [] and randomized.stability == {}
    after = model.state_dict()
    assert all(torch.equal(after[name], value) for name, value in before.items())


def test_run_without_trained_result(setup) -> None:
    model, tokenizer = setup
    saliency = default_methods(["Saliency"])
    randomized, check = run_model_randomization(
        model, tokenizer, TEXTS, saliency, n_layers=1
    )
    encoded = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        predicted = model(**encoded).logits.argmax(-1).numpy()
    np.testing.assert_array_equal(randomized.target, predicted)
    assert check.rows == ["Saliency"] and check.n_layers == 1
    assert check.interval("Saliency").n == len(TEXTS) - 1


def test_run_refuses_bound_methods_and_other_texts(setup, trained) -> None:
    model, tokenizer = setup
    with pytest.raises(TypeError, match="MethodSpec"):
        run_model_randomization(
            model, tokenizer, TEXTS, {"f": lambda *args: None}, n_layers=1
        )
    with pytest.raises(ValueError, match="same texts"):
        run_model_randomization(
            model, tokenizer, TEXTS[:2], methods(), trained, n_layers=1
        )
