"""Checks shared by every ``captum-sigma`` subcommand, run before any weights load.

``explain``, ``layers``, ``explain-dataset`` and ``compare`` validate their model
folder, device, target, layer(s), methods and files here, from the model's
``config.json`` and the files' headers only, so that a bad flag costs one line and
exit code 2 at once instead of a traceback after minutes of work. A ``--model``
is always a local folder: it is never looked up on the Hugging Face Hub. The module
also holds the progress-bar rule (a bar only on a terminal unless ``--progress``)
and the silencing of third-party chatter, the one loader of a checked model
(:func:`load_checked_model`, the only place a subcommand reads weights) and the
sigma options of the run (:func:`sigma_options`, ``--reference`` / ``--steps`` /
``--seed``).
"""

import argparse
import contextlib
import json
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_CODES",
    "EXIT_ERROR_ROWS",
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_TRUNCATED",
    "CliError",
    "ModelInfo",
    "add_progress_options",
    "check_data",
    "check_device",
    "check_explained",
    "check_file",
    "check_input",
    "check_layer",
    "check_layer_list",
    "check_methods",
    "check_model",
    "check_output_dir",
    "check_positive",
    "check_rate",
    "check_target",
    "exit_codes_epilog",
    "load_checked_model",
    "quiet_third_party",
    "read_text_lines",
    "show_progress",
    "sigma_options",
]

#: Exit code of a complete run.
EXIT_OK = 0
#: Exit code of a failure while running (e.g. out of memory, a disk error).
EXIT_FAILURE = 1
#: Exit code of bad input (usage errors, missing files, bad model, empty text...).
EXIT_BAD_INPUT = 2
#: Exit code of an ``explain-dataset`` job that finished with error rows.
EXIT_ERROR_ROWS = 3
#: Exit code of an ``explain`` / ``layers`` run that is complete but explained a
#: text truncated to the model's maximum length.
EXIT_TRUNCATED = 4
#: Every exit code of every subcommand and its meaning (``--help``, README).
EXIT_CODES: Dict[int, str] = {
    EXIT_OK: "complete",
    EXIT_FAILURE: "runtime failure",
    EXIT_BAD_INPUT: "usage error or bad input, found before any work",
    EXIT_ERROR_ROWS: "explain-dataset complete, with rows in errors.jsonl",
    EXIT_TRUNCATED: "explain / layers complete, but a text longer than the model's "
    "maximum was explained truncated",
    128 + signal.SIGINT: "stopped by SIGINT (Ctrl-C); rerun the job to resume it",
    128 + signal.SIGTERM: "stopped by SIGTERM; rerun the job to resume it",
}
#: Weight files one of which a model folder must hold.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
#: Parameter-name parts of a sequence-classification head.
HEAD_NAMES = ("classifier", "score")


class CliError(Exception):
    """A user error reported as one line on stderr (no traceback), exit code 2."""


@dataclass(frozen=True)
class ModelInfo:
    """What ``config.json`` says about a model, read without loading weights.

    Attributes:
        name: ``"default"`` or the folder as given.
        folder: The folder, or None for the packaged default model.
        architecture: E.g. ``BertForSequenceClassification`` or ``BertModel``.
        is_classifier: A sequence classifier (else a bare encoder).
        labels: Class names by index (empty for an encoder).
        num_layers: Encoder layers, if the config says.
        files: Files and folders whose content identifies the model.
    """

    name: str
    folder: Optional[Path]
    architecture: str
    is_classifier: bool
    labels: Dict[int, str]
    num_layers: Optional[int]
    files: Tuple[Path, ...]


def exit_codes_epilog() -> str:
    """The exit codes as the epilog of a ``--help`` page."""
    lines = [f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES.items()]
    return "exit codes:\n" + "\n".join(lines)


# -- model -----------------------------------------------------------------------


