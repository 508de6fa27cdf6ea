"""Independent chains, their standard error and the tolerance-driven budget."""

import pytest
import torch
from linear_toy import linear_problem
from scipy import stats

from captum_sigma.engine import SigmaOptions, SigmaProblem, chain_seed, solve_sigma

WEIGHTS = torch.tensor([10.0, 20.0, 5.0, -20.0, -10.0])


def _scores(sigma, dim, scale=1.0):
    return dim * torch.log(scale / sigma)


def test_chain_k_is_the_single_chain_run_with_its_seed():
    """Chains are independent runs: chain k equals the run seeded chain_seed(s, k)."""
    problem, _ = linear_problem(WEIGHTS, length=2, dim=16)
    together = solve_sigma(problem, SigmaOptions(scale=1.0, chains=3, seed=5))
    assert together.chain_sigma.shape == (3, 2, 5)
    for k in range(3):
        alone = solve_sigma(problem, SigmaOptions(scale=1.0, seed=chain_seed(5, k)))
        # a linear Φ amplifies rounding at most 20 x (tests/text/test_rounding.py);
        # the chains only change how many rows one einsum sees
        torch.testing.assert_close(
            together.chain_sigma[k], alone.sigma, rtol=20 * 2**-23, atol=0
        )
    assert chain_seed(5, 0) == 5 and len({chain_seed(5, k) for k in range(3)}) == 3


def test_mean_is_the_geometric_mean_and_error_the_chains_spread():
    problem, _ = linear_problem(WEIGHTS, length=1, dim=8)
    result = solve_sigma(problem, SigmaOptions(scale=1.0, chains=4))
    chain_scores = _scores(result.chain_sigma, 8)
    torch.testing.assert_close(_scores(result.sigma, 8), chain_scores.mean(0))
    expected = chain_scores.std(0, unbiased=True) / 2
    torch.testing.assert_close(result.standard_error(1.0), expected)
    single = solve_sigma(problem, SigmaOptions(scale=1.0))
    assert single.standard_error(1.0) is None  # no estimate from one chain


def test_intervals_cover_the_closed_form_optimum():
    """Calibration on a small case: for a linear Φ the converged value is known in
    closed form; the 95 % t-intervals of 4 chains cover it for >= 90 % of groups."""
    covered = total = 0
    quantile = stats.t.ppf(0.975, 3)
    for seed in range(12):
        problem, closed_form = linear_problem(WEIGHTS, length=2, dim=64, seed=seed)
        result = solve_sigma(problem, SigmaOptions(scale=1.0, chains=4, seed=seed))
        error = result.standard_error(1.0)
        miss = (_scores(result.sigma, 64) - _scores(closed_form, 64)).abs()
        covered += int((miss <= quantile * error).sum())
        total += miss.numel()
    assert covered / total >= 0.90, covered / total


class _CountingLinear:
    """A linear Φ whose problem can shrink to some rows; counts the rows it sees."""

    def __init__(self, scales):
        self.rows_seen = 0
        problem, self.closed_form = linear_problem(WEIGHTS, length=1, dim=32)
        # rows differ in size, so they need different budgets for the same tol
        x = problem.inputs[0].expand(len(scales), -1, -1) * torch.tensor(
            scales
        ).reshape(-1, 1, 1)
        groups = problem.groups[0].expand(len(scales), -1, -1).clone()
        self.problem = SigmaProblem(
            (x.clone(),),
            (groups,),
            5,
            self.hidden,
            problem.regularization,
            restrict=lambda rows: self.hidden,
        )

    def hidden(self, inputs, n_repeats):
        self.rows_seen += inputs[0].shape[0]
        return torch.einsum("i,bid->bd", WEIGHTS, inputs[0])


def test_tol_stops_each_example_when_its_errors_are_below_it():
    counting = _CountingLinear([1.0, 1.0, 1.0])
    options = SigmaOptions(scale=1.0, chains=4, tol=0.15, n_steps=10, max_steps=400)
    result = solve_sigma(counting.problem, options)
    error = result.standard_error(1.0)
    for row in range(3):
        steps = int(result.steps[row])
        assert 10 <= steps <= 400
        assert steps == 400 or bool((error[row] <= 0.15).all())
    assert (result.steps > 10).all()  # the tolerance asked for more than n_steps
    expected = [options.passes_per_example(int(t)) for t in result.steps]
    assert result.passes.tolist() == expected


def test_finished_examples_stop_costing_and_do_not_change_the_others():
    """Batch = single example under tol: an example's steps, σ and error are its
    own, and an example that is done leaves the forward pass."""
    options = SigmaOptions(scale=1.0, chains=4, tol=0.3, n_steps=6, max_steps=300)
    counting = _CountingLinear([1.0])
    alone = solve_sigma(counting.problem, options)
    # a long-running neighbour: its own tol (0.3) is met later
    other = SigmaOptions(scale=1.0, chains=4, tol=0.1, n_steps=6, max_steps=300)
    slow = solve_sigma(_CountingLinear([1.0]).problem, other)
    assert int(slow.steps[0]) > int(alone.steps[0])
    # the same row twice: identical problems stop at the same step; forward rows
    # counted = chains x draws x steps of each example, nothing after it stopped
    pair = _CountingLinear([1.0, 1.0])
    both = solve_sigma(pair.problem, options)
    assert both.steps.tolist() == [int(alone.steps[0])] * 2
    torch.testing.assert_close(both.sigma[0], alone.sigma[0], rtol=20 * 2**-23, atol=0)
    steps = int(alone.steps[0])
    warm = options.warm_start_probes * options.chains
    assert pair.rows_seen == 2 * (1 + warm + options.chains * 2 * steps)


def test_frozen_rows_without_restrict_are_no_longer_updated():
    options = SigmaOptions(scale=1.0, chains=4, tol=0.3, n_steps=6, max_steps=300)
    problem, _ = linear_problem(WEIGHTS, length=2, dim=32)
    with_restrict = SigmaProblem(
        problem.inputs,
        problem.groups,
        problem.n_groups,
        problem.hidden_fn,
        problem.regularization,
        restrict=lambda rows: problem.hidden_fn,
    )
    frozen = solve_sigma(problem, options)
    shrunk = solve_sigma(with_restrict, options)
    assert frozen.steps.tolist() == shrunk.steps.tolist()
    torch.testing.assert_close(frozen.sigma, shrunk.sigma, rtol=20 * 2**-23, atol=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(tol=0.1), "chains >= 2"),
        (dict(tol=0.1, chains=2, optimizer="adam"), "optimizer='newton'"),
        (dict(tol=0.1, chains=2, selection="average"), "selection='final'"),
        (dict(tol=-1.0, chains=2), "tol must be positive"),
        (dict(chains=0), "chains must be positive"),
        (dict(max_steps=3), "at least n_steps"),
    ],
)
def test_budget_options_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SigmaOptions(**kwargs)


def test_adam_and_average_selection_run_with_chains():
    problem, closed_form = linear_problem(WEIGHTS, length=1, dim=64)
    options = SigmaOptions(
        scale=1.0,
        chains=2,
        optimizer="adam",
        lr=0.05,
        selection="average",
        n_steps=200,
        n_samples=4,
    )
    result = solve_sigma(problem, options)
    assert (result.sigma / closed_form - 1).abs().max() < 0.10
    assert result.steps.tolist() == [200]
