"""How much the solver amplifies float rounding (measured by injecting it).

The sigma solver turns a relative perturbation of the forward's output into a
relative change of σ that is ``amplification`` times larger: the loss compares
``Φ(x̃)`` with ``s`` to a precision of ``|Φ(x̃) − s| / |s|``, so an output that hardly
varies over the data (``r`` small against ``|s|``) magnifies its rounding. The
perturbation is injected here (``rounding.perturbed_outputs``: relative 1e-7 per
element and call, the size of float32 rounding), so the measured factor does not
depend on the CPU. ``r`` is floored at ``RELATIVE_FLOOR`` (1 %) of the output's
root-mean-square, so ``|s| / r ≲ 100`` for the logits; the normalised change
``|Φ(x̃) − s| / r`` sits near ``sqrt(rate)`` ≈ 0.3 at the optimum, and the largest
element is about twice the root-mean-square: amplification ≲ 2 · 100 / 0.3 ≈ 700
per step, and the bound ``AMPLIFICATION_BOUND = 2000`` leaves room for the sum over
steps. The invariance tests (test_explainer.py) allow this bound times the
rounding that padding actually causes on the machine running them. The analysis is
the logit / r's (``output="logit"``, rate 0.1); the default output, the
probability self-normalised at rate 1, is measured against the same bound.
"""

import dataclasses

import pytest
import torch
from linear_toy import linear_problem
from rounding import (
    AMPLIFICATION_BOUND,
    INJECTED,
    perturbed_outputs,
    relative_sigma_change,
)
from text_models import make_tokenizer

from captum_sigma.engine import SigmaOptions, solve_sigma
from captum_sigma.text import DEFAULT_TEXT_OPTIONS, TextExplainer

DATA = ["good film", "bad plot .", "the movie is great", "awful , not good !"]
TEXTS = ["unbelievably good film !", "bad", "the plot was not very good ."]


def amplification(explainer, module, texts):
    base = explainer.explain(texts)
    with perturbed_outputs(module):
        perturbed = explainer.explain(texts)
    change = max(
        relative_sigma_change(a.sigma, b.sigma) for a, b in zip(perturbed, base)
    )
    return change / INJECTED


#: Each explained output with its options: the logit / r at the paper's rate
#: (the analysis above, the previous default) and the default (probability,
#: self-normalised, DEFAULT_TEXT_OPTIONS).
OUTPUTS = {
    "logit": {"output": "logit", "options": SigmaOptions()},
    "probability": {"output": "probability", "options": DEFAULT_TEXT_OPTIONS},
}


@pytest.mark.parametrize("output", sorted(OUTPUTS))
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n_steps", [20, SigmaOptions.n_steps])
def test_tiny_bert_amplification_is_bounded(tiny_bert, threads, n_steps, output):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        explainer = TextExplainer(
            tiny_bert, make_tokenizer(), data=DATA, n_steps=n_steps, **OUTPUTS[output]
        )
        explainer.regularization()  # r from clean passes, before the injection
        factor = amplification(explainer, tiny_bert.classifier, TEXTS)
    finally:
        torch.set_num_threads(previous)
    # The random tiny BERT's probabilities hardly depend on the tokens (σ stays
    # near its cap): rounding of the logits may then not move σ at all.
    assert factor <= AMPLIFICATION_BOUND
    assert factor > 0 if output == "logit" else factor >= 0


@pytest.mark.parametrize("output", sorted(OUTPUTS))
def test_default_model_amplification_is_bounded(output):
    explainer = TextExplainer.default(**OUTPUTS[output])
    explainer.regularization()
    texts = ["rare bird has more than enough charm to make it memorable.", "dull."]
    factor = amplification(explainer, explainer.model.classifier, texts)
    assert 0 < factor <= AMPLIFICATION_BOUND


def test_linear_model_amplification_is_bounded():
    """method.md's toy: ``|s| / r`` is of order 1, so rounding is hardly amplified."""
    weights = torch.tensor([10.0, 20.0, 5.0, -20.0, -10.0])
    problem, _ = linear_problem(weights, length=2, dim=64)
    noise = torch.Generator().manual_seed(1)

    def perturbed_hidden(inputs, n_repeats):
        output = problem.hidden_fn(inputs, n_repeats)
        eta = torch.randn(output.shape, generator=noise)
        return output * (1 + INJECTED * eta)

    options = SigmaOptions(scale=1.0)
    base = solve_sigma(problem, options).sigma
    perturbed = solve_sigma(
        dataclasses.replace(problem, hidden_fn=perturbed_hidden), options
    ).sigma
    factor = float(((perturbed - base).abs() / base).max()) / INJECTED
    # issue #11 measured a factor of ~40 for the earlier Newton steps
    assert factor <= 20, factor
