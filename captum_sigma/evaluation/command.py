r"""The ``compare`` command: compare attribution methods on sentences from a file.

``register_compare(subparsers)`` adds the sub-command to an ``argparse``
sub-parser set (``captum-sigma compare ...``); until the main CLI wires it in,
run it on its own::

    python -m captum_sigma.evaluation.command compare --file texts.txt \
        [--model DIR] [--methods Sigma IntegratedGradients ...] [--out DIR] \
        [--n N] [--device cpu] [--seed 0] [--batch-size 16]

It writes ``comparison.md``, ``comparison.csv``, ``comparison.html`` and
``figures/*.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main", "read_texts", "register_compare", "run_compare"]


def register_compare(subparsers: Any) -> argparse.ArgumentParser:
    r"""Adds the ``compare`` sub-command to ``subparsers``.

    Args:
        subparsers: What ``ArgumentParser.add_subparsers()`` returned.

    Returns:
        parser (argparse.ArgumentParser): The sub-command's parser; its
        ``func`` default is :func:`run_compare`.
    """
    from captum_sigma.evaluation.methods import DEFAULT_METHOD_NAMES

    parser = subparsers.add_parser(
        "compare",
        help="compare attribution methods (faithfulness, cost, agreement)",
        description=(
            "Run Sigma and Captum's methods on the sentences of a file (target: "
            "the predicted class) and write markdown/CSV tables, PNG plots and an "
            "HTML page."
        ),
    )
    parser.add_argument(
        "--file", required=True, help="text file, one sentence per line"
    )
    parser.add_argument(
        "--model",
        default=None,
        help="folder of a sequence classifier and its tokenizer (save_pretrained); "
        "default: the packaged sentiment model",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=None,
        metavar="NAME",
        help=f"methods to run (default: all): Sigma {' '.join(DEFAULT_METHOD_NAMES)}",
    )
    parser.add_argument(
        "--faithful",
        action="store_true",
        help="also run Sigma's faithful reference setting (5000 steps per sentence)",
    )
    parser.add_argument("--out", default="captum-sigma-compare", help="output folder")
    parser.add_argument("--n", type=int, default=None, help="use the first N lines")
    parser.add_argument("--device", default=None, help="e.g. cpu or cuda")
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
    parser.set_defaults(func=run_compare)
    return parser


def read_texts(path: str | Path, n: int | None = None) -> list[str]:
    r"""Non-empty, stripped lines of a UTF-8 file.

    Args:
        path (str or Path): The file.
        n (int, optional): Keep the first n sentences.

    Returns:
        texts (list[str]): The sentences.
    """
    with open(path, encoding="utf-8") as handle:
        texts = [line.strip() for line in handle if line.strip()]
    if n is not None:
        if n < 1:
            raise ValueError(f"--n must be positive, got {n}")
        texts = texts[:n]
    if not texts:
        raise ValueError(f"{path} holds no sentence")
    return texts


def run_compare(args: argparse.Namespace) -> int:
    r"""Runs the comparison described by parsed arguments and writes its files.

    Args:
        args (argparse.Namespace): From the ``compare`` parser.

    Returns:
        status (int): 0 on success.
    """
    from captum_sigma.evaluation.compare import (
        DEFAULT_SIGMA_SETTINGS,
        FAITHFUL_SIGMA_SETTINGS,
        compare,
    )
    from captum_sigma.evaluation.report import write_comparison

    texts = read_texts(args.file, args.n)
    model, tokenizer = _load_model(args.model, args.device)
    sigma_settings = (
        FAITHFUL_SIGMA_SETTINGS if args.faithful else DEFAULT_SIGMA_SETTINGS
    )
    methods = args.methods
    if methods is not None and args.faithful and "Sigma (faithful)" not in methods:
        methods = list(methods) + ["Sigma (faithful)"]
    result = compare(
        model,
        tokenizer,
        texts,
        methods,
        operators=tuple(args.operators),
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
        sigma_settings=sigma_settings,
    )
    paths = write_comparison(result, args.out)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def _load_model(folder: str | None, device: str | None) -> tuple[Any, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if folder is None:
        from captum_sigma.text.default_model import load_default_model

        return load_default_model(device=device)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, local_files_only=True
    ).eval()
    if device is not None:
        model.to(device)
    return model, tokenizer


def build_parser() -> argparse.ArgumentParser:
    """A stand-alone parser with the ``compare`` sub-command."""
    parser = argparse.ArgumentParser(
        prog="python -m captum_sigma.evaluation.command",
        description="Compare attribution methods.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    register_compare(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    r"""Entry point of ``python -m captum_sigma.evaluation.command``.

    Args:
        argv (sequence of str, optional): Arguments. Default: ``sys.argv[1:]``.

    Returns:
        status (int): The exit status.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        return args.func(args)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
