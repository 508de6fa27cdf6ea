"""The sigma solver: initialisation, the optimisation loop, selection of the result.

Two optimisers, both on ``ρ`` with ``σ = scale · sigmoid(ρ)`` as in the reference:
``"newton"`` (the default: stochastic Newton steps with a per-group curvature in
closed form, see :func:`_newton_step`) and ``"adam"`` (the reference's). Batching is
exact for both: each update is element-wise and every example owns its parameters,
so one step on the *sum* of the per-example losses follows each example's own
trajectory. Each example keeps its own means, padding masks and selection state, and
the noise is shared across the batch (:mod:`captum_sigma.engine.noise`), so an
example's result does not depend on what else is in the batch.

This module is plain torch and knows nothing of Captum.
"""

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Hashable, List, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from captum_sigma.engine.noise import derive_seed, positional_normal
from captum_sigma.engine.options import SigmaOptions
from captum_sigma.engine.problem import SigmaProblem

# SigmaOptions is defined in captum_sigma.engine.options (no torch) and kept
# importable from here, where it lived before.
__all__ = ["SigmaOptions", "SigmaResult", "chain_seed", "solve_sigma"]

#: Upper bound of the warm start's ``σ / scale``: the closed form is clipped below the
#: cap so that ``ρ = logit(σ / scale)`` stays finite and can still move.
_WARM_START_MAX_FRACTION = 0.95
#: Warm start of a group whose linearised sensitivity is exactly 0 (the output does
#: not depend on it at the clean input): its closed-form ``σ`` is infinite, i.e. the
#: cap, which this approaches to a score of 1e-6 nats per element.
_IGNORED_START_FRACTION = 1.0 - 1e-6
#: Largest change of ``ρ`` in one Newton step (a trust region for rare huge draws).
_NEWTON_MAX_STEP = 1.0


def chain_seed(seed: int, chain: int) -> int:
    """The seed of chain ``chain`` of a run seeded ``seed`` (chain 0 keeps ``seed``).

    Chain ``k`` of ``SigmaOptions(seed=s, chains=K)`` is exactly the single-chain
    run ``SigmaOptions(seed=chain_seed(s, k))``.
    """
    return seed if chain == 0 else derive_seed(seed, "chain", chain)


@dataclass
class SigmaResult:
    """Solution of a :class:`SigmaProblem`.

    Attributes:
        sigma: ``(B, n_groups)`` noise scales (``σ`` of the chains' mean ``ρ``,
            see :func:`_pooled_sigma`); NaN for groups an example does not have
            (padding).
        group_sizes: ``(B, n_groups)`` number of input elements per group.
        loss_history: Mean loss over the examples still running after every step
            (for diagnostics).
        chain_sigma: ``(chains, B, n_groups)`` every chain's ``σ``.
        steps: ``(B,)`` optimisation steps each example took.
        passes: ``(B,)`` forward+backward passes of Φ each example cost (warm start
            and steps, all chains).
        drift: ``(B, n_groups)`` how far each group's pooled score (nats per group)
            moved over the second half of the example's steps (``|score after t
            steps − score after ⌊t / 2⌋|``), 0 for absent groups; None when the
            solver does not track it (see :func:`_tracks_drift`).
    """

    sigma: Tensor
    group_sizes: Tensor
    loss_history: List[float] = field(default_factory=list)
    chain_sigma: Optional[Tensor] = None
    steps: Optional[Tensor] = None
    passes: Optional[Tensor] = None
    drift: Optional[Tensor] = None

    def scores(self, scale: float) -> Tensor:
        """Per-element scores ``log(scale / σ)`` (nats, ≥ 0); 0 for absent groups."""
        score = torch.log(scale / self.sigma)
        return torch.nan_to_num(score, nan=0.0)

    def standard_error(self, scale: float) -> Optional[Tensor]:
        """Standard error of every group's score ``|g| · log(scale / σ_g)``.

        Two parts, added in quadrature, shape ``(B, n_groups)``, 0 for absent
        groups; None with a single chain (no estimate from the run itself):

        - the chains' sample standard deviation of the group score over
          ``sqrt(chains)``: the Monte-Carlo noise of the returned mean at this
          budget;
        - the :attr:`drift` over the second half of the run: the chains share
          their (deterministic, linearised) start and each is the running mean of
          its Newton targets, so all of them can still be on their way to the
          optimum together, which their spread does not see. How far their mean
          moved over the last half of the steps estimates the distance still to
          go (measured against long runs of the objective: ``docs/
          trust-study.md``).
        """
        error = self.chain_standard_error(scale)
        if error is None or self.drift is None:
            return error
        return torch.sqrt(error**2 + self.drift.to(error.dtype) ** 2)

    def chain_standard_error(self, scale: float) -> Optional[Tensor]:
        """The Monte-Carlo part of :meth:`standard_error`: the chains' sample
        standard deviation of every group's score over ``sqrt(chains)`` (what
        ``tol`` stops on), 0 for absent groups; None with a single chain."""
        if self.chain_sigma is None or self.chain_sigma.shape[0] < 2:
            return None
        return _chain_standard_error(self.chain_sigma, self.group_sizes, scale)


