"""Can a user trust the explanation? Seed agreement, flat share, calibration, cost.

One command (CPU, one thread, offline)::

    python benchmarks/bench_trust.py            # all sections, CPU sizes
    python benchmarks/bench_trust.py --quick    # a smoke run (tests use it)

Sections (``--sections``), all on the packaged default sentiment model:

``study``
    The pre-registered choice of the default preset's explained output and rate
    (``docs/trust-study.md``): five candidates on the *validation* split, seeds 0
    and 1, eight cells (seed top-1 / top-3, planted-token hit@1, flat share among
    confident predictions, comprehensiveness / sufficiency of the signed and the
    distribution-change families), then the rule.
``frontier``
    On the held-out *test* split: seed agreement (top-1, top-3 overlap, Kendall
    τ), the flat share and the passes per sentence (mean, 90th percentile,
    counted as forward rows of the model) for the ``fast`` and ``default``
    presets and a larger budget, per explained output.
``calibration``
    The share of tokens whose 95 % interval (Student t over the chains) covers
    the converged value: a long run of the same objective (``--long-steps`` ×
    ``--long-draws``; the issue asks >= 2000 × 16, which ``gpu_checks.sh`` runs;
    on one CPU thread the default is smaller and says so in the results).
``cost``
    Seconds per sentence of the ``default`` and ``fast`` presets against
    LayerIntegratedGradients (50 steps) on the same explained output, batches 1,
    8, 32, one thread, methods interleaved per repeat.

Results: ``benchmarks/results/bench_trust_<device>.json`` (``_quick`` with
``--quick``), with the machine named.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import (  # noqa: E402
    machine,
    pad_baseline,
    print_table,
    save_results,
)
from scipy import stats  # noqa: E402

from captum_sigma.engine import SigmaOptions  # noqa: E402
from captum_sigma.text import TextExplainer  # noqa: E402
from captum_sigma.text.presets import PRESETS  # noqa: E402

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
    pad = {"pad_token_id": base.tokenizer.pad_token_id}
    tail = (ids, mask, eligible, scores, target)
    dist = dependence_metrics(logits, *tail, regularization=1.0, curves=False, **pad)
    return dict(
        comprehensiveness=float(np.mean(comprehensiveness(predict, *tail, **pad))),
        sufficiency=float(np.mean(sufficiency(predict, *tail, **pad))),
        dist_comprehensiveness=float(np.mean(dist.dist_comprehensiveness)),
        dist_sufficiency=float(np.mean(dist.dist_sufficiency)),
    )


def preset_options(name: str, args: argparse.Namespace) -> SigmaOptions:
    """A preset's options; with ``--quick`` cut to a few steps (a smoke run)."""
    options = PRESETS[name].options
    if args.quick:
        options = dataclasses.replace(options, n_steps=2, max_steps=4, chains=2)
    return options


# -- sections --------------------------------------------------------------------


def planted_setup(base: TextExplainer, args: argparse.Namespace) -> Dict[str, Any]:
    """The planted-shortcut model and the planted validation sentences it
    predicts as the shortcut's class."""
    from captum_sigma.evaluation import planted_dataset, train_planted_model
    from captum_sigma.evaluation.planted import PLANTED_WORD, plant_word
    from captum_sigma.text.default_model import rotten_tomatoes_split

    train = rotten_tomatoes_split("train")[: args.planted_train]
    texts, labels = [t for t, _ in train], [y for _, y in train]
    planted_texts, _ = planted_dataset(texts, labels, word=PLANTED_WORD, seed=0)
    started = time.perf_counter()
    model = train_planted_model(base.tokenizer, planted_texts, labels, seed=0).eval()
    trained = time.perf_counter() - started
    rng = np.random.default_rng(0)
    validation = [t for t, _ in rotten_tomatoes_split("validation")[: args.n]]
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


def run_study(base: TextExplainer, args: argparse.Namespace) -> Dict[str, Any]:
    from captum_sigma.text.default_model import rotten_tomatoes_split

    texts = [t for t, _ in rotten_tomatoes_split("validation")[: args.n]]
    planted = planted_setup(base, args)
    budget = preset_options("default", args)
    rows = []
    for name, output, rate in CANDIDATES[: args.candidates]:
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
        print(row, flush=True)
    decision = choose(rows)
    print_table(
        rows,
        ["candidate", *[c for c, _ in CELLS], "passes_mean", "mean_rank"],
    )
    print(f"chosen by the rule: {decision}")
    return dict(
        split="validation",
        n=len(texts),
        n_planted=len(planted["sentences"]),
        planted_train=args.planted_train,
        budget=dataclasses.asdict(budget),
        rows=rows,
        decision=decision,
    )


