r"""``captum-sigma explain-lm``: sigma attribution of a causal language model.

``register_explain_lm(subparsers)`` adds the sub-command to an ``argparse``
sub-parser set; :mod:`captum_sigma.cli` registers it as ``captum-sigma
explain-lm``::

    captum-sigma explain-lm --model DIR --prompt "a 3 b 7 c 1 ; b =" --target "7"
    captum-sigma explain-lm --model DIR --prompt "Once upon a time" \
        --max-new-tokens 10 [--out DIR] [--explained log_odds] [--data FILE]

It writes ``explain-lm.png`` (the output tokens × prompt tokens heatmap, in nats),
``explain-lm.html`` (the same matrix as an HTML table, every token escaped) and
``explain-lm.json`` into ``--out`` and prints each prompt token's information.
Every flag and file is checked before the model's weights load (the explained
value and the device by the library's rules,
:func:`~captum_sigma.llm.choices.check_explained` and
:func:`~captum_sigma.text.resolve.resolve_device`): bad input costs one line on
stderr and exit code 2. Building the parser imports neither torch nor
transformers.

Sigma attribution: Guan et al., ICML 2019,
http://proceedings.mlr.press/v97/guan19a.html
"""

import argparse
import html
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from captum_sigma.cli.common import (
    CliError,
    add_choice_option,
    add_progress_options,
    add_subcommand,
)
from captum_sigma.engine.options import SigmaOptions
from captum_sigma.llm.choices import EXPLAINED

__all__ = ["register_explain_lm", "run_explain_lm", "token_matrix_html"]
#: Architecture-name endings of a causal language model's config.
_CAUSAL_LM = ("ForCausalLM", "LMHeadModel")
STEM = "explain-lm"
#: ``explain-lm``'s line in ``captum-sigma --help``.
HELP = "explain a causal language model's continuation of a prompt"
#: What ``captum-sigma explain-lm --help`` starts with.
DESCRIPTION = (
    "Sigma attribution of a generative (causal) language model: the "
    "information, in nats (>= 0), that each output token's prediction keeps of "
    "each prompt token. Writes explain-lm.png (output x prompt tokens heatmap), "
    "explain-lm.html and explain-lm.json into --out. The continuation is "
    "--target, or the model's greedy one of --max-new-tokens tokens."
)


def register_explain_lm(subparsers: Any) -> argparse.ArgumentParser:
    """Adds ``explain-lm`` to ``subparsers`` (``handler``: :func:`run_explain_lm`)."""
    parser = add_subcommand(
        subparsers, "explain-lm", help=HELP, description=DESCRIPTION
    )
    parser.add_argument(
        "--model",
        required=True,
        metavar="DIR",
        help="a local Hugging Face causal language model folder (save_pretrained, "
        "tokenizer included; never looked up on the Hub)",
    )
    parser.add_argument("--prompt", required=True, metavar="TEXT")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--target", metavar="TEXT", help="the continuation to explain")
    what.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        metavar="N",
        help="explain the model's greedy continuation of N tokens (default: 25 "
        "when no --target)",
    )
    add_choice_option(
        parser,
        "--explained",
        EXPLAINED,
        help="the next-token value explained (default: LLMSigmaAttribution's, "
        "chosen by the ground-truth study in docs/llm.md)",
    )
    parser.add_argument(
        "--seq-attr",
        choices=("sum", "joint"),
        default="sum",
        help="sequence scores: the sum over output tokens (Captum's convention) or "
        "one objective over the whole continuation (the paper's) (%(default)s)",
    )
    parser.add_argument(
        "--skip-tokens",
        nargs="+",
        default=None,
        metavar="TOKEN",
        help="prompt tokens neither perturbed nor scored (e.g. a BOS token)",
    )
    parser.add_argument(
        "--data",
        metavar="FILE",
        help="texts (one per line) whose next-token values give r, the "
        "normalisation; default: each output token's own value",
    )
    parser.add_argument("--out", default="captum-sigma-lm", metavar="DIR")
    parser.add_argument(
        "--device", help="cpu, cuda, cuda:N or mps; default: cuda when available"
    )
    defaults = SigmaOptions()  # torch-free: the help states the real defaults
    parser.add_argument(
        "--seed", type=int, default=None, help=f"seed (default: {defaults.seed})"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help=f"optimisation steps (default: {defaults.n_steps})",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help=f"entropy weight (default: {defaults.rate:g})",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=None,
        help=f"upper bound of sigma (default: {defaults.scale:g}; the paper advises "
        "about 10 x the std of the embedding matrix)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="bound on the rows one forward pass sees (default: all)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads for torch (default: all)"
    )
    add_progress_options(parser)
    parser.set_defaults(handler=run_explain_lm)
    return parser


