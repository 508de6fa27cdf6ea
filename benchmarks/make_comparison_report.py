"""Write benchmarks/results/comparison.md: is Sigma worth using?

One command (CPU, one thread, offline)::

    python benchmarks/make_comparison_report.py

It loads the packaged default sentiment model and, all with the predicted class
as target:

1. the trust study (:mod:`comparison.trust_study`, protocol and rule fixed
   before its first run in ``docs/trust-study.md``): five candidates (what is
   explained x ``rate``) on ``--validation-n`` sentences of the *validation*
   split, two seeds, eight cells (seed agreement, planted hit@1, flat share,
   removal), then the rule;
2. test table: the explainer default ("Sigma", the ``default`` preset), the
   default of two releases ago (logit / r, rate 0.1, one chain),
   IntegratedGradients (on the probability and on the logit), Saliency,
   InputXGradient, DeepLift, FeatureAblation, Lime, KernelShap (500 samples)
   and Random on ``--n`` sentences of the held-out *test* split, both removal
   operators, every metric family (``--curve-n``: deletion / insertion curves on
   a prefix);
3. Sigma's faithful reference setting (5000 steps) on the first ``--faithful-n``
   test sentences;
4. the planted-token ground truth (a tiny BERT trained in-repo with a planted
   word) and the model randomisation sanity check (``--sanity-n`` sentences,
   the top ``--sanity-layers`` layers and the head re-initialised).

Sentences are drawn stratified (label x length quartile, round-robin), so every
prefix is stratified too. Every stage is cached under what it depends on in
``--cache`` (an interrupted run resumes; ``--fresh`` ignores the cache;
``--stages`` computes only some stages, e.g. in two processes side by side).
The report is written by :mod:`comparison.report_text` (``benchmarks/comparison/``:
the research harness, not part of the installed package).
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

from captum_sigma.evaluation import (  # noqa: E402
    FAITHFUL_SIGMA_SETTINGS,
    compare,
    default_methods,
    evaluate_planted,
    planted_dataset,
    score_comparison,
    train_planted_model,
)
from captum_sigma.evaluation.methods import SIGMA_LOGIT_ROW  # noqa: E402
from captum_sigma.evaluation.planted import PLANTED_WORD, shortcut_rates  # noqa: E402
from captum_sigma.evaluation.sanity import (  # noqa: E402
    model_randomization_check,
    run_model_randomization,
)
from captum_sigma.text import TextExplainer  # noqa: E402
from captum_sigma.text.presets import PRESETS  # noqa: E402

from comparison import trust_study  # noqa: E402
from comparison.merge import combine, methods_subset, select  # noqa: E402
from comparison.report_text import (  # noqa: E402
    model_lines,
    verdict_block,
    write_report,
)
from comparison.stages import Stages, stratified_order  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
#: What the row "Sigma" is (the explainer default): part of the keys of every
#: stage with Sigma in it, so that a new default recomputes them.
SIGMA_DEFAULT = repr((PRESETS["default"].output, PRESETS["default"].options))
README = Path(__file__).resolve().parents[1] / "README.md"
OTHER_METHODS = (
    "IntegratedGradients",
    "Saliency",
    "InputXGradient",
    "DeepLift",
    "FeatureAblation",
    "Random",
)
SAMPLING_METHODS = ("Lime", "KernelShap")
STAGE_NAMES = (
    "study",
    "attributions",
    "sigma-rows",
    "logit-rows",
    "faithful",
    "planted",
    "sanity",
    "test-metrics",
    "test-metrics-b",
)
LOG = logging.getLogger("comparison_report")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=304, help="test sentences")
    parser.add_argument(
        "--validation-n", type=int, default=24, help="study: validation sentences"
    )
    parser.add_argument(
        "--curve-n",
        type=int,
        default=96,
        help="deletion / insertion curves on the first N test sentences",
    )
    parser.add_argument("--faithful-n", type=int, default=8)
    parser.add_argument(
        "--faithful-steps",
        type=int,
        default=FAITHFUL_SIGMA_SETTINGS["Sigma (faithful)"].n_steps,
        help="steps of the faithful setting (change only for smoke tests)",
    )
    parser.add_argument("--stability-n", type=int, default=24)
    parser.add_argument("--planted-n", type=int, default=200)
    parser.add_argument(
        "--planted-train",
        type=int,
        default=7030,
        help="study: training sentences of its planted-shortcut model",
    )
    parser.add_argument("--sanity-n", type=int, default=32)
    parser.add_argument("--sanity-layers", type=int, default=3)
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


def sentences(
    split: str, n: int, tokenizer: Any, seed: int
) -> tuple[list[str], list[int]]:
    """The first ``n`` sentences of the split's stratified order, and labels."""
    from captum_sigma.text.default_model import rotten_tomatoes_split

    data = rotten_tomatoes_split(split)
    texts, labels = [t for t, _ in data], [y for _, y in data]
    lengths = np.array([len(tokenizer(t)["input_ids"]) for t in texts])
    order = stratified_order(texts, labels, lengths, n, seed)
    return [texts[i] for i in order], [labels[i] for i in order]


