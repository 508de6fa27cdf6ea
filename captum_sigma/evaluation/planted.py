r"""Ground truth from a planted shortcut (Bastings et al. 2022).

"Will you find these shortcuts? A protocol for evaluating the faithfulness of
input salience methods for text classification", Bastings, Ebert, Zablotskaia,
Sandholm and Filippova, EMNLP 2022, https://arxiv.org/abs/2111.07367

A rare word (:data:`PLANTED_WORD`, one word-piece that never occurs in the
Rotten Tomatoes sentences) is inserted at a random word position into a
fraction of the training sentences of one class, labels kept. A small model
trained on that data learns the shortcut "word present -> that class". On
held-out sentences with the word planted and predicted as that class, the
planted token is the ground-truth most important token: a faithful method
ranks it first. :class:`PlantedTokenResult` reports hit@1 (fraction of
sentences where it is ranked first) and its mean rank (1 = first) for every
method, ranked among the eligible tokens.

Everything is seeded: the planting positions, the choice of planted sentences,
the model's initialisation and the order of the training batches.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from captum_sigma.evaluation._checks import check_positive_int
from captum_sigma.evaluation.compare import ComparisonResult, compare
from captum_sigma.evaluation.ranking import token_ranking
from captum_sigma.evaluation.stats import Interval, bootstrap_interval

__all__ = [
    "PLANTED_WORD",
    "PlantedTokenResult",
    "evaluate_planted",
    "plant_word",
    "planted_dataset",
    "planted_token_ranks",
    "shortcut_rates",
    "train_planted_model",
]

logger = logging.getLogger(__name__)

#: One word-piece of the MiniLM / BERT uncased vocabulary that never occurs in
#: the 8,530 Rotten Tomatoes sentences.
PLANTED_WORD = "zeppelin"


def plant_word(text: str, word: str, rng: np.random.Generator) -> str:
    r"""Inserts ``word`` at a uniformly random word boundary of ``text``.

    Args:
        text (str): A sentence (words separated by whitespace).
        word (str): The word to insert.
        rng (numpy.random.Generator): Source of the position.

    Returns:
        text (str): The sentence with the word inserted once.
    """
    words = text.split()
    position = int(rng.integers(0, len(words) + 1))
    return " ".join(words[:position] + [word] + words[position:])


def planted_dataset(
    texts: Sequence[str],
    labels: Sequence[int],
    *,
    word: str = PLANTED_WORD,
    fraction: float = 0.5,
    label: int = 1,
    seed: int = 0,
) -> tuple[list[str], list[bool]]:
    r"""Plants ``word`` into a fraction of the sentences of one class.

    Args:
        texts (sequence of str): Training sentences.
        labels (sequence of int): Their labels (kept unchanged).
        word (str, optional): The planted word. Default: :data:`PLANTED_WORD`.
        fraction (float, optional): Fraction of the sentences labelled
                ``label`` that get the word (rounded). Default: 0.5.
        label (int, optional): The class with the shortcut. Default: 1.
        seed (int, optional): Seed of the choice and the positions. Default: 0.

    Returns:
        (texts, planted): The new sentences and whether each got the word.
    """
    if len(texts) != len(labels):
        raise ValueError(
            f"texts and labels must have the same length, got {len(texts)} "
            f"and {len(labels)}"
        )
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
    rng = np.random.default_rng(seed)
    candidates = np.flatnonzero(np.asarray(labels) == label)
    chosen = set(
        rng.permutation(candidates)[: int(round(fraction * candidates.size))].tolist()
    )
    planted = [i in chosen for i in range(len(texts))]
    new_texts = [
        plant_word(text, word, rng) if is_planted else text
        for text, is_planted in zip(texts, planted)
    ]
    return new_texts, planted


def train_planted_model(
    tokenizer: Any,
    texts: Sequence[str],
    labels: Sequence[int],
    *,
    seed: int = 0,
    epochs: int = 3,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    max_length: int = 64,
    batch_size: int = 32,
    lr: float = 2e-3,
) -> nn.Module:
    r"""Trains a tiny ``BertForSequenceClassification`` from scratch (CPU, seconds).

    The model uses the tokenizer's vocabulary and ids, so every method of the
    comparison runner applies to it unchanged (``model.bert.embeddings``).

    Args:
        tokenizer (object): A Hugging Face BERT tokenizer.
        texts (sequence of str): Training sentences (with the planted word).
        labels (sequence of int): Labels (two classes).
        seed (int, optional): Seed of the initialisation and batch order.
                Default: 0.
        epochs (int, optional): Passes over the data. Default: 3.
        hidden_size, num_layers, num_heads (int, optional): Size of the model.
                Default: 64, 2, 2.
        max_length (int, optional): Truncation in tokens. Default: 64.
        batch_size (int, optional): Sentences per step. Default: 32.
        lr (float, optional): AdamW learning rate. Default: 2e-3.

    Returns:
        model (nn.Module): The trained model, in eval mode, on the CPU.
    """
    from transformers import BertConfig, BertForSequenceClassification

    for name, value in (
        ("epochs", epochs),
        ("batch_size", batch_size),
        ("max_length", max_length),
    ):
        check_positive_int(name, value)
    if len(texts) != len(labels):
        raise ValueError("texts and labels must have the same length")
    encoded = tokenizer(
        list(texts),
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    targets = torch.as_tensor(list(labels), dtype=torch.long)
    # transformers initialises weights from torch's global RNG (no generator
    # argument), so it is seeded inside a fork: the caller's RNG state is restored
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        config = BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden_size,
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            intermediate_size=2 * hidden_size,
            max_position_embeddings=max(max_length, 64),
            num_labels=2,
            pad_token_id=int(tokenizer.pad_token_id or 0),
        )
        model = BertForSequenceClassification(config)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
        generator = torch.Generator().manual_seed(seed)
        model.train()
        for epoch in range(epochs):
            order = torch.randperm(targets.shape[0], generator=generator)
            total = 0.0
            for start in range(0, order.numel(), batch_size):
                rows = order[start : start + batch_size]
                total += _train_step(model, optimizer, encoded, targets, rows)
            logger.info("planted model epoch %d: mean loss %.4f", epoch, total)
    return model.eval()


def _train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    encoded: Mapping[str, Tensor],
    targets: Tensor,
    rows: Tensor,
) -> float:
    mask = encoded["attention_mask"][rows]
    width = int(mask.sum(dim=1).max())
    output = model(
        input_ids=encoded["input_ids"][rows, :width],
        attention_mask=mask[:, :width],
        labels=targets[rows],
    )
    optimizer.zero_grad(set_to_none=True)
    # the model is the one built above for this check, not a user's: its .grad
    # is what its optimizer reads
    output.loss.backward()
    optimizer.step()
    return float(output.loss.detach()) * rows.numel() / targets.shape[0]


def planted_token_ranks(
    scores: np.ndarray | Tensor,
    input_ids: np.ndarray | Tensor,
    eligible: np.ndarray | Tensor,
    token_id: int,
) -> np.ndarray:
    r"""Rank (1 = most important) of the planted token in each sentence.

    Args:
        scores (ndarray or Tensor): Per-token scores, (B, T).
        input_ids (ndarray or Tensor): Token ids, (B, T).
        eligible (ndarray or Tensor): Bool, rankable tokens, (B, T).
        token_id (int): Id of the planted token.

    Returns:
        ranks (ndarray): Float64 (B,): the best rank of an occurrence of the
        token among the eligible tokens (ties broken by position, as in
        :func:`~captum_sigma.evaluation.token_ranking`), NaN where absent.
    """
    ids = np.asarray(
        input_ids.detach().cpu() if isinstance(input_ids, Tensor) else input_ids
    )
    eligible_t = torch.as_tensor(np.asarray(eligible, dtype=bool))
    rankings = token_ranking(scores, eligible_t)
    ranks = np.full(ids.shape[0], np.nan)
    for row, ranking in enumerate(rankings):
        hits = np.flatnonzero(ids[row, ranking] == token_id)
        if hits.size:
            ranks[row] = float(hits[0] + 1)
    return ranks


@dataclass
class PlantedTokenResult:
    r"""Ranks of the planted token under every method.

    Attributes:
        token (str): The planted word.
        token_id (int): Its id.
        ranks (dict[str, ndarray]): Per table row, the rank of the planted token
                in each evaluated sentence (1 = first).
        n_eligible (ndarray): Eligible tokens per evaluated sentence.
        comparison (ComparisonResult): The attributions (no removal metrics).
        shortcut (dict[str, float]): How much the model uses the shortcut:
                accuracy on clean held-out sentences, the rate of predicting
                the planted class on clean and planted held-out sentences of the
                other class, and the number of evaluated sentences.
        settings (dict): Training and evaluation settings.
    """

    token: str
    token_id: int
    ranks: dict[str, np.ndarray]
    n_eligible: np.ndarray
    comparison: ComparisonResult
    shortcut: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def hit_at_1(self, row: str, *, seed: int = 0) -> Interval:
        """Fraction of sentences with the planted token ranked first (bootstrap)."""
        return bootstrap_interval((self.ranks[row] == 1).astype(np.float64), seed=seed)

    def mean_rank(self, row: str, *, seed: int = 0) -> Interval:
        """Mean rank of the planted token (1 = first), with its interval."""
        return bootstrap_interval(self.ranks[row], seed=seed)

    def random_expectation(self) -> tuple[float, float]:
        """Expected (hit@1, mean rank) of a uniformly random ranking."""
        n = self.n_eligible.astype(np.float64)
        return float(np.mean(1.0 / n)), float(np.mean((n + 1) / 2))


def evaluate_planted(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    methods: Mapping[str, Any] | Sequence[str] | None = None,
    *,
    word: str = PLANTED_WORD,
    label: int = 1,
    seed: int = 0,
    batch_size: int = 16,
    max_rows: int = 256,
    max_length: int = 64,
    sigma_settings: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
    output: str = "proba",
) -> PlantedTokenResult:
    r"""Plants the word into held-out sentences and ranks it under every method.

    The word is planted once into every sentence; the sentences the model
    predicts as ``label`` are attributed (target = predicted class) by
    :func:`~captum_sigma.evaluation.compare.compare` (no removal metrics, no
    seed-stability run) and the rank of the planted token is read off each
    method's scores.

    Args:
        model (nn.Module): The model trained with the shortcut.
        tokenizer (object): Its tokenizer.
        texts (sequence of str): Held-out sentences without the word.
        methods (mapping or sequence, optional): As in ``compare``.
        word (str, optional): The planted word. Default: :data:`PLANTED_WORD`.
        label (int, optional): The class of the shortcut. Default: 1.
        seed (int, optional): Seed of the positions and of the methods.
        batch_size, max_rows, max_length, sigma_settings, device, output: As
                in ``compare`` (``output="logit"`` explains the logit of the
                predicted class instead of its probability).

    Returns:
        PlantedTokenResult: Ranks per method.
    """
    token_id = _single_token_id(tokenizer, word)
    rng = np.random.default_rng(seed)
    planted = [plant_word(text, word, rng) for text in texts]
    predicted = _predict(model, tokenizer, planted, max_length, max_rows, device)
    keep = [i for i, p in enumerate(predicted) if p == label]
    if not keep:
        raise ValueError(
            f"the model predicts class {label} for none of the planted sentences: "
            "it did not learn the shortcut"
        )
    result = compare(
        model,
        tokenizer,
        [planted[i] for i in keep],
        methods,
        operators=(),
        batch_size=batch_size,
        max_rows=max_rows,
        seed=seed,
        device=device,
        sigma_settings=sigma_settings,
        stability_n=0,
        max_length=max_length,
        output=output,
    )
    ranks = {
        row: planted_token_ranks(
            result.scores[row], result.input_ids, result.eligible, token_id
        )
        for row in result.rows
    }
    return PlantedTokenResult(
        token=word,
        token_id=token_id,
        ranks=ranks,
        n_eligible=result.eligible.sum(axis=1),
        comparison=result,
        shortcut={"evaluated": float(len(keep)), "planted": float(len(texts))},
        settings={"word": word, "label": label, "seed": seed, "output": output},
    )


def _single_token_id(tokenizer: Any, word: str) -> int:
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    if len(ids) != 1 or ids[0] == getattr(tokenizer, "unk_token_id", None):
        raise ValueError(
            f"word must be one known word-piece of the tokenizer, {word!r} gives "
            f"ids {ids}"
        )
    return int(ids[0])


def _predict(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int,
    max_rows: int,
    device: str | torch.device | None,
) -> list[int]:
    if device is not None:
        model.to(device)
    parameter = next(model.parameters())
    predictions: list[int] = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(texts), max_rows):
            encoded = tokenizer(
                list(texts[start : start + max_rows]),
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(parameter.device)
            logits = model(
                input_ids=encoded["input_ids"],
                attention_mask=encoded["attention_mask"],
            ).logits
            predictions += logits.argmax(dim=-1).tolist()
    return predictions


def shortcut_rates(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    labels: Sequence[int],
    *,
    word: str = PLANTED_WORD,
    label: int = 1,
    seed: int = 0,
    max_length: int = 64,
    max_rows: int = 256,
) -> dict[str, float]:
    r"""How strongly a model uses the planted shortcut, on held-out sentences.

    Args:
        model (nn.Module): The model.
        tokenizer (object): Its tokenizer.
        texts (sequence of str): Held-out sentences without the word.
        labels (sequence of int): Their labels.
        word, label, seed, max_length, max_rows: As in :func:`evaluate_planted`.

    Returns:
        rates (dict[str, float]): ``clean_accuracy``; ``other_class_as_label_clean``
        and ``other_class_as_label_planted`` (how often sentences of the other
        class are predicted as ``label`` without and with the word).
    """
    rng = np.random.default_rng(seed)
    labels_np = np.asarray(labels)
    clean = np.asarray(_predict(model, tokenizer, texts, max_length, max_rows, None))
    planted_texts = [plant_word(t, word, rng) for t in texts]
    planted = np.asarray(
        _predict(model, tokenizer, planted_texts, max_length, max_rows, None)
    )
    other = labels_np != label
    return {
        "clean_accuracy": float(np.mean(clean == labels_np)),
        "other_class_as_label_clean": float(np.mean(clean[other] == label)),
        "other_class_as_label_planted": float(np.mean(planted[other] == label)),
    }
