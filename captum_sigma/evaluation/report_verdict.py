r"""The report's answer to "is Sigma worth using?": study, sanity check, verdict.

Markdown sections of ``comparison.md`` generated from the numbers:
:func:`study_section` (the configuration study on the validation sentences and its
fixed criterion), :func:`adoption_lines` (the chosen candidate against the
explainer default on the test sentences), :func:`sanity_section` (the model
randomisation check of Adebayo et al. 2018) and :func:`verdict_lines` (where
Sigma wins, ties and loses, per metric family; :mod:`~captum_sigma.evaluation.verdict`).
"""

from __future__ import annotations

import numpy as np

from captum_sigma.evaluation.compare import (
    METRIC_FAMILY_LABELS,
    METRICS,
    ComparisonResult,
)
from captum_sigma.evaluation.planted import PlantedTokenResult
from captum_sigma.evaluation.report import format_interval, markdown_table
from captum_sigma.evaluation.sanity import SanityResult
from captum_sigma.evaluation.stats import paired_bootstrap_interval
from captum_sigma.evaluation.study import (
    ADOPTION_RULE,
    CRITERION,
    CRITERION_CELLS,
    StudyChoice,
    StudyConfig,
    adopt,
)
from captum_sigma.evaluation.verdict import Record

__all__ = ["adoption_lines", "sanity_section", "study_section", "verdict_lines"]

_SHORT = {
    "comprehensiveness": "comp.",
    "sufficiency": "suff.",
    "dist_comprehensiveness": "Δdist comp.",
    "dist_sufficiency": "Δdist suff.",
}


def study_section(
    choice: StudyChoice, study: ComparisonResult, *, seed: int = 0
) -> list[str]:
    r"""The study's protocol, its validation table (best first) and the choice.

    Args:
        choice (StudyChoice): :func:`~captum_sigma.evaluation.study.choose`'s.
        study (ComparisonResult): The candidates scored on the validation
                sentences (for the home-ground column and the sentence count).
        seed (int, optional): Unused (kept for symmetry). Default: 0.

    Returns:
        Markdown lines.
    """
    operators = list(choice.means)
    header = ["rank", "candidate", "scale from"]
    header += [f"{_SHORT[m]} {op}" for op in operators for m, _ in CRITERION_CELLS]
    header += ["home ground comp. delete", "mean rank ↓"]
    cells = []
    for position, index in enumerate(choice.order(), start=1):
        config = choice.configs[index]
        row = [str(position), _config_name(config), config.scale_label]
        row += [
            f"{choice.means[op][m][index]:.3f}"
            for op in operators
            for m, _ in CRITERION_CELLS
        ]
        home = study.metrics["delete"][config.name].get("repr_comprehensiveness")
        row.append("n/a" if home is None else f"{np.nanmean(home):.2f}")
        row.append(f"{choice.mean_rank[index]:.2f}")
        cells.append(row)
    directions = ", ".join(
        f"{_SHORT[m]} {'↑' if higher else '↓'}" for m, higher in CRITERION_CELLS
    )
    default = next(c for c in choice.configs if c.is_default())
    return [
        f"**Protocol (fixed before the test run).** {CRITERION} {ADOPTION_RULE}",
        "",
        f"{len(choice.configs)} candidates on {len(study.texts)} sentences of the "
        "validation split (stratified like the test sentences; never used for "
        f"training). Columns: means over the sentences ({directions}); the "
        "home-ground column (representation change at the default's output) is "
        "not in the criterion.",
        "",
        markdown_table(header, cells),
        "",
        f"**Chosen:** `{choice.chosen.name}` (mean rank "
        f"{choice.mean_rank[choice.configs.index(choice.chosen)]:.2f}); the "
        f"explainer default `{default.name}` has mean rank "
        f"{choice.mean_rank[choice.configs.index(default)]:.2f}.",
    ]


def _config_name(config: StudyConfig) -> str:
    marker = " (default)" if config.is_default() else ""
    return f"{config.output}, rate {config.rate:g}, scale {config.scale:.3g}{marker}"