def frontier_budgets(args: argparse.Namespace) -> Dict[str, SigmaOptions]:
    default = preset_options("default", args)
    budgets = {"fast": preset_options("fast", args), "default": default}
    if not args.quick:
        budgets["4 x 46-230 steps"] = dataclasses.replace(default, n_steps=46)
    return budgets


def run_frontier(base: TextExplainer, args: argparse.Namespace) -> Dict[str, Any]:
    from captum_sigma.text.default_model import rotten_tomatoes_split

    texts = [t for t, _ in rotten_tomatoes_split("test")[: args.frontier_n]]
    outputs = [PRESETS["default"].output] + [
        o for o in args.frontier_outputs if o != PRESETS["default"].output
    ]
    rows = []
    for output in outputs:
        for name, options in frontier_budgets(args).items():
            explainer = explainer_for(base, output, options)
            first, passes = explain_counted(explainer, texts, seed=0)
            second, _ = explain_counted(explainer, texts, seed=1)
            row = dict(output=output, budget=name)
            row.update(agreement(first, second))
            row.update(flat_shares(first))
            row.update(passes_summary(passes))
            rows.append(row)
            print(row, flush=True)
    print_table(
        rows,
        [
            "output",
            "budget",
            "seed_top1",
            "seed_top3",
            "seed_kendall_tau",
            "flat",
            "flat_confident",
            "passes_mean",
            "passes_p90",
        ],
    )
    return dict(split="test", n=len(texts), rows=rows)


def run_calibration(base: TextExplainer, args: argparse.Namespace) -> Dict[str, Any]:
    """Coverage of the default preset's 95 % intervals of the long run's values."""
    from captum_sigma.text.default_model import rotten_tomatoes_split

    preset = PRESETS["default"]
    pool = [t for t, _ in rotten_tomatoes_split("test")]
    # the shortest held-out sentences: the long run is what one CPU allows
    texts = sorted(pool[: 8 * args.calibration_n], key=len)[: args.calibration_n]
    default = preset_options("default", args)
    options = default  # what is calibrated
    if args.calibration_lr is not None:  # a candidate step size, not the default
        options = dataclasses.replace(default, lr=args.calibration_lr)
    long_options = dataclasses.replace(  # the reference: the same for every candidate
        default,
        chains=1,
        tol=None,
        max_steps=None,
        n_steps=args.long_steps,
        n_samples=args.long_draws,
    )
    short = explainer_for(base, preset.output, options)
    long = explainer_for(base, preset.output, long_options)
    covered, total, per_sentence = 0, 0, []
    for text in texts:
        estimate = short.explain(text, seed=1)
        converged = long.explain(text, seed=2)
        interval = np.asarray(estimate.interval())
        truth = np.asarray(converged.scores)
        inside = (truth >= interval[:, 0]) & (truth <= interval[:, 1])
        covered += int(inside.sum())
        total += inside.size
        per_sentence.append(float(inside.mean()))
        print(f"calibration: {inside.mean():.2f} of {inside.size} tokens", flush=True)
    coverage = covered / total
    print(f"coverage of the 95 % intervals: {coverage:.3f} over {total} tokens")
    return dict(
        split="test",
        n=len(texts),
        long_steps=args.long_steps,
        long_draws=args.long_draws,
        lr=options.lr,
        coverage=coverage,
        tokens=total,
        per_sentence=per_sentence,
    )


