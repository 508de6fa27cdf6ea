"""The sigma optimisation's options: one frozen, validated record (no torch).

:class:`SigmaOptions` is importable without torch, so that the presets and the
command line's help texts are built from the options themselves. The solver that
runs them is :mod:`captum_sigma.engine.solve`.
"""

import math
from dataclasses import dataclass
from typing import Optional

__all__ = [
    "CONTROL_VARIATE_MAX_OUTPUTS",
    "INITS",
    "OPTIMIZERS",
    "PREVIOUS_DEFAULT_OPTIONS",
    "REFERENCE_OPTIONS",
    "SELECTIONS",
    "SigmaOptions",
]

SELECTIONS = ("average", "final", "best_loss")
#: Largest explained output (elements per example) that gets the control variate
#: of ``SigmaOptions.control_variate``: its Jacobian costs one backward pass per
#: element.
CONTROL_VARIATE_MAX_OUTPUTS = 16
INITS = ("linearized", "constant", "random")
OPTIMIZERS = ("newton", "adam")


@dataclass(frozen=True)
class SigmaOptions:
    """Hyper-parameters of the sigma optimisation.

    Attributes:
        n_steps: Optimisation steps (each takes ``n_samples`` forward+backward
            passes).
        lr: With ``optimizer="newton"`` the first step's fraction of the Newton step;
            step ``t`` takes ``lr / (1 + lr · t)`` of it. The default, 1, makes the
            iterate after ``t`` steps the mean of the ``t`` noisy Newton targets
            seen so far: the starting point leaves the average after the first
            step (``lr=0.5`` kept it as one more target, a bias shared by every
            chain that no standard error sees). With ``optimizer="adam"`` Adam's
            learning rate (torch defaults otherwise, as in the reference).
        n_samples: Noise draws per step (the expectation is a mean over them).
        scale: Upper bound of ``σ`` (``σ = scale · sigmoid(ρ)``).
        rate: Weight of the entropy term. The default, 1, was chosen with the
            default preset's explained output (a class's log-odds / r) by the
            pre-registered study of ``docs/trust-study.md``; the paper's reference
            run uses 0.1 (:data:`REFERENCE_OPTIONS`).
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
        chains: Independent runs of the whole optimisation (warm start included),
            each with its own noise streams (chain 0 uses ``seed`` itself, chain
            ``k`` the seed :func:`chain_seed` derives). The result is their mean
            score (the geometric mean of ``σ``) and, with two or more chains, every
            group's score carries a standard error. Its Monte-Carlo part is the
            chains' sample standard deviation over ``sqrt(chains)`` (the chains
            are independent and identically distributed given the input: an
            unbiased estimate of the variance of the returned mean at this
            budget). With Newton steps and ``selection="final"`` it adds, in
            quadrature, how far the chains' mean still moved over the second half
            of the run: the chains share their start, so the bias of stopping
            early moves them together and their spread does not see it
            (``SigmaResult.standard_error``; calibrated against long runs by
            ``benchmarks/bench_trust.py``).
        tol: With ``chains >= 2``, ``optimizer="newton"`` and
            ``selection="final"`` (:attr:`uses_tol`; otherwise exactly
            ``n_steps`` steps run): keep stepping after ``n_steps`` until the
            chains' standard error (the Monte-Carlo part) of every group's score
            (``|g| · log(scale / σ_g)``, nats per group) is at most ``tol``
            times the example's largest score (a relative tolerance: scores of
            different outputs and models differ
            in size, their ranking is what a reader uses), or ``max_steps`` steps
            were taken. An example that is done stops costing: the next steps run
            on the others only. None: exactly ``n_steps`` steps.
        max_steps: Most steps with ``tol`` (default ``5 · n_steps``).
        control_variate: When the explained output has at most
            :data:`CONTROL_VARIATE_MAX_OUTPUTS` elements per example (a class's
            logit, log-odds or probability), take its exact Jacobian ``J`` at the
            clean input once (one backward pass per element) and subtract the
            noise's linear term ``Σ_g σ_g ⟨J_g, ε_g⟩`` from every draw's change,
            adding back its known expectation ``Σ_g σ_g² ‖J_g‖²``: the same
            objective in expectation, but the other tokens' cross terms, which
            dominate one draw's gradient of a scalar output, cancel. ``J`` also
            gives the linearised warm start exactly (no probes). Ignored for
            larger outputs (a layer's hidden state).

    The defaults are the ``"default"`` preset's (:mod:`captum_sigma.text.presets`):
    rate 1, 4 independent chains of one draw per step, 23 steps each, then more
    steps until every group's chain standard error is at most 10 % of the example's
    largest score, at most 115; for a scalar output (a class's logit, log-odds or
    probability) with the control variate that is 93 to 461 forward+backward
    passes per example
    (Integrated Gradients' default costs 50). ``benchmarks/bench_trust.py`` measures
    what they reach (seed agreement, flat share, calibration) and cost; the
    ``"fast"`` preset keeps the old cost.
    """

    n_steps: int = 23
    lr: float = 1.0
    n_samples: int = 1
    scale: float = 0.5
    rate: float = 1.0
    seed: int = 0
    selection: str = "final"
    init: str = "linearized"
    warm_start_probes: int = 4
    warm_start_rounds: int = 1
    antithetic: bool = False
    optimizer: str = "newton"
    chains: int = 4
    tol: Optional[float] = 0.1
    max_steps: Optional[int] = None
    control_variate: bool = True

    def __post_init__(self) -> None:
        names = ("n_steps", "n_samples", "warm_start_probes", "warm_start_rounds")
        for name in names + ("chains",):
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
        self._check_budget()

    def _check_budget(self) -> None:
        if self.max_steps is not None:
            if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int):
                raise TypeError(
                    f"max_steps must be an int, got {type(self.max_steps).__name__}"
                )
            if self.max_steps < self.n_steps:
                raise ValueError(
                    f"max_steps ({self.max_steps}) must be at least n_steps "
                    f"({self.n_steps})"
                )
        if self.tol is None:
            return
        if isinstance(self.tol, bool) or not isinstance(self.tol, (int, float)):
            raise TypeError(f"tol must be a number, got {type(self.tol).__name__}")
        if not math.isfinite(self.tol) or self.tol <= 0:
            raise ValueError(f"tol must be positive and finite, got {self.tol}")

    @property
    def uses_tol(self) -> bool:
        """Whether ``tol`` takes effect: it needs ``chains >= 2`` (the standard
        error comes from the chains), ``optimizer="newton"`` and
        ``selection="final"`` (a finished example leaves the batch, which Adam's
        state and the other selections do not allow); otherwise exactly
        ``n_steps`` steps run."""
        return (
            self.tol is not None
            and self.chains >= 2
            and self.optimizer == "newton"
            and self.selection == "final"
        )

    @property
    def step_limit(self) -> int:
        """The most steps an example can take (``n_steps`` without ``tol``)."""
        if not self.uses_tol:
            return self.n_steps
        return self.max_steps if self.max_steps is not None else 5 * self.n_steps

    def uses_control_variate(self, n_outputs: int) -> bool:
        """Whether an output of ``n_outputs`` elements per example gets the
        control variate (see ``control_variate``)."""
        return self.control_variate and n_outputs <= CONTROL_VARIATE_MAX_OUTPUTS

    def passes_per_example(
        self, steps: Optional[int] = None, n_outputs: Optional[int] = None
    ) -> int:
        """Forward+backward passes of Φ per example (the cost in IG's units).

        Args:
            steps: Steps taken (default ``n_steps``; with ``tol`` an example takes
                between ``n_steps`` and :attr:`step_limit`).
            n_outputs: Elements of the explained output per example, when known:
                with the control variate its Jacobian costs one backward pass per
                element, once, and replaces the first warm-start round's probes.
                None counts without the control variate.
        """
        steps = self.n_steps if steps is None else steps
        probes = self.warm_start_probes
        jacobian = 0
        rounds = self.warm_start_rounds
        if n_outputs is not None and self.uses_control_variate(n_outputs):
            jacobian, rounds = n_outputs, rounds - 1
        warm = probes * rounds if self.init == "linearized" else 0
        return jacobian + self.chains * (warm + steps * self.n_samples)


#: The solver's default before independent chains (issue #17): one chain of 23 steps
#: of two draws after 4 warm-start probes (50 passes), no tolerance, no control
#: variate. The benchmarks that measured it keep it by this name.
PREVIOUS_DEFAULT_OPTIONS = SigmaOptions(
    lr=0.5,
    n_samples=2,
    rate=0.1,
    chains=1,
    tol=None,
    control_variate=False,
)


#: The reference implementation's run: random init, one draw per step, 5000 Adam
#: steps at lr 0.01, parameters of the lowest single-sample loss restored.
REFERENCE_OPTIONS = SigmaOptions(
    n_steps=5000,
    lr=0.01,
    n_samples=1,
    rate=0.1,
    selection="best_loss",
    init="random",
    optimizer="adam",
    chains=1,
    tol=None,
    control_variate=False,
)