class _CleanPass(NamedTuple):
    """What the solver computes once, at the clean input, for every chain and step.

    The warm start (:func:`_initial_rho`) and the loss of every step
    (:class:`_Chains`) compare the perturbed outputs with these.

    Attributes:
        clean: ``s = Φ(x)``, detached, batch first.
        weights: Per output element ``1 / r²`` on counted elements and 0 on masked
            ones, broadcastable to ``clean``
            (:meth:`~captum_sigma.engine.problem.SigmaProblem.element_weights`).
        counts: ``(B,)`` counted output elements per example.
        sizes: ``(B, n_groups)`` input elements per group (0: the example does not
            have the group, i.e. padding).
        jacobian: Per input, the output's exact Jacobian at ``x``
            (:func:`_output_jacobian`) when the control variate is on; None
            otherwise.
    """

    clean: Tensor
    weights: Tensor
    counts: Tensor
    sizes: Tensor
    jacobian: Optional[Tuple[Tensor, ...]] = None

    @property
    def present(self) -> Tensor:
        """``(B, n_groups)`` whether each example has each group."""
        return self.sizes > 0


def _pooled_sigma(rho: Tensor, present: Tensor, scale: float) -> Tensor:
    """``σ`` of the chains' mean ``ρ`` (NaN for absent groups).

    Each chain's ``ρ`` is the mean of its Newton targets, so the chains' mean is
    the mean of all of them. The score ``−log sigmoid(ρ)`` is convex in ``ρ``: the
    mean of the chains' scores would overstate it by Jensen's gap
    ``½ f''(ρ) Var(ρ_k)``, the score of the mean ``ρ`` by a ``1 / chains`` of it
    (measured on held-out sentences against long runs: the mean error fell from
    +1.2 to +0.6 standard errors, ``docs/trust-study.md``).
    """
    sigma = scale * torch.sigmoid(rho.mean(0))
    return torch.where(present, sigma, torch.full_like(sigma, float("nan")))


def _chain_standard_error(chain_sigma: Tensor, sizes: Tensor, scale: float) -> Tensor:
    chain_scores = sizes.unsqueeze(0) * torch.log(scale / chain_sigma)
    spread = chain_scores.std(0, unbiased=True) / math.sqrt(chain_sigma.shape[0])
    return torch.nan_to_num(spread, nan=0.0)


