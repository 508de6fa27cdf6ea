"""Wins, ties and losses of one row against every other, per metric family."""

from __future__ import annotations

import numpy as np
import pytest
from test_report_text import synthetic

from captum_sigma.evaluation import METRIC_FAMILIES, METRICS

from comparison.verdict import family_records, plot_verdict, verdict_table


def planted_result(n: int = 40):
    """Sigma 0.5 everywhere; "Better" beats it in every cell, "Worse" loses every
    cell, "Same" equals it up to noise centred on it; metric directions apply."""
    result = synthetic(["Sigma", "Saliency", "InputXGradient", "Random"], n=n)
    rng = np.random.default_rng(0)
    names = {"Saliency": "better", "InputXGradient": "worse", "Random": "same"}
    for op in result.metrics:
        for metric, (_, higher) in METRICS.items():
            sigma = 0.5 + 0.01 * rng.standard_normal(n)
            result.metrics[op]["Sigma"][metric] = sigma
            step = 0.2 if higher else -0.2
            offsets = {"better": step, "worse": -step}
            for row, kind in names.items():
                noise = 0.01 * rng.standard_normal(n)
                noise -= noise.mean()  # centred: "same" has mean difference 0
                result.metrics[op][row][metric] = sigma + offsets.get(kind, 0) + noise
    return result


@pytest.mark.parametrize("family", list(METRIC_FAMILIES))
def test_records_follow_each_metrics_direction(family) -> None:
    result = planted_result()
    records = family_records(result, "Sigma", family)
    cells = 2 * len(METRIC_FAMILIES[family])
    assert records["Saliency"].text() == f"0 / 0 / {cells}"
    assert records["InputXGradient"].text() == f"{cells} / 0 / 0"
    assert records["Random"].text() == f"0 / {cells} / 0"


def test_feature_ablation_is_not_judged_on_its_own_construction() -> None:
    result = synthetic(["Sigma", "FeatureAblation"], n=6)
    records = family_records(result, "Sigma", "signed")
    assert records["FeatureAblation"].cells == 10  # 12 minus loo_tau x 2 operators


def test_table_and_figure(tmp_path) -> None:
    result = planted_result()
    lines, records = verdict_table(result, "Sigma")
    assert lines[0] == "| against | " + " | ".join(METRIC_FAMILIES) + " |"
    assert len(lines) == 2 + len(result.rows) - 1
    path = plot_verdict(records, "Sigma", tmp_path / "verdict.png")
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match="family"):
        family_records(result, "Sigma", "colour")
    with pytest.raises(ValueError, match="row"):
        family_records(result, "Nope", "signed")
