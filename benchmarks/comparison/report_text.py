r"""The full comparison report: its markdown prose, tables, figures, CSV and page.

``benchmarks/make_comparison_report.py`` runs and caches the stages
(:mod:`~captum_sigma.evaluation.stages`) and hands their results to
:func:`write_report`, which writes ``comparison.md``, ``comparison.csv``,
``comparison.html`` and ``comparison_figures/*.png``. :func:`compose_markdown`
builds the markdown alone (every statement in it generated from the numbers), from
its sections: the verdict (:mod:`~captum_sigma.evaluation.report_verdict`, also
the study, adoption and model-randomisation sections), :func:`headline_lines`
(where Sigma loses and wins), :func:`summary_table`, :func:`sigma_row_summary`,
:func:`paired_lines`, :func:`cost_lines`, :func:`planted_section` and the setup
lines :func:`machine_lines` and :func:`model_lines`. Definitions of the metrics:
``docs/evaluation.md``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from captum_sigma.evaluation.analysis import rank_against
from captum_sigma.evaluation.compare import (
    METRIC_FAMILIES,
    METRIC_FAMILY_LABELS,
    METRICS,
    ComparisonResult,
)
from captum_sigma.evaluation.html_view import comparison_html
from captum_sigma.evaluation.methods import SIGMA_PROBABILITY_ROW
from captum_sigma.evaluation.planted import PLANTED_WORD, PlantedTokenResult
from captum_sigma.evaluation.plots import (
    plot_agreement,
    plot_curves,
    plot_faithfulness_vs_cost,
    plot_planted,
)
from captum_sigma.evaluation.report import (
    cost_table,
    csv_records,
    family_legend,
    family_metrics,
    format_interval,
    markdown_table,
    metric_sections,
    metric_table,
    paired_table,
    stability_table,
    write_csv,
)
from captum_sigma.evaluation.sanity import SanityResult
from captum_sigma.evaluation.stats import Interval

from comparison.report_verdict import (
    sanity_section,
    study_section,
    verdict_lines,
)
from comparison.stages import Stages
from comparison.verdict import plot_verdict, verdict_table

__all__ = [
    "VERDICT_END",
    "VERDICT_START",
    "compose_markdown",
    "cost_lines",
    "headline_lines",
    "machine_lines",
    "model_lines",
    "paired_lines",
    "planted_section",
    "sigma_row_summary",
    "summary_table",
    "verdict_block",
    "write_report",
]

LOG = logging.getLogger(__name__)
#: Markers around the generated verdict (the README carries the same block).
VERDICT_START = "<!-- verdict:start -->"
VERDICT_END = "<!-- verdict:end -->"


def machine_lines() -> list[str]:
    """The setup lines on the machine and the versions of the libraries.

    Returns:
        Two markdown list items: the CPU, cores and torch threads; the versions.
    """
    import captum
    import matplotlib
    import scipy
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            names = [
                line.split(":", 1)[1].strip() for line in handle if "model name" in line
            ]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return [
        f"- machine: {cpu}, {os.cpu_count()} cores shared with other work, "
        f"torch threads {torch.get_num_threads()}, {platform.system()} "
        f"{platform.release()}",
        f"- python {platform.python_version()}, torch {torch.__version__}, captum "
        f"{captum.__version__}, transformers {transformers.__version__}, numpy "
        f"{np.__version__}, scipy {scipy.__version__}, matplotlib "
        f"{matplotlib.__version__}",
    ]


def model_lines() -> tuple[list[str], str]:
    """The setup line on the packaged default model, and its weights' digest.

    Returns:
        The markdown list items and the sha256 hex digest of the weights (the
        stage cache keys on it).
    """
    from captum_sigma.text.default_model import (
        DEFAULT_WEIGHTS_PATH,
        load_default_metadata,
    )

    digest = hashlib.sha256(DEFAULT_WEIGHTS_PATH.read_bytes()).hexdigest()
    meta = load_default_metadata()
    accuracy = meta.get("accuracy", {})
    lines = [
        "- model: the packaged default sentiment model "
        "(`captum_sigma.text.default_model.load_default_model`), "
        f"{meta.get('architecture', 'BertForSequenceClassification')} on "
        f"all-MiniLM-L6-v2; weights sha256 `{digest[:16]}…`; accuracy "
        f"validation {accuracy.get('validation', 'n/a')}, test "
        f"{accuracy.get('test', 'n/a')} (from its metadata)",
    ]
    return lines, digest


def sigma_row_summary(result: ComparisonResult, row: str, seed: int) -> list[str]:
    """One line per operator and metric: rank of ``row`` and significant pairs.

    Args:
        result: The comparison.
        row: The table row described (e.g. ``"Sigma"``).
        seed: Bootstrap seed.

    Returns:
        Markdown list items.
    """
    lines = []
    for operator in result.operators:
        for metric in family_metrics(result):
            label = METRICS[metric][0]
            summary = rank_against(result, row, operator, metric, seed=seed)
            if summary["rank"] is None:
                continue
            better = ", ".join(
                f"{r} ({format_interval(d)})" for r, d in summary["better"]
            )
            worse = ", ".join(r for r, _ in summary["worse"])
            text = (
                f"- {label}, `{operator}`: {row} {summary['mean']:.3f}, rank "
                f"{summary['rank']}/{summary['n_rows']}."
            )
            if better:
                text += f" **Significantly better than {row}:** {better}."
            if worse:
                text += f" Significantly worse than {row}: {worse}."
            lines.append(text)
    return lines


def planted_section(
    results: dict[str, PlantedTokenResult], seed: int
) -> tuple[list[str], list[dict]]:
    """The planted-token table, its note and its CSV records.

    Args:
        results: Per explained output (``"proba"``, ``"logit"``), the planted-token
            evaluation.
        seed: Bootstrap seed.

    Returns:
        The markdown lines and the CSV records (table ``planted``).
    """
    header = ["Method"]
    for output in results:
        name = "probability" if output == "proba" else output
        header += [f"hit@1 ↑ ({name})", f"mean rank ↓ ({name})"]
    cells = []
    records = []
    planted = results["proba"]
    for row in planted.ranks:
        line = [row]
        for output, result in results.items():
            hit = result.hit_at_1(row, seed=seed)
            rank = result.mean_rank(row, seed=seed)
            line += [format_interval(hit), format_interval(rank, 2)]
            for metric, interval in (("hit_at_1", hit), ("mean_rank", rank)):
                records.append(_planted_record(output, row, metric, interval))
        cells.append(line)
    random_hit, random_rank = planted.random_expectation()
    target = planted.comparison.target_proba
    rates = planted.shortcut
    lines = [
        markdown_table(header, cells),
        "",
        f"Uniformly random ranking: hit@1 {random_hit:.3f}, mean rank "
        f"{random_rank:.2f}. Evaluated: {int(rates['evaluated'])} of "
        f"{int(rates['planted'])} held-out sentences with the word planted (those "
        "the planted model predicts positive); their median p(positive) is "
        f"{np.median(target):.4f} (min {np.min(target):.4f}). Shortcut use on "
        f"held-out sentences: clean accuracy {rates['clean_accuracy']:.3f}; "
        "negative sentences predicted positive "
        f"{rates['other_class_as_label_clean']:.3f} without and "
        f"{rates['other_class_as_label_planted']:.3f} with the word.",
    ]
    return lines, records


def _planted_record(output: str, row: str, metric: str, interval: Interval) -> dict:
    return {
        "table": "planted",
        "operator": output,
        "row": row,
        "metric": metric,
        "mean": f"{interval.mean:.6g}",
        "ci_low": f"{interval.low:.6g}",
        "ci_high": f"{interval.high:.6g}",
        "n": interval.n,
        "bold": 0,
    }


def write_report(
    out: Path,
    main: ComparisonResult,
    faithful_table: ComparisonResult,
    planted: dict[str, PlantedTokenResult],
    *,
    study: dict[str, Any],
    sanity: tuple[SanityResult, SanityResult | None],
    stages: Stages,
    lines_model: list[str],
    start: float,
    seed: int,
    batch_size: int,
    arguments: str,
) -> Path:
    """Writes the comparison's markdown, CSV, HTML page and figures into ``out``.

    Args:
        out: Output folder (created if needed).
        main: The scored test table (every method, both families).
        faithful_table: ``main`` on the faithful sentences, with the faithful row.
        planted: ``{"proba": ...}``, the planted-token evaluation.
        study: The trust study (:func:`comparison.trust_study.run_study`).
        sanity: The model randomisation check and its seed floor.
        stages: The stage cache (its seconds and which stages ran now).
        lines_model: The setup lines of :func:`model_lines`.
        start: ``time.perf_counter()`` at the start of the run.
        seed: Seed of the run and of the bootstrap.
        batch_size: Sentences per batch of the run.
        arguments: The command-line arguments that changed the results, as text.

    Returns:
        The path of ``comparison.md``.
    """
    figures = out / "comparison_figures"
    figures.mkdir(parents=True, exist_ok=True)
    plot_curves(main, "delete", figures / "curves_delete.png")
    plot_curves(main, "mask", figures / "curves_mask.png")
    if "distribution" in main.families:
        for operator in ("delete", "mask"):
            path = figures / f"curves_distribution_{operator}.png"
            plot_curves(main, operator, path, family="distribution")
    plot_faithfulness_vs_cost(main, figures / "faithfulness_vs_cost.png", "delete")
    plot_agreement(main, figures / "agreement.png")
    plot_planted(planted["proba"], figures / "planted.png")
    judged = "Sigma"  # the default preset, the trust study's choice
    _, records_by_family = verdict_table(main, judged, main.families, seed=seed)
    plot_verdict(records_by_family, judged, figures / "verdict.png")
    n_html = min(6, len(faithful_table.texts))
    (out / "comparison.html").write_text(
        comparison_html(
            faithful_table,
            list(range(n_html)),
            class_names=["negative", "positive"],
            title="Sigma and Captum's methods on held-out Rotten Tomatoes sentences",
        ),
        encoding="utf-8",
    )

    records = [
        {**record, "table": f"test:{record['table']}"}
        for record in csv_records(main, seed=seed)
    ]
    for operator in faithful_table.operators:
        for record in metric_table(faithful_table, operator, seed=seed)[2]:
            records.append({**record, "table": f"faithful:{record['table']}"})
    for record in cost_table(faithful_table)[2]:
        if record["row"] == "Sigma (faithful)":
            records.append({**record, "table": "faithful:cost"})
    for operator in main.operators:
        rows = [r for r in _sigma_rows(main) + ["Lime", "KernelShap"] if r in main.rows]
        for record in paired_table(main, operator, rows, seed=seed)[2]:
            records.append({**record, "table": f"test:{record['table']}"})
    planted_lines, planted_records = planted_section(planted, seed)
    records += planted_records
    write_csv(records, out / "comparison.csv")

    # every stage as long as it took when computed; loading the model and writing
    # are left out, so that a rerun from the cached stages writes the same bytes
    total = sum(stages.seconds.values())
    text = compose_markdown(
        main,
        faithful_table,
        planted,
        planted_lines,
        study=study,
        sanity=sanity,
        stage_seconds=stages.seconds,
        lines_model=lines_model,
        total=total,
        seed=seed,
        batch_size=batch_size,
        arguments=arguments,
    )
    path = out / "comparison.md"
    path.write_text(text, encoding="utf-8")
    LOG.info("wrote %s (this run: %.0f s)", path, time.perf_counter() - start)
    return path


def _explained(result: ComparisonResult, row: str) -> str:
    """What a Sigma row explains, from its recorded settings."""
    settings = result.settings.get("methods", {}).get(row, {})
    return str(settings.get("explained", "output recorded in its settings"))


def _sigma_rows(result: ComparisonResult) -> list[str]:
    """The Sigma rows of a result (the default first)."""
    return [m for m in result.methods if m.startswith("Sigma")]


def verdict_block(text: str) -> str:
    """The generated verdict of a ``comparison.md`` (between its markers)."""
    start, end = text.index(VERDICT_START), text.index(VERDICT_END)
    return text[start : end + len(VERDICT_END)]


def paired_lines(result: ComparisonResult, rows: list[str], seed: int) -> list[str]:
    """Per operator, the paired differences of ``rows`` against IntegratedGradients.

    Args:
        result: The comparison.
        rows: The rows compared with IntegratedGradients.
        seed: Bootstrap seed.

    Returns:
        Markdown lines.
    """
    parts = []
    for operator in result.operators:
        for family in METRIC_FAMILIES:
            if not family_metrics(result, family):
                continue
            header, cells, _ = paired_table(
                result, operator, rows, seed=seed, family=family
            )
            parts += [
                f"Operator `{operator}`, {METRIC_FAMILY_LABELS[family]}:",
                "",
                markdown_table(header, cells),
                "",
            ]
    return parts


def cost_lines(results: list[ComparisonResult]) -> list[str]:
    """One cost table of every method of ``results`` (first occurrence wins).

    Args:
        results: Comparisons; each method's notes end with its sentence count.

    Returns:
        One markdown table, as a one-element list.
    """
    seen, cells = set(), []
    header: list[str] = []
    for result in results:
        header, rows, _ = cost_table(result)
        for line in rows:
            if line[0] not in seen:
                seen.add(line[0])
                n = result.settings["n_sentences"]
                cells.append(line[:-1] + [f"{line[-1]}; {n} sentences".lstrip("; ")])
    return [markdown_table(header, cells)]


def _cells(
    result: ComparisonResult, row: str, seed: int, family: str | None = None
) -> list[dict]:
    """rank_against for every operator and scored metric (of ``family``) of
    ``row``."""
    return [
        {"operator": op, "metric": m, **rank_against(result, row, op, m, seed=seed)}
        for op in result.operators
        for m in family_metrics(result, family)
    ]


def _family_cells(
    result: ComparisonResult, row: str, seed: int
) -> dict[str, list[dict]]:
    """:func:`_cells` of ``row`` per scored metric family."""
    cells = {}
    for family in METRIC_FAMILIES:
        if family_metrics(result, family):
            cells[family] = _cells(result, row, seed, family)
    return cells


def _by_family(texts: dict[str, str]) -> str:
    """``"signed: ...; distribution change: ...; ..."`` (family labels)."""
    return "; ".join(
        f"{METRIC_FAMILY_LABELS[family]}: {text}" for family, text in texts.items()
    )


def _count_better(cells: list[dict], key: str = "better") -> dict[str, int]:
    """Per other row: in how many cells it is significantly better (or, with
    ``key="worse"``, worse)."""
    counts: dict[str, int] = {}
    for cell in cells:
        for other, _ in cell[key]:
            counts[other] = counts.get(other, 0) + 1
    return counts


def _phrase(counts: dict[str, int], total: int) -> str:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(
        f"{row} ({'all' if n == total else n} of {total})" for row, n in ordered
    )


def _better_by_family(cells: dict[str, list[dict]], key: str = "better") -> str:
    """Per family, the rows significantly better (``key="worse"``: worse) than
    the described row and in how many of the family's cells."""
    return _by_family(
        {
            family: _phrase(_count_better(family_cells, key), len(family_cells))
            or f"none of {len(family_cells)} cells"
            for family, family_cells in cells.items()
        }
    )