def run_cost(base: TextExplainer, args: argparse.Namespace) -> Dict[str, Any]:
    """Seconds per sentence against LayerIntegratedGradients, interleaved."""
    from captum.attr import LayerIntegratedGradients

    from captum_sigma.text import model as text_model
    from captum_sigma.text.default_model import rotten_tomatoes_split
    from captum_sigma.text.tokenization import tokenize_texts

    preset = PRESETS["default"]
    texts = [t for t, _ in rotten_tomatoes_split("test")[: args.cost_n]]
    explainers = {
        name: explainer_for(base, PRESETS[name].output, preset_options(name, args))
        for name in ("default", "fast")
    }
    r = explainers["default"].regularization()
    # IG explains what the default preset explains (a KeyError names any other)
    outputs = {"log-odds": text_model.LogOddsOutput, "logit": text_model.LogitsOutput}
    ig = LayerIntegratedGradients(
        outputs[preset.output](base.model, r), base.embeddings
    )
    tok = base.tokenizer

    def run_ig(ids: torch.Tensor, mask: torch.Tensor, target: list) -> Any:
        return ig.attribute(
            ids,
            baselines=pad_baseline(ids, mask, tok),
            target=target,
            additional_forward_args=(mask,),
            n_steps=50,
            internal_batch_size=400,
        )

    rows: Dict[tuple, List[float]] = {}
    for repeat in range(args.repeats):
        for batch in args.batches:
            chunks = [texts[i : i + batch] for i in range(0, len(texts), batch)]
            for name in ("LayerIntegratedGradients (50 steps)", "default", "fast"):
                started = time.perf_counter()
                for chunk in chunks:
                    if name in explainers:
                        explainers[name].batch_size = batch
                        explainers[name].explain(chunk)
                    else:
                        encoded = tokenize_texts(
                            tok, chunk, base.max_length, base.device
                        )
                        ids, mask = encoded.input_ids, encoded.attention_mask
                        with torch.no_grad():
                            logits = base.model(input_ids=ids, attention_mask=mask)
                        run_ig(ids, mask, logits.logits.argmax(-1).tolist())
                seconds = (time.perf_counter() - started) / len(texts)
                rows.setdefault((batch, name), []).append(seconds)
                print(
                    f"repeat {repeat} batch {batch} {name}: {seconds:.3f} s", flush=True
                )
    table = []
    for batch in args.batches:
        ig_times = rows[(batch, "LayerIntegratedGradients (50 steps)")]
        for (b, name), times in rows.items():
            if b != batch:
                continue
            ratios = [a / c for a, c in zip(times, ig_times)]
            table.append(
                dict(
                    batch=batch,
                    method=name,
                    seconds_per_sentence=float(np.median(times)),
                    x_IG=float(np.median(ratios)),
                    x_IG_per_repeat=ratios,
                )
            )
    print_table(table, ["batch", "method", "seconds_per_sentence", "x_IG"])
    return dict(split="test", n=len(texts), threads=torch.get_num_threads(), rows=table)


SECTIONS = {
    "study": run_study,
    "frontier": run_frontier,
    "calibration": run_calibration,
    "cost": run_cost,
}


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS))
    parser.add_argument("--n", type=int, default=24, help="study sentences")
    parser.add_argument("--candidates", type=int, default=len(CANDIDATES))
    parser.add_argument("--planted-train", type=int, default=7030)
    parser.add_argument("--frontier-n", type=int, default=16)
    parser.add_argument(
        "--frontier-outputs", nargs="+", default=["log-odds", "logit", "probability"]
    )
    parser.add_argument("--calibration-n", type=int, default=8)
    parser.add_argument(
        "--calibration-lr",
        type=float,
        default=None,
        help="calibrate the default preset with this lr instead (a candidate)",
    )
    parser.add_argument("--long-steps", type=int, default=500)
    parser.add_argument("--long-draws", type=int, default=8)
    parser.add_argument("--cost-n", type=int, default=32)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tag", default=None, help="results file suffix")
    parser.add_argument("--no-save", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.candidates, args.planted_train = 2, 2, 400
        args.frontier_n, args.frontier_outputs = 2, ["log-odds"]
        args.calibration_n, args.long_steps, args.long_draws = 1, 30, 2
        args.cost_n, args.batches, args.repeats = 2, [1, 2], 1
    torch.set_num_threads(args.threads)
    base = TextExplainer.default(device=args.device)
    results: Dict[str, Any] = dict(machine=machine(), sections={})
    for name in args.sections:
        print(f"\n== {name} ==", flush=True)
        started = time.perf_counter()
        results["sections"][name] = SECTIONS[name](base, args)
        results["sections"][name]["wall_seconds"] = time.perf_counter() - started
    if args.no_save:
        return
    tag = args.tag or ("quick" if args.quick else torch.device(args.device).type)
    path = save_results(f"bench_trust_{tag}", results)
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main()