def solve_sigma(
    problem: SigmaProblem,
    options: SigmaOptions,
    clean: Optional[Tensor] = None,
    on_step: Optional[Callable[[int], None]] = None,
) -> SigmaResult:
    """Optimises ``σ`` for every example of ``problem``.

    Every chain (``options.chains``) is one row block of the batch: chain ``k`` of
    example ``b`` is row ``k · B + b`` of one forward pass, with chain ``k``'s own
    noise. With ``options.tol`` an example leaves the batch once every group's
    standard error is at most ``tol`` (see :class:`SigmaOptions`); when
    ``problem.restrict`` is None it stays in the forward pass but is no longer
    updated.

    Args:
        problem: The batch of problems.
        options: Hyper-parameters.
        clean: ``s = Φ(x)`` when the caller has already computed it; computed once
            here otherwise.
        on_step: Called after every optimisation step with the number of examples
            that took it (e.g. to advance a progress bar).

    Returns:
        The selected ``σ`` per example and group, with every chain's ``σ``, the
        steps taken and the passes spent per example.
    """
    sizes = problem.group_sizes()
    present = sizes > 0
    if clean is None:
        with torch.no_grad():
            clean = problem.hidden_fn(problem.inputs, 1)
    clean = clean.detach()
    seeds = [chain_seed(options.seed, k) for k in range(options.chains)]
    weights, counts = problem.element_weights(clean)
    n_outputs = clean[0].numel() if clean.dim() > 1 else 1
    jacobian = None
    if options.uses_control_variate(n_outputs):
        jacobian = _output_jacobian(problem, n_outputs)
    clean_pass = _CleanPass(clean, weights, counts, sizes, jacobian)
    rho = torch.stack(
        [_initial_rho(problem, replace(options, seed=s), clean_pass) for s in seeds]
    )  # (chains, B, G)
    rho, history, steps, halfway = _optimise(
        problem, options, seeds, rho, clean_pass, on_step
    )
    chain_sigma = options.scale * torch.sigmoid(rho)
    nan = torch.full_like(chain_sigma, float("nan"))
    chain_sigma = torch.where(present.unsqueeze(0), chain_sigma, nan)
    sigma = _pooled_sigma(rho, present, options.scale)
    cv_outputs = n_outputs if jacobian is not None else None
    passes = torch.tensor(
        [options.passes_per_example(int(t), cv_outputs) for t in steps.tolist()]
    )
    return SigmaResult(
        sigma=sigma,
        group_sizes=sizes,
        loss_history=torch.stack(history).tolist() if history else [],
        chain_sigma=chain_sigma,
        steps=steps,
        passes=passes,
        drift=None if halfway is None else _drift(rho, halfway, sizes),
    )


def _tracks_drift(options: SigmaOptions) -> bool:
    """Whether the solver records the drift: Newton steps (each chain the running
    mean of its targets), the last iterate returned, and two or more chains (a
    standard error to add it to)."""
    return (
        options.optimizer == "newton"
        and options.selection == "final"
        and options.chains >= 2
    )


def _drift(rho: Tensor, halfway: Tensor, sizes: Tensor) -> Tensor:
    """``|g| · |log sigmoid(ρ̄) − log sigmoid(ρ̄_half)|``: the change of each group's
    pooled score (the score of the chains' mean ``ρ``) over the second half of the
    run, nats per group, 0 for absent groups."""
    final = torch.nn.functional.logsigmoid(rho.mean(0))
    half = torch.nn.functional.logsigmoid(halfway)
    return torch.where(sizes > 0, sizes * (final - half).abs(), torch.zeros_like(half))


