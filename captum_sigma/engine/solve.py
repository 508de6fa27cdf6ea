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
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Hashable, List, Optional, Tuple

import torch
from torch import Tensor

from captum_sigma.engine.noise import positional_normal
from captum_sigma.engine.problem import SigmaProblem

__all__ = [
    "SigmaOptions",
    "SigmaResult",
    "REFERENCE_OPTIONS",
    "SELECTIONS",
    "INITS",
    "OPTIMIZERS",
    "solve_sigma",
]

SELECTIONS = ("average", "final", "best_loss")
INITS = ("linearized", "constant", "random")
OPTIMIZERS = ("newton", "adam")

#: Upper bound of the warm start's ``σ / scale``: the closed form is clipped below the
#: cap so that ``ρ = logit(σ / scale)`` stays finite and can still move.
_WARM_START_MAX_FRACTION = 0.95
#: Warm start of a group whose linearised sensitivity is exactly 0 (the output does
#: not depend on it at the clean input): its closed-form ``σ`` is infinite, i.e. the
#: cap, which this approaches to a score of 1e-6 nats per element.
_IGNORED_START_FRACTION = 1.0 - 1e-6
#: Largest change of ``ρ`` in one Newton step (a trust region for rare huge draws).
_NEWTON_MAX_STEP = 1.0


@dataclass(frozen=True)
class SigmaOptions:
    """Hyper-parameters of the sigma optimisation.

    Attributes:
        n_steps: Optimisation steps (each takes ``n_samples`` forward+backward
            passes).
        lr: With ``optimizer="newton"`` the first step's fraction of the Newton step;
            step ``t`` takes ``lr / (1 + lr · t)`` of it (so ``lr=0.5`` averages the
            warm start with the ``t + 1`` noisy Newton targets seen so far). With
            ``optimizer="adam"`` Adam's learning rate (torch defaults otherwise, as
            in the reference).
        n_samples: Noise draws per step (the expectation is a mean over them).
        scale: Upper bound of ``σ`` (``σ = scale · sigmoid(ρ)``).
        rate: Weight of the entropy term.
        seed: Seed of every random stream (initialisation, noise, warm start).
        selection: ``"average"`` (mean of ``ρ`` over the second half of the
            iterates), ``"final"`` (last iterate) or ``"best_loss"`` (the reference:
            the parameters after the step whose single-sample loss was lowest).
        init: ``"linearized"`` (closed-form optimum of the small-noise linearisation
            of the loss, from ``warm_start_probes`` vector-Jacobian products),
            ``"constant"`` (``σ = scale / 2``) or ``"random"`` (``ρ ~ N(0, 1)``, the
            reference).
        warm_start_probes: Random output directions (vector-Jacobian products) per
            round of the linearised start.
        warm_start_rounds: Rounds of the linearised start; rounds after the first
            take the Jacobian at noisy points of the current ``σ``.
        antithetic: Pair every noise draw ``ε`` with ``−ε`` (needs even
            ``n_samples``).
        optimizer: ``"newton"`` (stochastic Newton steps with a closed-form
            per-group curvature, see :func:`_newton_step`) or ``"adam"`` (the
            reference).

    The defaults spend 50 forward+backward passes per example (4 for the warm start,
    23 steps of two draws, each step one batched forward), Integrated Gradients'
    default ``n_steps``; ``benchmarks/bench_quality.py`` measures what they reach
    against a converged run, ``benchmarks/bench_speed.py`` what they cost.
    """

    n_steps: int = 23
    lr: float = 0.5
    n_samples: int = 2
    scale: float = 0.5
    rate: float = 0.1
    seed: int = 0
    selection: str = "final"
    init: str = "linearized"
    warm_start_probes: int = 4
    warm_start_rounds: int = 1
    antithetic: bool = False
    optimizer: str = "newton"

    def __post_init__(self) -> None:
        for name in ("n_steps", "n_samples", "warm_start_probes", "warm_start_rounds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        for name in ("lr", "scale", "rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, got {type(value).__name__}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be positive and finite, got {value}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be an int, got {type(self.seed).__name__}")
        if self.selection not in SELECTIONS:
            raise ValueError(
                f"selection must be one of {SELECTIONS}, got {self.selection!r}"
            )
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}"
            )
        if self.antithetic and self.n_samples % 2:
            raise ValueError("antithetic=True needs an even n_samples")

    def attribute_kwargs(self) -> Dict[str, Any]:
        """These options as keyword arguments of ``attribute``."""
        names = ("n_steps", "lr", "n_samples", "scale", "rate", "seed", "selection")
        names += ("init", "warm_start_probes", "warm_start_rounds", "optimizer")
        return {name: getattr(self, name) for name in names}

    def passes_per_example(self) -> int:
        """Forward+backward passes of Φ per example (the cost in IG's units)."""
        warm = self.warm_start_probes * self.warm_start_rounds
        warm = warm if self.init == "linearized" else 0
        return warm + self.n_steps * self.n_samples


#: The reference implementation's run: random init, one draw per step, 5000 Adam
#: steps at lr 0.01, parameters of the lowest single-sample loss restored.
REFERENCE_OPTIONS = SigmaOptions(
    n_steps=5000,
    lr=0.01,
    n_samples=1,
    selection="best_loss",
    init="random",
    optimizer="adam",
)