def check_model(path: Optional[str], need_classifier: bool = False) -> ModelInfo:
    """Checks ``--model`` (a local folder; None: the packaged default model).

    Args:
        path: The folder as given on the command line.
        need_classifier: Refuse a bare encoder (``compare`` needs a trained
            classification head; a bare encoder would get a random one).

    Raises:
        CliError: One line naming ``--model`` and what is wrong.
    """
    info = _default_model_info() if path is None else _folder_model_info(path)
    if need_classifier and not info.is_classifier:
        raise CliError(
            f"--model {info.name}: {info.architecture} is a bare encoder without a "
            "trained classification head; this command needs a fine-tuned sequence "
            "classifier (...ForSequenceClassification)"
        )
    return info


def _default_model_info() -> ModelInfo:
    from captum_sigma.text.default_model import (
        DEFAULT_WEIGHTS_PATH,
        LABELS,
        minilm_path,
    )

    try:
        base = minilm_path()
    except RuntimeError as error:
        raise CliError(f"cannot load the default model: {error}") from None
    if not DEFAULT_WEIGHTS_PATH.is_file():
        raise CliError(
            f"cannot load the default model: {DEFAULT_WEIGHTS_PATH} is missing"
        )
    config = _read_config(base, "the default model")
    return ModelInfo(
        name="default",
        folder=None,
        architecture="BertForSequenceClassification",
        is_classifier=True,
        labels=dict(enumerate(LABELS)),
        num_layers=_num_layers(config),
        files=(DEFAULT_WEIGHTS_PATH, base),
    )


def _folder_model_info(path: str) -> ModelInfo:
    folder = Path(path)
    if not folder.exists():
        raise CliError(
            f"--model {path}: no such directory (give a local Hugging Face model "
            "folder; Hub ids are not downloaded)"
        )
    if not folder.is_dir():
        raise CliError(f"--model {path}: not a directory")
    if not (folder / "config.json").is_file():
        raise CliError(
            f"--model {path}: not a Hugging Face model directory (no config.json)"
        )
    config = _read_config(folder, f"--model {path}")
    weights = [name for name in WEIGHT_FILES if (folder / name).is_file()]
    if not weights:
        raise CliError(
            f"--model {path}: cannot load the model: no weights file "
            f"({' or '.join(WEIGHT_FILES[::2])})"
        )
    architectures = config.get("architectures") or []
    architecture = architectures[0] if architectures else "a model without architecture"
    is_classifier = any("ForSequenceClassification" in a for a in architectures)
    if is_classifier and not _has_head(folder / weights[0]):
        is_classifier = False
    return ModelInfo(
        name=str(path),
        folder=folder,
        architecture=architecture,
        is_classifier=is_classifier,
        labels=_labels(config) if is_classifier else {},
        num_layers=_num_layers(config),
        files=(folder,),
    )


def _read_config(folder: Path, what: str) -> Dict[str, Any]:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CliError(
            f"{what}: cannot load the model (config.json: {error})"
        ) from None
    if not isinstance(config, dict):
        raise CliError(f"{what}: cannot load the model (config.json is not an object)")
    return config


def _has_head(weights: Path) -> bool:
    """Whether a safetensors file holds classification-head parameters.

    Only the header is read; other formats are trusted to match their config.
    """
    if weights.suffix != ".safetensors":
        return True
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="pt") as handle:
            keys = list(handle.keys())
    except Exception:  # noqa: BLE001 - a broken file fails at loading, with a line
        return True
    return any(part in HEAD_NAMES for key in keys for part in key.split("."))


def _num_layers(config: Dict[str, Any]) -> Optional[int]:
    for key in ("num_hidden_layers", "n_layers", "num_layers"):
        value = config.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _labels(config: Dict[str, Any]) -> Dict[int, str]:
    id2label = config.get("id2label") or {}
    count = config.get("num_labels", len(id2label) or 2)
    by_index = {int(index): str(name) for index, name in id2label.items()}
    return {i: by_index.get(i, f"LABEL_{i}") for i in range(int(count))}


# -- what is explained -------------------------------------------------------------