def run_explain_lm(args: argparse.Namespace) -> int:
    r"""Runs ``explain-lm``; returns the exit code.

    Every check runs before the weights load (:func:`_checked`).

    Args:
        args (argparse.Namespace): From the ``explain-lm`` parser.

    Returns:
        status (int): 0 on success.
    """
    from captum_sigma.cli.common import show_progress

    device, data, out = _checked(args)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    model, tokenizer = _load(Path(args.model), device)
    from captum.attr import TextTokenInput

    from captum_sigma.attr import LayerSigmaAttribution
    from captum_sigma.llm import DEFAULT_EXPLAINED, LLMSigmaAttribution

    explained = args.explained or DEFAULT_EXPLAINED
    sigma = LLMSigmaAttribution(
        LayerSigmaAttribution(model, model.get_input_embeddings()), tokenizer
    )
    inp = TextTokenInput(args.prompt, tokenizer, skip_tokens=args.skip_tokens)
    if inp.n_itp_features == 0:
        raise ValueError("--skip-tokens: every prompt token is skipped")
    regularization = (
        None if data is None else sigma.estimate_regularization(data, explained)
    )
    gen_args = None
    if args.target is None:
        gen_args = {"max_new_tokens": args.max_new_tokens or 25, "do_sample": False}
    options = _options(args)
    result = sigma.attribute(
        inp,
        target=args.target,
        gen_args=gen_args,
        explained=explained,
        regularization=regularization,
        seq_attr=args.seq_attr,
        options=options,
        internal_batch_size=args.batch_size,
        show_progress=show_progress(args),
    )
    figure, _ = result.plot_token_attr()
    figure.axes[-1].set_ylabel("information (nats)", rotation=-90, va="bottom")
    png, page, record = (
        out / f"{STEM}{suffix}" for suffix in (".png", ".html", ".json")
    )
    figure.savefig(png, dpi=120, bbox_inches="tight")
    _write(page, token_matrix_html(result, args.prompt, explained))
    document = _record(args, result, explained, options, regularization)
    _write(record, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(_table(result))
    print(f"wrote {png}, {page} and {record}")
    return 0


def token_matrix_html(result: Any, prompt: str, explained: str) -> str:
    r"""The output × prompt token matrix of an ``LLMAttributionResult`` as a
    self-contained HTML page; every token and text is HTML-escaped.

    Args:
        result (LLMAttributionResult): Its ``token_attr`` (nats, ``≥ 0``),
            ``seq_attr``, ``input_tokens`` and ``output_tokens``.
        prompt (str): The prompt, shown as the title.
        explained (str): What was explained, shown in the caption.

    Returns:
        page (str): HTML.
    """
    matrix = result.token_attr.tolist()
    sequence = result.seq_attr.tolist()
    top = max([abs(v) for row in matrix for v in row] + [1e-12])
    seq_top = max([abs(v) for v in sequence] + [1e-12])

    def cell(value: float, scale: float) -> str:
        alpha = min(1.0, abs(value) / scale)
        return (
            f'<td style="background: rgba(0, 128, 0, {alpha:.3f})">' f"{value:.3f}</td>"
        )

    head = "".join(f"<th>{html.escape(t)}</th>" for t in result.input_tokens)
    rows = [
        f"<tr><th>{html.escape(token)}</th>"
        + "".join(cell(v, top) for v in row)
        + "</tr>"
        for token, row in zip(result.output_tokens, matrix)
    ]
    rows.append(
        "<tr><th>sequence</th>" + "".join(cell(v, seq_top) for v in sequence) + "</tr>"
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(prompt)}</title>"
        "<style>td, th {padding: 2px 6px; font-family: monospace} "
        "td {text-align: right}</style></head><body>\n"
        f"<h3>{html.escape(prompt)}</h3>\n"
        "<p>Sigma attribution (Guan et al., ICML 2019): the information (nats, "
        "&ge; 0) each output token's prediction keeps of each prompt token; "
        f"explained value: {html.escape(explained)}.</p>\n"
        f"<table><tr><th></th>{head}</tr>\n" + "\n".join(rows) + "\n</table>\n"
        "</body></html>\n"
    )


