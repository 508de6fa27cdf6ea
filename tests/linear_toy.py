"""method.md's linear toy: Φ(x) = Σ_i w_i x_i, whose optimal σ has a closed form."""

import torch

from captum_sigma.engine import SigmaOptions, SigmaProblem


def linear_problem(weights, length, dim, seed=0, n_data=100, rate=None):
    """Φ(x) = Σ_i w_i x_i with x = randn / 100 and r from 100 such random x.

    The closed form is for ``rate`` (default: ``SigmaOptions().rate``, what
    options built without a rate use)."""
    rate = SigmaOptions().rate if rate is None else rate
    generator = torch.Generator().manual_seed(seed)
    n_words = weights.numel()
    x = torch.randn(length, n_words, dim, generator=generator) / 100
    data = torch.randn(n_data, n_words, dim, generator=generator) / 100
    r = torch.einsum("i,bid->bd", weights, data).std(0, unbiased=False)

    def hidden_fn(inputs, n_repeats):
        return torch.einsum("i,bid->bd", weights, inputs[0])

    groups = torch.arange(n_words).reshape(1, n_words, 1).expand(length, n_words, dim)
    problem = SigmaProblem((x,), (groups.clone(),), n_words, hidden_fn, r)
    closed_form = (rate / (2 * n_words * (r**-2).mean())).sqrt() / weights.abs()
    return problem, closed_form