def adoption_lines(
    choice: StudyChoice, table: ComparisonResult, *, seed: int = 0
) -> tuple[list[str], bool]:
    r"""The chosen candidate against the default on the test sentences.

    Args:
        choice (StudyChoice): The study's choice.
        table (ComparisonResult): The scored test table (with both rows when the
                chosen candidate is not the default).
        seed (int, optional): Bootstrap seed. Default: 0.

    Returns:
        (lines, adopted): Markdown lines and whether the rule adopts it.
    """
    if choice.chosen.is_default():
        return [
            "The study chose the explainer default itself, so the default stays; "
            "the test tables below score it as row `Sigma`."
        ], False
    name = choice.chosen.name
    header = ["cell", "operator", f"{name} − Sigma", "verdict"]
    cells, outcomes = [], []
    scored = [(m, higher) for m, higher in CRITERION_CELLS if m in table.metric_names]
    for op in table.operators:
        for metric, higher in scored:
            interval = paired_bootstrap_interval(
                table.metrics[op][name][metric],
                table.metrics[op]["Sigma"][metric],
                seed=seed,
            )
            outcome = 0
            if interval.low > 0 or interval.high < 0:
                outcome = 1 if (interval.low > 0) == higher else -1
            outcomes.append(outcome)
            word = {1: "better", -1: "worse", 0: "tie"}[outcome]
            cells.append([METRICS[metric][0], op, format_interval(interval), word])
    adopted = adopt(outcomes)
    decision = (
        "adopted: it becomes the default of TextExplainer and the CLI"
        if adopted
        else "not adopted: the default stays"
    )
    return [
        markdown_table(header, cells),
        "",
        f"Significantly better in {outcomes.count(1)} and worse in "
        f"{outcomes.count(-1)} of {len(outcomes)} criterion cells: **{decision}**.",
    ], adopted


def sanity_section(
    sanity: SanityResult, floor: SanityResult | None = None, *, seed: int = 0
) -> list[str]:
    r"""The model randomisation table: mean Spearman per row, lowest first.

    Args:
        sanity (SanityResult): The check (trained vs randomised model).
        floor (SanityResult, optional): The same correlation between two seeds
                on the trained model, for the stochastic methods: how far a
                method agrees with itself at all. Default: None.
        seed (int, optional): Bootstrap seed. Default: 0.

    Returns:
        Markdown lines.
    """
    intervals = {row: sanity.interval(row, seed=seed) for row in sanity.rows}
    ordered = sorted(intervals, key=lambda row: intervals[row].mean)
    header = ["Method", "ρ trained vs randomised ↓", "ρ seed vs seed + 1 (trained)"]
    cells = []
    for row in ordered:
        same = "1 (deterministic)"
        if floor is not None and row in floor.rows:
            same = format_interval(floor.interval(row, seed=seed))
        cells.append([row, format_interval(intervals[row]), same])
    return [
        markdown_table(header, cells),
        "",
        f"{len(sanity.texts)} test sentences; the classification head and the top "
        f"{sanity.n_layers} encoder layers re-initialised by the model's own "
        "initialiser (seeded), every method explaining the trained model's "
        "predicted class on both models; Spearman over each sentence's eligible "
        "tokens, mean [95 % bootstrap interval]. ρ near 1: the scores barely "
        "depend on what the top of the network learned (the explanation fails "
        "the check). A stochastic method's ρ against itself under another seed "
        "(last column) bounds what it can reach at all: its ρ against the "
        "randomised model is low partly through its own noise. `Random` is 1 by "
        "construction: its scores depend on the seed only, never on the model, so "
        "the check flags it, as it should (it is left out of the verdict's "
        "place).",
    ]


