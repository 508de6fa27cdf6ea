"""The trust study of ``docs/trust-study.md``: what the default preset explains.

Shared by ``benchmarks/bench_trust.py`` (its ``study`` section) and the comparison
report (``benchmarks/make_comparison_report.py``, its ``study`` stage): five
candidates (:data:`CANDIDATES`) explain the first ``n`` *validation* sentences with
seeds 0 and 1 under one budget; eight cells (:data:`CELLS`) per candidate; the rule
fixed before the first run (:func:`choose`) picks one. Research harness, not part of
the installed package.
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Sequence

import numpy as np
import torch
from scipy import stats

from captum_sigma.engine import SigmaOptions
from captum_sigma.text import TextExplainer

__all__ = [
    "CANDIDATES",
    "CELLS",
    "CONFIDENT",
    "MAX_FLAT_CONFIDENT",
    "MIN_PLANTED_HIT1",
    "agreement",
    "choose",
    "explain_counted",
    "explainer_for",
    "flat_shares",
    "passes_summary",
    "run_study",
]

#: The study's candidates, in the order that breaks exact ties (docs/trust-study.md).
CANDIDATES = (
    ("log-odds/r, rate 0.1", "log-odds", 0.1),
    ("logit/r, rate 0.1", "logit", 0.1),
    ("log-odds/r, rate 1", "log-odds", 1.0),
    ("logit/r, rate 1", "logit", 1.0),
    ("probability (self-normalised), rate 1", "probability", 1.0),
)
#: (cell, higher is better) of the study's criterion.
CELLS = (
    ("seed_top1", True),
    ("seed_top3", True),
    ("planted_hit1", True),
    ("flat_confident", False),
    ("comprehensiveness", True),
    ("sufficiency", False),
    ("dist_comprehensiveness", True),
    ("dist_sufficiency", False),
)
#: The eligibility floors of the rule.
MAX_FLAT_CONFIDENT = 0.10
MIN_PLANTED_HIT1 = 0.80
CONFIDENT = 0.99


# -- measuring -------------------------------------------------------------------


@contextmanager
def counted_rows(explainer: TextExplainer) -> Iterator[List[int]]:
    """Counts the rows every forward pass of the model's embeddings computes."""
    count = [0]

    def hook(_module: Any, _inputs: Any, output: Any) -> None:
        output = output[0] if isinstance(output, tuple) else output
        count[0] += int(output.shape[0])

    handle = explainer.embeddings.register_forward_hook(hook)
    try:
        yield count
    finally:
        handle.remove()


def explain_counted(
    explainer: TextExplainer, texts: Sequence[str], seed: int
) -> tuple[list, list[int]]:
    """Explanations one text at a time, with the forward rows each cost."""
    results, passes = [], []
    for text in texts:
        with counted_rows(explainer) as count:
            results.append(explainer.explain(text, seed=seed))
        passes.append(count[0])
    return results, passes


def word_piece_indices(explanation: Any) -> np.ndarray:
    ids = explanation.word_ids
    return np.array([i for i, w in enumerate(ids) if w is not None], dtype=int)


def agreement(first: Sequence[Any], second: Sequence[Any]) -> Dict[str, float]:
    """Top-1 agreement, mean top-3 overlap and mean Kendall τ between two seeds."""
    top1, top3, tau = [], [], []
    for a, b in zip(first, second):
        keep = word_piece_indices(a)
        sa, sb = np.asarray(a.scores)[keep], np.asarray(b.scores)[keep]
        top1.append(float(np.argmax(sa) == np.argmax(sb)))
        k = min(3, keep.size)
        top3.append(len(set(np.argsort(-sa)[:k]) & set(np.argsort(-sb)[:k])) / k)
        tau.append(stats.kendalltau(sa, sb).statistic if keep.size > 1 else 1.0)
    return dict(
        seed_top1=float(np.mean(top1)),
        seed_top3=float(np.mean(top3)),
        seed_kendall_tau=float(np.nanmean(tau)),
    )


