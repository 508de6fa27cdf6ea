"""The comparison report's stage cache: per-stage keys, resumable, --stages."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = (
    Path(__file__).resolve().parents[2] / "benchmarks" / "make_comparison_report.py"
)


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("make_comparison_report", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_comparison_report"] = module
    spec.loader.exec_module(module)
    return module


def test_a_stage_is_computed_once_and_keyed_by_what_it_depends_on(report, tmp_path):
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


def test_unselected_missing_stages_are_reported_not_computed(report, tmp_path):
    stages = report.Stages(tmp_path, "digest", fresh=False, only={"sampling"})
    assert stages.run("main", {"n": 4}, lambda: pytest.fail("computed")) is None
    assert stages.run("sampling", {"n": 4}, lambda: 1) == 1
    assert stages.missing == ["main"]
    # a later process without --stages reads what the first one cached
    later = report.Stages(tmp_path, "digest", fresh=False, only={"main"})
    assert later.run("sampling", {"n": 4}, lambda: pytest.fail("recomputed")) == 1


def test_unknown_stage_names_are_refused(report):
    with pytest.raises(SystemExit, match="unknown stage"):
        report.main(["--stages", "main,typo", "--cache", "/nonexistent"])
