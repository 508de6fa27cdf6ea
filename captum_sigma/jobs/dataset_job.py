"""Corpus-scale sigma explanations: streaming, resumable, sharded over ranks.

A job explains every row of an input file into an output folder:

1. Rank 0 takes an exclusive lock on the folder (:class:`~captum_sigma.jobs.lock.
   FolderLock`) and compares the job's identity (every option, content hashes of
   the model, its tokenizer, ``r`` and the input, package versions) with the one
   recorded in ``manifest.json``; any difference refuses the run and names the
   field (``restart=True`` discards the old job instead).
2. Every rank walks the same deterministic batch plan (:mod:`captum_sigma.jobs.
   plan`), explains the batches that fall to it and have no finished shard, and
   writes one atomic shard per batch.
3. Once every rank is done, rank 0 merges the shards into ``results.jsonl`` (one row
   per good input, in input order) and ``errors.jsonl`` (bad rows with a reason).

A SIGTERM or SIGINT finishes the current batch, writes it and stops (a second
signal drops the batch at once); the summary records the signal. A CUDA
out-of-memory error halves the batch; a single text that still does not fit becomes
a retryable error row, redone on the next run. Any other failure of one row becomes
a permanent error row; the job goes on.
"""

import json
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    Set,
    Union,
)

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from captum_sigma.jobs.distributed import ProcessGroup
from captum_sigma.jobs.identity import identity_differences, package_versions
from captum_sigma.jobs.lock import FolderLock
from captum_sigma.jobs.plan import PlannedBatch, error_row, plan_batches
from captum_sigma.jobs.reader import (
    InputRow,
    count_rows,
    input_format,
    input_sha256,
    printable,
    read_rows,
)
from captum_sigma.jobs.shards import (
    MANIFEST_NAME,
    clear_job,
    finished_batches,
    merge_shards,
    remove_temporary_files,
    shard_dir,
    shard_ids,
    write_json_atomic,
    write_shard,
)

__all__ = [
    "BatchExplainer",
    "DatasetJob",
    "JobInterrupted",
    "JobMismatchError",
    "JobSummary",
]


