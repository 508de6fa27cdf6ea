"""Write benchmarks/results/comparison.md: Sigma against Captum's methods.

One command (CPU, one thread, offline)::

    python benchmarks/make_comparison_report.py

It loads the packaged default sentiment model, draws a stratified sample of the
held-out Rotten Tomatoes test split (label x length quartile, round-robin over the
8 cells so that every prefix is stratified too) and runs, all with the predicted
class as target:

1. main table: Sigma (default setting), IntegratedGradients, Saliency,
   InputXGradient, DeepLift, FeatureAblation and Random on the first ``--n``
   sentences, both removal operators (``--curve-n`` restricts the deletion /
   insertion curves, their areas and LeRF - MoRF to a prefix; default: all);
2. Lime and KernelShap (500 samples), and Sigma and IntegratedGradients
   explaining the logit instead of the probability, on the first
   ``--sampling-n`` sentences, tabled with every main method on the same
   sentences;
3. Sigma's faithful reference setting (5000 steps) on the first ``--faithful-n``
   sentences, tabled with every other method on the same sentences;
4. seed stability (seed 0 vs 1) of Sigma, Lime and KernelShap on the first
   ``--stability-n`` sentences;
5. the planted-token ground truth (Bastings et al. 2022): a tiny BERT trained
   in-repo with "zeppelin" planted in half of the positive training sentences,
   every method on ``--planted-n`` held-out sentences with the word planted.

Outputs: comparison.md, comparison.csv (long format), comparison.html and
comparison_figures/*.png in ``--out``. Intermediate results are cached (pickle)
in ``--cache`` so that an interrupted run resumes; ``--fresh`` ignores the cache.

This script only parses the arguments and runs the stages
(:mod:`captum_sigma.evaluation.stages`); the report is written by
:func:`captum_sigma.evaluation.report_text.write_report`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from captum_sigma.engine import SigmaOptions  # noqa: E402
from captum_sigma.evaluation import (  # noqa: E402
    FAITHFUL_SIGMA_SETTINGS,
    compare,
    default_methods,
    evaluate_planted,
    planted_dataset,
    train_planted_model,
)
from captum_sigma.evaluation.methods import SIGMA_PROBABILITY_ROW  # noqa: E402
from captum_sigma.evaluation.planted import PLANTED_WORD, shortcut_rates  # noqa: E402
from captum_sigma.evaluation.report_text import model_lines, write_report  # noqa: E402
from captum_sigma.evaluation.stages import Stages, stratified_order  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
#: The Sigma rows: the default explainer's (``TextExplainer.default()``: logit / r)
#: and, named, the probability self-normalised; a stage of their own ("sigma"), so
#: that they alone are recomputed when Sigma changes.
SIGMA_METHODS = ["Sigma", SIGMA_PROBABILITY_ROW]
OTHER_MAIN_METHODS = [
    "IntegratedGradients",
    "Saliency",
    "InputXGradient",
    "DeepLift",
    "FeatureAblation",
    "Random",
]
MAIN_METHODS = SIGMA_METHODS + OTHER_MAIN_METHODS
SAMPLING_METHODS = ["Lime", "KernelShap"]
STAGE_NAMES = ("sigma", "main", "sampling", "logit", "faithful", "planted")
LOG = logging.getLogger("comparison_report")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=304, help="main-table sentences")
    parser.add_argument(
        "--curve-n",
        type=int,
        default=None,
        help="curve metrics on the first N main sentences (default: all)",
    )
    parser.add_argument("--sampling-n", type=int, default=304)
    parser.add_argument("--faithful-n", type=int, default=16)
    parser.add_argument(
        "--faithful-steps",
        type=int,
        default=FAITHFUL_SIGMA_SETTINGS["Sigma (faithful)"].n_steps,
        help="steps of the faithful setting (change only for smoke tests)",
    )
    parser.add_argument("--stability-n", type=int, default=24)
    parser.add_argument("--planted-n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--device", default="cpu", help="torch device of every method (e.g. cuda)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--cache", type=Path, default=Path("/tmp/captum_sigma_comparison_cache")
    )
    parser.add_argument("--fresh", action="store_true", help="ignore the cache")
    parser.add_argument(
        "--stages",
        default=None,
        help="comma-separated stages to compute now (of: "
        f"{', '.join(STAGE_NAMES)}); the others are read from the cache, and the "
        "report is written only when every stage is available (default: all)",
    )
    return parser.parse_args(argv)


def run_planted(args: argparse.Namespace, tokenizer: Any) -> Any:
    from captum_sigma.text.default_model import rotten_tomatoes_split

    train = rotten_tomatoes_split("train")
    texts, labels = [t for t, _ in train], [y for _, y in train]
    planted_texts, _ = planted_dataset(
        texts, labels, word=PLANTED_WORD, fraction=0.5, label=1, seed=args.seed
    )
    model = train_planted_model(tokenizer, planted_texts, labels, seed=args.seed)
    test = rotten_tomatoes_split("test")[: args.planted_n]
    test_texts, test_labels = [t for t, _ in test], [y for _, y in test]
    rates = shortcut_rates(model, tokenizer, test_texts, test_labels, seed=args.seed)
    results = {}
    for output in ("proba", "logit"):
        results[output] = evaluate_planted(
            model,
            tokenizer,
            test_texts,
            MAIN_METHODS + SAMPLING_METHODS,
            seed=args.seed,
            batch_size=args.batch_size,
            output=output,
            device=args.device,
        )
        results[output].shortcut.update(rates)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    only = None if args.stages is None else set(args.stages.split(","))
    unknown = (only or set()) - set(STAGE_NAMES)
    if unknown:
        raise SystemExit(f"--stages: unknown stage(s) {sorted(unknown)}")
    torch.set_num_threads(args.threads)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(message)s", force=True
    )
    for name in ("captum", "transformers"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from captum_sigma.text.default_model import (
        load_default_model,
        rotten_tomatoes_split,
    )

    start = time.perf_counter()
    model, tokenizer = load_default_model()
    model.to(args.device)
    lines_model, digest = model_lines()
    stages = Stages(args.cache, digest, args.fresh, only)
    test = rotten_tomatoes_split("test")
    texts_all, labels_all = [t for t, _ in test], [y for _, y in test]
    lengths = np.array([len(tokenizer(t)["input_ids"]) for t in texts_all])
    order = stratified_order(texts_all, labels_all, lengths, args.n, args.seed)
    texts = [texts_all[i] for i in order]
    labels = [labels_all[i] for i in order]
    common = {"seed": args.seed, "batch_size": args.batch_size, "device": args.device}
    # What each stage's cached result depends on (the texts are prefixes of one
    # stratified order, so a prefix depends on the seed and its length only).
    sigma_default = repr(SigmaOptions())
    n_sampling = min(args.sampling_n, args.n)
    n_faithful = min(args.faithful_n, n_sampling)
    shared = dict(common, max_length=128)
    if args.device == "cpu":  # keys of CPU runs predate the option
        del shared["device"]

    sigma_result = stages.run(
        "sigma",
        dict(shared, n=args.n, curve_n=args.curve_n, stability_n=args.stability_n)
        | dict(sigma=sigma_default, rows=tuple(SIGMA_METHODS)),
        lambda: compare(
            model,
            tokenizer,
            texts,
            SIGMA_METHODS,
            labels=labels,
            curve_n=args.curve_n,
            stability_n=args.stability_n,
            **common,
        ),
    )
    others = stages.run(
        "main",
        dict(shared, n=args.n, curve_n=args.curve_n, rows=tuple(OTHER_MAIN_METHODS)),
        lambda: compare(
            model,
            tokenizer,
            texts,
            OTHER_MAIN_METHODS,
            labels=labels,
            curve_n=args.curve_n,
            stability_n=0,
            **common,
        ),
    )
    main_result = (
        None if None in (sigma_result, others) else sigma_result.combine(others)
    )
    sampling = stages.run(
        "sampling",
        dict(shared, n=n_sampling, stability_n=min(args.stability_n, n_sampling)),
        lambda: compare(
            model,
            tokenizer,
            texts[:n_sampling],
            SAMPLING_METHODS,
            labels=labels[:n_sampling],
            stability_n=min(args.stability_n, n_sampling),
            **common,
        ),
    )
    logit_specs = default_methods(["IntegratedGradients"])
    logit = stages.run(
        "logit",
        dict(shared, n=n_sampling, rows=("IntegratedGradients",)),
        lambda: compare(
            model,
            tokenizer,
            texts[:n_sampling],
            {f"{name} (logit)": spec for name, spec in logit_specs.items()},
            labels=labels[:n_sampling],
            output="logit",
            stability_n=0,
            **common,
        ),
    )
    faithful = stages.run(
        "faithful",
        dict(shared, n=n_faithful, steps=args.faithful_steps),
        lambda: compare(
            model,
            tokenizer,
            texts[:n_faithful],
            ["Sigma (faithful)"],
            labels=labels[:n_faithful],
            sigma_settings={
                "Sigma (faithful)": dataclasses.replace(
                    FAITHFUL_SIGMA_SETTINGS["Sigma (faithful)"],
                    n_steps=args.faithful_steps,
                )
            },
            stability_n=0,
            seed=args.seed,
            device=args.device,
            # CPU: length-sorted pairs, little padding for 5000 steps each; a GPU
            # takes the usual batches
            batch_size=2 if args.device == "cpu" else args.batch_size,
        ),
    )
    planted = stages.run(
        "planted",
        dict(shared, n=args.planted_n, sigma=sigma_default),
        lambda: run_planted(args, tokenizer),
    )
    if stages.missing:
        LOG.info(
            "not writing the report: stage(s) %s are neither cached nor selected",
            ", ".join(stages.missing),
        )
        return 0

    table_b = main_result.select(range(n_sampling)).combine(sampling).combine(logit)
    table_c = table_b.select(range(n_faithful)).combine(faithful)
    raw = {
        "main": main_result,
        "sampling": sampling,
        "logit": logit,
        "faithful": faithful,
    }
    write_report(
        args.out,
        raw,
        table_b,
        table_c,
        planted,
        stages=stages,
        lines_model=lines_model,
        start=start,
        seed=args.seed,
        batch_size=args.batch_size,
        arguments=_result_arguments(args),
    )
    return 0


def _result_arguments(args: argparse.Namespace) -> str:
    """The arguments that differ from the defaults and change the results."""
    defaults = vars(parse_args([]))
    ignored = {"stages", "cache", "out", "fresh", "threads"}
    changed = [
        f"--{name.replace('_', '-')} {value}"
        for name, value in vars(args).items()
        if name not in ignored and value != defaults[name]
    ]
    return " ".join(changed) or "defaults"


if __name__ == "__main__":
    sys.exit(main())
