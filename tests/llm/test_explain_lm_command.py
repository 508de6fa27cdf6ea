"""``captum-sigma explain-lm``: files written, checks before any weights load."""

import json

import pytest
from lm_models import make_gpt2, make_tokenizer

from captum_sigma.cli import main
from captum_sigma.llm import EXPLAINED
from captum_sigma.llm.choices import EXPLAINED as CLI_EXPLAINED

PROMPT = "w5 w9 <b> w7 w3"
FAST = ["--steps", "6", "--scale", "2", "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    """A tiny random GPT-2 and its word-level tokenizer, saved like a HF model."""
    from transformers.utils import logging as hf_logging

    folder = tmp_path_factory.mktemp("tiny-lm")
    hf_logging.disable_progress_bar()
    make_gpt2().save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)
    hf_logging.enable_progress_bar()
    return folder


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_explain_lm_writes_heatmap_html_and_json(lm_dir, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["explain-lm", "--model", str(lm_dir), "--prompt", PROMPT]
    argv += ["--target", "w8 w14 w6", "--out", str(out), *FAST]
    code, stdout, err = run(argv, capsys)
    assert code == 0, err
    assert (out / "explain-lm.png").stat().st_size > 0
    record = json.loads((out / "explain-lm.json").read_text())
    assert record["input_tokens"] == PROMPT.split()
    assert record["output_tokens"] == ["w8", "w14", "w6"]
    assert len(record["token_attr"]) == 3 and len(record["token_attr"][0]) == 5
    assert all(v >= 0 for row in record["token_attr"] for v in row)
    assert record["unit"] == "nats" and record["options"]["n_steps"] == 6
    page = (out / "explain-lm.html").read_text()
    assert "&lt;b&gt;" in page and "<b>" not in page  # the token is escaped
    assert "continuation: w8 w14 w6" in stdout


def test_explain_lm_generates_max_new_tokens(lm_dir, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["explain-lm", "--model", str(lm_dir), "--prompt", PROMPT]
    argv += ["--max-new-tokens", "2", "--out", str(out), "--seq-attr", "joint"]
    code, _, err = run([*argv, *FAST], capsys)
    assert code == 0, err
    record = json.loads((out / "explain-lm.json").read_text())
    assert len(record["output_tokens"]) == 2 and record["seq_attr_mode"] == "joint"


@pytest.fixture
def no_weights(monkeypatch):
    """Any attempt to load weights fails the test."""
    import transformers

    def loaded(*args, **kwargs):
        raise AssertionError("weights were loaded before the flags were checked")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", loaded)


BAD = [
    (["--model", "{tmp}/nonexistent"], "no such directory"),
    (["--model", "{bert}"], "is not a causal language model"),
    (["--prompt", "  "], "--prompt is empty"),
    (["--target", "w8", "--max-new-tokens", "2"], "not allowed with argument"),
    (["--max-new-tokens", "0"], "--max-new-tokens must be positive"),
    (["--steps", "0"], "--steps must be positive"),
    (
        ["--explained", "prob"],
        "--explained must be one of ('log_prob', 'logit', 'log_odds'), got 'prob'",
    ),
    (["--device", "foo"], "--device foo"),
    (["--rate", "-1"], "--rate must be a positive"),
    (["--scale", "0"], "--scale must be a positive"),
    (["--data", "{tmp}/none.txt"], "--data"),
]


@pytest.mark.parametrize("flags, match", BAD)
def test_bad_input_is_one_line_and_exit_2_before_weights_load(
    flags, match, lm_dir, tiny_model_dir, tmp_path, capsys, no_weights
):
    argv = ["explain-lm", "--model", str(lm_dir), "--prompt", PROMPT]
    argv += ["--out", str(tmp_path / "out"), *flags]
    values = {"tmp": tmp_path, "bert": tiny_model_dir}
    code, _, err = run([a.format(**values) for a in argv], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("captum-sigma: error:") and match in lines[0], err


def test_help_names_the_exit_codes_and_the_cli_names_agree(capsys):
    assert main(["explain-lm", "--help"]) == 0
    page = capsys.readouterr().out
    assert "captum-sigma explain-lm" in page and "exit codes:" in page
    assert CLI_EXPLAINED is EXPLAINED  # one definition, torch-free
    assert "--explained {" + ",".join(EXPLAINED) + "}" in page
