"""Explain Hugging Face text models with the sigma attribution.

Guan, Wang, Zhang, Chen, He and Xie, "Towards a Deep and Unified Understanding of
Deep Neural Models in NLP", ICML 2019, http://proceedings.mlr.press/v97/guan19a.html

:class:`TextExplainer` explains a model and tokenizer on texts (a class's
log-odds, logit or probability; a layer's hidden state; a pooled embedding) with
the settings of a named preset (:mod:`captum_sigma.text.presets`); it returns
:class:`TextExplanation` objects (tokens, scores with standard errors, σ,
prediction, HTML, figures, JSON) and, for the words ×
layers view, :class:`WordsLayersExplanation`. The packaged default sentiment model
lives in :mod:`captum_sigma.text.default_model`.
"""

from captum_sigma.text.data import default_data_sample, read_texts
from captum_sigma.text.explainer import (
    DEFAULT_TEXT_OPTIONS,
    DEFAULT_TEXT_OUTPUT,
    TEXT_OUTPUTS,
    TextExplainer,
)
from captum_sigma.text.explanation import TextExplanation
from captum_sigma.text.presets import DEFAULT_PRESET, PRESETS, Preset, get_preset
from captum_sigma.text.words_layers import WordsLayersExplanation

__all__ = [
    "DEFAULT_PRESET",
    "DEFAULT_TEXT_OPTIONS",
    "DEFAULT_TEXT_OUTPUT",
    "PRESETS",
    "Preset",
    "TEXT_OUTPUTS",
    "TextExplainer",
    "TextExplanation",
    "WordsLayersExplanation",
    "default_data_sample",
    "get_preset",
    "read_texts",
]