def flat_shares(explanations: Sequence[Any]) -> Dict[str, Any]:
    flat = np.array([e.is_flat() for e in explanations])
    confident = np.array([(e.probability or 0.0) >= CONFIDENT for e in explanations])
    return dict(
        flat=float(flat.mean()),
        flat_confident=float(flat[confident].mean()) if confident.any() else None,
        n_confident=int(confident.sum()),
    )


def passes_summary(passes: Sequence[int]) -> Dict[str, float]:
    values = np.asarray(passes, dtype=float)
    return dict(
        passes_mean=float(values.mean()), passes_p90=float(np.percentile(values, 90))
    )


def explainer_for(
    base: TextExplainer, output: str, options: SigmaOptions, model: Any = None
) -> TextExplainer:
    explainer = TextExplainer(
        base.model if model is None else model,
        base.tokenizer,
        data=base.data,
        output=output,
        options=options,
        batch_size=1,
    )
    explainer.regularization()  # r once, before any pass is counted
    return explainer


def removal_cells(base: TextExplainer, explanations: Sequence[Any]) -> Dict[str, float]:
    """AOPC comprehensiveness / sufficiency, signed and distribution change."""
    from captum_sigma.evaluation import comprehensiveness, sufficiency
    from captum_sigma.evaluation.dependence import dependence_metrics
    from captum_sigma.evaluation.removal import eligible_token_mask
    from captum_sigma.evaluation.tokens import TokenBatch
    from captum_sigma.text.tokenization import tokenize_texts

    texts = [e.text for e in explanations]
    batch = tokenize_texts(base.tokenizer, texts, base.max_length, base.device)
    ids, mask = batch.input_ids, batch.attention_mask
    scores = torch.zeros(ids.shape, dtype=torch.float64)
    for row, explanation in enumerate(explanations):
        scores[row, : len(explanation.scores)] = torch.tensor(explanation.scores)
    special = [base.tokenizer.cls_token_id, base.tokenizer.sep_token_id]
    eligible = eligible_token_mask(ids, mask, special + [base.tokenizer.pad_token_id])

    def logits(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        with torch.no_grad():
            output = base.model(input_ids=input_ids, attention_mask=attention_mask)
        return output.logits.float()

    def predict(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        return logits(input_ids, attention_mask).softmax(-1)

    target = [e.target for e in explanations]
    pad = base.tokenizer.pad_token_id
    tokens = TokenBatch.build(ids, mask, eligible, target, pad_token_id=pad)
    tail = (tokens, scores, tokens.removal("delete"))
    dist = dependence_metrics(logits, *tail, regularization=1.0, curves=False)
    return dict(
        comprehensiveness=float(np.mean(comprehensiveness(predict, *tail))),
        sufficiency=float(np.mean(sufficiency(predict, *tail))),
        dist_comprehensiveness=float(np.mean(dist.dist_comprehensiveness)),
        dist_sufficiency=float(np.mean(dist.dist_sufficiency)),
    )


# -- the study ------------------------------------------------------------------


def planted_setup(base: TextExplainer, n: int, planted_train: int) -> Dict[str, Any]:
    """The planted-shortcut model and the planted validation sentences it
    predicts as the shortcut's class."""
    from captum_sigma.evaluation import planted_dataset, train_planted_model
    from captum_sigma.evaluation.planted import PLANTED_WORD, plant_word
    from captum_sigma.text.default_model import rotten_tomatoes_split

    train = rotten_tomatoes_split("train")[:planted_train]
    texts, labels = [t for t, _ in train], [y for _, y in train]
    planted_texts, _ = planted_dataset(texts, labels, word=PLANTED_WORD, seed=0)
    started = time.perf_counter()
    model = train_planted_model(base.tokenizer, planted_texts, labels, seed=0).eval()
    trained = time.perf_counter() - started
    rng = np.random.default_rng(0)
    validation = [t for t, _ in rotten_tomatoes_split("validation")[:n]]
    sentences = [plant_word(text, PLANTED_WORD, rng) for text in validation]
    token_id = base.tokenizer.convert_tokens_to_ids(PLANTED_WORD)
    encoded = base.tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        predicted = model(**encoded).logits.argmax(-1).tolist()
    kept = [s for s, p in zip(sentences, predicted) if p == 1]
    return dict(model=model, sentences=kept, token_id=token_id, train_seconds=trained)


def planted_hit1(
    base: TextExplainer, planted: Dict[str, Any], output: str, options: SigmaOptions
) -> float:
    explainer = explainer_for(base, output, options, model=planted["model"])
    hits = []
    for text in planted["sentences"]:
        explanation = explainer.explain(text)
        ids = base.tokenizer(text)["input_ids"]
        keep = word_piece_indices(explanation)
        best = keep[int(np.argmax(np.asarray(explanation.scores)[keep]))]
        hits.append(float(ids[best] == planted["token_id"]))
    return float(np.mean(hits))


def choose(rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The pre-registered rule of docs/trust-study.md."""
    eligible = [
        row
        for row in rows
        if (row["flat_confident"] or 0.0) <= MAX_FLAT_CONFIDENT
        and row["planted_hit1"] >= MIN_PLANTED_HIT1
    ]
    pool = eligible or rows
    ranks = np.zeros(len(pool))
    for cell, higher in CELLS:
        values = np.array(
            [np.nan_to_num(row[cell] if row[cell] is not None else 0.0) for row in pool]
        )
        ranks += stats.rankdata(-values if higher else values)
    mean_rank = ranks / len(CELLS)
    for row, rank in zip(pool, mean_rank):
        row["mean_rank"] = float(rank)
    chosen = pool[int(np.argmin(mean_rank))]  # argmin: first on an exact tie
    return dict(
        chosen=chosen["candidate"],
        eligible=[row["candidate"] for row in eligible],
        none_eligible=not eligible,
    )


def run_study(
    base: TextExplainer,
    budget: SigmaOptions,
    *,
    n: int = 24,
    planted_train: int = 7030,
    candidates: int = len(CANDIDATES),
    log: Callable[[str], None] = print,
) -> Dict[str, Any]:
    """Every candidate on the first ``n`` validation sentences, then the rule.

    Args:
        base: The explainer of the default model (its tokenizer, data and model).
        budget: The optimisation budget every candidate runs (its ``rate`` is
            replaced by the candidate's).
        n: Validation sentences (and planted sentences drawn from them).
        planted_train: Training sentences of the planted-shortcut model.
        candidates: How many of :data:`CANDIDATES` run (a smoke run uses fewer).
        log: Where each candidate's row is printed.

    Returns:
        A plain dict (``rows``: one dict of cells per candidate; ``decision``: the
        rule's choice; the sizes), picklable without this module.
    """
    from captum_sigma.text.default_model import rotten_tomatoes_split

    texts = [t for t, _ in rotten_tomatoes_split("validation")[:n]]
    planted = planted_setup(base, n, planted_train)
    rows = []
    for name, output, rate in CANDIDATES[:candidates]:
        options = dataclasses.replace(budget, rate=rate)
        explainer = explainer_for(base, output, options)
        started = time.perf_counter()
        first, passes = explain_counted(explainer, texts, seed=0)
        second, _ = explain_counted(explainer, texts, seed=1)
        seconds = (time.perf_counter() - started) / (2 * len(texts))
        row = dict(candidate=name, output=output, rate=rate)
        row.update(agreement(first, second))
        row.update(flat_shares(first))
        row.update(removal_cells(base, first))
        row["planted_hit1"] = planted_hit1(base, planted, output, options)
        row.update(passes_summary(passes))
        row["seconds_per_sentence"] = seconds
        rows.append(row)
        log(str(row))
    return dict(
        split="validation",
        n=len(texts),
        n_planted=len(planted["sentences"]),
        planted_train=planted_train,
        budget=dataclasses.asdict(budget),
        rows=rows,
        decision=choose(rows),
    )
