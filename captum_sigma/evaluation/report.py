r"""Markdown and CSV tables of a :class:`~captum_sigma.evaluation.ComparisonResult`.

Cells hold the mean over sentences and its 95 % percentile-bootstrap interval
(:func:`~captum_sigma.evaluation.stats.bootstrap_interval`, seeded). In each
column the best row is bold only when the paired bootstrap interval of its
per-sentence difference to the runner-up excludes 0. Leave-one-out Kendall tau
of FeatureAblation is about 1 by construction (it *is* a leave-one-out with the
[PAD] baseline): those cells carry a dagger and never compete for bold.

:func:`write_comparison` writes everything for one result: ``comparison.md``,
``comparison.csv`` (long format, one line per table, operator, row and
metric), ``comparison.html`` and PNG figures.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from captum_sigma.evaluation.compare import (
    METRICS,
    STABILITY_METRICS,
    ComparisonResult,
)
from captum_sigma.evaluation.html_view import comparison_html
from captum_sigma.evaluation.plots import save_figures
from captum_sigma.evaluation.stats import (
    Interval,
    bootstrap_interval,
    paired_bootstrap_interval,
)

__all__ = [
    "BY_CONSTRUCTION",
    "CSV_FIELDS",
    "best_rows",
    "cost_table",
    "csv_records",
    "format_interval",
    "markdown_table",
    "metric_sections",
    "metric_table",
    "paired_table",
    "stability_table",
    "write_comparison",
    "write_csv",
]

#: (row, metric) cells that are good by construction, never bold.
BY_CONSTRUCTION: frozenset[tuple[str, str]] = frozenset(
    {("FeatureAblation", "loo_tau"), ("|FeatureAblation|", "loo_tau")}
)
#: Columns of ``comparison.csv``.
CSV_FIELDS: tuple[str, ...] = (
    "table",
    "operator",
    "row",
    "metric",
    "mean",
    "ci_low",
    "ci_high",
    "n",
    "bold",
)


def format_interval(interval: Interval, digits: int = 3) -> str:
    """``"0.123 [0.101, 0.145]"``; ``"n/a"`` without values."""
    if interval.n == 0 or not math.isfinite(interval.mean):
        return "n/a"
    return (
        f"{interval.mean:.{digits}f} "
        f"[{interval.low:.{digits}f}, {interval.high:.{digits}f}]"
    )


def best_rows(
    values: dict[str, np.ndarray],
    higher_is_better: bool,
    *,
    seed: int = 0,
) -> set[str]:
    r"""Rows to print bold in one column.

    The row with the best mean is bold when the paired bootstrap interval of
    its per-sentence difference to the runner-up excludes 0.

    Args:
        values (dict[str, ndarray]): Row -> per-sentence values (same sentences).
        higher_is_better (bool): Direction of the metric.
        seed (int, optional): Bootstrap seed. Default: 0.

    Returns:
        rows (set[str]): Empty or the single winning row.
    """
    means = {
        row: float(np.nanmean(v))
        for row, v in values.items()
        if np.isfinite(np.asarray(v, dtype=np.float64)).any()
    }
    if len(means) < 2:
        return set()
    ranked = sorted(means, key=means.get, reverse=higher_is_better)
    best, runner_up = ranked[0], ranked[1]
    difference = paired_bootstrap_interval(values[best], values[runner_up], seed=seed)
    if difference.n and (difference.low > 0 or difference.high < 0):
        return {best}
    return set()


def metric_table(
    result: ComparisonResult, operator: str, *, seed: int = 0
) -> tuple[list[str], list[list[str]], list[dict[str, Any]]]:
    r"""Rows x removal metrics of one operator.

    Args:
        result (ComparisonResult): The comparison.
        operator (str): ``"delete"`` or ``"mask"``.
        seed (int, optional): Bootstrap seed. Default: 0.

    Returns:
        (header, cells, records): Markdown header and cells, and CSV records.
    """
    if operator not in result.metrics:
        raise ValueError(f"operator {operator!r} was not scored: {result.operators}")
    header = ["Method"] + [label for label, _ in METRICS.values()]
    bold = {}
    for metric, (_, higher) in METRICS.items():
        competing = {
            row: result.metrics[operator][row][metric]
            for row in result.rows
            if (row, metric) not in BY_CONSTRUCTION
        }
        bold[metric] = best_rows(competing, higher, seed=seed)
    cells, records = [], []
    for row in result.rows:
        line = [row]
        for metric in METRICS:
            interval = result.interval(operator, row, metric, seed=seed)
            text = format_interval(interval)
            if (row, metric) in BY_CONSTRUCTION:
                text += " †"
            if row in bold[metric]:
                text = f"**{text}**"
            line.append(text)
            records.append(
                _record("removal", operator, row, metric, interval, row in bold[metric])
            )
        cells.append(line)
    return header, cells, records


def cost_table(result: ComparisonResult) -> tuple[list[str], list[list[str]], list]:
    r"""Seconds and passes per sentence of every method.

    Returns:
        (header, cells, records): As :func:`metric_table`.
    """
    header = [
        "Method",
        "median s / sentence",
        "forward / sentence",
        "backward / sentence",
        "notes",
    ]
    cells, records = [], []
    for method in result.methods:
        seconds = result.median_seconds(method)
        forward, backward = result.passes[method]
        notes = []
        if method in result.convergence_delta:
            delta = bootstrap_interval(result.convergence_delta[method])
            notes.append(f"mean abs. convergence delta {delta.mean:.2e}")
        cells.append(
            [
                method,
                f"{seconds:.4f}",
                _count(forward),
                _count(backward),
                "; ".join(notes),
            ]
        )
        for metric, value in (
            ("median_seconds", seconds),
            ("forward_passes", forward),
            ("backward_passes", backward),
        ):
            records.append(
                _record("cost", "", method, metric, Interval(value, value, value, 1))
            )
        if method in result.convergence_delta:
            records.append(
                _record(
                    "cost",
                    "",
                    method,
                    "abs_convergence_delta",
                    bootstrap_interval(result.convergence_delta[method]),
                )
            )
    return header, cells, records


def stability_table(
    result: ComparisonResult, *, seed: int = 0
) -> tuple[list[str], list[list[str]], list]:
    r"""Seed stability (seed vs seed + 1) of the stochastic methods.

    Returns:
        (header, cells, records): As :func:`metric_table`.
    """
    header = ["Method"] + [label for label, _ in STABILITY_METRICS.values()]
    cells, records = [], []
    for method in result.stability:
        line = [method]
        for metric in STABILITY_METRICS:
            values = result.stability_values(method, metric)
            interval = bootstrap_interval(values, seed=seed)
            line.append(format_interval(interval))
            records.append(_record("stability", "", method, metric, interval))
        cells.append(line)
    return header, cells, records


def paired_table(
    result: ComparisonResult,
    operator: str,
    rows: Sequence[str],
    reference: str = "IntegratedGradients",
    *,
    seed: int = 0,
) -> tuple[list[str], list[list[str]], list]:
    r"""Paired differences ``row - reference`` per metric (same sentences).

    A difference whose interval excludes 0 is marked with ``*``; the sign is
    shown as is, so read it with the metric's direction.

    Returns:
        (header, cells, records): As :func:`metric_table`.
    """
    header = [f"Row − {reference}"] + [label for label, _ in METRICS.values()]
    cells, records = [], []
    for row in rows:
        if (
            row not in result.metrics[operator]
            or reference not in result.metrics[operator]
        ):
            continue
        line = [row]
        for metric in METRICS:
            difference = paired_bootstrap_interval(
                result.metrics[operator][row][metric],
                result.metrics[operator][reference][metric],
                seed=seed,
            )
            significant = difference.n > 0 and (
                difference.low > 0 or difference.high < 0
            )
            line.append(format_interval(difference) + (" *" if significant else ""))
            records.append(
                _record(
                    f"paired_vs_{reference}",
                    operator,
                    row,
                    metric,
                    difference,
                    significant,
                )
            )
        cells.append(line)
    return header, cells, records


def markdown_table(header: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table; ``|`` inside cells is escaped."""

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(str(v).replace("|", "\\|") for v in values) + " |"

    rule = "|" + "|".join("---" for _ in header) + "|"
    return "\n".join([line(header), rule, *(line(c) for c in cells)])