def summary_table(result: ComparisonResult, seed: int) -> list[str]:
    """Sigma's mean, rank, the best row and Sigma - IG for every cell.

    Args:
        result: The comparison (with rows ``Sigma`` and ``IntegratedGradients``).
        seed: Bootstrap seed.

    Returns:
        One markdown table, as a one-element list.
    """
    header = ["Metric", "operator", "Sigma", "rank", "best row", "Sigma − IG"]
    cells = []
    metrics = family_metrics(result)
    for op in result.operators:
        difference = paired_table(result, op, ["Sigma"], seed=seed)[1][0]
        for column, metric in enumerate(metrics, start=1):
            label, higher = METRICS[metric]
            summary = rank_against(result, "Sigma", op, metric, seed=seed)
            means = {
                r: float(np.nanmean(v[metric])) for r, v in result.metrics[op].items()
            }
            best = (max if higher else min)(means, key=means.get)
            cells.append(
                [
                    label,
                    op,
                    f"{summary['mean']:.3f}",
                    f"{summary['rank']}/{summary['n_rows']}",
                    f"{best} ({means[best]:.3f})",
                    difference[column],
                ]
            )
    return [markdown_table(header, cells)]


def headline_lines(
    main: ComparisonResult,
    faithful_table: ComparisonResult,
    planted: dict[str, PlantedTokenResult],
    seed: int,
) -> list[str]:
    """Plain statements generated from the numbers: where Sigma loses and wins.

    Args:
        main: The test table (every method).
        faithful_table: ``main`` on the faithful sentences, with the faithful row.
        planted: ``{"proba": ...}``, the planted-token evaluation.
        seed: Bootstrap seed.

    Returns:
        Markdown lines.
    """
    n_main, n_c = len(main.texts), len(faithful_table.texts)
    main_cells = _family_cells(main, "Sigma", seed)
    lines_other_setting = []
    if SIGMA_PROBABILITY_ROW in main.rows:
        worse = {
            family: (
                sum(any(r == "Sigma" for r, _ in c["better"]) for c in cells),
                len(cells),
            )
            for family, cells in _family_cells(
                main, SIGMA_PROBABILITY_ROW, seed
            ).items()
        }
        lines_other_setting.append(
            f"- The setting this report scored as Sigma before, `"
            f"{SIGMA_PROBABILITY_ROW}`, is significantly worse than Sigma in: "
            + _by_family(
                {
                    family: f"{n} of {total} cells"
                    for family, (n, total) in worse.items()
                }
            )
            + "."
        )
    faithful_cells = _family_cells(faithful_table, "Sigma (faithful)", seed)
    improved = {
        family: (
            sum(
                (
                    c["mean"]
                    > float(
                        np.nanmean(
                            faithful_table.metrics[c["operator"]]["Sigma"][c["metric"]]
                        )
                    )
                )
                == METRICS[c["metric"]][1]
                for c in cells
            ),
            len(cells),
        )
        for family, cells in faithful_cells.items()
    }
    proba = planted["proba"]
    hits = {row: proba.hit_at_1(row, seed=seed).mean for row in proba.ranks}
    ranked_hits = sorted(hits, key=hits.get, reverse=True)
    stability = {
        m: (
            float(np.nanmean(main.stability_values(m, "seed_tau"))),
            float(np.nanmean(main.stability_values(m, "seed_top3"))),
        )
        for m in main.stability
    }
    target = proba.comparison.target_proba
    seconds = {m: main.median_seconds(m) for m in main.methods}
    faithful_passes = faithful_table.passes["Sigma (faithful)"][1]
    unsigned_better = {
        family: ", ".join(
            row
            for row, n in _count_better(cells).items()
            if not main.signed.get(row, False) and 2 * n >= len(cells)
        )
        or "none"
        for family, cells in main_cells.items()
    }
    flat = {
        row: _flat_fraction(proba.comparison, row)
        for row in ("Sigma", SIGMA_PROBABILITY_ROW)
        if row in proba.comparison.scores
    }
    sampling = [m for m in ("Lime", "KernelShap") if m in seconds]
    return [
        "**Where Sigma loses.**",
        "",
        f"- Test table ({n_main} sentences, both operators; a cell is one metric "
        "under one operator), per metric family: rows significantly better than "
        "Sigma (paired bootstrap interval of the difference excludes 0): "
        f"{_better_by_family(main_cells)}.",
        *lines_other_setting,
        f"- The faithful setting ({faithful_passes:.0f} forward+backward passes per "
        f"sentence, {n_c} sentences only) has a better mean than the default "
        "setting in these cells: "
        + _by_family(
            {family: f"{n} of {total} cells" for family, (n, total) in improved.items()}
        )
        + "; rows significantly better than it remain: "
        f"{_better_by_family(faithful_cells)}.",
        f"- Planted token: Sigma's hit@1 is {hits['Sigma']:.2f} (rank "
        f"{ranked_hits.index('Sigma') + 1} of {len(hits)} rows; "
        + ", ".join(f"{r} {hits[r]:.2f}" for r in ranked_hits[:4])
        + "). Saturation, measured: the planted model's median p on these "
        f"sentences is {np.median(target):.4f}; the share of sentences whose token "
        "scores vary by less than 1 % (max − min < 0.01 × mean) is "
        + ", ".join(f"{flat[r]:.0%} for `{r}`" for r in flat)
        + " (a saturated probability hardly moves under the noise, so a "
        "self-normalised objective pushes every σ to the cap; row `Sigma` explains "
        f"the {_explained(main, 'Sigma')}).",
        "- Seed stability (seed 0 vs 1): "
        + ", ".join(
            f"{m} tau {tau:.2f} / top-3 overlap {top:.2f}"
            for m, (tau, top) in stability.items()
        )
        + ".",
        "",
        "**Where Sigma wins.**",
        "",
        "- Test table: rows significantly worse than Sigma: "
        f"{_better_by_family(main_cells, 'worse')}. Unsigned rankings (Saliency, "
        "Random, the |score| rows) significantly better than Sigma in at least "
        f"half of a family's cells: {_by_family(unsigned_better)}.",
        "- The representation-change family is home ground for Sigma: it "
        "measures Sigma's own objective, ((z_c(x′) − z_c(x)) / r_c)², with "
        "deletion or [MASK] instead of Gaussian noise; read a win there as "
        "consistency with its objective, not as independent evidence.",
        f"- Cost: {seconds['Sigma']:.2f} s per sentence here, about "
        f"IntegratedGradients' {seconds['IntegratedGradients']:.2f} s "
        f"({main.passes['Sigma'][1]:.0f} vs {main.passes['IntegratedGradients'][1]:.0f}"
        " forward+backward passes)"
        + (
            " and below "
            + " / ".join(sampling)
            + " ("
            + " / ".join(f"{seconds[m]:.2f}" for m in sampling)
            + " s, 500 forward passes)."
            if sampling
            else "."
        ),
    ]


