r"""The text layer's named choices, importable without torch (help texts, docs).

What a classifier's explanation can explain (:data:`OUTPUTS`) and each preset's
name, explained output and summary: the constants the ``--help`` pages are built
from. :mod:`captum_sigma.text.presets` builds its
:class:`~captum_sigma.text.presets.Preset` records from them with their
:class:`~captum_sigma.SigmaOptions` (torch-free, :mod:`captum_sigma.engine.options`),
so ``captum-sigma <command> --help`` loads no torch.
"""

from typing import Dict, Tuple

__all__ = [
    "DEFAULT_PRESET",
    "OUTPUTS",
    "OUTPUT_DESCRIPTIONS",
    "PRESET_NAMES",
    "PRESET_OUTPUTS",
    "PRESET_SUMMARIES",
]

#: What a classifier's explanation can explain, each described in one line.
OUTPUT_DESCRIPTIONS: Dict[str, str] = {
    "probability": "the target class's probability, self-normalised (no r)",
    "logit": "the target class's logit / r",
    "log-odds": "the target class's log-odds log p - log(1 - p), / r",
}
#: The names of :data:`OUTPUT_DESCRIPTIONS`, in order.
OUTPUTS: Tuple[str, ...] = tuple(OUTPUT_DESCRIPTIONS)

#: Each preset's explained output of a classifier (one of :data:`OUTPUTS`).
PRESET_OUTPUTS: Dict[str, str] = {
    "default": "log-odds",
    "precise": "log-odds",
    "fast": "log-odds",
    "reference": "logit",
}
#: The presets' names, in help order.
PRESET_NAMES: Tuple[str, ...] = tuple(PRESET_OUTPUTS)
#: The preset ``TextExplainer`` and the command line use when none is named.
DEFAULT_PRESET = "default"
#: Each preset in one line, for help texts and docs.
PRESET_SUMMARIES: Dict[str, str] = {
    "default": "stable by default: independent chains until every token's standard "
    "error is below the tolerance",
    "precise": "closer to the converged values: the default with 8 times the steps "
    "(about 8 times its cost)",
    "fast": "about the old 50-pass cost, with a rough standard error (2 chains)",
    "reference": "the paper's reference run (Adam, 5000 steps, random init, lowest "
    "single-sample loss), rate 0.1",
}
