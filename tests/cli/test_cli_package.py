"""The command line is a package on top of the library (issue #18 item 2).

``--help`` and ``--version`` answer without importing torch; the library's rules
(class, layer, device, explained output, preset, method) are the only validators
and their ``ValueError`` becomes one line on stderr and exit code 2, before any
weights load.
"""

import ast
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from captum_sigma.cli import main, run_handler

HEAVY = ("torch", "transformers", "captum", "matplotlib", "numpy")
#: Every way of asking for help or the version.
HELP_ARGVS = [
    ["--help"],
    ["--version"],
    *[
        [command, "--help"]
        for command in ("explain", "layers", "explain-dataset", "compare", "explain-lm")
    ],
]
_PROBE = (
    "import json, sys; from captum_sigma.cli import main; code = main(sys.argv[1:]); "
    f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), "
    "file=sys.stderr); sys.exit(code)"
)


@pytest.mark.parametrize("argv", HELP_ARGVS, ids=" ".join)
def test_help_and_version_import_no_torch(argv):
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(("usage: captum-sigma", "captum-sigma "))
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []


def test_help_answers_in_under_a_second():
    """The entry point itself (``python -m captum_sigma.cli``), best of 5 runs;
    the hard check (no torch imported) is the test above."""
    times = []
    for _ in range(5):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "captum_sigma.cli", "--help"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        times.append(time.perf_counter() - start)
        assert done.returncode == 0, done.stderr
    assert min(times) < 1.0, times


def _library_errors():
    """Each library rule, called as the command line calls it, with bad input."""
    from captum_sigma.llm.choices import check_explained
    from captum_sigma.text.presets import get_preset
    from captum_sigma.text.resolve import (
        resolve_device,
        resolve_layer,
        resolve_output,
        resolve_target,
    )

    labels = {0: "negative", 1: "positive"}
    return {
        "--target nonsense: unknown class": lambda: resolve_target(
            "nonsense", labels, name="--target"
        ),
        "--target 7: class out of range": lambda: resolve_target(
            "7", labels, name="--target"
        ),
        "--target and --layer: a layer's hidden state has no class": lambda: (
            resolve_target("1", labels, layer=2, name="--target", layer_name="--layer")
        ),
        "--layer 9: the model has 2 encoder layers": lambda: resolve_layer(
            9, 2, "--layer"
        ),
        "--device foo: unknown device": lambda: resolve_device("foo", "--device"),
        "--explained must be one of": lambda: resolve_output(
            "proba", True, "logit", name="--explained"
        ),
        "is a bare encoder": lambda: resolve_output(
            "logit", False, "logit", name="--explained"
        ),
        "--preset must be one of": lambda: get_preset("slow", "--preset"),
        "--explained must be one of ('log_prob'": lambda: check_explained(
            "prob", "--explained"
        ),
    }


@pytest.mark.parametrize("match", sorted(_library_errors()))
def test_a_library_value_error_is_one_line_and_exit_2(match, capsys):
    rule = _library_errors()[match]
    code = run_handler(lambda args: rule() or 0, object())
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == 2 and out == "", err
    assert len(lines) == 1 and lines[0].startswith("captum-sigma: error: "), err
    assert match in lines[0], err


def test_a_type_error_is_bad_input_too(capsys):
    from captum_sigma.text.resolve import resolve_target

    def handler(args):
        raise TypeError("options must be a SigmaOptions or None, got dict")

    assert run_handler(handler, object()) == 2
    assert capsys.readouterr().err.count("\n") == 1
    with pytest.raises(ValueError, match="target must be a class index or name"):
        resolve_target(1.5, {0: "a", 1: "b"})


@pytest.fixture
def no_weights(monkeypatch):
    """Any attempt to load weights fails the test."""
    import transformers

    def loaded(*args, **kwargs):
        raise AssertionError("weights were loaded before the flags were checked")

    for auto in (
        transformers.AutoModel,
        transformers.AutoModelForSequenceClassification,
    ):
        monkeypatch.setattr(auto, "from_pretrained", loaded)


@pytest.mark.parametrize(
    "rule, flags",
    [
        ("resolve_target", ["--target", "1"]),
        ("resolve_layer", ["--layer", "1"]),
        ("resolve_output", ["--explained", "logit"]),
        ("resolve_device", ["--device", "cpu"]),
    ],
)
def test_the_cli_asks_the_library(
    rule, flags, tiny_model_dir, tmp_path, monkeypatch, capsys, no_weights
):
    """The CLI has no rule of its own for these flags: it calls the library's,
    before loading any weights, and reports its ValueError as one line."""
    import captum_sigma.text.resolve as resolve

    def refuse(*args, **kwargs):
        raise ValueError(f"refused by {rule}")

    monkeypatch.setattr(resolve, rule, refuse)
    data = tmp_path / "data.txt"
    data.write_text("good film\nbad plot\n")
    argv = ["explain", "good film", "--model", str(tiny_model_dir), "--data", str(data)]
    code = main([*argv, "--out", str(tmp_path / "out"), "--no-progress", *flags])
    err = capsys.readouterr().err
    assert code == 2 and err == f"captum-sigma: error: refused by {rule}\n", err
    assert not (tmp_path / "out" / "explanations.json").exists()


def test_the_preset_rule_is_the_librarys(tmp_path, monkeypatch, capsys, no_weights):
    import captum_sigma.text.presets as presets

    def refuse(name, option="preset"):
        raise ValueError(f"{option} refused")

    monkeypatch.setattr(presets, "get_preset", refuse)
    code = main(["explain", "good", "--out", str(tmp_path), "--preset", "fast"])
    assert code == 2
    assert capsys.readouterr().err == "captum-sigma: error: --preset refused\n"


def _assigned_names(path):
    """The names a module assigns at its top level."""
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {target.id for target in targets if isinstance(target, ast.Name)}
    return names


def test_the_method_names_have_one_definition():
    """``compare --help`` (no torch) and the registry use the same names, defined
    once, in the torch-free ``captum_sigma.evaluation.names``."""
    from captum_sigma.cli import compare
    from captum_sigma.evaluation import methods, names
    from captum_sigma.evaluation.compare import DEFAULT_SIGMA_SETTINGS

    shared = {
        "DEFAULT_METHOD_NAMES",
        "METHOD_NAMES",
        "SIGMA_LOGIT_ROW",
        "SIGMA_PROBABILITY_ROW",
    }
    package = Path(names.__file__).parent.parent
    defining = sorted(
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if _assigned_names(path) & shared
    )
    assert defining == ["evaluation/names.py"]
    assert compare.METHOD_NAMES is names.METHOD_NAMES
    for name in shared - {"METHOD_NAMES"}:
        assert getattr(methods, name) is getattr(names, name)
    assert names.METHOD_NAMES == (
        *DEFAULT_SIGMA_SETTINGS,
        *names.DEFAULT_METHOD_NAMES,
        names.SIGMA_PROBABILITY_ROW,
        names.SIGMA_LOGIT_ROW,
    )


def test_the_compare_help_names_the_librarys_methods(capsys):
    from captum_sigma.evaluation.names import METHOD_NAMES

    assert main(["compare", "--help"]) == 0
    page = " ".join(capsys.readouterr().out.split())
    for name in METHOD_NAMES:
        assert name in page
