r"""``captum-sigma compare``: compare attribution methods on sentences from a file.

``register_compare(subparsers)`` adds the sub-command to an ``argparse``
sub-parser set; :mod:`captum_sigma.cli` registers it as ``captum-sigma compare``::

    captum-sigma compare --file texts.txt \
        [--model DIR] [--methods Sigma IntegratedGradients ...] [--out DIR] \
        [--n N] [--device cpu] [--seed 0] [--batch-size 16]

Its file checks, model loading and text reading are the CLI's own
(:mod:`captum_sigma.cli.checks`, :mod:`captum_sigma.cli.model`); the device and the
method names are checked by the library's rules
(:func:`~captum_sigma.text.resolve.resolve_device`,
:func:`~captum_sigma.evaluation.methods.default_methods`), before the model loads.

It writes ``comparison.md``, ``comparison.csv``, ``comparison.html`` and
``figures/*.png`` into ``--out`` (every metric of the three families of
:data:`~captum_sigma.evaluation.METRIC_FAMILIES`: the signed drop of p_c, the
distribution change and the representation change, home ground for Sigma),
then prints the paths and, per operator and family, the best row of every
metric and the rows significantly better or worse than Sigma.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from captum_sigma.cli.common import add_progress_options, add_subcommand
from captum_sigma.evaluation.names import METHOD_NAMES

__all__ = ["METHOD_NAMES", "register_compare", "run_compare", "summary_lines"]

#: ``compare``'s line in ``captum-sigma --help``.
HELP = "compare attribution methods (faithfulness, cost, agreement)"
#: What ``captum-sigma compare --help`` starts with.
DESCRIPTION = (
    "Run Sigma and Captum's methods on the sentences of a file (target: "
    "the predicted class) and write markdown/CSV tables, PNG plots and an "
    "HTML page. Removal metrics of three families: signed (drop of the "
    "predicted class's probability), distribution change (total "
    "variation) and representation change ((change of the logit / r)^2, "
    "Sigma's own objective: home ground for Sigma). Every flag and file is "
    "checked before the model loads."
)


def register_compare(subparsers: Any) -> argparse.ArgumentParser:
    """Adds ``compare`` to ``subparsers`` (``func``: :func:`run_compare`)."""
    *defaults, probability_row, logit_row = METHOD_NAMES
    parser = add_subcommand(subparsers, "compare", help=HELP, description=DESCRIPTION)
    parser.add_argument(
        "--file", required=True, help="text file, one sentence per line"
    )
    parser.add_argument(
        "--model",
        default=None,
        help="local folder of a fine-tuned sequence classifier and its tokenizer "
        "(save_pretrained; never a Hub id); default: the packaged sentiment model",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=None,
        metavar="NAME",
        help="methods to run (default: all but the last two): "
        f"{' '.join(defaults)} '{probability_row}' '{logit_row}'",
    )
    parser.add_argument(
        "--faithful",
        action="store_true",
        help="also run Sigma's faithful reference setting (5000 steps per sentence)",
    )
    parser.add_argument("--out", default="captum-sigma-compare", help="output folder")
    parser.add_argument("--n", type=int, default=None, help="use the first N lines")
    parser.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:N or mps (default: cuda if any)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every method")
    parser.add_argument(
        "--batch-size", type=int, default=16, help="sentences per attribution call"
    )
    parser.add_argument(
        "--operators",
        nargs="+",
        default=["delete", "mask"],
        choices=["delete", "mask"],
        help="removal operators of the metrics",
    )
    add_progress_options(parser)
    parser.set_defaults(func=run_compare)
    return parser


def run_compare(args: argparse.Namespace) -> int:
    r"""Runs the comparison described by parsed arguments and writes its files.

    Every flag and file is checked before the model loads: a missing file, an
    unknown method or device, a ``--model`` that is not a local sequence classifier
    (a bare encoder would get a random head) each raise a one-line error.

    Args:
        args (argparse.Namespace): From the ``compare`` parser.

    Returns:
        status (int): 0 on success.
    """
    from captum_sigma.cli.common import show_progress
    from captum_sigma.cli.model import load_checked_model
    from captum_sigma.evaluation.compare import compare

    texts, sigma_settings, methods, info, device = _checked(args)
    model, tokenizer = load_checked_model(info, device)
    if methods is not None and args.faithful and "Sigma (faithful)" not in methods:
        methods = list(methods) + ["Sigma (faithful)"]
    stages = _stage_count(methods, sigma_settings, len(args.operators))
    with _stage_progress(stages, show_progress(args)):
        result = compare(
            model,
            tokenizer,
            texts,
            methods,
            operators=tuple(args.operators),
            batch_size=args.batch_size,
            seed=args.seed,
            device=device,
            sigma_settings=sigma_settings,
        )
    from captum_sigma.evaluation.report import write_comparison

    paths = write_comparison(result, args.out)
    for name, path in paths.items():
        print(f"{name}: {path}")
    for line in summary_lines(result):
        print(line)
    return 0


def summary_lines(result: Any, row: str = "Sigma", seed: int = 0) -> list[str]:
    r"""What ``compare`` prints after its paths: the best rows, per family.

    Args:
        result (ComparisonResult): A scored comparison.
        row (str, optional): The row the significance counts describe (when
                present). Default: "Sigma".
        seed (int, optional): Bootstrap seed. Default: 0.

    Returns:
        lines (list[str]): Per operator and metric family, ``label: best row
        (mean)`` of every metric; then, per family, the rows significantly
        better and worse than ``row``.
    """
    import numpy as np

    from captum_sigma.evaluation.compare import (
        METRIC_FAMILIES,
        METRIC_FAMILY_LABELS,
        METRICS,
    )
    from captum_sigma.evaluation.report import family_metrics, family_summary_lines

    lines = []
    for operator in result.operators:
        for family in METRIC_FAMILIES:
            best = []
            for metric in family_metrics(result, family):
                label, higher = METRICS[metric]
                means = {
                    r: float(np.nanmean(values[metric]))
                    for r, values in result.metrics[operator].items()
                    if np.isfinite(values[metric]).any()
                }
                if means:
                    top = (max if higher else min)(means, key=means.get)
                    best.append(f"{label} {top} ({means[top]:.3g})")
            if best:
                lines.append(
                    f"best, {operator}, {METRIC_FAMILY_LABELS[family]}: "
                    + "; ".join(best)
                )
    if row in result.rows and result.metrics:
        lines += [
            line.removeprefix("- ")
            for line in family_summary_lines(result, row, seed=seed)
        ]
    return lines


def _checked(args: argparse.Namespace) -> tuple[Any, ...]:
    """Every check of ``compare`` (no weights loaded)."""
    from captum_sigma.cli.checks import (
        check_output_dir,
        check_positive,
        read_text_lines,
    )
    from captum_sigma.cli.common import CliError
    from captum_sigma.cli.model import check_model
    from captum_sigma.evaluation.compare import (
        DEFAULT_SIGMA_SETTINGS,
        FAITHFUL_SIGMA_SETTINGS,
    )
    from captum_sigma.evaluation.methods import default_methods
    from captum_sigma.text.resolve import resolve_device

    check_positive("--n", args.n)
    check_positive("--batch-size", args.batch_size)
    texts = read_text_lines(args.file, "--file")[: args.n]
    sigma_settings = (
        FAITHFUL_SIGMA_SETTINGS if args.faithful else DEFAULT_SIGMA_SETTINGS
    )
    methods = None if args.methods is None else list(args.methods)
    try:
        default_methods(methods, sigma_settings=sigma_settings)  # loads no weights
    except ValueError as error:
        raise CliError(f"--methods: {error}") from None
    info = check_model(args.model, need_classifier=True)
    device = resolve_device(args.device, "--device")
    check_output_dir(args.out, "--out")
    return texts, sigma_settings, methods, info, device


def _stage_count(
    methods: Sequence[str] | None, sigma_settings: Any, n_operators: int
) -> int:
    """Stages :func:`compare` logs: attributions, seed stability, metric rows."""
    from captum_sigma.evaluation.methods import default_methods

    specs = default_methods(methods, sigma_settings=sigma_settings)
    rows = len(specs) + sum(spec.signed for spec in specs.values())
    stochastic = sum(spec.stochastic for spec in specs.values())
    return len(specs) + stochastic + n_operators * rows


#: How :func:`compare` logs the start of each stage it runs.
_STAGE_PREFIXES = ("attributing with ", "seed stability of ", "metrics of ")


class _StageBar(logging.Handler):
    """Advances a tqdm bar on every stage :func:`compare` logs."""

    def __init__(self, bar: Any) -> None:
        super().__init__(logging.INFO)
        self.bar = bar

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith(_STAGE_PREFIXES):
            self.bar.set_postfix_str(message, refresh=False)
            self.bar.update(1)


@contextlib.contextmanager
def _stage_progress(total: int, enabled: bool) -> Iterator[None]:
    """A tqdm bar over the comparison's stages (only when ``enabled``)."""
    if not enabled:
        yield
        return
    from tqdm.auto import tqdm

    logger = logging.getLogger("captum_sigma.evaluation.compare")
    level, propagate = logger.level, logger.propagate
    with tqdm(total=total, desc="compare", unit="stage") as bar:
        handler = _StageBar(bar)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate
