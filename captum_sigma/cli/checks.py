"""The command line's own checks: its flags' ranges, files and folders.

What a flag means to the library (a class, a layer, a device, an explained
output, a preset, a method) is checked by the library's own rule
(:mod:`captum_sigma.text.resolve`, :func:`~captum_sigma.text.presets.get_preset`,
...), called by the subcommands before any weights load; only what concerns the
command line itself is checked here, each error one :class:`CliError` line naming
the flag.
"""

import math
from pathlib import Path
from typing import List, Optional

from captum_sigma.cli.common import CliError

__all__ = [
    "check_data",
    "check_file",
    "check_input",
    "check_output_dir",
    "check_positive",
    "check_rate",
    "read_text_lines",
]


def check_positive(option: str, value: Optional[int]) -> None:
    """A count option must be positive when given."""
    if value is not None and value <= 0:
        raise CliError(f"{option} must be positive, got {value}")


def check_rate(value: Optional[float], option: str = "--rate") -> None:
    """A weight option (``--rate``, ``--scale``) must be a positive finite number."""
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise CliError(f"{option} must be a positive finite number, got {value}")


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
    fmt = input_format(file)  # ValueError: one line, exit 2
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
