r"""Where one row (Sigma) wins, ties and loses against every other row.

For every metric family (``docs/evaluation.md``: the signed drop of the explained
class's probability, the change of the whole predictive distribution, the change
of the explained representation) and every removal operator, each cell compares
the row with another one by the paired bootstrap interval of their per-sentence
difference (:func:`~captum_sigma.evaluation.analysis.rank_against`): a *win* when
the interval lies on the better side of 0, a *loss* when it lies on the worse
side, a *tie* otherwise. FeatureAblation's
leave-one-out tau is about 1 by construction, so that cell is left out against
FeatureAblation and |FeatureAblation|.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from captum_sigma.evaluation.analysis import rank_against
from captum_sigma.evaluation.compare import METRIC_FAMILIES, ComparisonResult

__all__ = ["Record", "family_records", "plot_verdict", "verdict_table"]

_CONSTRUCTION = {("loo_tau", "FeatureAblation"), ("loo_tau", "|FeatureAblation|")}


@dataclass(frozen=True)
class Record:
    """Cells won, tied and lost by the row against one other row in one family."""

    wins: int
    ties: int
    losses: int

    @property
    def cells(self) -> int:
        """The number of compared cells."""
        return self.wins + self.ties + self.losses

    def text(self) -> str:
        """``"wins / ties / losses"``."""
        return f"{self.wins} / {self.ties} / {self.losses}"


def family_records(
    result: ComparisonResult, row: str, family: str, *, seed: int = 0
) -> dict[str, Record]:
    r"""The row's record against every other row in one metric family.

    Args:
        result (ComparisonResult): A scored comparison.
        row (str): The row judged (e.g. ``"Sigma"``).
        family (str): A key of :data:`~captum_sigma.evaluation.compare.METRIC_FAMILIES`.
        seed (int, optional): Bootstrap seed. Default: 0.

    Returns:
        dict[str, Record]: By other row, in table order.
    """
    if family not in METRIC_FAMILIES:
        raise ValueError(f"family must be one of {list(METRIC_FAMILIES)}")
    if row not in result.rows:
        raise ValueError(f"row {row!r} is not in the result ({result.rows})")
    cells = [
        rank_against(result, row, operator, metric, seed=seed)
        for operator in result.operators
        for metric in METRIC_FAMILIES[family]
    ]
    metrics = [m for _ in result.operators for m in METRIC_FAMILIES[family]]
    records = {}
    for other in result.rows:
        if other == row:
            continue
        wins = ties = losses = 0
        for metric, cell in zip(metrics, cells):
            if (metric, other) in _CONSTRUCTION:
                continue
            if any(name == other for name, _ in cell["worse"]):
                wins += 1
            elif any(name == other for name, _ in cell["better"]):
                losses += 1
            else:
                ties += 1
        records[other] = Record(wins, ties, losses)
    return records


def verdict_table(
    result: ComparisonResult,
    row: str,
    families: Sequence[str] | None = None,
    *,
    seed: int = 0,
) -> tuple[list[str], dict[str, dict[str, Record]]]:
    r"""Markdown: one line per other row, ``wins / ties / losses`` per family.

    Args:
        result (ComparisonResult): A scored comparison.
        row (str): The row judged.
        families (sequence of str, optional): Default: every family.
        seed (int, optional): Bootstrap seed. Default: 0.

    Returns:
        (lines, records): The table and ``records[family][other]``.
    """
    families = list(METRIC_FAMILIES) if families is None else list(families)
    records = {f: family_records(result, row, f, seed=seed) for f in families}
    header = "| against | " + " | ".join(families) + " |"
    lines = [header, "|---|" + "---|" * len(families)]
    for other in records[families[0]]:
        cells = [records[f][other].text() for f in families]
        lines.append(f"| {other} | " + " | ".join(cells) + " |")
    return lines, records


def plot_verdict(
    records: dict[str, dict[str, Record]], row: str, path: str | Path
) -> Path:
    r"""One figure: per family, the row's wins minus losses against every row.

    Args:
        records (dict): ``records[family][other]`` as :func:`verdict_table` gives.
        row (str): The judged row's name (title).
        path (str or Path): Where to save the PNG.

    Returns:
        Path: ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = list(records)
    others = list(records[families[0]])
    figure, axes = plt.subplots(
        1,
        len(families),
        figsize=(3.2 * len(families), 0.32 * len(others) + 1.4),
        sharey=True,
    )
    axes = np.atleast_1d(axes)
    positions = np.arange(len(others))
    for axis, family in zip(axes, families):
        values = [records[family][o] for o in others]
        net = np.array([v.wins - v.losses for v in values], dtype=float)
        cells = max(v.cells for v in values) or 1
        colours = ["tab:green" if n > 0 else "tab:red" if n < 0 else "0.6" for n in net]
        axis.barh(positions, net, color=colours)
        axis.axvline(0, color="black", linewidth=0.8)
        axis.set_xlim(-cells, cells)
        axis.set_title(f"{family}\n({cells} cells)", fontsize=9)
        axis.set_xlabel("cells won − cells lost", fontsize=8)
    axes[0].set_yticks(positions, others, fontsize=8)
    axes[0].invert_yaxis()
    figure.suptitle(
        f"{row} against every method (paired 95 % bootstrap per cell)", fontsize=10
    )
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
