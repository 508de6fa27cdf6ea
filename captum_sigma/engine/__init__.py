"""The sigma optimisation engine: plain torch, no Captum.

Guan et al., "Towards a Deep and Unified Understanding of Deep Neural Models in NLP",
ICML 2019, http://proceedings.mlr.press/v97/guan19a.html
"""

from captum_sigma.engine.noise import derive_seed, positional_normal
from captum_sigma.engine.problem import REGULARIZATION_EPS, HiddenFunction, SigmaProblem
from captum_sigma.engine.solve import (
    INITS,
    OPTIMIZERS,
    PREVIOUS_DEFAULT_OPTIONS,
    REFERENCE_OPTIONS,
    SELECTIONS,
    SigmaOptions,
    SigmaResult,
    chain_seed,
    solve_sigma,
)

__all__ = [
    "HiddenFunction",
    "INITS",
    "OPTIMIZERS",
    "PREVIOUS_DEFAULT_OPTIONS",
    "REFERENCE_OPTIONS",
    "REGULARIZATION_EPS",
    "SELECTIONS",
    "SigmaOptions",
    "SigmaProblem",
    "SigmaResult",
    "chain_seed",
    "derive_seed",
    "positional_normal",
    "solve_sigma",
]