def verdict_lines(
    table: ComparisonResult,
    records: dict[str, dict[str, Record]],
    planted: PlantedTokenResult,
    sanity: SanityResult,
    floor: SanityResult | None = None,
    *,
    choice: StudyChoice | None = None,
    adopted: bool = False,
    row: str = "Sigma",
    seed: int = 0,
) -> list[str]:
    r"""Plain statements generated from the tables: where ``row`` wins and loses.

    Args:
        table (ComparisonResult): The scored test table.
        records (dict): ``records[family][other]``
                (:func:`~captum_sigma.evaluation.verdict.verdict_table`).
        planted (PlantedTokenResult): The planted-token evaluation.
        sanity (SanityResult): The model randomisation check.
        floor (SanityResult, optional): Its seed-vs-seed floor. Default: None.
        choice (StudyChoice, optional): The configuration study's choice.
        adopted (bool, optional): Whether the adoption rule made the choice the
                new default (``row`` is then the chosen candidate's row).
        row (str, optional): The judged row. Default: "Sigma".
        seed (int, optional): Bootstrap seed. Default: 0.

    Returns:
        Markdown lines.
    """
    lines = []
    if choice is not None:
        if choice.chosen.is_default():
            status = "the explainer default itself"
        elif adopted:
            status = (
                "adopted by the rule on the test sentences: it is the explainer "
                "default from now on, replacing this run's row `Sigma`"
            )
        else:
            status = "not adopted by the rule on the test sentences"
        lines.append(
            f"- **Configuration**: of {len(choice.configs)} candidates on the "
            f"validation split, the fixed criterion chose `{choice.chosen.name}` "
            f"({status}); the lines below judge `{row}`."
        )
    for family, by_other in records.items():
        cells = max(r.cells for r in by_other.values())
        beaten = [o for o, r in by_other.items() if r.losses > r.wins]
        beats = [o for o, r in by_other.items() if r.wins > r.losses]
        even = [o for o in by_other if o not in beaten and o not in beats]
        lines.append(
            f"- **{METRIC_FAMILY_LABELS[family]}** ({cells} cells): {row} beats "
            f"{_names(beats)}; even with {_names(even)}; loses to {_names(beaten)} "
            "(beats: more cells significantly won than lost; loses: the reverse)."
        )
    hits = {r: planted.hit_at_1(r, seed=seed).mean for r in planted.ranks}
    best = max(hits, key=hits.get)
    place = sorted(hits.values(), reverse=True).index(hits[row]) + 1
    lines.append(
        f"- **Planted token**: {row}'s hit@1 "
        f"{format_interval(planted.hit_at_1(row, seed=seed), 2)}, mean rank "
        f"{format_interval(planted.mean_rank(row, seed=seed), 2)} (place {place} "
        f"of {len(hits)} rows; best {best} {hits[best]:.2f})."
    )
    spearman = {r: sanity.interval(r, seed=seed).mean for r in sanity.rows}
    informative = [r for r in spearman if r != "Random"]
    position = sorted(informative, key=spearman.get).index(row) + 1
    noise = ""
    if floor is not None and row in floor.rows:
        noise = (
            "; against itself under another seed it keeps "
            f"{format_interval(floor.interval(row, seed=seed), 2)}"
        )
    lines.append(
        f"- **Model randomisation**: after re-initialising the head and the top "
        f"{sanity.n_layers} layers, {row}'s scores keep Spearman "
        f"{format_interval(sanity.interval(row, seed=seed), 2)} with the trained "
        f"model's (place {position} of {len(informative)} from the most "
        f"model-dependent{noise})."
    )
    seconds = {m: table.median_seconds(m) for m in table.methods}

    def cost(method: str) -> str:
        forward, backward = table.passes[method]
        return (
            f"{method} {forward:.0f} forward / {backward:.0f} backward passes "
            f"({seconds[method]:.2f} s)"
        )

    lines.append(
        "- **Cost** per sentence (passes counted; seconds on this CPU, one thread "
        "per process, with processes sharing the cores): "
        + "; ".join(
            cost(m)
            for m in (
                row,
                "IntegratedGradients",
                "FeatureAblation",
                "Lime",
                "KernelShap",
            )
            if m in seconds
        )
        + "."
    )
    lines.append(
        "- **Only Sigma**: one objective per encoder layer, so the same tokens "
        "can be read across layers (`TextExplainer.explain_layers`, the words × "
        "layers view); no other method here explains a hidden layer's state."
    )
    return lines


def _names(rows: list[str]) -> str:
    return ", ".join(rows) if rows else "none"
