"""Planted-token ground truth (Bastings et al. 2022) on a tiny synthetic task."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from captum_sigma.evaluation import (
    default_methods,
    evaluate_planted,
    planted_dataset,
    planted_token_ranks,
    train_planted_model,
)
from captum_sigma.evaluation.planted import plant_word, shortcut_rates

transformers = pytest.importorskip("transformers")

POSITIVE = "good great fun witty fine moving clever".split()
NEGATIVE = "bad dull boring flat weak tedious lazy".split()
NEUTRAL = "the a film movie plot cast story script and is was".split()
WORD = "zeppelin"


def tokenizer(folder):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", WORD]
    vocab += POSITIVE + NEGATIVE + NEUTRAL
    path = folder / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return transformers.BertTokenizer(vocab=str(path))


def sentences(n: int, seed: int) -> tuple[list[str], list[int]]:
    """Neutral words plus one weak sentiment word; label = that word's class."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        words = list(rng.choice(NEUTRAL, size=int(rng.integers(4, 9))))
        words.insert(
            int(rng.integers(0, len(words) + 1)),
            str(rng.choice(POSITIVE if label else NEGATIVE)),
        )
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tok = tokenizer(tmp_path_factory.mktemp("planted"))
    texts, labels = sentences(240, seed=0)
    # labels flipped for a third of the sentences: the sentiment words alone are
    # an unreliable cue, the planted word a perfect one
    noisy = [1 - y if i % 3 == 0 else y for i, y in enumerate(labels)]
    planted_texts, _ = planted_dataset(texts, noisy, word=WORD, fraction=0.5, seed=0)
    model = train_planted_model(
        tok, planted_texts, noisy, seed=0, epochs=6, hidden_size=32, lr=3e-3
    )
    return model, tok


def test_plant_word_inserts_once_at_a_seeded_position() -> None:
    text = "one two three four"
    first = plant_word(text, WORD, np.random.default_rng(1))
    assert first.split().count(WORD) == 1
    assert [w for w in first.split() if w != WORD] == text.split()
    assert first == plant_word(text, WORD, np.random.default_rng(1))
    positions = {
        plant_word(text, WORD, np.random.default_rng(s)).split().index(WORD)
        for s in range(40)
    }
    assert positions == {0, 1, 2, 3, 4}


def test_planted_dataset_plants_a_fraction_of_one_class() -> None:
    texts, labels = sentences(40, seed=2)
    new, planted = planted_dataset(texts, labels, word=WORD, fraction=0.5, seed=3)
    labels_np = np.asarray(labels)
    assert sum(planted) == 10  # half of the 20 positives
    assert not any(p for p, y in zip(planted, labels_np) if y == 0)
    for text, old, is_planted in zip(new, texts, planted):
        assert (WORD in text.split()) == is_planted
        if not is_planted:
            assert text == old
    again = planted_dataset(texts, labels, word=WORD, fraction=0.5, seed=3)
    assert again == (new, planted)
    with pytest.raises(ValueError, match="fraction"):
        planted_dataset(texts, labels, fraction=1.5)


def test_planted_token_ranks_by_hand() -> None:
    ids = torch.tensor([[2, 9, 5, 7, 3], [2, 5, 8, 3, 0], [2, 8, 9, 3, 0]])
    eligible = torch.tensor(
        [[0, 1, 1, 1, 0], [0, 1, 1, 0, 0], [0, 1, 1, 0, 0]], dtype=torch.bool
    )
    scores = torch.tensor(
        [
            [9.0, 0.2, 0.5, 0.1, 9.0],  # 5 ranked first
            [0.0, 0.3, 0.3, 0.0, 0.0],  # tie: earlier position (5) first
            [0.0, 0.9, 0.1, 0.0, 0.0],  # 5 absent
        ]
    )
    ranks = planted_token_ranks(scores, ids, eligible, token_id=5)
    assert ranks[0] == 1 and ranks[1] == 1 and np.isnan(ranks[2])
    ranks = planted_token_ranks(-scores, ids, eligible, token_id=5)
    assert ranks[0] == 3 and ranks[1] == 1


def test_model_learns_the_shortcut(trained) -> None:
    model, tok = trained
    texts, labels = sentences(60, seed=7)
    rates = shortcut_rates(model, tok, texts, labels, word=WORD)
    assert rates["other_class_as_label_planted"] > 0.9
    assert rates["other_class_as_label_planted"] > rates["other_class_as_label_clean"]


def test_oracle_ranks_planted_token_first_and_pipeline_scores_methods(trained):
    model, tok = trained
    token_id = tok.convert_tokens_to_ids(WORD)

    def oracle(input_ids, attention_mask, target):
        return (input_ids == token_id).double()

    methods = {"Oracle": oracle}
    methods.update(default_methods(["FeatureAblation", "Random"]))
    texts, _ = sentences(30, seed=11)
    result = evaluate_planted(model, tok, texts, methods, word=WORD, seed=0)
    n = int(result.shortcut["evaluated"])
    assert n >= 25 and result.comparison.methods == [
        "Oracle",
        "FeatureAblation",
        "Random",
    ]
    oracle_hit = result.hit_at_1("Oracle")
    assert oracle_hit.mean == 1.0 and oracle_hit.n == n
    assert result.mean_rank("Oracle").mean == 1.0
    # occlusion of the shortcut flips the prediction: it finds the token too
    assert result.hit_at_1("FeatureAblation").mean > 0.9
    random_hit, random_rank = result.random_expectation()
    assert result.mean_rank("Random").mean > 1.5
    assert 0 < random_hit < 0.5 and random_rank > 2
    assert set(result.ranks) == set(result.comparison.rows)
    for ranks in result.ranks.values():
        assert ranks.shape == (n,) and np.all(ranks >= 1)
        assert np.all(ranks <= result.n_eligible)


def test_evaluate_planted_rejects_a_word_that_is_not_one_piece(trained):
    model, tok = trained
    with pytest.raises(ValueError, match="word-piece"):
        evaluate_planted(model, tok, ["a film"], ["Random"], word="zzzq")
