"""Atomic shard files, the manifest, and the merge into one file in input order.

A shard is a JSONL file of result rows, sorted by input index, written under a
temporary name and renamed into place (``os.replace`` is atomic on POSIX), so a crash
never leaves a half-written shard behind. Each row carries its input ``index``;
finished work is whatever the shards hold.
"""

import heapq
import json
import os
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Set

__all__ = [
    "write_json_atomic",
    "ShardWriter",
    "finished_indices",
    "merge_shards",
    "shard_dir",
]

SHARD_SUFFIX = ".jsonl"
TEMP_PREFIX = ".tmp-"


def shard_dir(output: Path) -> Path:
    return output / "shards"


def write_json_atomic(path: Path, payload: Any) -> None:
    """Writes JSON to a temporary file, fsyncs it and renames it over ``path``."""
    temporary = path.with_name(TEMP_PREFIX + path.name)
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _write_lines_atomic(path: Path, rows: Iterable[Dict[str, Any]]) -> None:
    temporary = path.with_name(TEMP_PREFIX + path.name)
    with open(temporary, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _shards(directory: Path) -> List[Path]:
    return sorted(directory.glob("rank*" + SHARD_SUFFIX))


def _read_rows(path: Path) -> Iterator[Dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line)


def finished_indices(output: Path) -> Set[int]:
    """Input indices already in a complete shard (any rank)."""
    done: Set[int] = set()
    directory = shard_dir(output)
    if directory.exists():
        for path in _shards(directory):
            done.update(row["index"] for row in _read_rows(path))
    return done


class ShardWriter:
    """Writes one rank's shards: ``rank{r}-{n}.jsonl``, numbered after old ones."""

    def __init__(self, output: Path, rank: int) -> None:
        self.directory = shard_dir(output)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prefix = f"rank{rank:04d}-"
        for stale in self.directory.glob(TEMP_PREFIX + self.prefix + "*"):
            stale.unlink()  # a temporary file left by a killed run
        existing = [
            int(p.stem.split("-")[-1])
            for p in self.directory.glob(self.prefix + "*" + SHARD_SUFFIX)
        ]
        self.next_number = max(existing, default=-1) + 1

    def write(self, rows: List[Dict[str, Any]]) -> Path:
        path = self.directory / f"{self.prefix}{self.next_number:06d}{SHARD_SUFFIX}"
        _write_lines_atomic(path, sorted(rows, key=lambda row: row["index"]))
        self.next_number += 1
        return path


def merge_shards(output: Path, results: Path, errors: Path) -> Dict[str, int]:
    """Merges every shard into ``results`` and ``errors``, one row per input index.

    Shards are each sorted by index, so a k-way merge streams them in input order.
    A row recorded twice (possible only if a run was killed between writing a shard
    and learning about it) is kept once.

    Returns:
        Counts of result rows and error rows written.
    """
    streams = [_read_rows(path) for path in _shards(shard_dir(output))]
    merged = heapq.merge(*streams, key=lambda row: row["index"])
    counts = {"results": 0, "errors": 0}
    last_index = None

    def split() -> Iterator[Dict[str, Any]]:
        nonlocal last_index
        for row in merged:
            if row["index"] == last_index:
                continue
            last_index = row["index"]
            yield row

    error_rows: List[Dict[str, Any]] = []

    def good_rows() -> Iterator[Dict[str, Any]]:
        for row in split():
            if "error" in row:
                error_rows.append(row)
                counts["errors"] += 1
            else:
                counts["results"] += 1
                yield row

    _write_lines_atomic(results, good_rows())
    _write_lines_atomic(errors, error_rows)
    return counts