def _halfway(trail: List[Tensor], steps: Tensor) -> Tensor:
    """Each example's chains' mean ``ρ`` after ``⌊t / 2⌋`` of its ``t`` steps (after
    the first step when ``t < 2``), from the per-step means in ``trail``."""
    stacked = torch.stack(trail)  # (steps, B, G)
    index = (steps // 2 - 1).clamp_min(0).to(stacked.device)
    return stacked[index, torch.arange(stacked.shape[1], device=stacked.device)]


class _Chains:
    """The problem of some examples with every chain as a block of rows.

    Row ``k · n + i`` is chain ``k`` of example ``rows[i]``: what ``hidden_fn``
    computes for ``n_repeats`` copies of a batch of ``n`` examples, asked for
    ``n_repeats · chains`` copies.
    """

    def __init__(
        self,
        problem: SigmaProblem,
        rows: Tensor,
        clean_pass: _CleanPass,
        seeds: List[int],
    ) -> None:
        whole = rows.numel() == problem.batch_size
        sub = problem if whole else problem.select(rows)
        n_chains = len(seeds)
        self.rows = rows
        self.seeds = seeds
        self.problem = SigmaProblem(
            inputs=tuple(torch.cat([x] * n_chains) for x in sub.inputs),
            groups=tuple(torch.cat([g] * n_chains) for g in sub.groups),
            n_groups=sub.n_groups,
            hidden_fn=lambda x, n: sub.hidden_fn(x, n * n_chains),
            regularization=sub.regularization,
            output_mask=(
                None
                if sub.output_mask is None
                else torch.cat([sub.output_mask] * n_chains)
            ),
        )
        self.present = self.problem.group_sizes() > 0
        self.clean = torch.cat([clean_pass.clean[rows]] * n_chains)
        self.weights = torch.cat([clean_pass.weights[rows]] * n_chains)
        self.counts = torch.cat([clean_pass.counts[rows]] * n_chains)
        self.jacobian = None
        if clean_pass.jacobian is not None:
            self.jacobian = tuple(
                torch.cat([j[rows]] * n_chains) for j in clean_pass.jacobian
            )

    def noise(self, options: SigmaOptions, step: Hashable) -> Tuple[Tensor, ...]:
        """Chain ``k``'s draws for all its rows: ``(S, chains · n, d1, ...)``."""
        per_chain = [
            _draw_noise(self.problem, replace(options, seed=s), step)
            for s in self.seeds
        ]
        n = self.rows.numel()
        noise = []
        for draws in zip(*per_chain):
            stacked = torch.stack(draws, 1)  # (S, chains, 1, d1, ...)
            shape = (stacked.shape[0], stacked.shape[1], n, *stacked.shape[3:])
            noise.append(stacked.expand(shape).flatten(1, 2))
        return tuple(noise)

    def losses(self, options: SigmaOptions, rho: Tensor, step: int) -> Tensor:
        """Per row (chain-major) loss of one step at ``rho`` ``(chains · n, G)``."""
        present = self.present
        sigma = options.scale * torch.sigmoid(rho)
        log_fraction = torch.nn.functional.logsigmoid(rho)
        noise = self.noise(options, step)
        perturbed = self.problem.perturb(sigma, noise)
        hidden = self.problem.hidden_fn(perturbed, options.n_samples)
        distortion = _weighted_distortion(
            hidden, self.clean, self.weights, self.counts, options.n_samples
        )
        if self.jacobian is not None:
            distortion = distortion + self._linear_correction(sigma, noise)
        entropy = (log_fraction * present).sum(1) / present.sum(1).clamp_min(1)
        return distortion - options.rate * entropy

    def _linear_correction(self, sigma: Tensor, noise: Tuple[Tensor, ...]) -> Tensor:
        """``E[lin²] − mean over draws of lin²`` per row, weighted like the loss.

        ``lin = Σ_g σ_g ⟨J_g, ε_g⟩`` per output element, the linear part of the
        change; its expectation ``Σ_g σ_g² ‖J_g‖²`` is exact for Gaussian noise,
        so the corrected loss has the same expectation and the linear cross terms
        of one draw cancel.
        """
        assert self.jacobian is not None
        rows = self.clean.shape[0]
        linear = 0.0
        expected = 0.0
        for jac, eps, element_sigma in zip(
            self.jacobian, noise, self.problem.element_sigma(sigma)
        ):
            scaled = (element_sigma.unsqueeze(0) * eps).reshape(
                eps.shape[0], rows, 1, -1
            )  # (S, R, 1, E)
            flat = jac.reshape(rows, jac.shape[1], -1)  # (R, M, E)
            linear = linear + (flat.unsqueeze(0) * scaled).sum(-1)  # (S, R, M)
            variance = element_sigma.reshape(rows, 1, -1) ** 2
            expected = expected + (flat**2 * variance).sum(-1)  # (R, M)
        weights = self.weights.reshape(rows, -1)  # weights have the output's shape
        correction = (weights * (expected - (linear**2).mean(0))).sum(1)
        return correction / self.counts.clamp_min(1)


def _output_jacobian(problem: SigmaProblem, n_outputs: int) -> Tuple[Tensor, ...]:
    """``∂Φ_m / ∂x`` at the clean input for every output element ``m``.

    One forward pass with gradients and one backward pass per element; rows of the
    batch are independent, so the batch sum's gradient is every row's own.

    Returns:
        Per input, a float32 tensor ``(B, n_outputs, d1, ...)``.
    """
    points = tuple(inp.detach().requires_grad_(True) for inp in problem.inputs)
    hidden = problem.hidden_fn(points, 1).to(torch.float32)
    hidden = hidden.reshape(problem.batch_size, n_outputs)
    columns: List[List[Tensor]] = [[] for _ in points]
    for m in range(n_outputs):
        if hidden.requires_grad:
            grads = torch.autograd.grad(
                hidden[:, m].sum(),
                points,
                retain_graph=m + 1 < n_outputs,
                allow_unused=True,
            )
        else:  # Φ does not depend on the inputs at all
            grads = (None,) * len(points)
        for column, grad, point in zip(columns, grads, points):
            column.append(
                torch.zeros_like(point, dtype=torch.float32)
                if grad is None
                else grad.detach().to(torch.float32)
            )
    return tuple(torch.stack(column, 1) for column in columns)


def _optimise(
    problem: SigmaProblem,
    options: SigmaOptions,
    seeds: List[int],
    rho: Tensor,
    clean_pass: _CleanPass,
    on_step: Optional[Callable[[int], None]],
) -> Tuple[Tensor, List[Tensor], Tensor, Optional[Tensor]]:
    """The optimisation loop over every chain of every running example.

    ``running`` are the examples still stepping; ``members`` those in the forward
    pass (the same, unless ``problem.restrict`` is None and some are done).
    Returns the final ``ρ``, the loss history, the steps per example and, when
    :func:`_tracks_drift`, the chains' mean ``ρ`` half-way (:func:`_halfway`).
    """
    n_chains, batch, n_groups = rho.shape
    sizes = clean_pass.sizes
    n_present = clean_pass.present.sum(1, keepdim=True).clamp_min(1)
    steps = torch.zeros(batch, dtype=torch.long)
    running = members = torch.arange(batch, device=rho.device)
    chains = _Chains(problem, members, clean_pass, seeds)
    param = rho.flatten(0, 1).clone().requires_grad_(True)
    adam = (
        torch.optim.Adam([param], lr=options.lr)
        if options.optimizer == "adam"
        else None
    )
    tracker = _Selection(options, param.detach())
    history: List[Tensor] = []  # kept on the device: no host sync per step
    trail: Optional[List[Tensor]] = [] if _tracks_drift(options) else None
    for step in range(options.step_limit):
        leaf = param if adam is not None else _rows_leaf(rho, members)
        losses = chains.losses(options, leaf, step)
        (grad,) = torch.autograd.grad(losses.sum(), [leaf])
        if adam is not None:  # tol has no effect with Adam: every row always runs
            adam.zero_grad(set_to_none=True)
            param.grad = grad
            adam.step()
            param.grad = None
            rho = param.detach().reshape(n_chains, batch, n_groups)
        else:
            updated = leaf.detach().clone()
            scale = n_present[members].repeat(n_chains, 1)
            _newton_step(updated, grad, options, scale, step)
            block = rho[:, members]
            keep = torch.isin(members, running)
            block[:, keep] = updated.reshape(n_chains, -1, n_groups)[:, keep]
            rho[:, members] = block
        steps[running.cpu()] += 1
        history.append(losses.detach().mean())
        if trail is not None:  # the chains' mean ρ after every step, on the device
            trail.append(rho.mean(0))
        if on_step is not None:
            on_step(running.numel())
        if not options.uses_tol:
            tracker.update(step, rho.flatten(0, 1), losses.detach())
            continue
        if step + 1 < options.n_steps:
            continue
        done = _converged(rho[:, running], sizes[running], options)
        if bool(done.all()):
            break
        if bool(done.any()):
            running = running[~done]
            if problem.restrict is not None:  # finished examples stop costing
                members = running
                chains = _Chains(problem, members, clean_pass, seeds)
    if not options.uses_tol:
        rho = tracker.result().reshape(n_chains, batch, n_groups)
    halfway = None if not trail else _halfway(trail, steps)
    return rho, history, steps, halfway


def _rows_leaf(rho: Tensor, rows: Tensor) -> Tensor:
    """``rho`` of ``rows`` for every chain, chain-major, as a fresh leaf."""
    return rho[:, rows].flatten(0, 1).detach().requires_grad_(True)


def _converged(rho: Tensor, sizes: Tensor, options: SigmaOptions) -> Tensor:
    """Which examples have every present group's standard error at most ``tol``."""
    chain_sigma = options.scale * torch.sigmoid(rho)
    error = _chain_standard_error(chain_sigma, sizes, options.scale)
    pooled = options.scale * torch.sigmoid(rho.mean(0))
    top = (sizes * torch.log(options.scale / pooled)).amax(1, keepdim=True)
    assert options.tol is not None
    return ((error <= options.tol * top) | (sizes == 0)).all(1)


@torch.no_grad()
def _newton_step(
    rho: Tensor, grad: Tensor, options: SigmaOptions, n_present: Tensor, step: int
) -> None:
    """One stochastic Newton step on ``ρ``, in place.

    Each group has one scalar parameter. With ``p = σ / scale = sigmoid(ρ)`` the
    small-noise linearisation ``Σ_g A_g σ_g² − (rate / n) Σ_g log σ_g`` has the
    second derivative ``2 A_g σ_g² (1 − p)(2 − 3p) + (rate / n) p (1 − p)`` in
    ``ρ_g``. At its optimum ``2 A_g σ_g² = rate / n`` for every ``g``, which gives
    ``2 · rate / n · (1 − p)²`` whatever ``A_g``; for a group the output ignores
    (``A_g = 0``) only the entropy term's ``rate / n · p (1 − p)`` is left. The step
    divides the stochastic gradient by the larger of the two, ``rate / n · (1 − p)
    · max(2 (1 − p), p)``: near the optimum the problem becomes isotropic, and an
    ignored group, whose gradient ``−rate / n · (1 − p)`` shrinks as σ nears the
    cap, still moves ``ρ`` by ``1 / p`` per full step, so its score keeps falling
    (``1 − p`` by a factor ``e`` per unit of ``ρ``) instead of stalling at a floor,
    as it did with a curvature floored at ``(1 − p)² ≥ 1/4`` (0.038 nats per
    element). The ``lr / (1 + lr · t)`` steps (Robbins–Monro) average the noisy
    Newton targets instead of following Adam's sign-like steps. Near the cap a step
    in ``ρ`` moves ``log σ`` by only ``(1 − p)`` of it, which keeps the groups that
    the noise alone pushes around there close to where they are.
    """
    fraction = torch.sigmoid(rho)
    complement = 1 - fraction
    curvature = (
        options.rate / n_present * complement * torch.maximum(2 * complement, fraction)
    )
    size = options.lr / (1 + options.lr * step)
    update = size * grad / curvature.clamp_min(torch.finfo(curvature.dtype).tiny)
    rho.sub_(update.clamp(-_NEWTON_MAX_STEP, _NEWTON_MAX_STEP))


def _weighted_distortion(
    hidden: Tensor, clean: Tensor, weights: Tensor, counts: Tensor, n_samples: int
) -> Tensor:
    """Mean over samples and counted elements of ``(Φ(x̃) − s)² / r²`` per example."""
    batch = clean.shape[0]
    if hidden.shape != (n_samples * batch, *clean.shape[1:]):
        raise RuntimeError(
            f"the forward function returned shape {tuple(hidden.shape)} for perturbed "
            f"inputs, expected {(n_samples * batch, *clean.shape[1:])}"
        )
    change = hidden.to(torch.float32).reshape(n_samples, *clean.shape) - clean.to(
        torch.float32
    )
    weighted = (change**2 * weights.unsqueeze(0)).reshape(n_samples, batch, -1)
    return weighted.sum(2).mean(0) / counts.clamp_min(1)


def _draw_noise(
    problem: SigmaProblem,
    options: SigmaOptions,
    step: Hashable,
    n_draws: Optional[int] = None,
) -> Tuple[Tensor, ...]:
    """Standard normals per input, shape ``(S, 1, d1, ...)``, shared by all examples."""
    n_draws = options.n_samples if n_draws is None else n_draws
    antithetic = options.antithetic and n_draws % 2 == 0
    n_independent = n_draws // 2 if antithetic else n_draws
    noise = []
    for index, inp in enumerate(problem.inputs):
        positions, rest = inp.shape[1], tuple(inp.shape[2:])
        eps = positional_normal(
            (options.seed, "noise", index, step),
            positions,
            (n_independent, *rest),
            device=inp.device,
        )
        eps = eps.movedim(1, 0)
        if antithetic:
            eps = torch.cat([eps, -eps])
        noise.append(eps.unsqueeze(1))
    return tuple(noise)


def _initial_rho(
    problem: SigmaProblem, options: SigmaOptions, clean_pass: _CleanPass
) -> Tensor:
    shape = (problem.batch_size, problem.n_groups)
    device = problem.device
    if options.init == "constant":  # σ = scale / 2
        return torch.zeros(shape, device=device)
    if options.init == "random":  # ρ ~ N(0, 1), the reference's
        draw = positional_normal((options.seed, "init"), problem.n_groups, (), device)
        return draw.unsqueeze(0).expand(shape).clone()
    fraction = _linearized_fraction(problem, options, clean_pass)
    # float64: logit(1 - 1e-6) is not representable through float32's 1 - p
    return torch.logit(fraction.double()).to(fraction.dtype).detach()


def _linearized_fraction(
    problem: SigmaProblem, options: SigmaOptions, clean_pass: _CleanPass
) -> Tensor:
    """Closed-form optimum of the linearised loss, as the fraction ``σ / scale``.

    For small noise ``E‖(Φ(x̃) − s)/r‖² ≈ Σ_g σ_g² a_g`` with ``a_g = ‖J_g / r‖²_F``.
    Minimising ``Σ_g σ_g² a_g / M − (rate / n) Σ_g log σ_g`` gives
    ``σ_g² = rate · M / (2 n a_g)``, clipped below the cap (a group with
    ``a_g = 0`` starts next to it). The first round takes the Jacobian at the clean
    input; each further round takes it at noisy points ``x + σ ε`` of the current
    ``σ`` (a statistical linearisation: the noise the objective actually applies),
    which removes most of the first round's bias when the noise is not small.
    With the output's exact Jacobian (``clean_pass.jacobian``) the first round's
    ``a_g`` is exact.
    """
    clean, weights, counts = clean_pass.clean, clean_pass.weights, clean_pass.counts
    n_present = clean_pass.present.sum(1, keepdim=True).clamp_min(1)
    sigma: Optional[Tensor] = None
    fraction: Optional[Tensor] = None
    for round_index in range(options.warm_start_rounds):
        if round_index == 0 and clean_pass.jacobian is not None:
            sensitivity = _exact_sensitivity(problem, weights, clean_pass.jacobian)
        else:
            sensitivity = _jacobian_sensitivity(
                problem, options, clean, weights, sigma, round_index
            )
        sigma_squared = (
            options.rate * counts.unsqueeze(1) / (2 * n_present * sensitivity)
        )
        fraction = (sigma_squared.sqrt() / options.scale).clamp(
            1e-6, _WARM_START_MAX_FRACTION
        )
        fraction = torch.where(
            sensitivity == 0,
            torch.full_like(fraction, _IGNORED_START_FRACTION),
            fraction,
        )
        sigma = options.scale * fraction
    assert fraction is not None
    return fraction.detach()


def _exact_sensitivity(
    problem: SigmaProblem, weights: Tensor, jacobian: Tuple[Tensor, ...]
) -> Tensor:
    """``a_g = ‖J_g / r‖²_F`` per example and group from the exact Jacobian."""
    batch = problem.batch_size
    per_output = weights.reshape(batch, -1)  # weights have the output's shape
    sensitivity = torch.zeros(batch, problem.n_groups + 1, device=problem.device)
    for jac, group in zip(jacobian, problem.groups):
        n_outputs = jac.shape[1]
        squared = jac.reshape(batch, n_outputs, -1) ** 2
        weighted = (per_output.reshape(batch, -1, 1) * squared).sum(1)
        sensitivity.scatter_add_(1, group.reshape(batch, -1) + 1, weighted)
    return sensitivity[:, 1:]


def _jacobian_sensitivity(
    problem: SigmaProblem,
    options: SigmaOptions,
    clean: Tensor,
    weights: Tensor,
    sigma: Optional[Tensor],
    round_index: int,
) -> Tensor:
    """Hutchinson estimate of ``a_g = ‖J_g / r‖²_F`` per example and group.

    ``a_g`` is the mean over ``K`` Rademacher output directions ``v`` of
    ``‖∂⟨v, Φ(x)·w⟩/∂x_g‖²`` (``w = 1/r`` on counted elements), evaluated at the
    clean input (``sigma=None``) or at one noisy point per direction.
    """
    n_probes = options.warm_start_probes
    if sigma is None:
        points = tuple(torch.cat([inp] * n_probes) for inp in problem.inputs)
    else:
        noise = _draw_noise(problem, options, ("warm", round_index), n_probes)
        with torch.no_grad():
            points = problem.perturb(sigma, noise)
    points = tuple(point.detach().requires_grad_(True) for point in points)
    hidden = problem.hidden_fn(points, n_probes).to(torch.float32)
    probe = positional_normal(
        (options.seed, "probe", round_index),
        clean.shape[1] if clean.dim() > 1 else 1,
        (n_probes, *clean.shape[2:]),
        device=clean.device,
    ).movedim(1, 0)
    # Rademacher directions: a lower-variance trace estimate than Gaussian ones
    probe = torch.sign(probe).reshape(n_probes, 1, *clean.shape[1:])
    root_weights = weights.sqrt().unsqueeze(0)
    projection = (hidden.reshape(n_probes, *clean.shape) * root_weights * probe).sum()
    if projection.requires_grad:
        grads = torch.autograd.grad(projection, points, allow_unused=True)
    else:  # Φ does not depend on the inputs at all
        grads = (None,) * len(points)
    sensitivity = torch.zeros(
        problem.batch_size, problem.n_groups + 1, device=clean.device
    )
    for grad, group in zip(grads, problem.groups):
        if grad is None:
            continue
        squared = grad.to(torch.float32).reshape(n_probes, *group.shape) ** 2
        squared = squared.mean(0).reshape(problem.batch_size, -1)
        sensitivity.scatter_add_(1, group.reshape(problem.batch_size, -1) + 1, squared)
    return sensitivity[:, 1:]


class _Selection:
    """Tracks the iterate ``ρ`` to return, per example, under the chosen rule."""

    def __init__(self, options: SigmaOptions, rho: Tensor) -> None:
        self.rule = options.selection
        self.first_averaged = options.n_steps // 2
        self.current = rho.clone()
        self.total = torch.zeros_like(rho)
        self.n_averaged = 0
        self.best = rho.clone()
        self.best_loss = torch.full(
            rho.shape[:1], float("inf"), device=rho.device, dtype=torch.float32
        )

    def update(self, step: int, rho: Tensor, losses: Tensor) -> None:
        self.current = rho  # the live iterate: "final" returns its last value
        if self.rule == "average" and step >= self.first_averaged:
            self.total += rho
            self.n_averaged += 1
        elif self.rule == "best_loss":
            improved = losses < self.best_loss
            self.best_loss = torch.where(improved, losses, self.best_loss)
            self.best = torch.where(improved.unsqueeze(1), rho, self.best)

    def result(self) -> Tensor:
        if self.rule == "average" and self.n_averaged:
            return self.total / self.n_averaged
        if self.rule == "best_loss":
            return self.best
        return self.current