def csv_records(result: ComparisonResult, *, seed: int = 0) -> list[dict[str, Any]]:
    """Every table of a result as CSV records (see :data:`CSV_FIELDS`)."""
    records = []
    for operator in result.operators:
        records += metric_table(result, operator, seed=seed)[2]
    records += cost_table(result)[2]
    records += stability_table(result, seed=seed)[2]
    return records


def write_csv(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Writes records with the columns :data:`CSV_FIELDS`."""
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for record in records:
            writer.writerow({key: record.get(key, "") for key in CSV_FIELDS})
    return path


def comparison_markdown(
    result: ComparisonResult,
    figures: dict[str, str] | None = None,
    *,
    title: str = "Attribution comparison",
    seed: int = 0,
) -> str:
    r"""The markdown report of one result (tables, figures, settings).

    Args:
        result (ComparisonResult): The comparison.
        figures (dict[str, str], optional): Caption -> relative PNG path.
        title (str, optional): First heading.
        seed (int, optional): Bootstrap seed. Default: 0.

    Returns:
        text (str): Markdown.
    """
    parts = [f"# {title}", "", _summary_line(result), ""]
    parts += metric_sections(result, "## Removal metrics", seed=seed)
    parts += [_LEGEND, ""]
    header, cells, _ = cost_table(result)
    parts += ["## Cost per sentence", "", markdown_table(header, cells), ""]
    if result.stability:
        header, cells, _ = stability_table(result, seed=seed)
        parts += [
            f"## Seed stability (seed vs seed + 1, {len(result.stability_indices)} "
            "sentences)",
            "",
            markdown_table(header, cells),
            "",
        ]
    for caption, path in (figures or {}).items():
        parts += [f"![{caption}]({path})", ""]
    parts += ["## Settings", "", "```", _settings_text(result.settings), "```", ""]
    return "\n".join(parts)


def metric_sections(result: ComparisonResult, heading: str, seed: int = 0) -> list[str]:
    """Markdown lines: one ``{heading}, operator `op``` table per removal operator."""
    parts: list[str] = []
    for operator in result.operators:
        header, cells, _ = metric_table(result, operator, seed=seed)
        parts += [
            f"{heading}, operator `{operator}`",
            "",
            markdown_table(header, cells),
            "",
        ]
    return parts


def write_comparison(
    result: ComparisonResult,
    out_dir: str | Path,
    *,
    n_html: int = 5,
    seed: int = 0,
    title: str = "Attribution comparison",
) -> dict[str, Path]:
    r"""Writes the markdown, CSV, HTML and PNG figures of one result.

    Args:
        result (ComparisonResult): The comparison.
        out_dir (str or Path): Folder (created).
        n_html (int, optional): Sentences shown in the HTML page. Default: 5.
        seed (int, optional): Bootstrap seed. Default: 0.
        title (str, optional): Heading of the markdown and HTML pages.

    Returns:
        paths (dict[str, Path]): ``"markdown"``, ``"csv"``, ``"html"`` and one
        entry per figure.
    """

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = save_figures(result, out / "figures")
    relative = {name: f"figures/{path.name}" for name, path in figures.items()}
    paths: dict[str, Path] = {}
    markdown = comparison_markdown(result, relative, title=title, seed=seed)
    paths["markdown"] = out / "comparison.md"
    paths["markdown"].write_text(markdown, encoding="utf-8")
    paths["csv"] = write_csv(csv_records(result, seed=seed), out / "comparison.csv")
    paths["html"] = out / "comparison.html"
    indices = list(range(min(n_html, len(result.texts))))
    paths["html"].write_text(
        comparison_html(result, indices, title=title), encoding="utf-8"
    )
    paths.update(figures)
    return paths


_LEGEND = (
    "Mean over sentences [95 % percentile-bootstrap interval, 2000 resamples]. "
    "**Bold**: best in its column and the paired bootstrap interval of its "
    "difference to the runner-up excludes 0. † FeatureAblation's leave-one-out tau "
    "is about 1 by construction (it is a leave-one-out with the [PAD] baseline); "
    "it does not compete for bold. `|name|`: a signed method ranked by |score|."
)


def _summary_line(result: ComparisonResult) -> str:
    text = (
        f"{len(result.texts)} sentences; target = predicted class "
        f"(mean p = {float(np.mean(result.target_proba)):.3f})"
    )
    if result.labels is not None:
        text += f"; accuracy against the labels {result.accuracy():.3f}"
    return text + "."


def _settings_text(settings: dict[str, Any], indent: str = "") -> str:
    lines = []
    for key, value in settings.items():
        if isinstance(value, dict):
            lines.append(f"{indent}{key}:")
            lines.append(_settings_text(value, indent + "  "))
        else:
            lines.append(f"{indent}{key}: {value}")
    return "\n".join(lines)


def _count(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.1f}"


def _record(
    table: str,
    operator: str,
    row: str,
    metric: str,
    interval: Interval,
    bold: bool = False,
) -> dict[str, Any]:
    return {
        "table": table,
        "operator": operator,
        "row": row,
        "metric": metric,
        "mean": _number(interval.mean),
        "ci_low": _number(interval.low),
        "ci_high": _number(interval.high),
        "n": interval.n,
        "bold": int(bold),
    }


def _number(value: float) -> str:
    return "" if not math.isfinite(value) else f"{value:.6g}"
