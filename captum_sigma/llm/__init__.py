"""Sigma attribution of generative (causal) language models through Captum's LLM API.

Guan et al., "Towards a Deep and Unified Understanding of Deep Neural Models in NLP",
ICML 2019, http://proceedings.mlr.press/v97/guan19a.html

The names are imported on first use (PEP 562), so that the command line can
register ``explain-lm`` without loading torch.
"""

from captum_sigma._lazy import lazy_package

_EXPORTS = {
    "DEFAULT_EXPLAINED": "captum_sigma.llm.forward",
    "EXPLAINED": "captum_sigma.llm.forward",
    "LLMSigmaAttribution": "captum_sigma.llm.llm_sigma",
    "NextTokenRows": "captum_sigma.llm.rows",
    "explained_values": "captum_sigma.llm.forward",
    "lm_regularization": "captum_sigma.llm.forward",
    "next_token_forward": "captum_sigma.llm.forward",
}

__all__, __getattr__, __dir__ = lazy_package(__name__, _EXPORTS, globals())
