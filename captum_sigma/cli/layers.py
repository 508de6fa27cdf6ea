"""``captum-sigma layers``: the words × layers heatmap of texts (PNG, JSON)."""

import argparse
from typing import Any, List, Optional

from captum_sigma.cli.checks import check_output_dir
from captum_sigma.cli.common import CliError, add_subcommand
from captum_sigma.cli.model import ModelInfo
from captum_sigma.cli.text_options import (
    add_run_options,
    add_text_options,
    check_run_options,
    exit_code,
    indent,
    load_explainer,
    read_texts,
    write_json,
)

__all__ = ["layers_table", "parse_layer_list", "register_layers", "run_layers"]

#: ``layers``'s line in ``captum-sigma --help``.
HELP = "words x layers heatmap: the information of every word in every layer"
#: What ``captum-sigma layers --help`` starts with.
DESCRIPTION = (
    "The paper's words x layers view: one sigma objective per "
    "encoder layer, each normalised by its own r; writes layers-NNN.png per "
    "text and layers.json into --out."
)


def register_layers(subparsers: Any) -> argparse.ArgumentParser:
    """Adds ``layers`` to ``subparsers`` (``handler``: :func:`run_layers`)."""
    parser = add_subcommand(subparsers, "layers", help=HELP, description=DESCRIPTION)
    add_text_options(parser)
    parser.add_argument(
        "--layers",
        dest="layer_list",
        help="comma-separated encoder layers (1-based), e.g. 1,3,6; default: all",
    )
    add_run_options(parser)
    parser.set_defaults(handler=run_layers)
    return parser


def parse_layer_list(value: Optional[str], info: ModelInfo) -> Optional[List[int]]:
    """Parses ``--layers 1,3,6``; each layer is checked by the library's rule."""
    from captum_sigma.text.resolve import resolve_layer

    if value is None:
        return None
    try:
        layers = [int(item) for item in value.split(",") if item.strip()]
    except ValueError:
        raise CliError(f"--layers {value!r}: give comma-separated integers") from None
    if not layers:
        raise CliError("--layers: give at least one layer")
    if info.num_layers is not None:
        for layer in layers:
            resolve_layer(layer, info.num_layers, "--layers")
    return layers


def run_layers(args: argparse.Namespace) -> int:
    """Runs ``layers``; returns the exit code."""
    texts = read_texts(args)
    info, device, data = check_run_options(args)
    layers = parse_layer_list(args.layer_list, info)
    out = check_output_dir(args.out, "--out")
    explainer = load_explainer(args, info, device, data)
    views = explainer.explain_layers(texts, layers=layers, words=args.words)
    from captum_sigma.visualization import shared_vmax

    vmax = shared_vmax(views)  # one colour scale (nats per token) per run
    records = []
    for number, view in enumerate(views, start=1):
        path = out / f"layers-{number:03d}.png"
        view.plot(vmax=vmax).savefig(path, dpi=120)
        print(f"\n[{number}] {view.text}")
        print(indent(layers_table(view)))
        print(f"    wrote {path}")
        records.append(view.to_dict())
    path = out / "layers.json"
    write_json(path, info.name, "layers", records)
    print(f"\nwrote {path}")
    return exit_code(views)


def layers_table(view: Any) -> str:
    """A words × layers view as a text table (one row per token)."""
    width = max([len(token) for token in view.tokens] + [5])
    header = f"{'token':<{width}}  " + "  ".join(f"{f'L{k}':>6}" for k in view.layers)
    lines = [header]
    for index, token in enumerate(view.tokens):
        values = "  ".join(f"{row[index]:>6.1f}" for row in view.scores)
        lines.append(f"{token:<{width}}  {values}")
    return "\n".join(lines)