def check_target(
    target: Optional[str], info: ModelInfo, layer: Optional[int] = None
) -> Optional[str]:
    """Checks ``--target`` (a class index or label name of ``info``'s classes)."""
    if target is None:
        return None
    if layer is not None:
        raise CliError(
            "--target and --layer: a layer's hidden state has no class; give one"
        )
    if not info.is_classifier:
        raise CliError(
            f"--target {target}: {info.architecture} is not a sequence classifier "
            "(its pooled embedding or a --layer is explained)"
        )
    names = {name.lower() for name in info.labels.values()}
    value = target.strip()
    if value.lower() in names:
        return target
    count = len(info.labels)
    if value.lstrip("-").isdigit():
        if 0 <= int(value) < count:
            return target
        raise CliError(
            f"--target {target}: class out of range for a model with {count} "
            f"classes (0..{count - 1})"
        )
    raise CliError(
        f"--target {target}: unknown class; the model's classes are "
        f"{sorted(info.labels.values())} or indices 0..{count - 1}"
    )


def check_layer(layer: Optional[int], info: ModelInfo, option: str = "--layer") -> None:
    """Checks a 1-based encoder layer (negative counts from the last)."""
    count = info.num_layers
    if layer is None or count is None:
        return
    if not (1 <= layer <= count or -count <= layer <= -1):
        raise CliError(
            f"{option} {layer}: the model has {count} encoder layers (1..{count}, "
            f"or -{count}..-1 from the last)"
        )


def check_layer_list(value: Optional[str], info: ModelInfo) -> Optional[List[int]]:
    """Parses and checks ``--layers 1,3,6``."""
    if value is None:
        return None
    try:
        layers = [int(item) for item in value.split(",") if item.strip()]
    except ValueError:
        raise CliError(f"--layers {value!r}: give comma-separated integers") from None
    if not layers:
        raise CliError("--layers: give at least one layer")
    for layer in layers:
        check_layer(layer, info, "--layers")
    return layers


def check_methods(
    names: Optional[Sequence[str]], known: Sequence[str]
) -> Optional[List[str]]:
    """Checks ``--methods`` against the known method names (Sigma's rows first)."""
    if names is None:
        return None
    unknown = [name for name in names if name not in known]
    if unknown:
        raise CliError(f"--methods: unknown {unknown}; known: {', '.join(known)}")
    return list(names)


# -- devices and numbers -----------------------------------------------------------


def check_device(value: Optional[str]) -> Any:
    """The ``torch.device`` of ``--device`` (default: cuda when available)."""
    import torch

    if value is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise CliError(
            f"--device {value}: unknown device; use cpu, cuda, cuda:N or mps"
        ) from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise CliError(f"--device {value}: not available, no CUDA GPU found")
        if device.index is not None and device.index >= count:
            raise CliError(f"--device {value}: not available, {count} CUDA GPU(s)")
        return device
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise CliError(f"--device {value}: not available on this machine")
        return device
    raise CliError(f"--device {value}: unsupported; use cpu, cuda, cuda:N or mps")


def check_positive(option: str, value: Optional[int]) -> None:
    """A count option must be positive when given."""
    if value is not None and value <= 0:
        raise CliError(f"{option} must be positive, got {value}")


# -- files -----------------------------------------------------------------------


def check_file(path: Optional[str], option: str) -> Optional[Path]:
    """An input file that exists and is a file (None passes)."""
    if path is None:
        return None
    file = Path(path)
    if not file.exists():
        raise CliError(f"{option} {path}: no such file")
    if not file.is_file():
        raise CliError(f"{option} {path}: not a file")
    return file


def read_text_lines(path: str, option: str, minimum: int = 1) -> List[str]:
    """Non-blank, stripped lines of a UTF-8 file (a BOM is dropped), read by
    :func:`captum_sigma.text.data.read_texts`; errors name ``option``."""
    from captum_sigma.text.data import read_texts

    check_file(path, option)
    try:
        texts = read_texts(path)
    except UnicodeDecodeError as error:
        raise CliError(f"{option} {path}: not UTF-8 text ({error.reason})") from None
    except ValueError:  # no text at all
        texts = []
    except OSError as error:
        raise CliError(f"{option} {path}: cannot read ({error.strerror})") from None
    if len(texts) < minimum:
        what = "a text" if minimum == 1 else f"at least {minimum} texts"
        raise CliError(f"{option} {path}: give {what} (one per line)")
    return texts


