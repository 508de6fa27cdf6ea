"""Explain Hugging Face text models with the sigma attribution.

Guan, Wang, Zhang, Chen, He and Xie, "Towards a Deep and Unified Understanding of
Deep Neural Models in NLP", ICML 2019, http://proceedings.mlr.press/v97/guan19a.html

:class:`TextExplainer` explains a model and tokenizer on texts (a class's
log-odds, logit or probability; a layer's hidden state; a pooled embedding) with
the settings of a named preset (:mod:`captum_sigma.text.presets`); it returns
:class:`TextExplanation` objects (tokens, scores with standard errors, σ,
prediction, HTML, figures, JSON) and, for the words ×
layers view, :class:`WordsLayersExplanation`. The packaged default sentiment model
lives in :mod:`captum_sigma.text.default_model`; the rules of the arguments (class,
layer, device, output), shared with the command line, in
:mod:`captum_sigma.text.resolve`.

The names are imported on first use (PEP 562), so the torch-free modules
(:mod:`~captum_sigma.text.choices`, :mod:`~captum_sigma.text.resolve`) load no torch.
"""

from captum_sigma._lazy import lazy_package

_EXPORTS = {
    "DEFAULT_PRESET": "captum_sigma.text.choices",
    "DEFAULT_TEXT_OPTIONS": "captum_sigma.text.explainer",
    "DEFAULT_TEXT_OUTPUT": "captum_sigma.text.explainer",
    "PRESETS": "captum_sigma.text.presets",
    "Preset": "captum_sigma.text.presets",
    "TEXT_OUTPUTS": "captum_sigma.text.explainer",
    "TextExplainer": "captum_sigma.text.explainer",
    "TextExplanation": "captum_sigma.text.explanation",
    "WordsLayersExplanation": "captum_sigma.text.words_layers",
    "default_data_sample": "captum_sigma.text.data",
    "get_preset": "captum_sigma.text.presets",
    "read_texts": "captum_sigma.text.data",
    # the model and tokenisation helpers that other parts (the evaluation) use
    "LogOddsOutput": "captum_sigma.text.model",
    "LogitsOutput": "captum_sigma.text.model",
    "ProbabilitiesOutput": "captum_sigma.text.model",
    "TokenizedTexts": "captum_sigma.text.tokenization",
    "base_model": "captum_sigma.text.model",
    "find_embeddings": "captum_sigma.text.model",
    "find_layers": "captum_sigma.text.model",
    "model_device": "captum_sigma.text.model",
    "model_max_length": "captum_sigma.text.model",
    "tokenize_texts": "captum_sigma.text.tokenization",
}

__all__, __getattr__, __dir__ = lazy_package(__name__, _EXPORTS, globals())
