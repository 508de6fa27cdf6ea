"""The full comparison report's writer on small synthetic results (no model)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pytest

from captum_sigma.evaluation import (
    METRIC_FAMILIES,
    METRIC_FAMILY_LABELS,
    METRICS,
    ComparisonResult,
)
from captum_sigma.evaluation.html_view import comparison_html
from captum_sigma.evaluation.methods import SIGMA_PROBABILITY_ROW
from captum_sigma.evaluation.planted import PlantedTokenResult
from captum_sigma.evaluation.ranking import SeedStability
from captum_sigma.evaluation.sanity import SanityResult

from comparison.report_text import (
    VERDICT_END,
    VERDICT_START,
    compose_markdown,
    planted_section,
    verdict_block,
    write_report,
)
from comparison.stages import Stages
from comparison.trust_study import CANDIDATES, CELLS, choose
from comparison.verdict import verdict_table

OPERATORS = ("delete", "mask")
TOKENS = ["[CLS]", "a", "<b>", "c", "[SEP]"]
MAIN = ["Sigma", SIGMA_PROBABILITY_ROW, "IntegratedGradients", "Saliency"]
SAMPLING = ["Lime", "KernelShap"]
SIGNED = {"IntegratedGradients", "Lime", "KernelShap"}


def synthetic(
    methods: Sequence[str],
    n: int = 6,
    seed: int = 0,
    stochastic: Sequence[str] = (),
    metrics: Sequence[str] = tuple(METRICS),
) -> ComparisonResult:
    """A comparison of ``methods`` on ``n`` sentences with random numbers
    (``metrics``: those it was scored with; the signed ones alone for a result
    scored before the unsigned families existed)."""
    rng = np.random.default_rng(seed)
    rows = []
    for method in methods:
        rows += [method, f"|{method}|"] if method in SIGNED else [method]
    eligible = np.ones((n, len(TOKENS)), dtype=bool)
    eligible[:, [0, -1]] = False
    curve = np.linspace(1.0, 0.0, 4)
    return ComparisonResult(
        texts=[f"sentence {i}" for i in range(n)],
        tokens=[list(TOKENS) for _ in range(n)],
        input_ids=np.ones((n, len(TOKENS)), dtype=np.int64),
        attention_mask=np.ones((n, len(TOKENS)), dtype=np.int64),
        eligible=eligible,
        target=np.ones(n, dtype=np.int64),
        target_proba=rng.uniform(0.5, 1.0, n),
        labels=np.ones(n, dtype=np.int64),
        methods=list(methods),
        rows=rows,
        signed={m: m in SIGNED for m in methods},
        stochastic={m: m in stochastic for m in methods},
        scores={row: rng.normal(size=(n, len(TOKENS))) for row in rows},
        metrics={
            op: {row: {m: rng.random(n) for m in metrics} for row in rows}
            for op in OPERATORS
        },
        curves={
            op: {row: ([curve] * n, [curve[::-1]] * n) for row in rows}
            for op in OPERATORS
        },
        seconds={m: rng.uniform(0.1, 1.0, 3) for m in methods},
        passes={m: (10.0, 10.0) for m in methods},
        stability={m: SeedStability(rng.random(n), rng.random(n)) for m in stochastic},
        stability_indices=np.arange(n if stochastic else 0),
        convergence_delta={},
        dependence_curves={
            op: {
                row: {
                    f"{prefix}_{kind}": [curve[::-1] if kind == "deletion" else curve]
                    * n
                    for prefix in ("dist", "repr")
                    for kind in ("deletion", "insertion")
                }
                for row in rows
            }
            for op in OPERATORS
            if "dist_comprehensiveness" in metrics
        },
        settings={
            "curve_n": n,
            "n_sentences": n,
            "stability_n": n,
            "metrics_seconds": 2.0,
            "methods": {m: {"n_steps": 46, "lr": 0.5} for m in methods},
        },
    )


def planted_results(n: int = 8) -> dict[str, PlantedTokenResult]:
    rows = MAIN + SAMPLING
    comparison = synthetic(rows, n=n, seed=3)
    rng = np.random.default_rng(4)
    shortcut = {
        "evaluated": n,
        "planted": n + 2,
        "clean_accuracy": 0.8,
        "other_class_as_label_clean": 0.1,
        "other_class_as_label_planted": 0.9,
    }
    return {
        "proba": PlantedTokenResult(
            token="zeppelin",
            token_id=1,
            ranks={row: rng.integers(1, 4, n).astype(np.float64) for row in rows},
            n_eligible=np.full(n, 3),
            comparison=comparison,
            shortcut=dict(shortcut),
        )
    }


def sanity_results(rows: Sequence[str], n: int = 5) -> tuple:
    rng = np.random.default_rng(8)

    def result(names: Sequence[str]) -> SanityResult:
        return SanityResult(
            rows=list(names),
            spearman={row: rng.uniform(-1, 1, n) for row in names},
            n_layers=3,
            texts=[f"sentence {i}" for i in range(n)],
            target=np.ones(n, dtype=np.int64),
        )

    return result(rows), result(["Sigma", "Lime", "|Lime|"])


def trust_study_result(seed: int = 9) -> dict:
    """A trust-study result (:func:`comparison.trust_study.run_study`'s shape)."""
    rng = np.random.default_rng(seed)
    rows = []
    for name, output, rate in CANDIDATES:
        row = dict(candidate=name, output=output, rate=rate)
        row.update({cell: float(rng.uniform()) for cell, _ in CELLS})
        row.update(passes_mean=float(rng.integers(50, 500)), passes_p90=500.0)
        rows.append(row)
    rows[0]["planted_hit1"] = 0.1  # not eligible
    return dict(
        split="validation",
        n=24,
        n_planted=20,
        planted_train=7030,
        rows=rows,
        decision=choose(rows),
    )


@pytest.fixture
def tables():
    study = trust_study_result()
    methods = MAIN + SAMPLING + ["IntegratedGradients (logit)"]
    stochastic = ["Sigma", SIGMA_PROBABILITY_ROW, *SAMPLING]
    main = synthetic(methods, n=6, seed=0, stochastic=stochastic)
    faithful = synthetic(methods + ["Sigma (faithful)"], n=2, seed=7)
    sanity = sanity_results(main.rows)
    return main, faithful, planted_results(), study, sanity


def _settings(**overrides) -> dict:
    settings = dict(
        stage_seconds={"study": 60.0, "attributions": 60.0, "planted": 120.0},
        lines_model=["- model: synthetic"],
        total=600.0,
        seed=0,
        batch_size=16,
        arguments="--n 6",
    )
    return settings | overrides


def test_compose_markdown_is_generated_from_the_numbers(tables) -> None:
    main, faithful, planted, study, sanity = tables
    lines, records = planted_section(planted, seed=0)
    assert {r["table"] for r in records} == {"planted"}
    assert len(records) == 2 * len(planted["proba"].ranks)
    settings = _settings(study=study, sanity=sanity)
    text = compose_markdown(main, faithful, planted, lines, **settings)
    assert text == compose_markdown(main, faithful, planted, lines, **settings)
    assert text.startswith("# Is Sigma worth using?")
    for heading in (
        "## Verdict (generated from the tables below)",
        "## Summary",
        "## Which Sigma configuration? (validation split)",
        "## Test table: 6 sentences",
        "## Sigma's faithful setting: first 2 sentences",
        "## Planted-token ground truth (Bastings et al. 2022)",
        "## Model randomisation (Adebayo et al. 2018)",
    ):
        assert f"\n{heading}\n" in text
    assert "(arguments that change results: `--n 6`;" in text
    assert "- model: synthetic" in text
    assert "CPU time of the stages: 10.0 min (study 1.0 min" in text
    assert "batches of 16 length-sorted sentences" in text
    assert "**Where Sigma loses.**" in text and "**Where Sigma wins.**" in text
    for row in main.rows:
        assert f"| {row.replace('|', chr(92) + '|')} |" in text
    # the verdict: one line per family, each from the win / tie / loss records
    block = verdict_block(text)
    assert block.startswith(VERDICT_START) and block.endswith(VERDICT_END)
    for label in METRIC_FAMILY_LABELS.values():
        assert f"- **{label}**" in block
    _, records_by_family = verdict_table(main, "Sigma", seed=0)
    for other, record in records_by_family["signed"].items():
        assert record.cells == (10 if "FeatureAblation" in other else 12)
    # both unsigned families next to the signed one, counted separately
    (main_line,) = [
        line for line in text.splitlines() if line.startswith("- Test table (")
    ]
    signed = main_line.index("signed (drop of p_c): ")
    distribution = main_line.index("; distribution change: ")
    representation = main_line.index(
        "; representation change (home ground for Sigma): "
    )
    assert signed < distribution < representation
    assert "of 12" in main_line[signed:distribution]  # 6 metrics x 2 operators
    assert "of 8" in main_line[distribution:]  # 4 metrics x 2 operators
    for family in ("signed (drop of p_c)", "distribution change"):
        assert f"#### Test, operator `mask`: {family}" in text
        assert f"Operator `delete`, {family}:" in text
    assert "#### Test, operator `delete`: representation change (home ground" in text
    for label, _ in METRICS.values():
        assert label in text
    assert "home ground for Sigma" in text and "Sigma's own objective" in text
    assert "curves_distribution_mask.png" in text
    # the study: protocol before the table, every candidate, the rule's choice
    protocol = text.index("**Protocol (fixed and committed before the first run")
    chosen = study["decision"]["chosen"]
    assert protocol < text.index(f"| `{chosen}` (chosen) |")
    assert f"**Chosen by the rule:** `{chosen}`" in text
    for row in study["rows"]:
        assert f"| `{row['candidate']}`" in text
    assert f"| `{CANDIDATES[0][0]}` |" in text and "| not eligible |" in text
    assert f"the pre-registered rule of `docs/trust-study.md` chose `{chosen}`" in (
        verdict_block(text)
    )
    # the sanity check: every row, and the seed floor where there is one
    for row in sanity[0].rows:
        assert f"| {row.replace('|', chr(92) + '|')} | " in text
    assert "1 (deterministic)" in text


def test_results_scored_before_the_unsigned_families_still_report(tables) -> None:
    """A result pickled with the signed metrics alone gives the signed tables."""
    main, faithful, planted, study, sanity = tables
    signed = METRIC_FAMILIES["signed"]
    old_main = synthetic(
        main.methods, n=6, metrics=signed, stochastic=list(main.stochastic)
    )
    old_faithful = synthetic(faithful.methods, n=2, metrics=signed)
    assert old_main.metric_names == list(signed)
    assert old_main.families == ["signed"]
    text = compose_markdown(
        old_main, old_faithful, planted, [], **_settings(study=study, sanity=sanity)
    )
    assert "#### Test, operator `delete`: signed (drop of p_c)" in text
    assert "#### Test, operator `delete`: distribution change" not in text
    assert "curves_distribution_delete.png" not in text


def test_write_report_writes_every_file(tables, tmp_path) -> None:
    main, faithful, planted, study, sanity = tables
    stages = Stages(tmp_path / "cache", "digest", fresh=False, only=None)
    for name in ("study", "attributions", "planted"):
        stages.run(name, {}, lambda: None)
    path = write_report(
        tmp_path / "out",
        main,
        faithful,
        planted,
        study=study,
        sanity=sanity,
        stages=stages,
        lines_model=["- model: synthetic"],
        start=time.perf_counter(),
        seed=0,
        batch_size=16,
        arguments="defaults",
    )
    assert path == tmp_path / "out" / "comparison.md"
    out = path.parent
    assert {p.name for p in out.iterdir()} == {
        "comparison.md",
        "comparison.csv",
        "comparison.html",
        "comparison_figures",
    }
    figures = sorted(p.name for p in (out / "comparison_figures").glob("*.png"))
    assert figures == [
        "agreement.png",
        "curves_delete.png",
        "curves_distribution_delete.png",
        "curves_distribution_mask.png",
        "curves_mask.png",
        "faithfulness_vs_cost.png",
        "planted.png",
        "verdict.png",
    ]
    csv_lines = (out / "comparison.csv").read_text().splitlines()
    assert any(line.startswith("planted,") for line in csv_lines)
    page = (out / "comparison.html").read_text()
    assert "<b>" not in page and "&lt;b&gt;" in page


def test_the_page_colours_signed_rows_by_max_and_unsigned_ones_min_max() -> None:
    result = synthetic(["Saliency", "IntegratedGradients"], n=1)
    result.scores["Saliency"][0] = [0.0, 2.0, 3.0, 4.0, 0.0]
    result.scores["IntegratedGradients"][0] = [0.0, -2.0, 1.0, 4.0, 0.0]
    page = comparison_html(result, [0], rows=["Saliency", "IntegratedGradients"])
    saliency, gradients = page.split("<tr><td>")[1:3]
    # unsigned: min-max over the eligible tokens, the lowest one white
    assert 'background-color: hsl(120, 75%, 100%)" title="2"' in saliency
    assert 'background-color: hsl(120, 75%, 50%)" title="4"' in saliency
    # signed: divided by the largest |score|, negative red
    assert 'background-color: hsl(0, 75%, 80%)" title="-2"' in gradients
    assert 'background-color: hsl(120, 75%, 88%)" title="1"' in gradients
    # [CLS] / [SEP]: grey, never coloured, no score
    assert saliency.count('<mark class="special">') == 2


def test_a_rerun_from_the_cached_stages_writes_the_same_bytes(tables, tmp_path):
    """The report depends on the cached stages only: a later run (another start
    time, the stages read back from the cache) writes byte-identical files."""
    main, faithful, planted, study, sanity = tables
    cache = tmp_path / "cache"
    first = Stages(cache, "digest", fresh=False, only=None)
    for name in ("study", "attributions", "planted"):
        first.run(name, {}, lambda: time.sleep(0.01))
    again = Stages(cache, "digest", fresh=False, only=None)
    for name in ("study", "attributions", "planted"):
        again.run(name, {}, lambda: pytest.fail("not read from the cache"))
    outputs = []
    for stages, start in ((first, time.perf_counter() - 5.0), (again, 0.0)):
        out = tmp_path / f"out-{len(outputs)}"
        write_report(
            out,
            main,
            faithful,
            planted,
            study=study,
            sanity=sanity,
            stages=stages,
            lines_model=["- model: synthetic"],
            start=start,
            seed=0,
            batch_size=16,
            arguments="defaults",
        )
        outputs.append(
            {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        )
    assert outputs[0].keys() == outputs[1].keys()
    for name in outputs[0]:
        assert outputs[0][name] == outputs[1][name], name
