r"""The names of the comparison's methods, without torch.

:mod:`~captum_sigma.evaluation.methods` builds the methods of these names; the
command line's ``captum-sigma compare --help`` lists them and imports no torch.
"""

__all__ = [
    "DEFAULT_METHOD_NAMES",
    "METHOD_NAMES",
    "SIGMA_LOGIT_ROW",
    "SIGMA_PROBABILITY_ROW",
]

#: Methods run by default, in table order (Sigma rows come from sigma_settings).
DEFAULT_METHOD_NAMES: tuple[str, ...] = (
    "IntegratedGradients",
    "Saliency",
    "InputXGradient",
    "DeepLift",
    "FeatureAblation",
    "Lime",
    "KernelShap",
    "Random",
)

#: An extra Sigma row: ``SigmaOptions()`` (rate 0.1) on the predicted
#: class's probability, self-normalised (``regularization=None``), computed by
#: ``LayerSigmaAttribution(classifier_forward(model), embeddings)``; it differs
#: from the row "Sigma" (the explainer's default) only by its options.
SIGMA_PROBABILITY_ROW = "Sigma (probability, self-normalised)"
#: An extra Sigma row: the :class:`~captum_sigma.text.TextExplainer` default before
#: the configuration study of issue #12, the predicted class's logit / r with the
#: single-chain 50-pass solver (``PREVIOUS_DEFAULT_OPTIONS``, rate 0.1), i.e.
#: ``TextExplainer(..., output="logit", options=PREVIOUS_DEFAULT_OPTIONS)``.
SIGMA_LOGIT_ROW = "Sigma (logit / r, previous default)"

#: Every method of the registry in table order: the row "Sigma" (the key of
#: :data:`~captum_sigma.evaluation.compare.DEFAULT_SIGMA_SETTINGS`), the default
#: methods, then the two extra Sigma rows.
METHOD_NAMES: tuple[str, ...] = (
    "Sigma",
    *DEFAULT_METHOD_NAMES,
    SIGMA_PROBABILITY_ROW,
    SIGMA_LOGIT_ROW,
)
