"""Streaming input for corpus jobs: txt (one text per line), JSONL and CSV.

Rows are read lazily, numbered in input order, and checked one by one: an empty or
undecodable row becomes a :class:`BadRow` with a reason instead of stopping the job.
Files are opened with ``errors="surrogateescape"`` so an undecodable byte sequence
affects its own row only.
"""

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Union

__all__ = ["InputRow", "BadRow", "read_rows", "count_rows", "input_format"]

FORMATS = ("txt", "jsonl", "csv")


@dataclass(frozen=True)
class InputRow:
    """A text to explain: its position in the input, its id and the text."""

    index: int
    id: str
    text: str


@dataclass(frozen=True)
class BadRow:
    """A row that cannot be explained, and why."""

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


def _is_decodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check(index: int, row_id: str, text: Optional[object]) -> Row:
    if not isinstance(text, str):
        return BadRow(index, row_id, "missing or non-string text field")
    if not _is_decodable(text):
        return BadRow(index, row_id, "undecodable: not valid UTF-8")
    if not text.strip():
        return BadRow(index, row_id, "empty text")
    return InputRow(index, row_id, text.strip())


def _txt_rows(handle) -> Iterator[Row]:
    for index, line in enumerate(handle):
        yield _check(index, str(index), line.rstrip("\r\n"))


def _jsonl_rows(handle, text_field: str) -> Iterator[Row]:
    for index, line in enumerate(handle):
        try:
            record = json.loads(line)
        except ValueError as error:
            yield BadRow(index, str(index), f"invalid JSON: {error}")
            continue
        if not isinstance(record, dict):
            yield BadRow(index, str(index), "JSON line is not an object")
            continue
        row_id = str(record.get("id", index))
        yield _check(index, row_id, record.get(text_field))


def _csv_rows(handle, text_field: str) -> Iterator[Row]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    reader = csv.DictReader(handle)
    if reader.fieldnames is None or text_field not in reader.fieldnames:
        raise ValueError(
            f"--text-field: column '{text_field}' not in the CSV header "
            f"{reader.fieldnames}"
        )
    for index, record in enumerate(reader):
        row_id = str(record.get("id") or index)
        yield _check(index, row_id, record.get(text_field))


def read_rows(path: Union[str, Path], text_field: str = "text") -> Iterator[Row]:
    """Yields every row of ``path`` in input order (streaming)."""
    fmt = input_format(path)
    newline = "" if fmt == "csv" else None
    with open(path, encoding="utf-8", errors="surrogateescape", newline=newline) as f:
        if fmt == "txt":
            yield from _txt_rows(f)
        elif fmt == "jsonl":
            yield from _jsonl_rows(f, text_field)
        else:
            yield from _csv_rows(f, text_field)


def count_rows(path: Union[str, Path], text_field: str = "text") -> int:
    """Number of rows (a cheap first pass, for the progress bar's ETA)."""
    return sum(1 for _ in read_rows(path, text_field))
