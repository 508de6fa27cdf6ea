"""The comparison report's stage cache: per-stage keys, resumable, --stages."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from comparison import stages as report

SCRIPT = (
    Path(__file__).resolve().parents[2] / "benchmarks" / "make_comparison_report.py"
)


def test_a_stage_is_computed_once_and_keyed_by_what_it_depends_on(tmp_path):
    calls = []

    def compute(value):
        calls.append(value)
        return value

    first = report.Stages(tmp_path, "digest", fresh=False, only=None)
    assert first.run("main", {"n": 4}, lambda: compute("a")) == "a"
    again = report.Stages(tmp_path, "digest", fresh=False, only=None)
    assert again.run("main", {"n": 4}, lambda: compute("b")) == "a"  # cached
    assert again.run("main", {"n": 8}, lambda: compute("c")) == "c"  # new key
    other_model = report.Stages(tmp_path, "other", fresh=False, only=None)
    assert other_model.run("main", {"n": 4}, lambda: compute("d")) == "d"
    fresh = report.Stages(tmp_path, "digest", fresh=True, only=None)
    assert fresh.run("main", {"n": 4}, lambda: compute("e")) == "e"
    assert calls == ["a", "c", "d", "e"]
    assert not list(tmp_path.glob("*.partial"))


def test_unselected_missing_stages_are_reported_not_computed(tmp_path):
    stages = report.Stages(tmp_path, "digest", fresh=False, only={"sampling"})
    assert stages.run("main", {"n": 4}, lambda: pytest.fail("computed")) is None
    assert stages.run("sampling", {"n": 4}, lambda: 1) == 1
    assert stages.missing == ["main"]
    # a later process without --stages reads what the first one cached
    later = report.Stages(tmp_path, "digest", fresh=False, only={"main"})
    assert later.run("sampling", {"n": 4}, lambda: pytest.fail("recomputed")) == 1


def test_unknown_stage_names_are_refused(tmp_path):
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--stages", "main,typo", "--cache", "/none"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode != 0 and "unknown stage" in completed.stderr


def test_every_prefix_of_the_order_is_stratified():
    labels = [0, 1] * 40
    lengths = np.arange(80) % 20
    order = report.stratified_order([""] * 80, labels, lengths, 16, seed=0)
    assert len(set(order)) == 16
    assert sum(labels[i] for i in order[:8]) == 4  # 8 cells, one sentence each
