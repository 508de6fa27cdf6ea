"""The sigma optimisation engine: plain torch, no Captum.

Guan et al., "Towards a Deep and Unified Understanding of Deep Neural Models in NLP",
ICML 2019, http://proceedings.mlr.press/v97/guan19a.html

The options (:mod:`~captum_sigma.engine.options`) import without torch; the
solver's names load torch on first use (PEP 562), so help texts built from the
options stay fast.
"""

from captum_sigma._lazy import lazy_exports
from captum_sigma.engine.options import (
    CONTROL_VARIATE_MAX_OUTPUTS,
    INITS,
    OPTIMIZERS,
    PREVIOUS_DEFAULT_OPTIONS,
    REFERENCE_OPTIONS,
    SELECTIONS,
    SigmaOptions,
)

_EXPORTS = {
    "derive_seed": "captum_sigma.engine.noise",
    "positional_normal": "captum_sigma.engine.noise",
    "REGULARIZATION_EPS": "captum_sigma.engine.problem",
    "HiddenFunction": "captum_sigma.engine.problem",
    "SigmaProblem": "captum_sigma.engine.problem",
    "SigmaResult": "captum_sigma.engine.solve",
    "chain_seed": "captum_sigma.engine.solve",
    "solve_sigma": "captum_sigma.engine.solve",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "CONTROL_VARIATE_MAX_OUTPUTS",
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
