"""Independent chains, their standard error and the tolerance-driven budget."""

from dataclasses import replace

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
    options = SigmaOptions(scale=1.0, chains=3, seed=5, tol=None)
    together = solve_sigma(problem, options)
    assert together.chain_sigma.shape == (3, 2, 5)
    for k in range(3):
        single = SigmaOptions(scale=1.0, chains=1, seed=chain_seed(5, k))
        alone = solve_sigma(problem, single)
        # a linear Φ amplifies rounding at most 20 x (tests/text/test_rounding.py);
        # the chains only change how many rows one einsum sees
        torch.testing.assert_close(
            together.chain_sigma[k], alone.sigma, rtol=20 * 2**-23, atol=0
        )
    assert chain_seed(5, 0) == 5 and len({chain_seed(5, k) for k in range(3)}) == 3


def test_sigma_pools_the_chains_rho_and_error_is_the_chains_spread():
    problem, _ = linear_problem(WEIGHTS, length=1, dim=8)
    result = solve_sigma(problem, SigmaOptions(scale=1.0, chains=4, tol=None))
    chain_scores = _scores(result.chain_sigma, 8)
    pooled = torch.sigmoid(torch.logit(result.chain_sigma).mean(0))
    torch.testing.assert_close(result.sigma, pooled)
    # the score is convex in ρ: the pooled score is below the mean of the chains'
    assert (_scores(result.sigma, 8) <= chain_scores.mean(0) + 1e-6).all()
    expected = chain_scores.std(0, unbiased=True) / 2
    torch.testing.assert_close(result.chain_standard_error(1.0), expected)
    # the reported error adds the drift over the second half in quadrature
    torch.testing.assert_close(
        result.standard_error(1.0), (expected**2 + result.drift**2).sqrt()
    )
    single = solve_sigma(problem, SigmaOptions(scale=1.0, chains=1))
    assert single.standard_error(1.0) is None  # no estimate from one chain
    assert single.drift is None


