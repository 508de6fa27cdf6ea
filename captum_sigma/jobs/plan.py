"""The batch plan of a corpus job: which rows form which batch.

The plan is a function of the input and the options only. The input is cut into
windows of ``batch_size * window_batches`` consecutive rows; a window's good rows
are sorted by token count (then input index) and cut into batches of
``batch_size`` (length bucketing: little padding per batch). A window's bad rows
(undecodable, empty, too long...) ride with its first batch as error rows. Batches
are numbered in plan order; under ``torchrun`` rank ``r`` takes the batches whose
number is ``r`` modulo the world size. Neither where a previous run stopped nor the
number of ranks changes a batch, so every batch computes exactly the same numbers
in every run.
"""

from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, List, Tuple

from captum_sigma.jobs.reader import BadRow, InputRow, Row

__all__ = ["PlannedBatch", "error_row", "plan_batches"]


@dataclass(frozen=True)
class PlannedBatch:
    """One batch of the plan.

    Attributes:
        batch_id: ``w{window:08d}-b{k:04d}``, the key of its shard file.
        number: Position in the plan (0, 1, ...): rank ``number % world_size``
            explains it.
        rows: Good rows in length order.
        rejected: Error rows of the window's bad rows (first batch only).
    """

    batch_id: str
    number: int
    rows: Tuple[InputRow, ...]
    rejected: Tuple[Dict[str, Any], ...]

    @property
    def size(self) -> int:
        """Input rows this batch accounts for."""
        return len(self.rows) + len(self.rejected)


def error_row(
    index: int, row_id: str, reason: str, retryable: bool = False
) -> Dict[str, Any]:
    """The result row of a row that failed; ``retryable`` rows are redone on resume."""
    row: Dict[str, Any] = {"index": index, "id": row_id, "error": reason}
    if retryable:
        row["retryable"] = True
    return row


def _windows(rows: Iterable[Row], size: int) -> Iterator[List[Row]]:
    window: List[Row] = []
    for row in rows:
        window.append(row)
        if len(window) == size:
            yield window
            window = []
    if window:
        yield window


def _split_window(
    window: List[Row], count_tokens: Callable[[str], int], max_length: int
) -> Tuple[List[InputRow], List[Dict[str, Any]]]:
    """Good rows sorted by (token count, index), and error rows of the bad ones."""
    good: List[Tuple[int, InputRow]] = []
    rejected: List[Dict[str, Any]] = []
    for row in window:
        if isinstance(row, BadRow):
            rejected.append(error_row(row.index, row.id, row.reason))
            continue
        n_tokens = count_tokens(row.text)
        if n_tokens > max_length:
            reason = f"too long: {n_tokens} tokens > the model's maximum {max_length}"
            rejected.append(error_row(row.index, row.id, reason))
            continue
        good.append((n_tokens, row))
    good.sort(key=lambda item: (item[0], item[1].index))
    return [row for _, row in good], rejected


def plan_batches(
    rows: Iterable[Row],
    count_tokens: Callable[[str], int],
    max_length: int,
    batch_size: int,
    window_batches: int,
) -> Iterator[PlannedBatch]:
    """Yields the plan's batches in order (streaming: one window in memory).

    Args:
        rows: Every input row in input order (:func:`~captum_sigma.jobs.reader.
            read_rows`).
        count_tokens: Tokens of a text, special tokens included.
        max_length: Longer texts become error rows.
        batch_size: Texts per batch.
        window_batches: Batches per length-sorting window.
    """
    number = 0
    for window_number, window in enumerate(_windows(rows, batch_size * window_batches)):
        good, rejected = _split_window(window, count_tokens, max_length)
        starts = range(0, len(good), batch_size) if good else range(1)
        for k, start in enumerate(starts):
            yield PlannedBatch(
                batch_id=f"w{window_number:08d}-b{k:04d}",
                number=number,
                rows=tuple(good[start : start + batch_size]),
                rejected=tuple(rejected) if k == 0 else (),
            )
            number += 1
