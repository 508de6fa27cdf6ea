r"""The report's answer to "is Sigma worth using?": study, sanity check, verdict.

Markdown sections of ``comparison.md`` generated from the numbers:
:func:`study_section` (the trust study of ``docs/trust-study.md`` on the validation
sentences and its pre-registered rule), :func:`sanity_section` (the model
randomisation check of Adebayo et al. 2018) and :func:`verdict_lines` (where
Sigma wins, ties and loses, per metric family; :mod:`comparison.verdict`).
"""

from __future__ import annotations

from typing import Any

from captum_sigma.evaluation.compare import (
    METRIC_FAMILY_LABELS,
    ComparisonResult,
)
from captum_sigma.evaluation.planted import PlantedTokenResult
from captum_sigma.evaluation.report import format_interval, markdown_table
from captum_sigma.evaluation.sanity import SanityResult

from comparison.trust_study import (
    CELLS,
    CONFIDENT,
    MAX_FLAT_CONFIDENT,
    MIN_PLANTED_HIT1,
)
from comparison.verdict import Record

__all__ = ["sanity_section", "study_section", "verdict_lines"]

_SHORT = {
    "comprehensiveness": "comp.",
    "sufficiency": "suff.",
    "dist_comprehensiveness": "Δdist comp.",
    "dist_sufficiency": "Δdist suff.",
}


def study_section(study: dict[str, Any]) -> list[str]:
    r"""The trust study's protocol, its validation table (chosen first) and choice.

    Args:
        study (dict): :func:`comparison.trust_study.run_study`'s result.

    Returns:
        Markdown lines.
    """
    decision = study["decision"]
    rows = sorted(
        study["rows"],
        key=lambda r: (r.get("mean_rank") is None, r.get("mean_rank") or 0.0),
    )
    header = ["candidate", *[_CELL_NAMES[c] for c, _ in CELLS], "passes", "rank ↓"]
    cells = []
    for row in rows:
        marker = " (chosen)" if row["candidate"] == decision["chosen"] else ""
        cells.append(
            [f"`{row['candidate']}`{marker}"]
            + [_cell(row[c]) for c, _ in CELLS]
            + [f"{row['passes_mean']:.0f}"]
            + [_cell(row.get("mean_rank"), "{:.2f}", "not eligible")]
        )
    directions = ", ".join(
        f"{_CELL_NAMES[c]} {'↑' if higher else '↓'}" for c, higher in CELLS
    )
    eligibility = (
        "no candidate met the floors, so all were ranked"
        if decision["none_eligible"]
        else f"eligible: {', '.join(f'`{c}`' for c in decision['eligible'])}"
    )
    return [
        "**Protocol (fixed and committed before the first run: "
        "`docs/trust-study.md`).** Each candidate explains the first "
        f"{study['n']} sentences of the validation split with seeds 0 and 1 "
        "under the default preset's budget (its `rate` replaced by the "
        "candidate's). A candidate is eligible if its flat share among confident "
        f"predictions (p ≥ {CONFIDENT}) is at most {MAX_FLAT_CONFIDENT} and its "
        f"planted hit@1 at least {MIN_PLANTED_HIT1}; eligible candidates are "
        "ranked in every cell (ties share their mean rank) and the lowest mean "
        "rank is chosen.",
        "",
        f"Cells ({directions}): seed agreement of the most informative word piece "
        "(top-1) and mean top-3 overlap between the two seeds; planted hit@1 on "
        f"{study['n_planted']} planted validation sentences (a tiny BERT trained "
        f"in-repo on {study['planted_train']} sentences, half of one class "
        "carrying the planted word); the flat share among confident predictions; "
        "AOPC comprehensiveness / sufficiency of the signed drop of p_c and of "
        "the total-variation distribution change (deletion). Passes: forward "
        "rows per sentence (mean).",
        "",
        markdown_table(header, cells),
        "",
        f"**Chosen by the rule:** `{decision['chosen']}` ({eligibility}). The "
        "`default` preset (`captum_sigma/text/presets.py`) explains "
        f"{_preset_words()}: the row `Sigma` below.",
    ]


_CELL_NAMES = {
    "seed_top1": "seed top-1",
    "seed_top3": "seed top-3",
    "planted_hit1": "planted hit@1",
    "flat_confident": "flat (confident)",
    "comprehensiveness": "comp.",
    "sufficiency": "suff.",
    "dist_comprehensiveness": "Δdist comp.",
    "dist_sufficiency": "Δdist suff.",
}


def _cell(value: Any, fmt: str = "{:.2f}", missing: str = "n/a") -> str:
    return missing if value is None else fmt.format(value)


def _preset_words() -> str:
    from captum_sigma.text.presets import PRESETS

    preset = PRESETS["default"]
    return f"the {preset.output} / r at rate {preset.options.rate:g}"


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
    study: dict[str, Any] | None = None,
    row: str = "Sigma",
    seed: int = 0,
) -> list[str]:
    r"""Plain statements generated from the tables: where ``row`` wins and loses.

    Args:
        table (ComparisonResult): The scored test table.
        records (dict): ``records[family][other]``
                (:func:`comparison.verdict.verdict_table`).
        planted (PlantedTokenResult): The planted-token evaluation.
        sanity (SanityResult): The model randomisation check.
        floor (SanityResult, optional): Its seed-vs-seed floor. Default: None.
        study (dict, optional): The trust study
                (:func:`comparison.trust_study.run_study`).
        row (str, optional): The judged row. Default: "Sigma".
        seed (int, optional): Bootstrap seed. Default: 0.

    Returns:
        Markdown lines.
    """
    lines = []
    if study is not None:
        lines.append(
            f"- **Configuration**: of {len(study['rows'])} candidates on "
            f"{study['n']} validation sentences, the pre-registered rule of "
            f"`docs/trust-study.md` chose `{study['decision']['chosen']}`; the "
            f"default preset explains {_preset_words()} (row `{row}`)."
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
