"""Merging comparison results: the report script's own helpers.

``benchmarks/make_comparison_report.py`` computes its test table in stages (other
methods, Sigma rows, halves of the metrics in two processes) and merges them here;
nothing in the installed package needs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from captum_sigma.evaluation import ComparisonResult
from captum_sigma.evaluation.ranking import SeedStability

__all__ = ["combine", "methods_subset", "select"]


def select(result: ComparisonResult, indices: Sequence[int]) -> ComparisonResult:
    r"""The same comparison restricted to some sentences.

    Costs (seconds, passes) are kept as measured on the full run.

    Args:
        indices (sequence of int): Sentences to keep, in the new order.

    Returns:
        ComparisonResult: A new result over ``len(indices)`` sentences.
    """
    index = np.asarray(indices, dtype=np.int64).reshape(-1)
    if index.size and (index.min() < 0 or index.max() >= len(result.texts)):
        raise ValueError(f"indices must be in [0, {len(result.texts)})")
    position = {int(old): new for new, old in enumerate(index)}
    kept = [k for k, old in enumerate(result.stability_indices) if old in position]
    width = int(result.attention_mask[index].sum(axis=1).max()) if index.size else 0
    columns = slice(0, max(width, 1))
    stability = {
        name: SeedStability(s.kendall_tau[kept], s.top_k_overlap[kept])
        for name, s in result.stability.items()
    }
    return ComparisonResult(
        texts=[result.texts[i] for i in index],
        tokens=[result.tokens[i] for i in index],
        input_ids=result.input_ids[index, columns],
        attention_mask=result.attention_mask[index, columns],
        eligible=result.eligible[index, columns],
        target=result.target[index],
        target_proba=result.target_proba[index],
        labels=None if result.labels is None else result.labels[index],
        methods=list(result.methods),
        rows=list(result.rows),
        signed=dict(result.signed),
        stochastic=dict(result.stochastic),
        scores={row: values[index, columns] for row, values in result.scores.items()},
        metrics={
            op: {
                row: {name: v[index] for name, v in by_metric.items()}
                for row, by_metric in by_row.items()
            }
            for op, by_row in result.metrics.items()
        },
        curves={
            op: {
                row: ([d[i] for i in index], [c[i] for i in index])
                for row, (d, c) in by_row.items()
            }
            for op, by_row in result.curves.items()
        },
        dependence_curves={
            op: {
                row: {
                    name: [curves[i] for i in index] for name, curves in by_name.items()
                }
                for row, by_name in by_row.items()
            }
            for op, by_row in result.dependence_curves.items()
        },
        seconds=dict(result.seconds),
        passes=dict(result.passes),
        stability=stability,
        stability_indices=np.array(
            [position[int(result.stability_indices[k])] for k in kept],
            dtype=np.int64,
        ),
        convergence_delta={
            name: v[index] for name, v in result.convergence_delta.items()
        },
        settings={**result.settings, "n_sentences": int(index.size)},
    )


def methods_subset(
    result: ComparisonResult, methods: Sequence[str]
) -> ComparisonResult:
    r"""The same comparison restricted to some methods (and their rows).

    Args:
        methods (sequence of str): Methods to keep, in the new order.

    Returns:
        ComparisonResult: ``combine`` of the subsets of a partition gives
        back every method (e.g. to score halves in two processes).
    """
    unknown = [m for m in methods if m not in result.methods]
    if unknown:
        raise ValueError(f"methods {unknown} are not in the result")
    keep = list(methods)
    rows = keep + [f"|{m}|" for m in keep if result.signed[m]]

    def rows_of(mapping: dict) -> dict:
        return {row: value for row, value in mapping.items() if row in rows}

    settings = dict(result.settings)
    for name in ("methods", "attribution_seconds"):
        if name in settings:
            settings[name] = {m: v for m, v in settings[name].items() if m in keep}
    return replace(
        result,
        methods=keep,
        rows=rows,
        signed={m: result.signed[m] for m in keep},
        stochastic={m: result.stochastic[m] for m in keep},
        scores={row: result.scores[row] for row in rows},
        metrics={op: rows_of(by_row) for op, by_row in result.metrics.items()},
        curves={op: rows_of(by_row) for op, by_row in result.curves.items()},
        dependence_curves={
            op: rows_of(by_row) for op, by_row in result.dependence_curves.items()
        },
        seconds={m: result.seconds[m] for m in keep},
        passes={m: result.passes[m] for m in keep},
        stability={m: v for m, v in result.stability.items() if m in keep},
        convergence_delta={
            m: v for m, v in result.convergence_delta.items() if m in keep
        },
        settings=settings,
    )


def combine(result: ComparisonResult, other: ComparisonResult) -> ComparisonResult:
    r"""Adds the methods of another comparison of the same sentences.

    Args:
        other (ComparisonResult): Same sentences, targets and operators,
                other methods; its stability (if any) must use the same
                sentences. Its padding may differ: its scores are re-padded
                to this result's width.

    Returns:
        ComparisonResult: Methods of ``result`` then of ``other``.
    """
    if other.texts != result.texts or not np.array_equal(other.target, result.target):
        raise ValueError("other must compare the same sentences and targets")
    other_scores = {
        row: _fit_width(values, result.input_ids.shape[1])
        for row, values in other.scores.items()
    }
    if not np.array_equal(
        _fit_width(other.input_ids * other.attention_mask, result.input_ids.shape[1]),
        result.input_ids * result.attention_mask,
    ):
        raise ValueError("other must tokenize the sentences identically")
    if bool(other.metrics) != bool(result.metrics):
        raise ValueError(
            "other must be scored like this result: both with metrics or both "
            "without (score_comparison scores a result without metrics)"
        )
    if set(other.metrics) != set(result.metrics):
        raise ValueError(
            f"other must use the same operators {result.operators}, "
            f"got {other.operators}"
        )
    if other.metric_names != result.metric_names:
        raise ValueError(
            f"other must hold the same metrics {result.metric_names}, got "
            f"{other.metric_names} (rescore both with score_comparison)"
        )
    shared = set(result.methods) & set(other.methods)
    if shared:
        raise ValueError(f"methods present in both results: {sorted(shared)}")
    if (
        other.stability
        and result.stability
        and not np.array_equal(other.stability_indices, result.stability_indices)
    ):
        raise ValueError("other's seed stability uses other sentences")
    methods = result.methods + other.methods
    signed = {**result.signed, **other.signed}
    rows = methods + [f"|{m}|" for m in methods if signed[m]]
    settings = dict(result.settings)
    for name in ("methods", "attribution_seconds"):
        settings[name] = {
            **result.settings.get(name, {}),
            **other.settings.get(name, {}),
        }
    indices = result.stability_indices if result.stability else other.stability_indices
    return replace(
        result,
        methods=methods,
        rows=rows,
        signed=signed,
        stochastic={**result.stochastic, **other.stochastic},
        scores={row: {**result.scores, **other_scores}[row] for row in rows},
        metrics={
            op: {**result.metrics[op], **other.metrics[op]} for op in result.metrics
        },
        curves={op: {**result.curves[op], **other.curves[op]} for op in result.curves},
        dependence_curves={
            op: {
                **result.dependence_curves.get(op, {}),
                **other.dependence_curves.get(op, {}),
            }
            for op in dict.fromkeys(
                [*result.dependence_curves, *other.dependence_curves]
            )
        },
        seconds={**result.seconds, **other.seconds},
        passes={**result.passes, **other.passes},
        stability={**result.stability, **other.stability},
        stability_indices=indices,
        convergence_delta={**result.convergence_delta, **other.convergence_delta},
        settings=settings,
    )


def _fit_width(values: np.ndarray, width: int) -> np.ndarray:
    """Right-pads with zeros or drops trailing columns to ``width`` columns."""
    if values.shape[1] >= width:
        return values[:, :width]
    padding = np.zeros((values.shape[0], width - values.shape[1]), values.dtype)
    return np.concatenate([values, padding], axis=1)
