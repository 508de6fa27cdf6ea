"""captum_sigma: the information-based (sigma) attribution of Guan et al. in Captum.

Guan, Wang, Zhang, Chen, He and Xie, "Towards a Deep and Unified Understanding of
Deep Neural Models in NLP", ICML 2019, http://proceedings.mlr.press/v97/guan19a.html

The public names are imported on first use (PEP 562), so ``captum-sigma --help`` and
one-line errors do not wait for torch and captum to load.
"""

from captum_sigma._lazy import lazy_package

__version__ = "0.1.0"

_EXPORTS = {
    "LayerSigmaAttribution": "captum_sigma.attr",
    "LLMSigmaAttribution": "captum_sigma.llm",
    "SigmaAttribution": "captum_sigma.attr",
    "REFERENCE_OPTIONS": "captum_sigma.engine",
    "REGULARIZATION_EPS": "captum_sigma.engine",
    "SigmaOptions": "captum_sigma.engine",
    "estimate_regularization": "captum_sigma.regularization",
    "load_regularization": "captum_sigma.regularization",
    "save_regularization": "captum_sigma.regularization",
}

__all__, __getattr__, __dir__ = lazy_package(__name__, _EXPORTS, globals())