def run_planted(args: argparse.Namespace, tokenizer: Any, methods: dict) -> Any:
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
    result = evaluate_planted(
        model,
        tokenizer,
        test_texts,
        methods,
        seed=args.seed,
        batch_size=args.batch_size,
    )
    result.shortcut.update(rates)
    return {"proba": result}


def run_sanity(
    model: Any,
    tokenizer: Any,
    texts: list[str],
    specs: dict,
    trained: Any,
    args: argparse.Namespace,
) -> tuple[Any, Any]:
    """The randomisation check, and its noise floor for the stochastic methods.

    The floor: the same check between the trained model's runs with seed and
    seed + 1 (a stochastic method cannot correlate better with itself).
    """
    _, check = run_model_randomization(
        model,
        tokenizer,
        texts,
        specs,
        trained,
        n_layers=args.sanity_layers,
        seed=args.seed,
        batch_size=args.batch_size,
    )
    stochastic = {name: spec for name, spec in specs.items() if spec.stochastic}
    second = compare(
        model,
        tokenizer,
        texts,
        stochastic,
        target=trained.target,
        operators=(),
        stability_n=0,
        seed=args.seed + 1,
        batch_size=args.batch_size,
    )
    return check, model_randomization_check(trained, second)


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
    from captum_sigma.text.default_model import load_default_model

    start = time.perf_counter()
    model, tokenizer = load_default_model()
    model.to(args.device).eval()
    lines_model, digest = model_lines()
    stages = Stages(args.cache, digest, args.fresh, only)
    seed, batch_size = args.seed, args.batch_size
    common = {"seed": seed, "batch_size": batch_size}
    shared = dict(common, max_length=128)
    if args.device != "cpu":  # keys of CPU runs carry no device
        shared["device"] = args.device

    # 1. the trust study, on validation sentences only
    study_options = PRESETS["default"].options
    study = stages.run(
        "study",
        dict(
            shared,
            split="validation",
            n=args.validation_n,
            planted_train=args.planted_train,
            candidates=repr(trust_study.CANDIDATES),
            cells=repr(trust_study.CELLS),
            budget=repr(study_options),
        ),
        lambda: trust_study.run_study(
            TextExplainer.default(device=args.device),
            study_options,
            n=args.validation_n,
            planted_train=args.planted_train,
            log=LOG.info,
        ),
    )
    if study is not None:
        LOG.info("study: the rule chose %s", study["decision"]["chosen"])

    # 2. the test sentences: every attribution that does not depend on the choice
    texts, labels = sentences("test", args.n, tokenizer, seed)
    test = dict(shared, split="test", n=args.n)

    def attributions(name, rows, output="proba", stability_n=0, specs=None, extra=None):
        depends = dict(test, rows=tuple(rows), output=output, stability_n=stability_n)
        depends.update(extra or {})
        value = stages.run(
            name,
            depends,
            lambda: compare(
                model,
                tokenizer,
                texts,
                list(rows) if specs is None else specs,
                labels=labels,
                operators=(),
                output=output,
                stability_n=stability_n,
                **common,
            ),
        )
        return value, depends

    sigma_rows = ("Sigma", SIGMA_LOGIT_ROW)
    logit_specs = {
        f"{name} (logit)": spec
        for name, spec in default_methods(["IntegratedGradients"]).items()
    }
    parts = [
        attributions("attributions", OTHER_METHODS),
        attributions("attributions", SAMPLING_METHODS, stability_n=args.stability_n),
        attributions(
            "sigma-rows",
            sigma_rows,
            stability_n=args.stability_n,
            extra={"sigma": SIGMA_DEFAULT},
        ),
        attributions(
            "logit-rows", ("IntegratedGradients",), "logit", specs=logit_specs
        ),
    ]
    n_faithful = min(args.faithful_n, args.n)
    faithful_options = dataclasses.replace(
        FAITHFUL_SIGMA_SETTINGS["Sigma (faithful)"], n_steps=args.faithful_steps
    )
    faithful = stages.run(
        "faithful",
        dict(shared, n=n_faithful, options=repr(faithful_options), sigma=SIGMA_DEFAULT),
        lambda: compare(
            model,
            tokenizer,
            texts[:n_faithful],
            ["Sigma (faithful)"],
            labels=labels[:n_faithful],
            operators=(),
            sigma_settings={"Sigma (faithful)": faithful_options},
            stability_n=0,
            seed=seed,
            # CPU: length-sorted pairs, little padding for 5000 steps each
            batch_size=2 if args.device == "cpu" else batch_size,
        ),
    )
    others = default_methods(list(OTHER_METHODS + SAMPLING_METHODS))
    planted_methods = {**default_methods(list(sigma_rows)), **others}
    planted = stages.run(
        "planted",
        dict(
            shared,
            n=args.planted_n,
            rows=tuple(planted_methods),
            sigma=SIGMA_DEFAULT,
        ),
        lambda: run_planted(args, tokenizer, planted_methods),
    )

    if None in [part for part, _ in parts]:
        return _missing(stages)
    table = parts[0][0]
    for part, _ in parts[1:]:
        table = combine(table, part)
    n_sanity = min(args.sanity_n, args.n)
    sanity_specs = {**others, **default_methods(["Sigma"])}
    sanity = stages.run(
        "sanity",
        dict(
            shared,
            n=n_sanity,
            layers=args.sanity_layers,
            rows=tuple(sanity_specs),
            sigma=SIGMA_DEFAULT,
        ),
        lambda: run_sanity(
            model,
            tokenizer,
            texts[:n_sanity],
            sanity_specs,
            select(table, range(n_sanity)),
            args,
        ),
    )
    # every metric of every row, in two halves of similar cost (two processes
    # with --stages test-metrics and --stages test-metrics-b)
    halves = _halves(table)
    scored_halves = [
        stages.run(
            name,
            dict(
                test,
                parts=repr([d for _, d in parts]),
                curve_n=args.curve_n,
                methods=tuple(half),
            ),
            lambda half=half: score_comparison(
                methods_subset(table, half), model, tokenizer, curve_n=args.curve_n
            ),
        )
        for name, half in zip(("test-metrics", "test-metrics-b"), halves)
    ]
    if stages.missing or study is None:
        return _missing(stages)
    scored = methods_subset(combine(*scored_halves), table.methods)
    faithful_scored = score_comparison(faithful, model, tokenizer, curve_n=n_faithful)
    faithful_table = combine(select(scored, range(n_faithful)), faithful_scored)
    path = write_report(
        args.out,
        scored,
        faithful_table,
        planted,
        study=study,
        sanity=sanity,
        stages=stages,
        lines_model=lines_model,
        start=start,
        seed=seed,
        batch_size=batch_size,
        arguments=_result_arguments(args),
    )
    if args.out == RESULTS:  # the README carries the published report's verdict
        copy_verdict(path, README)
    return 0


def copy_verdict(report: Path, readme: Path) -> None:
    """Replaces the README's verdict block by the report's (same markers)."""
    block = verdict_block(report.read_text(encoding="utf-8"))
    text = readme.read_text(encoding="utf-8")
    old = verdict_block(text)
    readme.write_text(text.replace(old, block), encoding="utf-8")
    LOG.info("copied the verdict into %s", readme)


def _halves(table: Any) -> tuple[list[str], list[str]]:
    """The methods in two groups of about as many table rows (metric cost)."""
    halves: tuple[list[str], list[str]] = ([], [])
    weight = [0, 0]
    for method in sorted(table.methods, key=lambda m: -1 - table.signed[m]):
        lighter = int(weight[1] < weight[0])
        halves[lighter].append(method)
        weight[lighter] += 1 + table.signed[method]
    return halves


def _missing(stages: Stages) -> int:
    LOG.info(
        "not writing the report: stage(s) %s are neither cached nor selected",
        ", ".join(stages.missing),
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
