"""``--model``: a local Hugging Face folder, described from its ``config.json`` and
weight-file header before any weights load, then loaded in one place.

A ``--model`` is always a local folder: it is never looked up on the Hugging Face
Hub. :func:`check_model` gives what the library's rules need to check the other
flags at once (class names, encoder layers, classifier or bare encoder);
:func:`load_checked_model` is the only place ``explain``, ``layers``,
``explain-dataset`` and ``compare`` read weights.
"""

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple

from captum_sigma.cli.common import CliError

__all__ = [
    "HEAD_NAMES",
    "WEIGHT_FILES",
    "ModelInfo",
    "check_model",
    "load_checked_model",
    "loading_errors",
]

#: Weight files one of which a model folder must hold.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
#: Parameter-name parts of a sequence-classification head.
HEAD_NAMES = ("classifier", "score")


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
        architectures: Every architecture the config names.
    """

    name: str
    folder: Optional[Path]
    architecture: str
    is_classifier: bool
    labels: Dict[int, str]
    num_layers: Optional[int]
    files: Tuple[Path, ...]
    architectures: Tuple[str, ...] = ()

    @property
    def described(self) -> str:
        """``--model NAME (Architecture)``, for messages."""
        return f"--model {self.name} ({self.architecture})"


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
        architectures=("BertForSequenceClassification",),
    )


def _folder_model_info(path: str) -> ModelInfo:
    from captum_sigma.text.resolve import class_names

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
    architectures = tuple(str(name) for name in config.get("architectures") or [])
    architecture = architectures[0] if architectures else "a model without architecture"
    is_classifier = any("ForSequenceClassification" in a for a in architectures)
    if is_classifier and not _has_head(folder / weights[0]):
        is_classifier = False
    labels = class_names(config.get("id2label"), config.get("num_labels"))
    return ModelInfo(
        name=str(path),
        folder=folder,
        architecture=architecture,
        is_classifier=is_classifier,
        labels=labels if is_classifier else {},
        num_layers=_num_layers(config),
        files=(folder,),
        architectures=architectures,
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
    with loading_errors(info.name):
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        architectures = getattr(config, "architectures", None) or []
        if any("ForSequenceClassification" in name for name in architectures):
            auto: Any = AutoModelForSequenceClassification
        else:
            auto = AutoModel
        model = auto.from_pretrained(folder, local_files_only=True)
    return model.to(device).eval(), tokenizer


@contextlib.contextmanager
def loading_errors(name: str) -> Iterator[None]:
    """Turns any error of transformers loading ``--model NAME`` into one line.

    Args:
        name: The ``--model`` as the message names it.

    Raises:
        CliError: ``--model NAME: cannot load the model (Type: message)``.
    """
    try:
        yield
    except Exception as error:  # transformers raises many kinds: one line
        raise CliError(
            f"--model {name}: cannot load the model ({type(error).__name__}: "
            f"{error})"
        ) from None
