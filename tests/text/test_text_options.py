"""TextExplainer and the CLI build their settings from the one presets module."""

from dataclasses import replace

import pytest
from text_models import make_tokenizer

from captum_sigma import REFERENCE_OPTIONS, SigmaOptions
from captum_sigma.cli import build_parser
from captum_sigma.cli.text_options import sigma_options
from captum_sigma.text import PRESETS, TextExplainer
from captum_sigma.text.presets import OUTPUTS, merge_options


def test_text_explainer_takes_options_and_flat_overrides(tiny_bert):
    tokenizer = make_tokenizer()
    explainer = TextExplainer(tiny_bert, tokenizer, options=REFERENCE_OPTIONS)
    assert explainer.options == REFERENCE_OPTIONS
    short = TextExplainer(tiny_bert, tokenizer, options=REFERENCE_OPTIONS, n_steps=3)
    assert short.options == replace(REFERENCE_OPTIONS, n_steps=3)
    assert TextExplainer(tiny_bert, tokenizer, preset="reference").options == (
        REFERENCE_OPTIONS
    )
    # a classifier's default options are SigmaOptions(): one default everywhere
    assert TextExplainer(tiny_bert, tokenizer).options == SigmaOptions()
    antithetic = replace(
        SigmaOptions(n_samples=2, n_steps=2, tol=None), antithetic=True
    )
    explanation = TextExplainer(tiny_bert, tokenizer, options=antithetic).explain(
        "a good film"
    )
    assert len(explanation.scores) == len(explanation.tokens)


def test_presets_are_one_record_each():
    assert set(PRESETS) == {"default", "precise", "fast", "reference"}
    for name, preset in PRESETS.items():
        assert preset.name == name and preset.output in OUTPUTS
        assert name in preset.describe() and preset.output in preset.describe()
    assert PRESETS["reference"].options == REFERENCE_OPTIONS
    fast = PRESETS["fast"].options
    assert fast.passes_per_example(n_outputs=1) <= 50  # the old cost
    assert fast.chains >= 2  # still a standard error
    # precise: the default's objective and tolerance, 8 x the steps (calibration)
    default, precise = PRESETS["default"], PRESETS["precise"]
    assert precise.output == default.output
    assert precise.options == replace(
        default.options, n_steps=8 * default.options.n_steps
    )


def test_the_torch_free_choices_are_the_presets():
    """Help texts come from text.choices and the presets (no torch): one source."""
    import subprocess
    import sys

    from captum_sigma.text import choices

    assert tuple(PRESETS) == choices.PRESET_NAMES
    assert OUTPUTS == choices.OUTPUTS
    code = (
        "import sys; import captum_sigma.text.presets as p; "
        "print('torch' in sys.modules, len(p.describe_presets()) > 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "True"], out.stderr


def test_merge_options_takes_what_differs_from_the_defaults_then_flat():
    base = PRESETS["fast"].options
    assert merge_options(base) == base
    assert merge_options(base, SigmaOptions(rate=1.0)) == replace(base, rate=1.0)
    assert merge_options(base, None, {"rate": None, "seed": 4}) == replace(base, seed=4)
    with pytest.raises(TypeError, match="SigmaOptions"):
        merge_options(base, {"rate": 1.0})


@pytest.mark.parametrize("command", ["explain", "layers", "explain-dataset"])
def test_preset_and_reference_flags_on_every_explaining_subcommand(command):
    argv = {
        "explain": ["explain", "text"],
        "layers": ["layers", "text"],
        "explain-dataset": ["explain-dataset", "--input", "x", "--output", "y"],
    }[command]
    args = build_parser().parse_args([*argv, "--reference", "--steps", "7"])
    assert args.reference
    assert sigma_options(args.steps, args.seed, "reference") == replace(
        REFERENCE_OPTIONS, n_steps=7
    )
    fast = build_parser().parse_args([*argv, "--preset", "fast", "--rate", "1"])
    assert sigma_options(fast.steps, fast.seed, fast.preset, fast.rate) == replace(
        PRESETS["fast"].options, rate=1.0
    )
    plain = build_parser().parse_args(argv)
    assert plain.preset is None  # resolved to "default" by the checks
    assert sigma_options(None, None) == SigmaOptions()
