"""TextExplainer and the CLI take the one options object (e.g. the reference run)."""

from dataclasses import replace

import pytest
from text_models import make_tokenizer

from captum_sigma import REFERENCE_OPTIONS, SigmaOptions
from captum_sigma.cli import build_parser
from captum_sigma.cli_checks import sigma_options
from captum_sigma.text import DEFAULT_TEXT_OPTIONS, TextExplainer


def test_text_explainer_takes_options_and_flat_overrides(tiny_bert):
    tokenizer = make_tokenizer()
    explainer = TextExplainer(tiny_bert, tokenizer, options=REFERENCE_OPTIONS)
    assert explainer.options == REFERENCE_OPTIONS
    short = TextExplainer(tiny_bert, tokenizer, options=REFERENCE_OPTIONS, n_steps=3)
    assert short.options == replace(REFERENCE_OPTIONS, n_steps=3)
    # a classifier's default options: DEFAULT_TEXT_OPTIONS (rate 1, the
    # configuration study's choice), not SigmaOptions() (rate 0.1)
    assert TextExplainer(tiny_bert, tokenizer).options == DEFAULT_TEXT_OPTIONS
    assert DEFAULT_TEXT_OPTIONS == SigmaOptions(rate=1.0)
    antithetic = replace(SigmaOptions(n_samples=2, n_steps=2), antithetic=True)
    explanation = TextExplainer(tiny_bert, tokenizer, options=antithetic).explain(
        "a good film"
    )
    assert len(explanation.scores) == len(explanation.tokens)


@pytest.mark.parametrize("command", ["explain", "layers", "explain-dataset"])
def test_reference_flag_on_every_explaining_subcommand(command, tmp_path):
    argv = {
        "explain": ["explain", "text"],
        "layers": ["layers", "text"],
        "explain-dataset": ["explain-dataset", "--input", "x", "--output", "y"],
    }[command]
    args = build_parser().parse_args([*argv, "--reference", "--steps", "7"])
    assert args.reference
    assert sigma_options(args.steps, args.seed, args.reference) == replace(
        REFERENCE_OPTIONS, n_steps=7
    )
    plain = build_parser().parse_args(argv)
    # without --reference: the explainer's default for a classifier (rate 1) and
    # SigmaOptions() for a bare encoder; --rate overrides either
    assert (
        sigma_options(plain.steps, plain.seed, plain.reference) == DEFAULT_TEXT_OPTIONS
    )
    assert sigma_options(None, None, classifier=False) == SigmaOptions()
    previous = build_parser().parse_args([*argv, "--rate", "0.1"])
    assert sigma_options(None, None, rate=previous.rate) == SigmaOptions()
    assert sigma_options(None, None, True, rate=0.5) == replace(
        REFERENCE_OPTIONS, rate=0.5
    )
