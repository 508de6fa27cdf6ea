"""The ``compare`` command writes its files (tiny model saved to a folder)."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest

from captum_sigma.cli import main
from captum_sigma.cli.checks import read_text_lines
from captum_sigma.cli.common import CliError
from captum_sigma.cli.compare import register_compare, run_compare
from captum_sigma.evaluation import METRIC_FAMILY_LABELS, METRICS
from captum_sigma.text.data import read_texts

transformers = pytest.importorskip("transformers")

WORDS = "the a film movie is good bad great boring fun dull witty plot".split()


def make_tiny_bert():
    path = Path(__file__).resolve().parents[1] / "conftest.py"
    spec = importlib.util.spec_from_file_location("_captum_sigma_root_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_tiny_bert()


@pytest.fixture
def model_dir(tmp_path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + WORDS
    vocab += [f"[unused{i}]" for i in range(100 - len(vocab))]
    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    transformers.BertTokenizer(vocab=str(vocab_file)).save_pretrained(folder)
    make_tiny_bert().save_pretrained(folder)
    return folder


@pytest.fixture
def texts_file(tmp_path) -> Path:
    path = tmp_path / "texts.txt"
    path.write_text(
        "the film is good .\n\n  a dull , boring plot  \nwitty fun movie\n",
        encoding="utf-8",
    )
    return path


def test_compare_command_writes_its_files(model_dir, texts_file, tmp_path, capfd):
    out = tmp_path / "out"
    status = main(
        [
            "compare",
            "--file",
            str(texts_file),
            "--model",
            str(model_dir),
            "--methods",
            "Sigma",
            "IntegratedGradients",
            "FeatureAblation",
            "Random",
            "--out",
            str(out),
            "--n",
            "2",
            "--device",
            "cpu",
            "--seed",
            "3",
            "--batch-size",
            "1",
            "--progress",
        ]
    )
    assert status == 0
    for name in ("comparison.md", "comparison.csv", "comparison.html"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert figures == [
        "agreement.png",
        "curves_delete.png",
        "curves_distribution_delete.png",
        "curves_distribution_mask.png",
        "curves_mask.png",
        "faithfulness_vs_cost.png",
    ]
    markdown = (out / "comparison.md").read_text()
    assert "2 sentences" in markdown and "seed: 3" in markdown
    for method in ("Sigma", "IntegratedGradients", "FeatureAblation", "Random"):
        assert f"| {method} |" in markdown
    for label, _ in METRICS.values():
        assert label in markdown
    assert "regularization_source: TextExplainer(model, tokenizer" in markdown
    csv_text = (out / "comparison.csv").read_text()
    for metric in METRICS:
        assert f",{metric}," in csv_text
    captured = capfd.readouterr()
    assert "comparison.md" in captured.out
    printed = captured.out.splitlines()
    for operator in ("delete", "mask"):
        for family in METRIC_FAMILY_LABELS.values():
            (best,) = [
                x for x in printed if x.startswith(f"best, {operator}, {family}: ")
            ]
            assert best.count(" (") >= 4  # every metric of the family: its best row
    # 12 signed cells: the row "Sigma" is the default explainer's, the log-odds /
    # r, which does not saturate: its scores are not flat even where this random
    # tiny model gives p ~ 0.5, so the leave-one-out tau is defined too.
    for family, cells in (
        ("signed (drop of p_c)", 12),
        ("distribution change", 8),
        ("representation change (home ground for Sigma)", 8),
    ):
        assert any(
            x.startswith(f"{family}, {cells} cells: significantly better than Sigma")
            for x in printed
        )
    assert "compare: 100%" in captured.err  # --progress: a bar although not a tty
    assert "Loading weights" not in captured.err


def test_register_compare_on_an_outside_parser(texts_file) -> None:
    parser = argparse.ArgumentParser(prog="captum-sigma")
    subparsers = parser.add_subparsers(dest="command")
    sub = register_compare(subparsers)
    assert isinstance(sub, argparse.ArgumentParser)
    args = parser.parse_args(["compare", "--file", str(texts_file), "--faithful"])
    assert args.func is run_compare
    assert args.faithful and args.model is None and args.batch_size == 16
    assert args.operators == ["delete", "mask"] and args.out == "captum-sigma-compare"
    with pytest.raises(SystemExit):
        parser.parse_args(["compare"])  # --file is required


def test_one_text_reader_skips_blank_lines(texts_file, tmp_path) -> None:
    """compare reads its --file with the CLI's reader (text.data.read_texts)."""
    expected = ["the film is good .", "a dull , boring plot", "witty fun movie"]
    assert read_texts(texts_file) == expected
    assert read_text_lines(str(texts_file), "--file") == expected
    with pytest.raises(CliError, match="--file"):
        read_text_lines(str(tmp_path / "none.txt"), "--file")


def test_missing_file_is_an_error(tmp_path, model_dir, capsys) -> None:
    status = main(
        ["compare", "--file", str(tmp_path / "none.txt"), "--model", str(model_dir)]
    )
    assert status == 2
    assert "error:" in capsys.readouterr().err


def test_compare_is_a_subcommand_of_the_one_cli() -> None:
    import subprocess
    import sys

    import captum_sigma.cli.compare as command

    assert not hasattr(command, "main") and not hasattr(command, "build_parser")
    completed = subprocess.run(
        [sys.executable, "-m", "captum_sigma.cli", "compare", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0
    assert "--file" in completed.stdout and "--batch-size" in completed.stdout


@pytest.fixture
def encoder_dir(model_dir, tmp_path) -> Path:
    """The same folder with a bare encoder instead of the classifier."""
    folder = tmp_path / "encoder"
    folder.mkdir()
    for path in model_dir.iterdir():
        if "token" in path.name or path.name == "vocab.txt":
            (folder / path.name).write_bytes(path.read_bytes())
    make_tiny_bert().bert.save_pretrained(folder)
    return folder


def _refused(argv, capsys, match) -> None:
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    assert len(err.splitlines()) == 1 and match in err and "Traceback" not in err


def test_compare_follows_the_cli_rules(
    model_dir, encoder_dir, texts_file, tmp_path, capsys, monkeypatch
) -> None:
    """Issue #10 item 9: one line and exit 2, before any weights load."""
    base = ["compare", "--file", str(texts_file), "--out", str(tmp_path / "o")]
    _refused([*base, "--model", str(encoder_dir)], capsys, "bare encoder")
    _refused([*base, "--model", str(tmp_path / "nonexistent")], capsys, "no such dir")
    _refused([*base, "--model", str(model_dir), "--device", "foo"], capsys, "foo")
    _refused([*base, "--model", str(model_dir), "--n", "0"], capsys, "--n")

    def loaded(*args, **kwargs):
        raise AssertionError("the model loaded before --methods was checked")

    auto = transformers.AutoModelForSequenceClassification
    monkeypatch.setattr(auto, "from_pretrained", loaded)
    bogus = [*base, "--model", str(model_dir), "--methods", "Bogus"]
    _refused(bogus, capsys, "Bogus")


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="CUDA is available here"
)
def test_compare_on_an_unavailable_cuda_device_is_bad_input(
    model_dir, texts_file, tmp_path, capsys
) -> None:
    argv = ["compare", "--file", str(texts_file), "--model", str(model_dir)]
    _refused([*argv, "--device", "cuda"], capsys, "not available")
