"""The installed package never imports the research harness (issue #18).

The repository's own comparison report (``benchmarks/comparison/``), the benchmark
scripts and the default model's training script (``scripts/``) sit beside the
package: nothing under ``captum_sigma/`` may import them, and they are not part
of what ``pip install`` installs.
"""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "captum_sigma"
HARNESS = {"comparison", "_common", "benchmarks", "scripts", "train_default_model"}
MOVED = {  # modules that left the package: they must not come back
    "captum_sigma.evaluation.report_text",
    "captum_sigma.evaluation.report_verdict",
    "captum_sigma.evaluation.verdict",
    "captum_sigma.evaluation.study",
    "captum_sigma.evaluation.stages",
    "captum_sigma.text.train_default_model",
}


def imported_modules(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module


def test_no_package_module_imports_the_harness():
    offending = [
        (str(path.relative_to(ROOT)), name)
        for path in sorted(PACKAGE.rglob("*.py"))
        for name in imported_modules(path)
        if name.split(".")[0] in HARNESS or name in MOVED
    ]
    assert offending == []


def test_moved_modules_are_gone_from_the_package():
    for name in MOVED:
        assert not (ROOT / (name.replace(".", "/") + ".py")).exists(), name
    assert (ROOT / "benchmarks" / "comparison" / "report_text.py").is_file()
    assert (ROOT / "scripts" / "train_default_model.py").is_file()


def test_importing_the_whole_package_loads_no_harness_module():
    """Every module of the package imported in a fresh interpreter: no harness."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import captum_sigma\n"
        "for m in pkgutil.walk_packages(captum_sigma.__path__, 'captum_sigma.'):\n"
        "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
        f"bad = sorted(n for n in sys.modules if n.split('.')[0] in {HARNESS!r})\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT / "tests",  # not the repository root: benchmarks/ is not on the path
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"
