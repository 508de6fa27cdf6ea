"""Sigma attribution of generative (causal) language models through Captum's LLM API.

Guan et al., "Towards a Deep and Unified Understanding of Deep Neural Models in NLP",
ICML 2019, http://proceedings.mlr.press/v97/guan19a.html

The names are imported on first use (PEP 562), so that the command line can
register ``explain-lm`` without loading torch.
"""

import importlib
from typing import Any, List

_EXPORTS = {
    "DEFAULT_EXPLAINED": "captum_sigma.llm.forward",
    "EXPLAINED": "captum_sigma.llm.forward",
    "LLMSigmaAttribution": "captum_sigma.llm.llm_sigma",
    "NextTokenRows": "captum_sigma.llm.rows",
    "explained_values": "captum_sigma.llm.forward",
    "lm_regularization": "captum_sigma.llm.forward",
    "next_token_forward": "captum_sigma.llm.forward",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'captum_sigma.llm' has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(list(globals()) + __all__)