class BatchExplainer(Protocol):
    """What the job needs from the text layer."""

    max_length: int

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` including special tokens."""

    def explain(self, texts: Sequence[str]) -> List[Dict[str, Any]]:
        """One JSON-serialisable result per text (tokens, scores, sigma, ...)."""

    def describe(self) -> Dict[str, Any]:
        """Everything else that determines the results: settings and content
        hashes (for texts: :func:`~captum_sigma.jobs.text_adapter.text_job_identity`).
        """


class JobMismatchError(ValueError):
    """The output folder holds another job (a field of its identity differs)."""


class JobInterrupted(KeyboardInterrupt):
    """A second SIGTERM / SIGINT: the current batch is dropped.

    Attributes:
        signum: The signal's number (exit code ``128 + signum``).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


@dataclass
class JobSummary:
    """What a run did (totals over every rank).

    Attributes:
        items: Texts explained by this run.
        errors: Error rows written by this run.
        skipped: Rows of batches that earlier runs had finished.
        seconds: Wall time of the slowest rank.
        stop_signal: The signal that stopped the run (SIGTERM, SIGINT), or None.
        merged: Rows of ``results.jsonl`` / ``errors.jsonl`` (and how many errors
            are retryable) once the job is complete.
    """

    items: int = 0
    errors: int = 0
    skipped: int = 0
    seconds: float = 0.0
    stop_signal: Optional[int] = None
    merged: Dict[str, int] = field(default_factory=dict)

    @property
    def interrupted(self) -> bool:
        return self.stop_signal is not None

    @property
    def complete(self) -> bool:
        return not self.interrupted and bool(self.merged)

    @property
    def sentences_per_second(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        if self.interrupted:
            name = signal.Signals(self.stop_signal).name  # type: ignore[arg-type]
            state = f"interrupted by {name}"
        else:
            state = "complete" if self.complete else "done"
        return (
            f"{state}: {self.items} explained, {self.errors} errors, {self.skipped} "
            f"already done, {self.seconds:.1f} s, {self.sentences_per_second:.2f} "
            "sentences/s"
        )


ExplainerOrFactory = Union[BatchExplainer, Callable[[], BatchExplainer]]


class DatasetJob:
    """Explains every text of ``input_path`` into ``output_dir``.

    Args:
        input_path: A .txt (one text per line), .jsonl or .csv file (UTF-8, a BOM
            is accepted).
        output_dir: Where the lock, shards, the manifest and the merged files go.
        explainer: The text layer's batch explainer, or a function returning it
            (called after the lock and the identity check, so that a refused run
            loads no weights).
        text_field: Field of the text in JSONL / CSV rows.
        batch_size: Texts per batch (halved on CUDA out-of-memory).
        bucket_batches: Batches per length-sorting window.
        group: This process's rank and world size.
        show_progress: Show a tqdm bar with rate and ETA (rank 0).
        settings: The explainer's part of the identity; default: its
            ``describe()``.
        restart: Discard what the output folder holds and start over.
    """

    def __init__(
        self,
        input_path: Path,
        output_dir: Path,
        explainer: ExplainerOrFactory,
        text_field: str = "text",
        batch_size: int = 32,
        bucket_batches: int = 8,
        group: Optional[ProcessGroup] = None,
        show_progress: bool = True,
        settings: Optional[Mapping[str, Any]] = None,
        restart: bool = False,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if bucket_batches <= 0:
            raise ValueError(f"bucket_batches must be positive, got {bucket_batches}")
        self.input_path = Path(input_path)
        self.output_dir = Path(output_dir)
        if not self.input_path.is_file():
            raise ValueError(f"input_path: no such file: {self.input_path}")
        input_format(self.input_path)
        self._explainer = explainer
        self._settings = None if settings is None else dict(settings)
        self.text_field = text_field
        self.batch_size = batch_size
        self.bucket_batches = bucket_batches
        self.group = group or ProcessGroup()
        self.show_progress = show_progress and self.group.rank == 0
        self.restart = restart
        self._stop_signal: Optional[int] = None
        self._planned: Set[str] = set()

    # -- public ----------------------------------------------------------------

    def run(self) -> JobSummary:
        """Runs (or resumes) the job; rank 0 merges when every rank is done.

        Raises:
            FolderLockedError: Another process holds the output folder.
            JobMismatchError: The folder holds a job with another identity.
            JobInterrupted: A second signal dropped the current batch.
        """
        lock = FolderLock(self.output_dir)
        try:
            self._open(lock)
            explainer = self._batch_explainer()
            summary = JobSummary()
            start = time.perf_counter()
            with self._stop_on_signals():
                self._explain_my_batches(explainer, summary)
            summary.seconds = time.perf_counter() - start
            self._combine_ranks(summary)
            self.group.barrier()
            if self.group.rank == 0:
                self._finish(summary)
            self._share_merged_counts(summary)
            return summary
        finally:
            lock.release()

    # -- opening: lock, identity, manifest ---------------------------------------

    def identity(self) -> Dict[str, Any]:
        """Everything that determines the results (recorded in the manifest)."""
        settings = self._settings
        if settings is None:
            settings = self._batch_explainer().describe()
        return {
            "input": {
                "sha256": input_sha256(self.input_path),
                "format": input_format(self.input_path),
                "text_field": self.text_field,
            },
            "plan": {
                "batch_size": self.batch_size,
                "window_batches": self.bucket_batches,
            },
            "explainer": settings,
            "versions": package_versions(),
        }

    def _open(self, lock: FolderLock) -> None:
        """Rank 0 locks the folder and checks the identity; every rank learns."""
        refusal: Optional[ValueError] = None
        if self.group.rank == 0:
            try:
                lock.acquire()
                if self.restart:
                    clear_job(self.output_dir)
                remove_temporary_files(self.output_dir)
                self._check_or_write_manifest(self.identity())
            except ValueError as error:
                refusal = error
        if self.group.any(refusal is not None):
            if refusal is not None:
                raise refusal
            raise JobMismatchError("rank 0 refused the job (see its message)")

    def _check_or_write_manifest(self, identity: Dict[str, Any]) -> None:
        path = self.output_dir / MANIFEST_NAME
        if path.exists():
            recorded = json.loads(path.read_text(encoding="utf-8")).get("identity")
            if recorded is None:
                self._refuse("it was written by an older captum-sigma (no identity)")
            differences = identity_differences(recorded, identity)
            if differences:
                self._refuse("differs in " + "; ".join(differences))
        elif shard_ids(self.output_dir):
            self._refuse("it holds shards but no manifest")
        write_json_atomic(path, {"identity": identity, "status": "running"})

    def _refuse(self, why: str) -> None:
        raise JobMismatchError(
            f"output_dir {self.output_dir} holds another job: {why}; rerun with the "
            "original settings and files, use a new output_dir, or pass restart=True "
            "to discard it"
        )

    def _batch_explainer(self) -> BatchExplainer:
        if callable(self._explainer) and not hasattr(self._explainer, "explain"):
            self._explainer = self._explainer()
        return self._explainer  # type: ignore[return-value]

    # -- signals -----------------------------------------------------------------

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._stop_signal is not None:
            raise JobInterrupted(signum)
        self._stop_signal = signum

    @contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """SIGTERM / SIGINT: finish the current batch, then stop."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        names = (signal.SIGTERM, signal.SIGINT)
        previous = {number: signal.signal(number, self._on_signal) for number in names}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    # -- the loop --------------------------------------------------------------

    def _plan(self, explainer: BatchExplainer) -> Iterator[PlannedBatch]:
        return plan_batches(
            read_rows(self.input_path, self.text_field),
            explainer.count_tokens,
            explainer.max_length,
            self.batch_size,
            self.bucket_batches,
        )

    def _progress_bar(self) -> tqdm:
        total = None
        if self.show_progress:
            rows = count_rows(self.input_path, self.text_field)
            total = -(-rows // self.group.world_size)
        return tqdm(
            total=total,
            desc="explain-dataset",
            unit="text",
            disable=not self.show_progress,
        )

    def _explain_my_batches(
        self, explainer: BatchExplainer, summary: JobSummary
    ) -> None:
        done = finished_batches(self.output_dir)
        rank, world_size = self.group.rank, self.group.world_size
        with self._progress_bar() as bar:
            for batch in self._plan(explainer):
                self._planned.add(batch.batch_id)
                if batch.number % world_size != rank:
                    continue
                if batch.batch_id in done:
                    summary.skipped += batch.size
                    bar.update(batch.size)
                    continue
                if self._stop_signal is not None:
                    break
                rows = list(batch.rejected) + self._explain_rows(explainer, batch.rows)
                write_shard(self.output_dir, batch.batch_id, rows)
                errors = sum(1 for row in rows if "error" in row)
                summary.errors += errors
                summary.items += len(rows) - errors
                bar.update(batch.size)
        summary.stop_signal = self._stop_signal

    def _explain_rows(
        self, explainer: BatchExplainer, rows: Sequence[InputRow]
    ) -> List[Dict[str, Any]]:
        """Explains rows; OOM halves them, any other failure isolates the row."""
        if not rows:
            return []
        try:
            results = explainer.explain([row.text for row in rows])
        except Exception as error:  # noqa: BLE001 - a bad row must not stop the job
            return self._recover(explainer, rows, error)
        return [
            {"index": row.index, "id": row.id, "text": row.text, **result}
            for row, result in zip(rows, results)
        ]

    def _recover(
        self, explainer: BatchExplainer, rows: Sequence[InputRow], error: Exception
    ) -> List[Dict[str, Any]]:
        out_of_memory = _is_out_of_memory(error)
        if out_of_memory and torch.cuda.is_available():
            torch.cuda.empty_cache()
        if len(rows) == 1:
            row = rows[0]
            if out_of_memory:
                reason = "out of memory on a single text (retried on resume)"
                return [error_row(row.index, row.id, reason, retryable=True)]
            reason = printable(f"{type(error).__name__}: {error}")
            return [error_row(row.index, row.id, reason)]
        if out_of_memory:
            half = len(rows) // 2
            return self._explain_rows(explainer, rows[:half]) + self._explain_rows(
                explainer, rows[half:]
            )
        return [
            result for row in rows for result in self._explain_rows(explainer, [row])
        ]

    # -- the end ---------------------------------------------------------------

    def _combine_ranks(self, summary: JobSummary) -> None:
        """Totals over every rank; the job took as long as its slowest rank."""
        items, errors, skipped = self.group.reduce(
            [summary.items, summary.errors, summary.skipped]
        )
        summary.items, summary.errors = int(items), int(errors)
        summary.skipped = int(skipped)
        summary.seconds = self.group.reduce([summary.seconds], dist.ReduceOp.MAX)[0]
        stop = self.group.reduce([float(summary.stop_signal or 0)], dist.ReduceOp.MAX)
        summary.stop_signal = int(stop[0]) or None

    def _finish(self, summary: JobSummary) -> None:
        if not summary.interrupted:
            self._check_every_batch_written()
            summary.merged = merge_shards(self.output_dir)
        path = self.output_dir / MANIFEST_NAME
        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifest.update(
            status="interrupted" if summary.interrupted else "complete",
            world_size=self.group.world_size,
            last_run={
                "items": summary.items,
                "errors": summary.errors,
                "skipped": summary.skipped,
                "seconds": round(summary.seconds, 3),
                "sentences_per_second": round(summary.sentences_per_second, 3),
            },
            merged=summary.merged,
        )
        write_json_atomic(path, manifest)

    def _check_every_batch_written(self) -> None:
        missing = self._planned - shard_ids(self.output_dir)
        if missing:
            raise RuntimeError(
                f"{len(missing)} planned batches have no shard in "
                f"{shard_dir(self.output_dir)} (e.g. {sorted(missing)[0]}); rerun"
            )

    def _share_merged_counts(self, summary: JobSummary) -> None:
        """Every rank learns rank 0's merge counts (for the same exit code)."""
        names = ("results", "errors", "retryable", "flat")
        values = [float(summary.merged.get(name, 0)) for name in names]
        totals = self.group.reduce(values, dist.ReduceOp.MAX)
        if not summary.interrupted:
            summary.merged = {name: int(v) for name, v in zip(names, totals)}


def _is_out_of_memory(error: BaseException) -> bool:
    """CUDA (or host) out of memory: may pass on retry, unlike a bad row."""
    if isinstance(error, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()