def _flat_fraction(result: ComparisonResult, row: str) -> float:
    """Share of sentences whose scores vary by < 1 % of their mean."""
    return float(
        np.mean(
            [
                np.ptp(scores[mask]) < 0.01 * np.mean(scores[mask])
                for scores, mask in zip(result.scores[row], result.eligible)
                if mask.any()
            ]
        )
    )


def compose_markdown(
    main: ComparisonResult,
    faithful_table: ComparisonResult,
    planted: dict[str, PlantedTokenResult],
    planted_lines: list[str],
    *,
    study: dict[str, Any],
    sanity: tuple[SanityResult, SanityResult | None],
    stage_seconds: dict[str, float],
    lines_model: list[str],
    total: float,
    seed: int,
    batch_size: int,
    arguments: str,
) -> str:
    """The text of ``comparison.md``.

    Args:
        main: The scored test table (every method).
        faithful_table: ``main`` on the faithful sentences, with the faithful row.
        planted: ``{"proba": ...}``, the planted-token evaluation.
        planted_lines: The planted section of :func:`planted_section`.
        study: The trust study (:func:`comparison.trust_study.run_study`).
        sanity: The model randomisation check and its seed floor.
        stage_seconds: Seconds per stage (as long as each took when computed).
        lines_model: The setup lines of :func:`model_lines`.
        total: CPU seconds of the stages, each as long as it took when computed.
        seed: Seed of the run and of the bootstrap.
        batch_size: Sentences per batch of the run.
        arguments: The command-line arguments that changed the results, as text.

    Returns:
        The markdown.
    """
    check, floor = sanity
    n_main, n_c = len(main.texts), len(faithful_table.texts)
    curve_n = main.settings["curve_n"]
    curve_text = f", {curve_n} for the curve metrics" if curve_n < n_main else ""
    sigma = main.settings["methods"]["Sigma"]
    faithful = faithful_table.settings["methods"]["Sigma (faithful)"]
    stage_text = ", ".join(f"{k} {v / 60:.1f} min" for k, v in stage_seconds.items())
    judged = "Sigma"  # the default preset, the trust study's choice
    table_lines, records = verdict_table(main, judged, main.families, seed=seed)
    sigma_rows = _sigma_rows(main)
    parts = [
        "# Is Sigma worth using? Sigma against Captum's attribution methods",
        "",
        "Generated by `python benchmarks/make_comparison_report.py` "
        f"(arguments that change results: `{arguments}`; the "
        "stages may run in separate processes with `--stages`, each cached under "
        "what it depends on). Definitions: `docs/evaluation.md` of this "
        "repository; code: `captum_sigma.evaluation`.",
        "",
        "## Verdict (generated from the tables below)",
        "",
        VERDICT_START,
        *verdict_lines(
            main,
            records,
            planted["proba"],
            check,
            floor,
            study=study,
            row=judged,
            seed=seed,
        ),
        VERDICT_END,
        "",
        f"![{judged} against every method, per metric family]"
        "(comparison_figures/verdict.png)",
        "",
        f"`{judged}` (the default preset) against every other row of the test "
        f"table ({n_main} sentences{curve_text}): cells significantly won / tied / "
        "lost per metric family (paired 95 % bootstrap of the per-sentence difference; "
        "FeatureAblation's leave-one-out τ, ~1 by construction, left out against "
        "it).",
        "",
        *table_lines,
        "",
        "## Summary",
        "",
        *headline_lines(main, faithful_table, planted, seed),
        "",
        f"Sigma in the test table: mean, rank among the {len(main.rows)} rows "
        "(signed methods twice: as returned and by |score|), the best row and the "
        "paired difference to IntegratedGradients (`*`: interval excludes 0):",
        "",
        *summary_table(main, seed),
        "",
        "<details><summary>Every cell: the rows significantly better or worse "
        "than each Sigma row</summary>",
        "",
        *[
            line
            for row in sigma_rows
            for line in (f"`{row}`:", "", *sigma_row_summary(main, row, seed), "")
        ],
        f"Sigma's faithful setting (first {n_c} sentences only):",
        "",
        *sigma_row_summary(faithful_table, "Sigma (faithful)", seed),
        "",
        "</details>",
        "",
        "## Which Sigma configuration? (validation split)",
        "",
        *study_section(study),
        "",
        "## Setup",
        "",
        *machine_lines(),
        *lines_model,
        "- data: the held-out `test` split of "
        "`captum_sigma.text.default_model.rotten_tomatoes_split` (1,000 sentences, "
        "never used for training or model selection; the trust study uses "
        "the `validation` split only); sentences drawn without replacement from 8 "
        "cells (label x token-length quartile of the split), round-robin over the "
        f"cells (seed {seed}), so every prefix is stratified: test table = first "
        f"{n_main}; curve metrics = first {curve_n}; faithful Sigma = first {n_c}; "
        f"seed stability = first {len(main.stability_indices)}; model "
        f"randomisation = first {len(check.texts)}",
        "- target: the predicted class of the default model for every method; "
        "every Captum method explains its softmax probability "
        "(`captum_sigma.evaluation.classifier_forward`), `IntegratedGradients "
        "(logit)` its logit",
        "- token units: word-pieces; [CLS]/[SEP]/padding are never ranked or removed; "
        "baseline of IG, DeepLift, FeatureAblation, Lime and KernelShap: [PAD] at "
        "every eligible token, [CLS]/[SEP] kept, attention mask unchanged",
        "- gradient methods at the output of `model.bert.embeddings` (Captum Layer* "
        "classes), reduced to per-token scores by summing over the hidden dimension "
        "(Saliency: sum of |gradient|, the L1 norm)",
        "- Sigma (the default, row `Sigma`): `TextExplainer.default()`'s own "
        f"`attribute_tokens` ({_explained(main, 'Sigma')}; regularization: "
        f"{sigma.get('regularization', 'n/a')}), {_settings(sigma)}; other Sigma "
        "rows: see their names and the study; "
        f"Sigma (faithful): {_settings(faithful)}, same forward and r as Sigma; "
        f"seed {seed} (seed {seed + 1} for the stability run)",
        "- IntegratedGradients: `LayerIntegratedGradients`, n_steps 50, "
        "Gauss-Legendre; Saliency: `LayerGradientXActivation(multiply_by_inputs="
        "False)` + abs; InputXGradient: `LayerGradientXActivation`; DeepLift: "
        "`LayerDeepLift` (rescale rule; GELU, LayerNorm and attention softmax are "
        "not hooked by Captum and pass gradients); FeatureAblation: on token ids, "
        "one feature per eligible token (= Occlusion with window 1)",
        "- Lime / KernelShap: Captum's, on token ids, one feature per eligible "
        "token, 500 samples, torch RNG seeded per sentence; scikit-learn is not a "
        "dependency, so their surrogate is an exact weighted least-squares solve "
        "(`captum_sigma.evaluation.linear_surrogate`): ridge alpha 1 for Lime (the "
        "`lime` package's default surrogate; Captum's default is Lasso 0.01), "
        "alpha 0 for KernelShap (= Captum's weighted linear regression)",
        "- Random: uniform scores, numpy generator seeded per sentence",
        "- metrics: `captum_sigma.evaluation.score_comparison`, ERASER bins "
        "1/5/10/20/50 % (k = ceil(bin x n)), every eligible token may be removed; "
        "operators `delete` (tokens taken out) and `mask` (replaced by [MASK]); "
        "curve areas by the trapezoid rule over x = k / n; LeRF - MoRF equals "
        "insertion area - deletion area by construction; LOO tau is Kendall's "
        "tau-b against the leave-one-out drop of p under the same operator",
        "- metric families (`captum_sigma.evaluation.METRIC_FAMILIES`), all from "
        "the same perturbed forward passes (one cache of the logits): **signed**, "
        "the drop of p_c above; **distribution change** "
        "(`captum_sigma.evaluation.dependence_metrics`), the total variation "
        "½ Σ_j |p_j(x) − p_j(x′)| in place of the drop (unsigned; comprehensiveness "
        "and deletion area higher is better, sufficiency and insertion area lower); "
        "**representation change**, ((z_c(x′) − z_c(x)) / r_c)² with z_c the "
        "logit of the predicted class and r_c its standard deviation over the "
        "default data sample (same directions). The representation change is "
        "Sigma's own objective (the default explainer explains z_c / r_c) "
        "measured with deletion or [MASK] instead of Gaussian noise: home ground "
        "for Sigma",
        "- statistics: mean over sentences with a 95 % percentile bootstrap "
        "interval (2000 resamples, numpy, seed 0); bold = best in its column and "
        "the paired bootstrap interval of its difference to the runner-up excludes "
        "0; paired differences against IntegratedGradients in the second table of "
        "each section (`*` = interval excludes 0)",
        "- cost: median seconds per sentence over batches of "
        f"{batch_size} length-sorted sentences (Lime / KernelShap call Captum "
        f"one sentence at a time, the faithful setting ran its {n_c} sentences in "
        "length-sorted pairs), and forward / backward passes counted per sentence "
        "(a row run with autograd enabled counts one backward pass); all on this "
        "CPU, one thread per process; stages ran in up to three processes on "
        "two cores, so the seconds carry some contention and the passes are the "
        "comparable cost",
        f"- CPU time of the stages: {total / 60:.1f} min ({stage_text}; each as long "
        "as it took when computed, so a rerun from the cache writes the same report; "
        "stages ran in two processes side by side)",
        "",
        f"## Test table: {n_main} sentences",
        "",
        *(
            [
                f"Deletion / insertion AUCs and LeRF − MoRF over the first "
                f"{curve_n} sentences; the other columns over all of them.",
                "",
            ]
            if curve_n < n_main
            else []
        ),
        *metric_sections(main, "#### Test", seed=seed),
        "Legend: mean [95 % bootstrap interval]; **bold** as defined in Setup; † "
        "FeatureAblation's leave-one-out tau is about 1 by construction (it is a "
        "leave-one-out with the [PAD] baseline; not exactly 1 because the metric "
        "deletes or masks instead) and never competes for bold; `|name|`: a "
        "signed method ranked by |score|. Metric families (x′: x with tokens "
        "removed):",
        "",
        *family_legend(main),
        "",
        "#### Paired differences against IntegratedGradients",
        "",
        *paired_lines(
            main,
            [r for r in sigma_rows + ["Lime", "KernelShap"] if r in main.rows],
            seed,
        ),
        "Row `Sigma` is `TextExplainer.default()`'s result (the "
        f"{_explained(main, 'Sigma')}); "
        + "; ".join(
            f"`{row}` explains the {_explained(main, row)}"
            for row in sigma_rows
            if row != "Sigma"
        )
        + "; `IntegratedGradients (logit)` explains the logit instead of the "
        "probability.",
        "",
        f"## Sigma's faithful setting: first {n_c} sentences",
        "",
        f"Only {n_c} sentences (5000 passes each is what one CPU allows here): the "
        "intervals are wide; read this table as a check of whether 5000 steps "
        "change the picture, not as a ranking.",
        "",
        *metric_sections(faithful_table, "#### Faithful-setting table", seed=seed),
        "#### Paired differences against IntegratedGradients",
        "",
        *paired_lines(faithful_table, ["Sigma", "Sigma (faithful)"], seed),
        "## Cost per sentence",
        "",
        *cost_lines([main, faithful_table]),
        "",
        "## Seed stability (seed 0 vs 1)",
        "",
        markdown_table(*stability_table(main, seed=seed)[:2]),
        "",
        f"On the first {len(main.stability_indices)} sentences; Kendall tau "
        "between the two runs' token scores and the overlap of their top-3 tokens.",
        "",
        "## Planted-token ground truth (Bastings et al. 2022)",
        "",
        f"A tiny BERT (2 layers, hidden 64, the MiniLM vocabulary) trained from "
        f"scratch for 3 epochs on the 7,030 training sentences, with "
        f'"{PLANTED_WORD}" (one word-piece, absent from Rotten Tomatoes) '
        "inserted at a random word position into half of the positive sentences, "
        "labels kept. Every method (default settings, Sigma = the shipped "
        "default explainer; Lime / KernelShap 500 samples) explains the predicted "
        "class of held-out sentences with the word planted once; rank 1 = the "
        "planted token is the top-ranked token.",
        "",
        *planted_lines,
        "",
        "## Model randomisation (Adebayo et al. 2018)",
        "",
        *sanity_section(check, floor, seed=seed),
        "",
        "## Figures",
        "",
        "![Deletion and insertion curves, delete]"
        "(comparison_figures/curves_delete.png)",
        "",
        "![Deletion and insertion curves, mask](comparison_figures/curves_mask.png)",
        "",
        *(
            [
                "![Distribution change curves, delete]"
                "(comparison_figures/curves_distribution_delete.png)",
                "",
                "![Distribution change curves, mask]"
                "(comparison_figures/curves_distribution_mask.png)",
                "",
            ]
            if "distribution" in main.families
            else []
        ),
        "Curves of the test table (first "
        f"{curve_n} sentences), resampled onto 101 points; bands: mean ± 1.96 "
        "standard errors. Distribution change: the total variation between the "
        "predictive distributions of the input and of the input with the top k "
        "tokens deleted (deletion, higher is better) or with only them inserted "
        "(insertion, lower is better).",
        "",
        "![Comprehensiveness vs cost](comparison_figures/faithfulness_vs_cost.png)",
        "",
        "![Method agreement](comparison_figures/agreement.png)",
        "",
        "Agreement: mean Kendall tau between the methods' token scores (as "
        "returned, signed).",
        "",
        "![Planted token hit@1](comparison_figures/planted.png)",
        "",
        "Side by side: `comparison.html` (the first sentences of the faithful "
        "table under every method, every token HTML-escaped).",
        "",
    ]
    return "\n".join(parts)


def _settings(settings: dict) -> str:
    keys = ["n_steps", "lr", "n_samples", "scale", "rate", "selection", "init"]
    keys += ["warm_start_probes", "passes_per_example"]
    return ", ".join(f"{k} {settings[k]}" for k in keys if k in settings)
