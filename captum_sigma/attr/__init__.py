"""Captum adapters over the sigma engine.

Besides the two adapters, the package exports the helpers that the package's other
parts (``regularization``, ``text``, ``evaluation``, ``llm``) use: the forward hooks
of :mod:`captum_sigma.attr.hooks`, :func:`explained_rows` (the output ``attribute``
explains, for estimating ``r``), :func:`seeded_rng`, :class:`TargetError` and
:func:`check_internal_batch_size` (the rule of ``attribute``'s
``internal_batch_size``). ``tests/test_import_graph.py`` checks that other parts
import nothing else from here.
"""

from captum_sigma.attr.common import (
    TargetError,
    check_internal_batch_size,
    explained_rows,
    seeded_rng,
)
from captum_sigma.attr.hooks import (
    StopForward,
    captured_outputs,
    explained_output,
    replaced_activations,
)
from captum_sigma.attr.layer_sigma import LayerSigmaAttribution
from captum_sigma.attr.sigma import SigmaAttribution

__all__ = [
    "LayerSigmaAttribution",
    "SigmaAttribution",
    "StopForward",
    "TargetError",
    "captured_outputs",
    "check_internal_batch_size",
    "explained_output",
    "explained_rows",
    "replaced_activations",
    "seeded_rng",
]