@dataclass
class SigmaResult:
    """Solution of a :class:`SigmaProblem`.

    Attributes:
        sigma: ``(B, n_groups)`` noise scales; NaN for groups an example does not have
            (padding).
        group_sizes: ``(B, n_groups)`` number of input elements per group.
        loss_history: Mean loss over the batch after every step (for diagnostics).
    """

    sigma: Tensor
    group_sizes: Tensor
    loss_history: List[float] = field(default_factory=list)

    def scores(self, scale: float) -> Tensor:
        """Per-element scores ``log(scale / σ)`` (nats, ≥ 0); 0 for absent groups."""
        score = torch.log(scale / self.sigma)
        return torch.nan_to_num(score, nan=0.0)


def solve_sigma(
    problem: SigmaProblem,
    options: SigmaOptions,
    clean: Optional[Tensor] = None,
    on_step: Optional[Callable[[], None]] = None,
) -> SigmaResult:
    """Optimises ``σ`` for every example of ``problem``.

    Args:
        problem: The batch of problems.
        options: Hyper-parameters.
        clean: ``s = Φ(x)`` when the caller has already computed it; computed once
            here otherwise.
        on_step: Called after every optimisation step (e.g. to advance a progress
            bar).

    Returns:
        The selected ``σ`` per example and group.
    """
    sizes = problem.group_sizes()
    present = sizes > 0
    if clean is None:
        with torch.no_grad():
            clean = problem.hidden_fn(problem.inputs, 1)
    clean = clean.detach()
    weights, counts = problem.element_weights(clean)
    rho = _initial_rho(problem, options, clean, weights, counts, present)
    rho.requires_grad_(True)
    adam = (
        torch.optim.Adam([rho], lr=options.lr) if options.optimizer == "adam" else None
    )
    n_present = present.sum(1, keepdim=True).clamp_min(1)
    tracker = _Selection(options, rho.detach())
    history: List[Tensor] = []  # kept on the device: no host sync per step
    for step in range(options.n_steps):
        losses = _example_losses(
            problem, options, rho, clean, weights, counts, present, step
        )
        (grad,) = torch.autograd.grad(losses.sum(), [rho])
        if adam is not None:
            adam.zero_grad(set_to_none=True)
            rho.grad = grad
            adam.step()
            rho.grad = None
        else:
            _newton_step(rho, grad, options, n_present, step)
        tracker.update(step, rho.detach(), losses.detach())
        history.append(losses.detach().mean())
        if on_step is not None:
            on_step()
    sigma = options.scale * torch.sigmoid(tracker.result())
    sigma = torch.where(present, sigma, torch.full_like(sigma, float("nan")))
    return SigmaResult(
        sigma=sigma, group_sizes=sizes, loss_history=torch.stack(history).tolist()
    )


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


def _example_losses(
    problem: SigmaProblem,
    options: SigmaOptions,
    rho: Tensor,
    clean: Tensor,
    weights: Tensor,
    counts: Tensor,
    present: Tensor,
    step: int,
) -> Tensor:
    sigma = options.scale * torch.sigmoid(rho)
    log_fraction = torch.nn.functional.logsigmoid(rho)
    noise = _draw_noise(problem, options, step)
    perturbed = problem.perturb(sigma, noise)
    hidden = problem.hidden_fn(perturbed, options.n_samples)
    distortion = _weighted_distortion(hidden, clean, weights, counts, options.n_samples)
    entropy = (log_fraction * present).sum(1) / present.sum(1).clamp_min(1)
    return distortion - options.rate * entropy


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
    problem: SigmaProblem,
    options: SigmaOptions,
    clean: Tensor,
    weights: Tensor,
    counts: Tensor,
    present: Tensor,
) -> Tensor:
    shape = (problem.batch_size, problem.n_groups)
    device = problem.device
    if options.init == "constant":  # σ = scale / 2
        return torch.zeros(shape, device=device)
    if options.init == "random":  # ρ ~ N(0, 1), the reference's
        draw = positional_normal((options.seed, "init"), problem.n_groups, (), device)
        return draw.unsqueeze(0).expand(shape).clone()
    fraction = _linearized_fraction(problem, options, clean, weights, counts, present)
    # float64: logit(1 - 1e-6) is not representable through float32's 1 - p
    return torch.logit(fraction.double()).to(fraction.dtype).detach()


def _linearized_fraction(
    problem: SigmaProblem,
    options: SigmaOptions,
    clean: Tensor,
    weights: Tensor,
    counts: Tensor,
    present: Tensor,
) -> Tensor:
    """Closed-form optimum of the linearised loss, as the fraction ``σ / scale``.

    For small noise ``E‖(Φ(x̃) − s)/r‖² ≈ Σ_g σ_g² a_g`` with ``a_g = ‖J_g / r‖²_F``.
    Minimising ``Σ_g σ_g² a_g / M − (rate / n) Σ_g log σ_g`` gives
    ``σ_g² = rate · M / (2 n a_g)``, clipped below the cap (a group with
    ``a_g = 0`` starts next to it). The first round takes the Jacobian at the clean
    input; each further round takes it at noisy points ``x + σ ε`` of the current
    ``σ`` (a statistical linearisation: the noise the objective actually applies),
    which removes most of the first round's bias when the noise is not small.
    """
    sigma: Optional[Tensor] = None
    fraction: Optional[Tensor] = None
    for round_index in range(options.warm_start_rounds):
        sensitivity = _jacobian_sensitivity(
            problem, options, clean, weights, sigma, round_index
        )
        n_present = present.sum(1, keepdim=True).clamp_min(1)
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