# -- checks ----------------------------------------------------------------------


def _checked(args: argparse.Namespace) -> Tuple[Any, Optional[List[str]], Path]:
    """Every check of ``explain-lm`` (no weights loaded)."""
    from captum_sigma.cli.checks import (
        check_data,
        check_output_dir,
        check_positive,
        check_rate,
    )
    from captum_sigma.cli.model import check_model
    from captum_sigma.llm.choices import check_explained
    from captum_sigma.text.resolve import resolve_device

    if not args.prompt.strip():
        raise CliError("--prompt is empty")
    if args.target is not None and not args.target.strip():
        raise CliError("--target is empty")
    check_positive("--max-new-tokens", args.max_new_tokens)
    check_positive("--steps", args.steps)
    check_positive("--threads", args.threads)
    check_positive("--batch-size", args.batch_size)
    check_rate(args.rate)
    check_rate(args.scale, "--scale")
    if args.explained is not None:
        check_explained(args.explained, "--explained")
    info = check_model(args.model)
    if not any(a.endswith(_CAUSAL_LM) for a in info.architectures):
        raise CliError(
            f"--model {args.model}: {info.architecture} is not a causal language "
            "model (its config names no ...ForCausalLM / ...LMHeadModel "
            "architecture)"
        )
    device = resolve_device(args.device, "--device")
    data = check_data(args.data)
    out = check_output_dir(args.out, "--out")
    return device, data, out


def _load(folder: Path, device: Any) -> Tuple[Any, Any]:
    """The model (eval mode, on ``device``) and tokenizer; the only place weights
    are read. ``local_files_only``: never the Hub."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from captum_sigma.cli.model import loading_errors

    with loading_errors(str(folder)):
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    return model.to(device).eval(), tokenizer


def _options(args: argparse.Namespace) -> Any:
    """The :class:`~captum_sigma.SigmaOptions` of ``--steps``, ``--seed``, ``--rate``
    and ``--scale`` (a flag not given keeps the default; the options check them)."""
    from captum_sigma.engine import SigmaOptions

    flags = {"n_steps": args.steps, "seed": args.seed, "rate": args.rate}
    flags["scale"] = args.scale
    return SigmaOptions(**{k: v for k, v in flags.items() if v is not None})


# -- output ------------------------------------------------------------------------


def _record(
    args: argparse.Namespace,
    result: Any,
    explained: str,
    options: Any,
    regularization: Any,
) -> Dict[str, Any]:
    from dataclasses import asdict

    return {
        "format_version": 1,
        "model": str(args.model),
        "prompt": args.prompt,
        "target": args.target,
        "explained": explained,
        "regularization": None if regularization is None else float(regularization),
        "seq_attr_mode": args.seq_attr,
        "unit": "nats",
        "input_tokens": list(result.input_tokens),
        "output_tokens": list(result.output_tokens),
        "token_attr": result.token_attr.tolist(),
        "seq_attr": result.seq_attr.tolist(),
        "output_probs": result.output_probs.tolist(),
        "options": asdict(options),
    }


def _table(result: Any) -> str:
    tokens: Sequence[str] = result.input_tokens
    width = max([len(t) for t in tokens] + [5])
    lines = [f"{'token':<{width}}  {'nats':>8}"]
    for token, value in zip(tokens, result.seq_attr.tolist()):
        lines.append(f"{token:<{width}}  {value:>8.3f}")
    outputs = " ".join(result.output_tokens)
    return f"continuation: {outputs}\n" + "\n".join(lines)


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
