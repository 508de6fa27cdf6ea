r"""Markdown and CSV tables of a :class:`~captum_sigma.evaluation.ComparisonResult`.

The removal metrics come in three families (:data:`~captum_sigma.evaluation.
compare.METRIC_FAMILIES`), shown side by side, one table per family and
operator: the signed drop of p_c, the distribution change (total variation)
and the representation change ((Δz_c / r_c)², Sigma's own objective measured
with deletion instead of noise: home ground for Sigma).

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

from captum_sigma.evaluation.analysis import rank_against
from captum_sigma.evaluation.compare import (
    METRIC_FAMILIES,
    METRIC_FAMILY_LABELS,
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
    "FAMILY_NOTES",
    "best_rows",
    "cost_table",
    "count_phrase",
    "csv_records",
    "family_legend",
    "family_metrics",
    "family_summary_lines",
    "format_interval",
    "markdown_table",
    "metric_sections",
    "metric_table",
    "paired_table",
    "significance_counts",
    "stability_table",
    "write_comparison",
    "write_csv",
]

#: What each family measures, for the legends of the tables.
FAMILY_NOTES: dict[str, str] = {
    "signed": "the drop p_c(x) − p_c(x′) of the explained class's probability",
    "distribution": "the total variation ½ Σ_j |p_j(x) − p_j(x′)| between the "
    "predictive distributions (unsigned; two classes: |Δp_c|)",
    "representation": "((z_c(x′) − z_c(x)) / r_c)², the class logit's change in "
    "units of its spread r_c over the default data sample: the objective of a "
    "Sigma row that explains the logit / r, measured with deletion or [MASK] "
    "instead of Gaussian noise, i.e. home ground for such a row",
}

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


def family_metrics(result: ComparisonResult, family: str | None = None) -> list[str]:
    r"""The scored metrics of one family (all scored metrics for None).

    Args:
        result (ComparisonResult): The comparison.
        family (str, optional): A key of :data:`METRIC_FAMILIES`. Default: None.

    Returns:
        names (list[str]): Keys of :data:`METRICS` in their order; a result
        scored before the family existed gives an empty list.
    """
    scored = result.metric_names
    if family is None:
        return scored
    if family not in METRIC_FAMILIES:
        raise ValueError(
            f"family must be one of {list(METRIC_FAMILIES)}, got {family!r}"
        )
    return [name for name in METRIC_FAMILIES[family] if name in scored]


def metric_table(
    result: ComparisonResult,
    operator: str,
    *,
    seed: int = 0,
    family: str | None = None,
) -> tuple[list[str], list[list[str]], list[dict[str, Any]]]:
    r"""Rows x removal metrics of one operator.

    Args:
        result (ComparisonResult): The comparison.
        operator (str): ``"delete"`` or ``"mask"``.
        seed (int, optional): Bootstrap seed. Default: 0.
        family (str, optional): Only the metrics of this family
                (:data:`METRIC_FAMILIES`). Default: None, every scored metric.

    Returns:
        (header, cells, records): Markdown header and cells, and CSV records.
    """
    if operator not in result.metrics:
        raise ValueError(f"operator {operator!r} was not scored: {result.operators}")
    metrics = family_metrics(result, family)
    header = ["Method"] + [METRICS[metric][0] for metric in metrics]
    bold = {}
    for metric in metrics:
        higher = METRICS[metric][1]
        competing = {
            row: result.metrics[operator][row][metric]
            for row in result.rows
            if (row, metric) not in BY_CONSTRUCTION
        }
        bold[metric] = best_rows(competing, higher, seed=seed)
    cells, records = [], []
    for row in result.rows:
        line = [row]
        for metric in metrics:
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
    family: str | None = None,
) -> tuple[list[str], list[list[str]], list]:
    r"""Paired differences ``row - reference`` per metric (same sentences).

    A difference whose interval excludes 0 is marked with ``*``; the sign is
    shown as is, so read it with the metric's direction. ``family`` restricts
    the columns as in :func:`metric_table`.

    Returns:
        (header, cells, records): As :func:`metric_table`.
    """
    metrics = family_metrics(result, family)
    header = [f"Row − {reference}"] + [METRICS[metric][0] for metric in metrics]
    cells, records = [], []
    for row in rows:
        if (
            row not in result.metrics[operator]
            or reference not in result.metrics[operator]
        ):
            continue
        line = [row]
        for metric in metrics:
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
    if "Sigma" in result.rows and result.metrics:
        parts += [
            "Rows significantly better or worse than Sigma (paired bootstrap "
            "interval of the per-sentence difference excludes 0), per metric "
            "family:",
            "",
            *family_summary_lines(result, "Sigma", seed=seed),
            "",
        ]
    parts += metric_sections(result, "## Removal metrics", seed=seed)
    parts += [_LEGEND, "", *family_legend(result), ""]
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
    """Markdown lines: per removal operator, one table per metric family.

    Each table is headed ``{heading}, operator `op`: {family label}``; a family
    the result was not scored with is left out.
    """
    parts: list[str] = []
    for operator in result.operators:
        for family in METRIC_FAMILIES:
            if not family_metrics(result, family):
                continue
            header, cells, _ = metric_table(result, operator, seed=seed, family=family)
            parts += [
                f"{heading}, operator `{operator}`: {METRIC_FAMILY_LABELS[family]}",
                "",
                markdown_table(header, cells),
                "",
            ]
    return parts


def family_legend(result: ComparisonResult) -> list[str]:
    """Markdown list items: what each scored family measures (x′: x perturbed),
    and what each Sigma row of ``result`` explains (read from its settings)."""
    items = [
        f"- {METRIC_FAMILY_LABELS[family]}: {FAMILY_NOTES[family]}."
        for family in METRIC_FAMILIES
        if family_metrics(result, family)
    ]
    methods = result.settings.get("methods", {})
    for row in result.methods:
        explained = methods.get(row, {}).get("explained")
        if row.startswith("Sigma") and explained:
            regularization = methods[row].get("regularization", "")
            items.append(
                f"- The row {row} explains the {explained} (normalised by "
                f"{regularization})."
            )
    return items


def significance_counts(
    result: ComparisonResult, row: str, family: str, *, seed: int = 0
) -> tuple[int, dict[str, int], dict[str, int]]:
    r"""In how many cells of one family each other row beats ``row`` (or loses).

    A cell is one metric under one operator; another row counts as better
    (worse) in a cell when the paired bootstrap interval of its per-sentence
    difference to ``row`` excludes 0 on the good (bad) side of the metric.

    Args:
        result (ComparisonResult): The comparison.
        row (str): The row compared with every other (e.g. ``"Sigma"``).
        family (str): A key of :data:`METRIC_FAMILIES`.
        seed (int, optional): Bootstrap seed. Default: 0.

    Returns:
        (cells, better, worse): The number of cells where ``row`` has values,
        and per other row the cells where it is significantly better / worse.
    """
    n_cells, better, worse = 0, {}, {}
    for operator in result.operators:
        for metric in family_metrics(result, family):
            summary = rank_against(result, row, operator, metric, seed=seed)
            if summary["rank"] is None:
                continue
            n_cells += 1
            for counts, key in ((better, "better"), (worse, "worse")):
                for other, _ in summary[key]:
                    counts[other] = counts.get(other, 0) + 1
    return n_cells, better, worse


def count_phrase(counts: dict[str, int], total: int) -> str:
    """``"A (all of 12), B (3 of 12)"``, most cells first; ``"none"`` if empty."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    text = ", ".join(
        f"{row} ({'all' if n == total else n} of {total})" for row, n in ordered
    )
    return text or "none"


def family_summary_lines(
    result: ComparisonResult, row: str = "Sigma", *, seed: int = 0
) -> list[str]:
    r"""One markdown item per metric family: the rows better and worse than ``row``.

    Args:
        result (ComparisonResult): The comparison.
        row (str, optional): The row described. Default: "Sigma".
        seed (int, optional): Bootstrap seed. Default: 0.

    Returns:
        lines (list[str]): E.g. ``"- signed (drop of p_c), 12 cells: better than
        Sigma: IntegratedGradients (10 of 12); worse: Random (all of 12)"``.
    """
    lines = []
    for family in METRIC_FAMILIES:
        n_cells, better, worse = significance_counts(result, row, family, seed=seed)
        if not n_cells:
            continue
        lines.append(
            f"- {METRIC_FAMILY_LABELS[family]}, {n_cells} cells: significantly "
            f"better than {row}: {count_phrase(better, n_cells)}; significantly "
            f"worse: {count_phrase(worse, n_cells)}."
        )
    return lines


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
