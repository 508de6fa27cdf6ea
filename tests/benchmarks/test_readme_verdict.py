"""The README's verdict is the published comparison report's, word for word."""

from pathlib import Path

from comparison.report_text import VERDICT_START, verdict_block

ROOT = Path(__file__).resolve().parents[2]


def test_readme_carries_the_reports_verdict() -> None:
    report = (ROOT / "benchmarks" / "results" / "comparison.md").read_text("utf-8")
    readme = (ROOT / "README.md").read_text("utf-8")
    assert readme.count(VERDICT_START) == 1
    assert verdict_block(readme) == verdict_block(report)
