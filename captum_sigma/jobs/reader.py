"""Streaming input for corpus jobs: txt (one text per line), JSONL and CSV.

Rows are read lazily, numbered in input order, and checked one by one: an empty row,
or one with bytes that are not UTF-8 in its text or its ``id``, becomes a
:class:`BadRow` with a reason instead of stopping the job. Files are opened with
``errors="surrogateescape"`` so an undecodable byte sequence affects its own row
only, and with ``encoding="utf-8-sig"`` so a byte-order mark (what spreadsheet
programs write as "CSV UTF-8") is dropped in every format.
"""

import csv
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, Optional, Union

__all__ = [
    "FORMATS",
    "BadRow",
    "InputRow",
    "count_rows",
    "csv_header",
    "input_format",
    "input_sha256",
    "is_valid_utf8",
    "open_input",
    "printable",
    "read_rows",
]

FORMATS = ("txt", "jsonl", "csv")
#: Decoding of every input: a BOM is dropped, bad bytes stay in their own row.
ENCODING = "utf-8-sig"
ERRORS = "surrogateescape"


@dataclass(frozen=True)
class InputRow:
    """A text to explain: its position in the input, its id and the text."""

    index: int
    id: str
    text: str


@dataclass(frozen=True)
class BadRow:
    """A row that cannot be explained, and why (its ``id`` is always printable)."""

    index: int
    id: str
    reason: str


Row = Union[InputRow, BadRow]


def input_format(path: Union[str, Path]) -> str:
    """``txt``, ``jsonl`` or ``csv`` from the file name; ValueError otherwise."""
    suffix = Path(path).suffix.lower().lstrip(".")
    suffix = {"json": "jsonl", "ndjson": "jsonl", "text": "txt"}.get(suffix, suffix)
    if suffix not in FORMATS:
        raise ValueError(
            f"--input: unsupported file type '.{suffix}'; use .txt, .jsonl or .csv"
        )
    return suffix


def input_sha256(path: Union[str, Path], chunk_bytes: int = 1 << 20) -> str:
    """SHA-256 of the file's bytes, read in chunks (the input's identity)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_valid_utf8(text: str) -> bool:
    """False when ``text`` holds bytes that were not UTF-8 (escaped surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(text: str) -> str:
    """``text`` with undecodable bytes written as ``\\xNN`` (always valid UTF-8)."""
    try:
        raw = text.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate from a JSON "\\ud800" escape
        return text.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return raw.decode("utf-8", errors="backslashreplace")


def _check(index: int, row_id: object, text: Optional[object]) -> Row:
    identifier = str(row_id)
    if not is_valid_utf8(identifier):
        return BadRow(index, printable(identifier), "undecodable id: not valid UTF-8")
    if not isinstance(text, str):
        return BadRow(index, identifier, "missing or non-string text field")
    if not is_valid_utf8(text):
        return BadRow(index, identifier, "undecodable: not valid UTF-8")
    if not text.strip():
        return BadRow(index, identifier, "empty text")
    return InputRow(index, identifier, text.strip())


def _txt_rows(handle: IO[str]) -> Iterator[Row]:
    for index, line in enumerate(handle):
        yield _check(index, index, line.rstrip("\r\n"))


def _jsonl_rows(handle: IO[str], text_field: str) -> Iterator[Row]:
    for index, line in enumerate(handle):
        try:
            record = json.loads(line)
        except ValueError as error:
            yield BadRow(index, str(index), f"invalid JSON: {printable(str(error))}")
            continue
        if not isinstance(record, dict):
            yield BadRow(index, str(index), "JSON line is not an object")
            continue
        yield _check(index, record.get("id", index), record.get(text_field))


def csv_header(handle: IO[str]) -> Optional[list]:
    """The CSV header row of an open file (``None`` for an empty file)."""
    return csv.DictReader(handle).fieldnames


def _csv_rows(handle: IO[str], text_field: str) -> Iterator[Row]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    reader = csv.DictReader(handle)
    if reader.fieldnames is None or text_field not in reader.fieldnames:
        header = None if reader.fieldnames is None else list(reader.fieldnames)
        raise ValueError(
            f"--text-field: column '{text_field}' not in the CSV header "
            f"{[printable(name) for name in header or []]}"
        )
    for index, record in enumerate(reader):
        yield _check(index, record.get("id") or index, record.get(text_field))


def open_input(path: Union[str, Path]) -> IO[str]:
    """Opens an input file for reading text (BOM dropped, bad bytes escaped)."""
    newline = "" if input_format(path) == "csv" else None
    return open(path, encoding=ENCODING, errors=ERRORS, newline=newline)


def read_rows(path: Union[str, Path], text_field: str = "text") -> Iterator[Row]:
    """Yields every row of ``path`` in input order (streaming)."""
    fmt = input_format(path)
    with open_input(path) as handle:
        if fmt == "txt":
            yield from _txt_rows(handle)
        elif fmt == "jsonl":
            yield from _jsonl_rows(handle, text_field)
        else:
            yield from _csv_rows(handle, text_field)


def count_rows(path: Union[str, Path], text_field: str = "text") -> int:
    """Number of rows (a cheap first pass, for the progress bar's ETA)."""
    return sum(1 for _ in read_rows(path, text_field))
