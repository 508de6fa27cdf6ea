"""captum_sigma: the information-based (sigma) attribution of Guan et al. in Captum.

Guan, Wang, Zhang, Chen, He and Xie, "Towards a Deep and Unified Understanding of
Deep Neural Models in NLP", ICML 2019, http://proceedings.mlr.press/v97/guan19a.html
"""

from captum_sigma.attr import LayerSigmaAttribution, SigmaAttribution
from captum_sigma.engine import REFERENCE_OPTIONS, REGULARIZATION_EPS, SigmaOptions
from captum_sigma.regularization import (
    estimate_regularization,
    load_regularization,
    save_regularization,
)

__version__ = "0.1.0"

__all__ = [
    "LayerSigmaAttribution",
    "REFERENCE_OPTIONS",
    "REGULARIZATION_EPS",
    "SigmaAttribution",
    "SigmaOptions",
    "estimate_regularization",
    "load_regularization",
    "save_regularization",
]