def test_drift_is_the_pooled_scores_change_over_the_second_half():
    """A run of t steps repeats the first t / 2 steps of a run of t (the same
    noise streams), so the drift is the difference of the two runs' scores. On a
    linear Φ the linearised start is the optimum (no drift); from a constant start
    the run moves."""
    problem, _ = linear_problem(WEIGHTS, length=2, dim=8, seed=3)
    linearised = SigmaOptions(scale=1.0, chains=4, tol=None, n_steps=20)
    start = solve_sigma(problem, linearised)
    # rounding only: each score (≤ its max) is a float32 log, a few ulps either way
    assert start.drift.abs().max() <= _rounding(start)
    options = replace(linearised, init="constant")
    full = solve_sigma(problem, options)
    half = solve_sigma(problem, replace(options, n_steps=10))
    expected = (_scores(full.sigma, 8) - _scores(half.sigma, 8)).abs()
    torch.testing.assert_close(full.drift, expected, rtol=0, atol=_rounding(full))
    assert bool((full.drift > 0).any())
    # with tol, each example's own half-way: the same as a fixed run of its steps
    stopping = replace(options, tol=0.01, n_steps=6, max_steps=200)
    run = solve_sigma(problem, stopping)
    for row in range(2):
        steps = int(run.steps[row])
        again = solve_sigma(problem, replace(stopping, tol=None, n_steps=steps // 2))
        expected = (_scores(run.sigma, 8) - _scores(again.sigma, 8))[row].abs()
        torch.testing.assert_close(
            run.drift[row], expected, rtol=0, atol=_rounding(run)
        )


def _rounding(result, dim=8):
    """A bound on float32 rounding in a difference of two scores computed two ways
    (``log sigmoid`` in the solver, ``log σ`` here): 4 ulps of the largest score."""
    return 4 * torch.finfo(torch.float32).eps * float(_scores(result.sigma, dim).max())


def test_intervals_cover_the_closed_form_optimum():
    """Calibration on a small case: for a linear Φ the converged value is known in
    closed form; the 95 % t-intervals of 4 chains cover it for >= 90 % of groups."""
    covered = total = 0
    quantile = stats.t.ppf(0.975, 3)
    for seed in range(12):
        problem, closed_form = linear_problem(WEIGHTS, length=2, dim=64, seed=seed)
        options = SigmaOptions(scale=1.0, chains=4, seed=seed, tol=None)
        result = solve_sigma(problem, options)
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


def _relative_error(result, dim=32):
    """Every group's chain standard error (what ``tol`` stops on) over the
    example's largest score."""
    top = _scores(result.sigma, dim).amax(1, keepdim=True)
    return result.chain_standard_error(1.0) / top


def test_tol_stops_each_example_when_its_errors_are_below_it():
    counting = _CountingLinear([1.0, 1.0, 1.0])
    options = SigmaOptions(scale=1.0, chains=4, tol=0.002, n_steps=10, max_steps=400)
    result = solve_sigma(counting.problem, options)
    relative = _relative_error(result)
    for row in range(3):
        steps = int(result.steps[row])
        assert 10 <= steps <= 400
        assert steps == 400 or bool((relative[row] <= 0.002).all())
    assert (result.steps > 10).all()  # the tolerance asked for more than n_steps
    expected = [options.passes_per_example(int(t)) for t in result.steps]
    assert result.passes.tolist() == expected


def test_finished_examples_stop_costing_and_do_not_change_the_others():
    """Batch = single example under tol: an example's steps, σ and error are its
    own, and an example that is done leaves the forward pass."""
    options = SigmaOptions(scale=1.0, chains=4, tol=0.003, n_steps=6, max_steps=300)
    counting = _CountingLinear([1.0])
    alone = solve_sigma(counting.problem, options)
    # a stricter tolerance needs more steps
    other = replace(options, tol=0.001)
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
    assert pair.rows_seen == 2 * (1 + warm + options.chains * steps)


def test_frozen_rows_without_restrict_are_no_longer_updated():
    options = SigmaOptions(scale=1.0, chains=4, tol=0.003, n_steps=6, max_steps=300)
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
    "kwargs",
    [
        dict(tol=0.1, chains=1),
        dict(tol=0.1, chains=2, optimizer="adam"),
        dict(tol=0.1, chains=2, selection="average"),
        dict(tol=None, chains=2),
    ],
)
def test_tol_takes_effect_only_where_it_can(kwargs):
    options = SigmaOptions(n_steps=5, **kwargs)
    assert not options.uses_tol and options.step_limit == 5
    problem, _ = linear_problem(WEIGHTS, length=1, dim=8)
    assert solve_sigma(problem, options).steps.tolist() == [5]


@pytest.mark.parametrize(
    "kwargs, message",
    [
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


def _scalar_linear_problem(dim=16, seed=0):
    """Φ(x) = Σ_i ⟨u_i, x_i⟩, a scalar: its Jacobian is exact and the change of one
    draw is all linear term."""
    generator = torch.Generator().manual_seed(seed)
    u = torch.randn(5, dim, generator=generator) * WEIGHTS.reshape(5, 1)
    x = torch.randn(2, 5, dim, generator=generator) / 100

    def hidden_fn(inputs, n_repeats):
        return torch.einsum("id,bid->b", u, inputs[0])

    groups = torch.arange(5).reshape(1, 5, 1).expand(2, 5, dim).clone()
    problem = SigmaProblem((x,), (groups,), 5, hidden_fn, torch.tensor(1.0))
    # E[loss] = Σ σ_i² ‖u_i‖² − (rate / n) Σ log σ_i: σ_i* = sqrt(rate / (2 n ‖u_i‖²))
    closed_form = (SigmaOptions().rate / (2 * 5 * (u**2).sum(1))).sqrt()
    return problem, closed_form


def test_control_variate_removes_the_noise_of_a_linear_scalar_output():
    """With Φ linear and scalar, the corrected loss equals its expectation for every
    draw: the chains agree and reach the closed form; without it they scatter."""
    problem, closed_form = _scalar_linear_problem()
    options = SigmaOptions(scale=1.0, chains=4, tol=None, n_steps=60)
    with_cv = solve_sigma(problem, options)
    assert (with_cv.sigma / closed_form - 1).abs().max() < 1e-3
    assert with_cv.standard_error(1.0).max() < 1e-3
    without = solve_sigma(problem, replace(options, control_variate=False))
    assert without.standard_error(1.0).max() > 100 * with_cv.standard_error(1.0).max()
    # one backward pass for the Jacobian replaces the warm start's probes
    assert with_cv.passes.tolist() == [1 + 4 * 60] * 2
    assert without.passes.tolist() == [4 * (4 + 60)] * 2


def test_control_variate_keeps_the_expected_loss_of_a_nonlinear_output():
    """Φ(x) = Σ tanh(⟨u_i, x_i⟩) at noise where tanh is far from linear: the
    corrected and plain runs estimate the same objective, so their long-run σ
    agree within their standard errors."""
    problem, _ = _scalar_linear_problem(dim=8, seed=1)
    linear = problem.hidden_fn
    nonlinear = SigmaProblem(
        problem.inputs,
        problem.groups,
        5,
        lambda inputs, n: torch.tanh(3 * linear(inputs, n)),
        torch.tensor(1.0),
    )
    options = SigmaOptions(scale=1.0, chains=8, tol=None, n_steps=400, n_samples=4)
    a = solve_sigma(nonlinear, options)
    b = solve_sigma(nonlinear, replace(options, control_variate=False))
    gap = (_scores(a.sigma, 8) - _scores(b.sigma, 8)).abs()
    bound = 4 * (a.standard_error(1.0) ** 2 + b.standard_error(1.0) ** 2).sqrt()
    assert (gap <= bound + 1e-3).all(), (gap, bound)
