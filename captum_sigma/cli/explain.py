"""``captum-sigma explain``: per-token information of texts (table, HTML, PNG,
JSON)."""

import argparse
from typing import Any

from captum_sigma.cli.checks import check_output_dir
from captum_sigma.cli.common import add_subcommand
from captum_sigma.cli.text_options import (
    add_explained_option,
    add_run_options,
    add_text_options,
    check_layer_and_target,
    check_run_options,
    exit_code,
    indent,
    load_explainer,
    read_texts,
    write,
    write_json,
)

__all__ = ["register_explain", "run_explain"]

#: ``explain``'s line in ``captum-sigma --help``.
HELP = "explain texts: per-token table, HTML and PNG per text, one JSON"
#: What ``captum-sigma explain --help`` starts with.
DESCRIPTION = (
    "Explain texts with the sigma attribution: prints a per-token "
    "table and the prediction, writes TEXT-NNN.html / .png per text and "
    "explanations.json into --out."
)


def register_explain(subparsers: Any) -> argparse.ArgumentParser:
    """Adds ``explain`` to ``subparsers`` (``handler``: :func:`run_explain`)."""
    parser = add_subcommand(subparsers, "explain", help=HELP, description=DESCRIPTION)
    add_text_options(parser)
    parser.add_argument(
        "--layer",
        type=int,
        help="explain this encoder layer's output hidden state (1 = first layer) "
        "instead of the predicted class",
    )
    parser.add_argument(
        "--target",
        help="class to explain (index or label name); default: the predicted class",
    )
    add_explained_option(parser)
    add_run_options(parser)
    parser.set_defaults(handler=run_explain)
    return parser


def run_explain(args: argparse.Namespace) -> int:
    """Runs ``explain``; returns the exit code."""
    texts = read_texts(args)
    info, device, data = check_run_options(args)
    check_layer_and_target(args, info)
    out = check_output_dir(args.out, "--out")
    explainer = load_explainer(args, info, device, data)
    explanations = explainer.explain(
        texts, target=args.target, layer=args.layer, words=args.words
    )
    from captum_sigma.visualization import explanations_to_html, shared_vmax

    vmax = shared_vmax(explanations)  # one colour scale (nats per token) per run
    records = []
    for number, explanation in enumerate(explanations, start=1):
        stem = out / f"text-{number:03d}"
        write(stem.with_suffix(".html"), explanation.to_html(vmax=vmax))
        explanation.plot(vmax=vmax).savefig(stem.with_suffix(".png"), dpi=120)
        print(f"\n[{number}] {explanation.text}")
        print(f"    {explanation.summary()}")
        print(indent(explanation.table()))
        print(f"    wrote {stem}.html and {stem}.png")
        records.append(explanation.to_dict())
    page = out / "explanations.html"
    write(page, explanations_to_html(explanations, vmax=vmax))
    path = out / "explanations.json"
    write_json(path, info.name, "explanations", records)
    print(f"\nwrote {page} (every text on one colour scale) and {path}")
    return exit_code(explanations)
