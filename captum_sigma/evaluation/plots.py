r"""Figures of a :class:`~captum_sigma.evaluation.ComparisonResult` (matplotlib).

- :func:`plot_curves`: mean deletion and insertion curves (resampled onto one
  x grid with :func:`~captum_sigma.evaluation.resample_curves`) with 95 % bands
  (mean ± 1.96 standard errors over sentences), of p_c (signed family) or of
  the distribution change (``family="distribution"``);
- :func:`plot_faithfulness_vs_cost`: a removal metric against median seconds and
  against counted passes per sentence;
- :func:`plot_agreement`: the matrix of mean Kendall tau between methods.

Figures are small PNGs (100 dpi), drawn on ``matplotlib.figure.Figure``
objects without pyplot, so the caller's backend is left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from captum_sigma.evaluation.analysis import agreement_matrix
from captum_sigma.evaluation.compare import METRICS, ComparisonResult
from captum_sigma.evaluation.faithfulness import resample_curves

__all__ = [
    "plot_agreement",
    "plot_curves",
    "plot_faithfulness_vs_cost",
    "plot_planted",
    "save_figures",
]

_DPI = 100


#: Per family: the curves' y label and which area is better (deletion,
#: insertion).
_CURVE_FAMILIES: dict[str, tuple[str, tuple[str, str]]] = {
    "signed": ("p(predicted class)", ("lower", "higher")),
    "distribution": ("distribution change Δ (total variation)", ("higher", "lower")),
    "representation": ("representation change ((Δz_c / r_c)²)", ("higher", "lower")),
}


def plot_curves(
    result: ComparisonResult,
    operator: str,
    path: str | Path,
    rows: Sequence[str] | None = None,
    family: str = "signed",
) -> Path:
    r"""Mean deletion and insertion curves with 95 % bands.

    Args:
        result (ComparisonResult): The comparison.
        operator (str): Removal operator.
        path (str or Path): PNG file.
        rows (sequence of str, optional): Rows to draw. Default: every method
                as returned.
        family (str, optional): ``"signed"`` (p_c), ``"distribution"`` (Δ) or
                ``"representation"`` (D); see
                :meth:`~captum_sigma.evaluation.ComparisonResult.family_curves`.
                Default: "signed".

    Returns:
        path (Path): The PNG.
    """
    if family not in _CURVE_FAMILIES:
        raise ValueError(
            f"family must be one of {list(_CURVE_FAMILIES)}, got {family!r}"
        )
    y_label, directions = _CURVE_FAMILIES[family]
    rows = list(result.methods if rows is None else rows)
    figure = Figure(figsize=(9, 3.4))
    axes = figure.subplots(1, 2, sharey=True)
    grid = np.linspace(0, 1, 101)
    colours = _colours(len(rows))
    for index, (axis, title) in enumerate(zip(axes, ("Deletion", "Insertion"))):
        for row, colour in zip(rows, colours):
            curves = resample_curves(result.family_curves(operator, row, family)[index])
            curves = curves[np.isfinite(curves).all(axis=1)]
            if not len(curves):
                continue
            mean = curves.mean(axis=0)
            half = 1.96 * curves.std(axis=0, ddof=1) / np.sqrt(len(curves))
            style = "--" if row == "Random" else "-"
            axis.plot(grid, mean, style, color=colour, lw=1.3, label=row)
            axis.fill_between(grid, mean - half, mean + half, color=colour, alpha=0.15)
        better = directions[index]
        axis.set_title(f"{title} ({operator}; area {better} is better)", fontsize=9)
        axis.set_xlabel("fraction of tokens removed" if index == 0 else "inserted")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel(y_label)
    corner = "lower right" if family == "signed" else "upper right"
    axes[1].legend(fontsize=7, loc=corner, ncol=2)
    return _save(figure, path)


def plot_faithfulness_vs_cost(
    result: ComparisonResult,
    path: str | Path,
    operator: str | None = None,
    metric: str = "comprehensiveness",
) -> Path:
    r"""A removal metric against median seconds and passes per sentence.

    Args:
        result (ComparisonResult): The comparison.
        path (str or Path): PNG file.
        operator (str, optional): Removal operator. Default: the first scored.
        metric (str, optional): A key of :data:`METRICS`.
                Default: "comprehensiveness".

    Returns:
        path (Path): The PNG.
    """
    operator = result.operators[0] if operator is None else operator
    label = METRICS[metric][0]
    figure = Figure(figsize=(9, 3.4))
    axes = figure.subplots(1, 2, sharey=True)
    colours = _colours(len(result.methods))
    for index, (method, colour) in enumerate(zip(result.methods, colours)):
        interval = result.interval(operator, method, metric)
        forward, backward = result.passes[method]
        costs = (result.median_seconds(method), forward + backward)
        for axis, cost in zip(axes, costs):
            if not np.isfinite(cost):
                continue
            cost = max(cost, 1e-4 if axis is axes[0] else 0.5)
            axis.errorbar(
                cost,
                interval.mean,
                yerr=[[interval.mean - interval.low], [interval.high - interval.mean]],
                fmt="o",
                color=colour,
                ms=4,
                capsize=2,
            )
            axis.annotate(
                method,
                (cost, interval.mean),
                fontsize=6,
                xytext=(4, 8 * (index % 3) - 8),  # staggered against overlaps
                textcoords="offset points",
            )
    axes[0].set_xscale("log")
    axes[1].set_xscale("log")
    axes[0].set_xlabel("median seconds per sentence (log)")
    axes[1].set_xlabel("forward + backward passes per sentence (log)")
    axes[0].set_ylabel(f"{label} ({operator})")
    for axis in axes:
        axis.grid(alpha=0.3)
    return _save(figure, path)


def plot_agreement(
    result: ComparisonResult,
    path: str | Path,
    rows: Sequence[str] | None = None,
) -> Path:
    r"""Heat map of the mean Kendall tau between the rankings of methods.

    Args:
        result (ComparisonResult): The comparison.
        path (str or Path): PNG file.
        rows (sequence of str, optional): Rows. Default: every method.

    Returns:
        path (Path): The PNG.
    """
    names, matrix = agreement_matrix(result, rows)
    size = 1.2 + 0.45 * len(names)
    figure = Figure(figsize=(size + 1.2, size))
    axis = figure.subplots()
    image = axis.imshow(matrix, vmin=-1, vmax=1, cmap="RdBu_r")
    axis.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    axis.set_yticks(range(len(names)), names, fontsize=7)
    for i in range(len(names)):
        for j in range(len(names)):
            if np.isfinite(matrix[i, j]):
                axis.text(
                    j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=6
                )
    axis.set_title("Mean Kendall τ between methods", fontsize=9)
    figure.colorbar(image, ax=axis, fraction=0.046)
    return _save(figure, path)


def plot_planted(result: Any, path: str | Path) -> Path:
    r"""Hit@1 of the planted token per row, with 95 % bootstrap intervals.

    Args:
        result (PlantedTokenResult): From
                :func:`~captum_sigma.evaluation.planted.evaluate_planted`.
        path (str or Path): PNG file.

    Returns:
        path (Path): The PNG.
    """
    rows = list(result.ranks)
    hits = [result.hit_at_1(row) for row in rows]
    figure = Figure(figsize=(7, 0.3 * len(rows) + 1.2))
    axis = figure.subplots()
    positions = np.arange(len(rows))[::-1]
    means = np.array([h.mean for h in hits])
    errors = np.array([[h.mean - h.low, h.high - h.mean] for h in hits]).T
    axis.barh(positions, means, xerr=errors, color="#4c72b0", capsize=2)
    axis.axvline(result.random_expectation()[0], color="grey", ls="--", lw=1)
    axis.set_yticks(positions, rows, fontsize=7)
    axis.set_xlim(0, 1)
    axis.set_xlabel("hit@1 of the planted token (dashed: uniform random ranking)")
    axis.grid(alpha=0.3, axis="x")
    return _save(figure, path)


def save_figures(result: ComparisonResult, folder: str | Path) -> dict[str, Path]:
    r"""Every figure of a result, as PNGs in ``folder``.

    Returns:
        paths (dict[str, Path]): Caption -> PNG.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for operator in result.operators:
        paths[f"Deletion and insertion curves ({operator})"] = plot_curves(
            result, operator, folder / f"curves_{operator}.png"
        )
    if "distribution" in result.families:
        for operator in result.operators:
            caption = f"Distribution change curves ({operator})"
            paths[caption] = plot_curves(
                result,
                operator,
                folder / f"curves_distribution_{operator}.png",
                family="distribution",
            )
    if result.operators:
        paths["Comprehensiveness vs cost"] = plot_faithfulness_vs_cost(
            result, folder / "faithfulness_vs_cost.png"
        )
    if len(result.methods) > 1:
        paths["Method agreement"] = plot_agreement(result, folder / "agreement.png")
    return paths


def _colours(n: int) -> list:
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    figure.tight_layout()
    figure.savefig(path, dpi=_DPI)
    return path
