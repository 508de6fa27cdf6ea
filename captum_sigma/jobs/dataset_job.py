"""Corpus-scale sigma explanations: streaming, resumable, sharded over ranks.

The job reads the input lazily, skips rows that finished shards already hold, keeps
rows whose ``index % world_size == rank``, sorts a window of rows by token count
(length bucketing: less padding per batch), explains batch by batch and writes
atomic shards. Rank 0 merges every shard into ``results.jsonl`` (one row per good
input, in input order) and ``errors.jsonl`` (bad rows with their reason) once all
ranks are done. A SIGTERM finishes the current batch, writes it and leaves a
resumable state; a CUDA out-of-memory error halves the batch and retries.

Results do not depend on how rows are batched (sigma's batch = single-example
guarantee), so resuming, re-bucketing or changing the number of ranks gives the same
output.
"""

import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Protocol, Sequence, Set

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from captum_sigma.jobs.distributed import ProcessGroup
from captum_sigma.jobs.reader import BadRow, InputRow, count_rows, read_rows
from captum_sigma.jobs.shards import (
    ShardWriter,
    finished_indices,
    merge_shards,
    write_json_atomic,
)

__all__ = ["BatchExplainer", "DatasetJob", "JobSummary"]


class BatchExplainer(Protocol):
    """What the job needs from the text layer."""

    max_length: int

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` including special tokens."""

    def explain(self, texts: Sequence[str]) -> List[Dict[str, Any]]:
        """One JSON-serialisable result per text (tokens, scores, sigma, ...)."""

    def describe(self) -> Dict[str, Any]:
        """The settings that determine the results (model, layer, target, seed)."""


@dataclass
class JobSummary:
    """What a run did."""

    items: int = 0
    errors: int = 0
    skipped: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    merged: Dict[str, int] = field(default_factory=dict)

    @property
    def sentences_per_second(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        state = (
            "interrupted (rerun the same command to resume)"
            if self.interrupted
            else "done"
        )
        return (
            f"{state}: {self.items} explained, {self.errors} errors, {self.skipped} "
            f"already done, {self.seconds:.1f} s, {self.sentences_per_second:.2f} "
            "sentences/s"
        )


class DatasetJob:
    """Explains every text of ``input_path`` into ``output_dir``.

    Args:
        input_path: A .txt (one text per line), .jsonl or .csv file.
        output_dir: Where shards, the manifest and the merged files go.
        explainer: The text layer's batch explainer.
        text_field: Field of the text in JSONL / CSV rows.
        batch_size: Texts per batch (halved on CUDA out-of-memory).
        bucket_batches: Batches per length-bucketing window.
        shard_batches: Batches per shard file (a SIGTERM flushes early).
        group: This process's rank and world size.
        show_progress: Show a tqdm bar with rate and ETA.
    """

    def __init__(
        self,
        input_path: Path,
        output_dir: Path,
        explainer: BatchExplainer,
        text_field: str = "text",
        batch_size: int = 32,
        bucket_batches: int = 8,
        shard_batches: int = 1,
        group: Optional[ProcessGroup] = None,
        show_progress: bool = True,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"--batch-size must be positive, got {batch_size}")
        self.input_path = Path(input_path)
        self.output_dir = Path(output_dir)
        if not self.input_path.is_file():
            raise ValueError(f"--input: no such file: {self.input_path}")
        self.explainer = explainer
        self.text_field = text_field
        self.batch_size = batch_size
        self.bucket_batches = bucket_batches
        self.shard_batches = shard_batches
        self.group = group or ProcessGroup()
        self.show_progress = show_progress and self.group.rank == 0
        self._stop_requested = False

    # -- public ----------------------------------------------------------------

    def run(self) -> JobSummary:
        """Runs (or resumes) the job; rank 0 merges when every rank is done."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.group.rank == 0:
            self._check_or_write_manifest()
        self.group.barrier()
        summary = JobSummary()
        previous = signal.signal(signal.SIGTERM, self._request_stop)
        start = time.perf_counter()
        try:
            self._explain_my_rows(summary)
        finally:
            signal.signal(signal.SIGTERM, previous)
            summary.seconds = time.perf_counter() - start
        summary.interrupted = self.group.any(summary.interrupted)
        self._combine_ranks(summary)
        self.group.barrier()
        if self.group.rank == 0:
            self._finish(summary)
        return summary

    def _combine_ranks(self, summary: JobSummary) -> None:
        """Totals over every rank; the job took as long as its slowest rank."""
        items, errors, skipped = self.group.reduce(
            [summary.items, summary.errors, summary.skipped]
        )
        summary.items, summary.errors = int(items), int(errors)
        summary.skipped = int(skipped)
        summary.seconds = self.group.reduce([summary.seconds], dist.ReduceOp.MAX)[0]

    # -- manifest --------------------------------------------------------------

    def _settings(self) -> Dict[str, Any]:
        stat = self.input_path.stat()
        return {
            "input": str(self.input_path.resolve()),
            "input_bytes": stat.st_size,
            "text_field": self.text_field,
            "explainer": self.explainer.describe(),
        }

    def _check_or_write_manifest(self) -> None:
        import json

        path = self.output_dir / "manifest.json"
        settings = self._settings()
        if path.exists():
            old = json.loads(path.read_text())
            if old.get("settings") != settings:
                raise ValueError(
                    f"--output {self.output_dir} holds a job with other settings or "
                    "another input; use a new --output directory"
                )
        write_json_atomic(path, {"settings": settings, "status": "running"})

    def _finish(self, summary: JobSummary) -> None:
        status = "interrupted" if summary.interrupted else "complete"
        if not summary.interrupted:
            summary.merged = merge_shards(
                self.output_dir,
                self.output_dir / "results.jsonl",
                self.output_dir / "errors.jsonl",
            )
        write_json_atomic(
            self.output_dir / "manifest.json",
            {
                "settings": self._settings(),
                "status": status,
                "world_size": self.group.world_size,
                "last_run": {
                    "items": summary.items,
                    "errors": summary.errors,
                    "skipped": summary.skipped,
                    "seconds": round(summary.seconds, 3),
                    "sentences_per_second": round(summary.sentences_per_second, 3),
                },
                "merged": summary.merged,
            },
        )

    # -- the loop --------------------------------------------------------------

    def _request_stop(self, signum: int, frame: Any) -> None:
        self._stop_requested = True

    def _my_rows(self, done: Set[int]) -> Iterator[Any]:
        for row in read_rows(self.input_path, self.text_field):
            if row.index % self.group.world_size != self.group.rank:
                continue
            if row.index in done:
                continue
            yield row

    def _windows(self, rows: Iterator[Any]) -> Iterator[List[Any]]:
        window: List[Any] = []
        size = self.batch_size * self.bucket_batches
        for row in rows:
            window.append(row)
            if len(window) >= size:
                yield window
                window = []
        if window:
            yield window

    def _explain_my_rows(self, summary: JobSummary) -> None:
        done = finished_indices(self.output_dir)
        total = count_rows(self.input_path, self.text_field)
        mine = sum(
            1 for i in range(total) if i % self.group.world_size == self.group.rank
        )
        summary.skipped = sum(
            1 for i in done if i % self.group.world_size == self.group.rank
        )
        writer = ShardWriter(self.output_dir, self.group.rank)
        pending: List[Dict[str, Any]] = []
        pending_batches = 0
        bar = tqdm(
            total=mine,
            initial=summary.skipped,
            desc="explain-dataset",
            unit="text",
            disable=not self.show_progress,
        )
        try:
            for window in self._windows(self._my_rows(done)):
                for batch in self._bucketed_batches(window, pending):
                    pending.extend(self._explain_batch(batch))
                    pending_batches += 1
                    if pending_batches >= self.shard_batches or self._stop_requested:
                        self._flush(writer, pending, summary, bar)
                        pending_batches = 0
                    if self._stop_requested:
                        summary.interrupted = True
                        return
                self._flush(writer, pending, summary, bar)
                pending_batches = 0
            self._flush(writer, pending, summary, bar)
        finally:
            bar.close()

    def _flush(
        self,
        writer: ShardWriter,
        pending: List[Dict[str, Any]],
        summary: JobSummary,
        bar: tqdm,
    ) -> None:
        if not pending:
            return
        writer.write(pending)
        errors = sum(1 for row in pending if "error" in row)
        summary.errors += errors
        summary.items += len(pending) - errors
        bar.update(len(pending))
        pending.clear()

    def _bucketed_batches(
        self, window: List[Any], pending: List[Dict[str, Any]]
    ) -> Iterator[List[InputRow]]:
        """Bad rows go to ``pending`` as errors; good rows in length-sorted batches."""
        good: List[InputRow] = []
        lengths: Dict[int, int] = {}
        for row in window:
            if isinstance(row, BadRow):
                pending.append(_error_row(row.index, row.id, row.reason))
                continue
            n_tokens = self.explainer.count_tokens(row.text)
            if n_tokens > self.explainer.max_length:
                pending.append(
                    _error_row(
                        row.index,
                        row.id,
                        f"too long: {n_tokens} tokens > the model's maximum "
                        f"{self.explainer.max_length}",
                    )
                )
                continue
            lengths[row.index] = n_tokens
            good.append(row)
        good.sort(key=lambda row: (lengths[row.index], row.index))
        for start in range(0, len(good), self.batch_size):
            yield good[start : start + self.batch_size]

    def _explain_batch(self, batch: List[InputRow]) -> List[Dict[str, Any]]:
        """Explains a batch; OOM halves it, any other failure isolates the row."""
        try:
            results = self.explainer.explain([row.text for row in batch])
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            if len(batch) == 1:
                return [
                    _error_row(
                        batch[0].index,
                        batch[0].id,
                        "CUDA out of memory on a single text",
                    )
                ]
            half = len(batch) // 2
            return self._explain_batch(batch[:half]) + self._explain_batch(batch[half:])
        except Exception as error:  # noqa: BLE001 - a bad row must not stop the job
            if len(batch) == 1:
                return [
                    _error_row(
                        batch[0].index, batch[0].id, f"{type(error).__name__}: {error}"
                    )
                ]
            return [row for item in batch for row in self._explain_batch([item])]
        return [
            {"index": row.index, "id": row.id, "text": row.text, **result}
            for row, result in zip(batch, results)
        ]


def _error_row(index: int, row_id: str, reason: str) -> Dict[str, Any]:
    return {"index": index, "id": row_id, "error": reason}
