r"""Analyses of a comparison that tables and plots share: ranks and agreement.

Kept apart from :mod:`~captum_sigma.evaluation.report` (tables) and
:mod:`~captum_sigma.evaluation.plots` (figures), which both read them, so that
neither imports the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from captum_sigma.evaluation.compare import METRICS, ComparisonResult
from captum_sigma.evaluation.ranking import rank_correlation
from captum_sigma.evaluation.stats import paired_bootstrap_interval

__all__ = ["agreement_matrix", "rank_against"]


def rank_against(
    result: ComparisonResult,
    row: str,
    operator: str,
    metric: str,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    r"""Where one row stands in one column: its rank and significant pairs.

    Args:
        result (ComparisonResult): The comparison.
        row (str): The row to place (e.g. ``"Sigma"``).
        operator (str): Removal operator.
        metric (str): A key of :data:`METRICS`.
        seed (int, optional): Bootstrap seed. Default: 0.

    Returns:
        summary (dict): ``rank`` (1 = best by mean, among the rows with values),
        ``n_rows``, ``mean``, ``better`` and ``worse``: rows whose paired
        difference to ``row`` is significantly better / worse (interval of the
        difference excludes 0), each a list of ``(row, Interval of other - row)``.
    """
    higher = METRICS[metric][1]
    by_row = result.metrics[operator]
    means = {
        r: float(np.nanmean(v[metric]))
        for r, v in by_row.items()
        if np.isfinite(v[metric]).any()
    }
    ranked = sorted(means, key=means.get, reverse=higher)
    better, worse = [], []
    for other in ranked:
        if other == row:
            continue
        difference = paired_bootstrap_interval(
            by_row[other][metric], by_row[row][metric], seed=seed
        )
        if not difference.n or difference.low <= 0 <= difference.high:
            continue
        other_better = (difference.mean > 0) == higher
        (better if other_better else worse).append((other, difference))
    return {
        "rank": ranked.index(row) + 1 if row in ranked else None,
        "n_rows": len(ranked),
        "mean": means.get(row, float("nan")),
        "better": better,
        "worse": worse,
    }


def agreement_matrix(
    result: ComparisonResult, rows: Sequence[str] | None = None
) -> tuple[list[str], np.ndarray]:
    r"""Mean Kendall tau between the token rankings of every pair of rows.

    Args:
        result (ComparisonResult): The comparison.
        rows (sequence of str, optional): Rows to compare. Default: every
                method row (signed scores as returned).

    Returns:
        (rows, matrix): Names and the symmetric (R, R) matrix of mean tau over
        sentences (NaN-ignoring; the diagonal is 1).
    """
    rows = list(result.methods if rows is None else rows)
    matrix = np.eye(len(rows))
    eligible = result.eligible
    for i, a in enumerate(rows):
        for j in range(i + 1, len(rows)):
            tau = rank_correlation(result.scores[a], result.scores[rows[j]], eligible)
            value = float(np.nanmean(tau)) if np.isfinite(tau).any() else np.nan
            matrix[i, j] = matrix[j, i] = value
    return rows, matrix
