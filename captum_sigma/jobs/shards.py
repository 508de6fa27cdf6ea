"""Atomic shard files keyed by batch id, the manifest, and the merge.

Each planned batch is written to ``shards/{batch_id}.jsonl`` (rows sorted by input
index) under a temporary name, fsynced and renamed into place (``os.replace`` is
atomic on POSIX): a crash never leaves a half-written shard, and a finished batch is
exactly a shard file that exists. A batch with a row that failed for a reason that
may pass on retry (out of memory) is written as ``{batch_id}.retry.jsonl``; it
counts as unfinished, so a resume explains the whole batch again and replaces it.
"""

import json
import os
import shutil
from itertools import groupby
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Set

from captum_sigma.jobs.plan import error_row
from captum_sigma.jobs.reader import printable

__all__ = [
    "MANIFEST_NAME",
    "clear_job",
    "finished_batches",
    "merge_shards",
    "remove_temporary_files",
    "shard_dir",
    "shard_ids",
    "write_json_atomic",
    "write_shard",
]

SHARD_SUFFIX = ".jsonl"
RETRY_SUFFIX = ".retry.jsonl"
TEMP_PREFIX = ".tmp-"
MANIFEST_NAME = "manifest.json"
RESULTS_NAME = "results.jsonl"
ERRORS_NAME = "errors.jsonl"


def shard_dir(output: Path) -> Path:
    """Where the shards of a job live."""
    return Path(output) / "shards"


def write_json_atomic(path: Path, payload: Any) -> None:
    """Writes JSON to a temporary file, fsyncs it and renames it over ``path``."""
    _write_atomic(path, [json.dumps(payload, indent=2, sort_keys=True)])


def _write_atomic(path: Path, lines: Iterable[str]) -> None:
    """Writes lines (UTF-8) under a temporary name, then renames; never leaves it."""
    temporary = path.with_name(TEMP_PREFIX + path.name)
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            for line in lines:
                handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def _encodable_line(row: Dict[str, Any]) -> str:
    """The row as one JSON line; a row that is not valid UTF-8 becomes an error row."""
    line = json.dumps(row, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        row_id = printable(str(row.get("id", row["index"])))
        line = json.dumps(
            error_row(row["index"], row_id, "undecodable: a field is not valid UTF-8")
        )
    return line


def write_shard(output: Path, batch_id: str, rows: List[Dict[str, Any]]) -> Path:
    """Writes one batch's rows (sorted by index) atomically; returns the shard."""
    directory = shard_dir(output)
    directory.mkdir(parents=True, exist_ok=True)
    retry = any(row.get("retryable") for row in rows)
    path = directory / (batch_id + (RETRY_SUFFIX if retry else SHARD_SUFFIX))
    ordered = sorted(rows, key=lambda row: row["index"])
    _write_atomic(path, (_encodable_line(row) for row in ordered))
    other = directory / (batch_id + (SHARD_SUFFIX if retry else RETRY_SUFFIX))
    if other.exists():
        other.unlink()
    return path


def _batch_id(path: Path) -> str:
    return path.name.split(".", 1)[0]


def _shard_files(output: Path) -> List[Path]:
    directory = shard_dir(output)
    if not directory.exists():
        return []
    return sorted(
        path
        for path in directory.glob("*" + SHARD_SUFFIX)
        if not path.name.startswith(TEMP_PREFIX)
    )


def finished_batches(output: Path) -> Set[str]:
    """Ids of the batches whose shard holds no retryable row."""
    return {
        _batch_id(path)
        for path in _shard_files(output)
        if not path.name.endswith(RETRY_SUFFIX)
    }


def shard_ids(output: Path) -> Set[str]:
    """Ids of every written batch (finished or holding retryable rows)."""
    return {_batch_id(path) for path in _shard_files(output)}


def remove_temporary_files(output: Path) -> None:
    """Deletes temporary files a killed run left behind."""
    for folder in (Path(output), shard_dir(output)):
        if folder.exists():
            for stale in folder.glob(TEMP_PREFIX + "*"):
                stale.unlink()


def clear_job(output: Path) -> None:
    """Deletes a job's shards, merged files and manifest (``--restart``)."""
    shutil.rmtree(shard_dir(output), ignore_errors=True)
    for name in (RESULTS_NAME, ERRORS_NAME, MANIFEST_NAME):
        path = Path(output) / name
        if path.exists():
            path.unlink()


def _read_rows(path: Path) -> Iterator[Dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line)


def _rows_in_input_order(output: Path) -> Iterator[Dict[str, Any]]:
    """Every shard's rows in input order, one window in memory at a time.

    A window is a range of consecutive input rows, so sorting each window's rows
    and concatenating the windows in order gives the input order.
    """
    files = _shard_files(output)
    for _, window in groupby(files, key=lambda path: path.name.split("-", 1)[0]):
        rows = [row for path in window for row in _read_rows(path)]
        yield from sorted(rows, key=lambda row: row["index"])


def merge_shards(output: Path) -> Dict[str, int]:
    """Writes ``results.jsonl`` and ``errors.jsonl`` from the shards, in input order.

    Returns:
        Counts of result rows, error rows, retryable error rows and flat
        explanations (result rows whose ``flat`` field is true: no token stands
        out at the run's budget) written.
    """
    counts = {"results": 0, "errors": 0, "retryable": 0, "flat": 0}
    error_rows: List[str] = []

    def good_lines() -> Iterator[str]:
        for row in _rows_in_input_order(output):
            line = json.dumps(row, ensure_ascii=False)
            if "error" in row:
                error_rows.append(line)
                counts["errors"] += 1
                counts["retryable"] += int(bool(row.get("retryable")))
            else:
                counts["results"] += 1
                counts["flat"] += int(bool(row.get("flat")))
                yield line

    _write_atomic(Path(output) / RESULTS_NAME, good_lines())
    _write_atomic(Path(output) / ERRORS_NAME, error_rows)
    return counts