def check_data(path: Optional[str]) -> Optional[List[str]]:
    """The ``--data`` sample for ``r`` (at least 2 texts), or None."""
    return None if path is None else read_text_lines(path, "--data", minimum=2)


def check_input(path: str, text_field: str) -> Path:
    """``explain-dataset --input``: a .txt/.jsonl/.csv file (CSV: with the field)."""
    from captum_sigma.jobs.reader import csv_header, input_format, open_input

    file = check_file(path, "--input")
    assert file is not None
    try:
        fmt = input_format(file)
    except ValueError as error:
        raise CliError(str(error)) from None
    if fmt == "csv":
        with open_input(file) as handle:
            header = csv_header(handle) or []
        if text_field not in header:
            raise CliError(
                f"--text-field: column {text_field!r} not in the CSV header {header}"
            )
    return file


def check_output_dir(path: str, option: str) -> Path:
    """An output folder: created if missing, refused if it is a file."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise CliError(f"{option} {path}: exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CliError(f"{option} {path}: cannot create the folder ({error})") from None
    return folder


# -- progress and chatter ------------------------------------------------------------


def add_progress_options(parser: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--no-progress`` (default: bars only on a terminal)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--progress",
        action="store_true",
        help="show progress bars even when stderr is not a terminal",
    )
    group.add_argument(
        "--no-progress",
        action="store_true",
        help="hide progress bars (by default shown only when stderr is a terminal)",
    )


def show_progress(args: argparse.Namespace) -> bool:
    """Whether to draw progress bars for these parsed arguments."""
    if getattr(args, "progress", False):
        return True
    if getattr(args, "no_progress", False):
        return False
    return sys.stderr.isatty()


@contextlib.contextmanager
def quiet_third_party() -> Iterator[None]:
    """Silences transformers' logging and progress bars ("Loading weights", "Token
    indices sequence length ...") for the duration of a command."""
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


# -- loading -----------------------------------------------------------------------


def load_checked_model(info: ModelInfo, device: Any) -> Tuple[Any, Any]:
    """Loads a model checked by :func:`check_model`: ``(model, tokenizer)``.

    The packaged default model when ``info.folder`` is None, else the local folder
    (``local_files_only``: never the Hub) as a sequence classifier when its config
    names one, else as a bare encoder. The model is put on ``device`` in eval mode.

    Raises:
        CliError: One line naming ``--model`` when transformers cannot load it.
    """
    if info.folder is None:
        from captum_sigma.text.default_model import load_default_model

        try:
            return load_default_model(device=device)
        except RuntimeError as error:
            raise CliError(f"cannot load the default model: {error}") from None
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    folder = info.folder
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
            f"--model {info.name}: cannot load the model ({type(error).__name__}: "
            f"{error})"
        ) from None
    return model.to(device).eval(), tokenizer


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

    base = get_preset(preset).options
    return merge_options(base, None, {"n_steps": steps, "seed": seed, "rate": rate})


def check_explained(
    value: Optional[str], info: ModelInfo, preset: str = "default"
) -> Optional[str]:
    """Checks ``--explained`` (a classifier's output, one of
    :data:`~captum_sigma.text.presets.OUTPUTS`).

    Returns:
        The output for :class:`~captum_sigma.text.TextExplainer` (``preset``'s
        when not given), None for a bare encoder.

    Raises:
        CliError: A bad value, or a value given for a bare encoder.
    """
    from captum_sigma.text.presets import OUTPUTS, get_preset

    if value is not None and value not in OUTPUTS:
        raise CliError(f"--explained {value!r}: give one of {', '.join(OUTPUTS)}")
    if not info.is_classifier:
        if value is not None:
            raise CliError(
                f"--explained: --model {info.name} ({info.architecture}) is a bare "
                "encoder; its pooled embedding / r is explained"
            )
        return None
    return get_preset(preset).output if value is None else value


def check_rate(value: Optional[float]) -> None:
    """Checks ``--rate`` (the entropy weight: a positive finite number)."""
    import math

    if value is not None and (not math.isfinite(value) or value <= 0):
        raise CliError(f"--rate must be a positive finite number, got {value}")
