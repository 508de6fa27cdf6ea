"""Every private Captum name the package uses, imported here and only here.

Captum keeps these helpers under ``captum._utils`` and ``captum.attr._*``, with no
stability promise: a Captum release may move or change them. Reached through this
one module, a Captum upgrade is checked (and, if need be, shimmed) in one file;
``tests/test_import_graph.py`` fails if any other module of the package imports a
private Captum path.

Tested with Captum 0.9.0 (``pyproject.toml`` allows ``captum>=0.9,<0.10``). Each
name is re-exported without its underscore, so the rest of the package imports
public names only.
"""

from captum._utils import common as _common
from captum._utils import gradient as _gradient
from captum._utils import progress as _progress
from captum._utils import typing as _typing
from captum._utils.models import linear_model as _linear_model
from captum.attr._core import llm_attr as _llm_attr

__all__ = [
    "LinearModel",
    "TargetType",
    "TokenizerLike",
    "convert_ids_to_pretty_tokens",
    "expand_additional_forward_args",
    "expand_target",
    "format_additional_forward_args",
    "format_output",
    "forward_layer_eval",
    "progress",
    "run_forward",
    "select_targets",
]

#: The type of Captum's ``target`` argument (its public signatures use it; no
#: public module exports it).
TargetType = _typing.TargetType

#: The tokenizer protocol of Captum's LLM API (``LLMGradientAttribution``'s
#: ``tokenizer``); no public module exports it.
TokenizerLike = _typing.TokenizerLike

#: ``forward_func(*inputs, *additional_forward_args)`` called as every Captum method
#: calls it (a non-tuple input or argument is wrapped first).
run_forward = _common._run_forward

#: One tensor for a non-tuple input, the tuple otherwise: Captum's output format.
format_output = _common._format_output

#: ``additional_forward_args`` as a tuple (or None), Captum's normalisation.
format_additional_forward_args = _common._format_additional_forward_args

#: Repeats batch-first ``additional_forward_args`` for the noise draws, as Captum
#: repeats them for its perturbations (so the semantics are exactly Captum's).
expand_additional_forward_args = _common._expand_additional_forward_args

#: Repeats a per-example ``target`` for the noise draws, as Captum does.
expand_target = _common._expand_target

#: Selects the ``target``'s entries of an output with Captum's semantics (int,
#: tuple, per-example list or tensor).
select_targets = _common._select_targets

#: A layer's activations (its output, or its input with
#: ``attribute_to_layer_input=True``) computed as Captum's layer methods do.
forward_layer_eval = _gradient._forward_layer_eval

#: Captum's progress bar (tqdm when installed, a plain fallback otherwise), the one
#: Captum's own methods show.
progress = _progress.progress

#: The interpretable-model base class Captum's ``Lime`` trains (the evaluation's
#: exact least-squares surrogate subclasses it).
LinearModel = _linear_model.LinearModel

#: Output-token strings as Captum's ``LLMAttributionResult`` shows them, so our LLM
#: results print like Captum's.
convert_ids_to_pretty_tokens = _llm_attr._convert_ids_to_pretty_tokens
